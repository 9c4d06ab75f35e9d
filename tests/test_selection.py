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
    versions = [parse_version(v) for v in order]
    assert versions == sorted(versions)  # type: ignore[type-var]


def test_non_versions() -> None:
    assert parse_version("latest") is None
    assert parse_version("1.2.3.4") is None
    assert parse_version("1.2.3-01") is None  # leading zero in a numeric pre-release id
    assert parse_version("v1.2.3") is not None


# Docker Official Images tag x and x.y; they are versions (skopeo's images-by-semver and
# Masterminds/semver read them so: 1.27 is 1.27.0).
@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("1.27", "1.27.0"),
        ("16.4", "16.4.0"),
        ("7.2", "7.2.0"),
        ("v1", "1.0.0"),
        ("1", "1.0.0"),
        ("1.27.3", "1.27.3"),
        ("1.27-alpine", "1.27.0-alpine"),
        ("3.5.15-0", "3.5.15-0"),
    ],
)
def test_partial_versions(tag: str, version: str) -> None:
    assert str(parse_version(tag)) == version


# Real tag lists (nginx, postgres, redis as Docker Hub lists them, trimmed).
NGINX = [
    "1.27",
    "1.27.3",
    "1.27.3-alpine",
    "1.27-alpine",
    "1.26",
    "1.26.2",
    "1",
    "mainline",
    "stable",
    "latest",
    "1.28.0-rc.1",
]
POSTGRES = ["16", "16.4", "16.3", "16.4-bookworm", "15.8", "15", "17rc1", "latest"]


@pytest.mark.parametrize(
    ("rng", "tags", "chosen"),
    [
        (">=1.27 <2", NGINX, ["1.27", "1.27.3"]),
        ("~1.26", NGINX, ["1.26", "1.26.2"]),
        ("^16", POSTGRES, ["16", "16.3", "16.4"]),
        ("16.x", POSTGRES, ["16", "16.3", "16.4"]),
        (">=1.28.0-rc.0 <2", NGINX, ["1.28.0-rc.1"]),  # a pre-release only when the range names one
        ("1.27.x", ["v1.27.0", "v1.27.1", "v1.28.0"], ["v1.27.0", "v1.27.1"]),
    ],
)
def test_ranges_see_real_tags(rng: str, tags: list[str], chosen: list[str]) -> None:
    assert Selection(semver=parse_range(rng)).select(tags) == chosen


def test_latest_counts_short_versions() -> None:
    s = Selection(semver=parse_range(">=16"), latest=2)
    assert s.select(POSTGRES) == ["16.3", "16.4"]
    # 1.27 and 1.27.0 are one version; the longer spelling counts as newer, every run alike.
    assert Selection(latest=1).select(["1.27", "1.27.0"]) == ["1.27.0"]


@pytest.mark.parametrize(
    ("spelled", "npm"),
    [(">= 1.2", ">=1.2"), ("~> 1.2", "~1.2"), ("^v1.2", "^1.2"), ("v1.x", "1.x")],
)
def test_spellings_people_write(spelled: str, npm: str) -> None:
    tags = ["1.1.0", "1.2.0", "1.2.5", "1.3.0", "2.0.0"]
    assert Selection(semver=parse_range(spelled)).select(tags) == Selection(
        semver=parse_range(npm)
    ).select(tags)


def test_all_takes_every_tag_and_exclude_narrows_it() -> None:
    assert Selection(all=True).select(["b", "a", "1.0"]) == ["1.0", "a", "b"]
    s = Selection(all=True, exclude=selection.compile_regex("^sha256-|\\.sig$"))
    assert s.select(["v1", "sha256-abc.sig", "v2"]) == ["v1", "v2"]


def test_explain_says_why_the_nearest_tags_were_skipped() -> None:
    s = Selection(semver=parse_range(">=1.28 <2"))
    assert s.select(NGINX) == []
    why = s.explain(NGINX, limit=5)
    assert why == [
        "1.28.0-rc.1 (a pre-release, and '>=1.28 <2' names none)",
        "1.27.3 (outside '>=1.28 <2')",
        "1.27.3-alpine (outside '>=1.28 <2')",
        "latest (not a version)",
        "mainline (not a version)",
    ]


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


def test_exclude_alone_is_not_every_tag() -> None:
    with pytest.raises(selection.RuleError, match="cannot stand alone"):
        Selection(exclude=selection.compile_regex("rc"))
    for ok in (
        Selection(all=True, exclude=selection.compile_regex("rc")),
        Selection(latest=1, exclude=selection.compile_regex("rc")),
    ):
        assert ok.select(["1.0", "1.1-rc"]) == ["1.0"]


def test_latest_takes_releases_unless_the_range_names_a_pre_release() -> None:
    assert Selection(latest=1).select(["v1.30.2", "v1.31.0-rc.1"]) == ["v1.30.2"]
    assert Selection(latest=2).select(["1.27.3", "1.27.3-perl", "1.27"]) == ["1.27", "1.27.3"]
    # README's version-rule table.
    assert Selection(latest=1).select(["1.28.0-rc.1", "1.27.3-perl", "1.27.3"]) == ["1.27.3"]
    assert Selection(latest=1, include=selection.compile_regex("^v1")).select(
        ["v1.30.2", "v1.31.0-rc.1"]
    ) == ["v1.30.2"]
    named = Selection(semver=parse_range(">=1.31.0-rc.0"), latest=1)
    assert named.select(["v1.30.2", "v1.31.0-rc.1"]) == ["v1.31.0-rc.1"]
    (why,) = Selection(latest=1).explain(["v1.31.0-rc.1"])
    assert "pre-release" in why
