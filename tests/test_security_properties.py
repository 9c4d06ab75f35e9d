"""No tracebacks, ever: relay's CLI driven with generated hostile files.

Every file relay reads from a repository or a command line (the list, the settings, the lock,
image-syncer's images and auth files, REGISTRY_AUTH_FILE) is generated as non-UTF-8 bytes,
structured YAML/JSON garbage (deep nesting, 5,000-digit numbers, anchors and aliases, control
and invisible characters), a directory, or a symlink to /dev/zero, out of the repository or to
itself. Whatever it gets, relay must answer with an exit code in {0, 1, 2} and never raise:
`relay.cli.main` lets nothing but relay's own errors become exit codes, so an exception
escaping it here is a traceback a user would have seen.

Hermetic: any request relay might make goes to a closed port through HTTPS_PROXY/HTTP_PROXY,
once (no retries).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay import cli
from relay.net import retry

FRAGMENTS = [
    "images:\n",
    "  - source: nginx\n",
    "  - source: ghcr.io/a/b\n",
    "    tags: [",
    "'1.0'",
    "'1.0@sha256:" + "a" * 64 + "'",
    "]\n",
    "    select:\n      include: ",
    "'^(a+)+b$'",
    "'(?=x)'",
    "\n",
    "    platforms: [linux/amd64]\n",
    "    name: x\n",
    "naming:\n  max_length: ",
    "registries:\n  insecure: [",
    "10.0.0.0/99",
    "  limits:\n    deadline: ",
    "    manifest_bytes: ",
    "copy:\n  registry: ",
    "9" * 5000,
    "1e999",
    "-1",
    "0x10",
    ".inf",
    "&a ",
    "*a",
    "<<: *a\n",
    "[" * 300,
    "]" * 300,
    "{" * 300,
    "!!python/object:os.system ",
    "!!binary aGVsbG8=",
    "? [a, b]\n: c\n",
    "\t",
    ": ",
    "- ",
    '"\\u0000\\ud800"',
    "\u200b\u202e",
    "\x1b[2J",
    "::error file=README.md::x\n",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    '{"relayLock": 1, "note": "x"}\n',
    '{"source": "docker.io/library/nginx", "tag": "1", "digest": "sha256:'
    + "b" * 64
    + '", "mediaType": "application/vnd.oci.image.index.v1+json"}\n',
    '{"a": ' * 200,
    "null\n",
    '"quay.io/a/b": "127.0.0.1:9/a/b"\n',
    "quay.io/a/b:/(a+)+$/: 127.0.0.1:9/x/y\n",
    '{"auths": {"a.io": {"auth": "!!!"}}}',
    "127.0.0.1:9: {username: u, password: $NOPE, insecure: yes}\n",
]

texts = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join),
    st.text(max_size=300),
)
contents = st.one_of(
    st.none(),
    texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
    st.sampled_from(["<dir>", "<devzero>", "<outside>", "<loop>"]),
)
commands = st.sampled_from(
    [
        ("validate",),
        ("generate", "--check"),
        ("generate",),
        ("lock", "--dry-run"),
        ("sync", "--images", "<images>", "--proc", "1", "--retries", "0"),
        ("sync", "--images", "<images>", "--auth", "<auth>", "--proc", "1", "--retries", "0"),
        ("copy", "127.0.0.1:9/a/b:1", "127.0.0.1:9/c/d:1"),
    ]
)


def _place(path: Path, content: bytes | str | None, outside: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        return
    if content == "<dir>":
        path.mkdir()
        (path / "x").write_text("x")
    elif content == "<devzero>":
        path.symlink_to("/dev/zero")
    elif content == "<outside>":
        target = outside / path.name
        target.write_text("images:\n  - source: nginx\n    tags: ['1']\n")
        path.symlink_to(target)
    elif content == "<loop>":
        path.symlink_to(path)
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)


@pytest.fixture
def hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "DOCKER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(retry.RetryPolicy, "__init__", _one_attempt(retry.RetryPolicy.__init__))


def _one_attempt(init):  # type: ignore[no-untyped-def]
    def wrapper(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        object.__setattr__(self, "attempts", 1)

    return wrapper


@pytest.mark.slow
@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    images=contents,
    relay_yaml=contents,
    lock=contents,
    sync_images=contents,
    sync_auth=contents,
    auth_file=contents,
    command=commands,
)
def test_hostile_files_never_end_in_a_traceback(
    hermetic: None,
    capsys: pytest.CaptureFixture[str],
    images: bytes | str | None,
    relay_yaml: bytes | str | None,
    lock: bytes | str | None,
    sync_images: bytes | str | None,
    sync_auth: bytes | str | None,
    auth_file: bytes | str | None,
    command: tuple[str, ...],
) -> None:
    base = Path(tempfile.mkdtemp(prefix="relay-hostile-"))
    try:
        repo, outside = base / "repo", base / "outside"
        repo.mkdir()
        outside.mkdir()
        _place(repo / "mirrors/images.yaml", images, outside)
        _place(repo / "mirrors/relay.yaml", relay_yaml, outside)
        _place(repo / "mirrors/images.lock", lock, outside)
        _place(repo / "images.yaml", sync_images, outside)
        _place(repo / "auth.yaml", sync_auth, outside)
        _place(repo / "registry-auth.json", auth_file, outside)
        os.environ["REGISTRY_AUTH_FILE"] = str(repo / "registry-auth.json")
        before = {p.name: p.read_bytes() for p in outside.iterdir()}
        args = [
            str(repo / "images.yaml")
            if a == "<images>"
            else str(repo / "auth.yaml")
            if a == "<auth>"
            else a
            for a in command
        ]
        code = cli.main([*args, "--repo", str(repo)])
        out = capsys.readouterr()
        assert code in (0, 1, 2), (code, out.err[-2000:])
        assert "Traceback" not in out.err
        # Nothing was written, changed or deleted outside the repository.
        assert {p.name: p.read_bytes() for p in outside.iterdir()} == before
    finally:
        os.environ.pop("REGISTRY_AUTH_FILE", None)
        shutil.rmtree(base, ignore_errors=True)
