"""Property tests: no mirrors list, however hostile, makes `generate` emit anything but one
FROM line per Dockerfile, or write anywhere but mirrors/dockerfiles/."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.config import lockfile as lock
from relay.config import mirrors
from relay.config import settings as relay_settings
from relay.errors import InputError
from relay.stages import generate

pytestmark = pytest.mark.slow

HEX = "0123456789abcdef"
NASTY = [
    "\n",
    "\r",
    "\x00",
    "$",
    "${HOME}",
    " AS ",
    "--platform=x",
    "../",
    "..",
    "/",
    "\\",
    "@",
    ":",
    " ",
    "\t",
    "RUN ",
    "#",
    "'",
    '"',
    "`",
    "\u2028",
    "é",
    "A",
]
ALPHABET = st.sampled_from(list("abcz09._-/:@") + NASTY)
text = st.lists(ALPHABET, max_size=12).map("".join)
digest = st.text(HEX, min_size=64, max_size=64).map(lambda h: f"sha256:{h}")
good_tag = st.tuples(st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z"), digest).map("@".join)
# Mostly well-formed values, so that many examples get through validation and really generate;
# the hostile ones are mixed in at every position.
tag = st.one_of(good_tag, good_tag, good_tag, text, st.tuples(text, digest).map("@".join))
good_source = st.sampled_from(
    ["nginx", "registry.k8s.io/pause", "ghcr.io/a/b", "quay.io/x/y", "[::1]:5000/z", "a.b:1/c_d"]
)
source = st.one_of(
    good_source,
    good_source,
    text,
    st.tuples(good_source, text).map("".join),
)
good_name = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{1,10}\Z")
entry = st.fixed_dictionaries(
    {"source": source, "tags": st.lists(tag, min_size=1, max_size=3)},
    optional={
        "name": st.one_of(good_name, good_name, text),
        "platforms": st.lists(st.sampled_from(["linux/amd64", "linux/arm/v7", "x", "linux/$A"])),
    },
)
document = st.fixed_dictionaries({"images": st.lists(entry, max_size=3)})
FROM_LINE = re.compile(r"FROM [^\s]+:[A-Za-z0-9_][A-Za-z0-9_.-]*@sha256:[a-f0-9]{64}")


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "dockerfiles" not in p.relative_to(root).parts
    }


def check_generate(images_yaml: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        (repo / "mirrors").mkdir(parents=True)
        (repo / "mirrors/images.yaml").write_text(images_yaml, encoding="utf-8")
        before = snapshot(Path(tmp))
        try:
            cfg = relay_settings.load(repo)
            ml = mirrors.load(repo, max_name_length=cfg.naming.max_length)
            want = generate.desired(ml, lock.read(repo))
        except InputError as exc:
            assert exc.problems and all(p.path.startswith("mirrors/") for p in exc.problems)
            assert not (repo / "mirrors/dockerfiles").exists()
            return
        generate.apply(repo, generate.plan(want, generate.scan(repo)))
        assert snapshot(Path(tmp)) == before
        root = (repo / "mirrors/dockerfiles").resolve()
        for path in Path(tmp).rglob("*"):
            if path.is_file() and path.name == "Dockerfile":
                assert path.resolve().is_relative_to(root)
                rel = path.relative_to(root).parts
                assert len(rel) == 3
                body = path.read_text(encoding="utf-8")
                lines = body.split("\n")
                assert lines[0] == generate.HEADER.rstrip("\n")
                assert FROM_LINE.fullmatch(lines[1]), lines[1]
                assert lines[2:] == [""]
                assert sum(1 for line in lines if not line.startswith("#") and line) == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document)
def test_structured_lists_only_ever_yield_one_from(doc: dict) -> None:
    check_generate(yaml.safe_dump(doc, allow_unicode=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_or_escapes(raw: str) -> None:
    check_generate("images:\n  - source: nginx\n    tags: [" + raw + "]\n")
    check_generate(raw)


def test_the_pinned_happy_path_really_generates() -> None:
    # Guard against a property test that passes only because everything is rejected.
    d = "sha256:" + "1" * 64
    check_generate(f"images:\n  - source: nginx\n    tags: ['1.27@{d}']\n")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        (repo / "mirrors").mkdir()
        (repo / "mirrors/images.yaml").write_text(
            f"images:\n  - source: nginx\n    tags: ['1.27@{d}']\n"
        )
        ml = mirrors.load(repo)
        assert list(generate.desired(ml, lock.Lock())) == [
            "mirrors/dockerfiles/nginx/1.27/Dockerfile"
        ]
