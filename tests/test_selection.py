from __future__ import annotations

import pytest

from relay.config import selection
from relay.config.selection import Selection, parse_range, parse_version

TAGS = ["v1.29.9", "v1.30.0", "v1.30.1", "v1.30.2", "v1.30.3-rc.0", "v1.31.0", "latest", "1.30.5"]


@pytest.mark.parametrize(
    ("rng", "version", "ok"),
    [
        (">=1.2.0 <2", "1.2.0", True),
        (">=1.2.0 <2", "1.99.0", True),
        (">=1.2.0 <2", "2.0.0", False),
        (">=1.2.0 <2", "2.0.0-rc.1", False),
        (">= 1.2", "1.3.0", True),
        ("^1.2", "1.9.9", True),
        ("^1.2", "2.0.0", False),
        ("^0.2.3", "0.2.9", True),
        ("^0.2.3", "0.3.0", False),
        ("~1.2.3", "1.2.9", True),
        ("~1.2.3", "1.3.0", False),
        ("1.x", "1.9.0", True),
        ("1.x", "2.0.0", False),
        ("*", "0.0.1", True),
        ("1.2 - 1.4", "1.4.9", True),
        ("1.2 - 1.4", "1.5.0", False),
        ("<1.2 || >=3", "3.1.0", True),
        ("<1.2 || >=3", "2.0.0", False),
        ("=1.2.3", "1.2.3", True),
        ("1.2.3", "1.2.4", False),
        (">1.2", "1.2.9", False),
        (">1.2", "1.3.0", True),
        ("<=1.2", "1.2.9", True),
        (">=1.2.3-rc.1 <1.3", "1.2.3-rc.2", True),
        (">=1.2.3-rc.1 <1.3", "1.2.4-rc.1", False),
    ],
)
def test_range(rng: str, version: str, ok: bool) -> None:
    v = parse_version(version)
    assert v is not None
    assert parse_range(rng).matches(v) is ok


@pytest.mark.parametrize("bad", ["", "abc", ">=>1", "1.2.3.4", "<", "1.2 -", "~~1"])
def test_bad_ranges(bad: str) -> None:
    with pytest.raises(selection.RuleError):
        parse_range(bad)


def test_version_order() -> None:
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0"]
    keys = [parse_version(v).key() for v in order]  # type: ignore[union-attr]
    assert keys == sorted(keys)


def test_non_versions() -> None:
    assert parse_version("latest") is None
    assert parse_version("1.2") is None
    assert parse_version("v1.2.3") is not None


def test_select_latest_n() -> None:
    s = Selection(semver=parse_range("~1.30"), latest=2)
    assert s.select(TAGS) == ["1.30.5", "v1.30.2"]


def test_select_regex() -> None:
    s = Selection(
        include=selection.compile_regex(r"^v1\.30"), exclude=selection.compile_regex("rc")
    )
    assert s.select(TAGS) == ["v1.30.0", "v1.30.1", "v1.30.2"]


def test_latest_ignores_non_versions() -> None:
    assert Selection(latest=1).select(["latest", "v2.0.0", "v1.0.0"]) == ["v2.0.0"]


def test_regex_limits() -> None:
    with pytest.raises(selection.RuleError):
        selection.compile_regex("(")
    with pytest.raises(selection.RuleError):
        selection.compile_regex("a" * 257)
