"""What a pull request or a user hands relay: files that are
not what they seem, YAML bombs in sync files, regexes that backtrack, settings that would fail
later, stray temporary files, a read-only repository. Each ends in one line naming the file and
the right exit code, never a traceback, and nothing is written or deleted outside the repo.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from relay import cli
from relay.config import listedit, selection
from relay.errors import InputError
from relay.sync import files as sync_files
from relay.sync.rules import parse_source
from relay.userregex import compile_pattern

from .helpers import DIGEST_A, write_repo

GOOD = f"images:\n  - source: registry.k8s.io/pause\n    tags: ['3.9@{DIGEST_A}']\n"


def _run(*args: str) -> int:
    return cli.main(list(args))


# --- local files: regular, inside the repository, capped --------------------------------------------


@pytest.mark.parametrize("name", ["images.yaml", "relay.yaml", "images.lock"])
def test_a_file_that_is_a_symlink_to_a_device_is_refused(tmp_path: Path, capsys, name: str) -> None:
    write_repo(tmp_path, GOOD)
    target = tmp_path / "mirrors" / name
    target.unlink(missing_ok=True)
    target.symlink_to("/dev/zero")
    started = time.monotonic()
    assert _run("validate", "--repo", str(tmp_path)) == 2
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert f"mirrors/{name}" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["images.yaml", "relay.yaml", "images.lock"])
def test_a_directory_or_non_utf8_file_is_one_line(tmp_path: Path, capsys, name: str) -> None:
    write_repo(tmp_path, GOOD)
    target = tmp_path / "mirrors" / name
    target.unlink(missing_ok=True)
    target.mkdir()
    assert _run("validate", "--repo", str(tmp_path)) == 2
    assert "is a directory" in capsys.readouterr().err
    target.rmdir()
    target.write_bytes(b"images:\n  - source: \xff\xfe\n")
    assert _run("validate", "--repo", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"mirrors/{name}:2: not UTF-8" in err


def test_a_symlink_leaving_the_repository_is_refused_at_any_level(tmp_path: Path, capsys) -> None:
    outside = tmp_path / "outside"
    (outside / "mirrors").mkdir(parents=True)
    (outside / "mirrors/images.yaml").write_text(GOOD)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "mirrors").symlink_to(outside / "mirrors")
    assert _run("validate", "--repo", str(repo)) == 2
    assert "leads out of the repository" in capsys.readouterr().err
    # A link that stays inside is fine.
    (repo / "mirrors").unlink()
    (repo / "real").mkdir()
    (repo / "real/images.yaml").write_text(GOOD)
    (repo / "mirrors").mkdir()
    (repo / "mirrors/images.yaml").symlink_to(repo / "real/images.yaml")
    assert _run("validate", "--repo", str(repo)) == 0


def test_generate_never_writes_or_deletes_through_a_symlinked_mirrors_dir(
    tmp_path: Path, capsys
) -> None:
    outside = tmp_path / "outside"
    (outside / "dockerfiles/victim/1").mkdir(parents=True)
    victim = outside / "dockerfiles/victim/1/Dockerfile"
    victim.write_text("FROM precious\n")
    (outside / "images.yaml").write_text(GOOD)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "mirrors").symlink_to(outside)
    assert _run("generate", "--repo", str(repo)) == 2
    assert victim.read_text() == "FROM precious\n"
    assert not (outside / "dockerfiles/k8s_pause").exists()
    assert "leads out of the repository" in capsys.readouterr().err


def test_a_huge_list_is_refused_by_size(tmp_path: Path, capsys) -> None:
    write_repo(tmp_path, GOOD)
    with open(tmp_path / "mirrors/images.yaml", "ab") as fh:
        fh.truncate(65 << 20)  # sparse: 65 MiB without writing them
    assert _run("validate", "--repo", str(tmp_path)) == 2
    assert "larger than 64 MiB" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["generate", "lock"])
def test_a_read_only_repository_is_one_line(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """The tests run as root, whom permissions do not stop: the file system says EROFS."""
    write_repo(tmp_path, GOOD)
    real_open, real_mkdir = os.open, os.mkdir

    def read_only_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    def read_only_mkdir(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(os, "open", read_only_open)
    monkeypatch.setattr(os, "mkdir", read_only_mkdir)
    code = _run(command, "--repo", str(tmp_path))
    monkeypatch.setattr(os, "open", real_open)
    monkeypatch.setattr(os, "mkdir", real_mkdir)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "cannot write" in err and "Read-only file system" in err


def test_long_repo_argument_is_a_usage_error(capsys) -> None:
    assert _run("validate", "--repo", "a" * 100_000) == 2
    err = capsys.readouterr().err
    assert "100000 characters" in err and len(err) < 2000


def test_malformed_registry_auth_file_names_the_file(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = tmp_path / "auth.json"
    auth.write_text('{"auths": {\n  "a.io": \n}')
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    assert _run("copy", "127.0.0.1:9/x:1", "127.0.0.1:9/y:1", "--repo", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"{auth}:3:" in err and "Traceback" not in err
    auth.unlink()
    auth.mkdir()
    assert _run("copy", "127.0.0.1:9/x:1", "127.0.0.1:9/y:1", "--repo", str(tmp_path)) == 2
    assert "is a directory" in capsys.readouterr().err


# --- stray temporary files of a killed generate ------------------------------------------------------


def test_generate_removes_what_a_killed_run_left_and_check_reports_it(tmp_path: Path) -> None:
    lines = ["images:"]
    for i in range(300):
        lines.append(f"  - source: ghcr.io/kill/app{i}\n    tags: ['1.0@{DIGEST_A}']")
    write_repo(tmp_path, "\n".join(lines) + "\n", "naming:\n  max_length: 64\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    for _ in range(20):  # kill it mid-write until a temporary file is left behind
        proc = subprocess.Popen(
            [sys.executable, "-m", "relay", "generate", "--repo", str(tmp_path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        tmp = tmp_path / "mirrors/dockerfiles/.relay-tmp"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (tmp.is_dir() and any(tmp.iterdir())):
            if proc.poll() is not None:
                break
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if tmp.is_dir() and any(tmp.iterdir()):
            break
        for dockerfiles in (tmp_path / "mirrors/dockerfiles",):
            subprocess.run(["rm", "-rf", str(dockerfiles)], check=True)
    strays = list((tmp_path / "mirrors/dockerfiles/.relay-tmp").iterdir())
    assert strays, "no run was caught mid-write"
    check = subprocess.run(
        [sys.executable, "-m", "relay", "generate", "--check", "--repo", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 1 and ".relay-tmp/" in check.stdout + check.stderr
    assert _run("generate", "--repo", str(tmp_path)) == 0
    leftovers = [p for p in tmp_path.rglob("*") if ".relay-" in p.name]
    assert leftovers == []
    assert _run("generate", "--check", "--repo", str(tmp_path)) == 0


# --- relay sync files: no aliases, linear ------------------------------------------------------------

BOMB = textwrap.dedent(
    """\
    a: &a ["x","x","x","x","x","x","x","x","x"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    quay.io/a/b: *g
    """
)


@pytest.mark.parametrize(
    "text",
    [
        BOMB,
        "quay.io/a/b: &x [*x]\n",
        "quay.io/a/b: &x {k: *x}\n",
        "quay.io/a/b: " + "[" * 500 + "]" * 500 + "\n",
    ],
    ids=["billion-laughs", "self-list", "self-map", "deep"],
)
@pytest.mark.parametrize("which", ["--images", "--auth"])
def test_sync_refuses_aliases_and_deep_nesting(
    tmp_path: Path, capsys, text: str, which: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    images = tmp_path / "images.yaml"
    images.write_text("quay.io/a/b: 127.0.0.1:1/a/b\n")
    args = ["sync", "--images", str(bad if which == "--images" else images)]
    if which == "--auth":
        args += ["--auth", str(bad)]
    started = time.monotonic()
    assert _run(*args, "--repo", str(tmp_path)) == 2
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(bad) in err
    assert "aliases" in err or "nested" in err or "nesting" in err


def test_reading_a_sync_file_is_linear_in_its_keys(tmp_path: Path) -> None:
    def timed(n: int) -> float:
        path = tmp_path / f"images-{n}.json"
        path.write_text(
            json.dumps(
                {f"quay.io/org/app{i}:1.0": f"127.0.0.1:5000/m/app{i}" for i in range(n)}, indent=1
            )
        )
        started = time.perf_counter()
        rules = sync_files.load_rules(path, environ={})
        assert len(rules) == n
        return time.perf_counter() - started

    small, large = timed(5_000), timed(40_000)
    # Quadratic reading took 15.7 s at 40,000 keys; linear is ~8x the 5,000-key time.
    assert large < max(2.0, small * 20), (small, large)


# --- regexes from users: RE2 ----------------------------------------------------------------------------


def test_catastrophic_patterns_match_in_linear_time() -> None:
    tag = "a" * 50_000 + "!"
    started = time.monotonic()
    assert not selection.compile_regex("^(a+)+b$").search(tag)
    assert not compile_pattern("(a|aa)*c").search(tag)
    assert time.monotonic() - started < 1


def test_lock_with_a_backtracking_include_does_not_hang(tmp_path: Path, capsys) -> None:
    sel = selection.Selection(include=selection.compile_regex("^(a+)+b$"))
    started = time.monotonic()
    assert sel.select(["a" * 100 + "c", "1.0"]) == []
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("pattern", ["(?=x)", "(a)\\1", "a{2000}", "(?<=a)b", "\\Z"])
def test_patterns_re2_cannot_compile_are_refused_with_the_reason(
    tmp_path: Path, capsys, pattern: str
) -> None:
    write_repo(
        tmp_path,
        f"images:\n  - source: nginx\n    select:\n      include: {json.dumps(pattern)}\n",
    )
    assert _run("validate", "--repo", str(tmp_path)) == 2
    assert "mirrors/images.yaml:4: select.include: invalid regex (RE2" in capsys.readouterr().err
    with pytest.raises(ValueError, match="RE2"):
        parse_source(f"quay.io/a/b:/{pattern}/")


def test_sync_regex_reads_as_go_regexp() -> None:
    """Go's `$` does not match before a trailing newline and `\\d` is ASCII; Python's `re`
    differs on both."""
    assert not compile_pattern("^v1$").search("v1\n")
    assert not compile_pattern("^\\d+$").search("١٢")  # Arabic-Indic digits
    assert compile_pattern("^v[0-9]+").search("v12")


# --- settings that would fail later; flags -------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("registries:\n  insecure: ['10.0.0.0/99']\n", "mirrors/relay.yaml:2:"),
        ("registries:\n  insecure: ['bad host']\n", "mirrors/relay.yaml:2:"),
        ('copy:\n  registry: "a.io\\n::error::x"\n  namespace: n\n', "mirrors/relay.yaml:2:"),
        ("copy:\n  registry: https://a.io\n  namespace: n\n", "mirrors/relay.yaml:2:"),
        ("registries:\n  limits:\n    deadline: 0\n", "mirrors/relay.yaml:3:"),
        (
            "registries:\n  limits:\n    manifest_bytes: " + "9" * 5000 + "\n",
            "mirrors/relay.yaml:3:",
        ),
    ],
)
def test_validate_refuses_settings_that_fail_later(
    tmp_path: Path, capsys, settings: str, expected: str
) -> None:
    write_repo(tmp_path, GOOD, settings)
    assert _run("validate", "--repo", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert "\n::error::x" not in err


def test_copy_platform_is_checked(tmp_path: Path, capsys) -> None:
    assert (
        _run("copy", "127.0.0.1:9/x:1", "127.0.0.1:9/y:1", "--platform", "linux/amd64\n::error::x")
        == 2
    )
    err = capsys.readouterr().err
    assert "os/arch" in err and "\n::error::x" not in err


def test_invisible_characters_in_keys_are_escaped(tmp_path: Path, capsys) -> None:
    write_repo(tmp_path, "images:\n  - source: nginx\n    tags: ['1']\n    \u200bname\u202e: x\n")
    assert _run("validate", "--repo", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "unknown key '\\u200bname\\u202e'" in err
    assert "\u200b" not in err and "\u202e" not in err


# --- the repository's own YAML: no aliases either -------------------------------------------------

ALIASED_LIST = (
    "images:\n"
    "  - source: registry.k8s.io/pause\n"
    f"    tags: &t ['3.9@{DIGEST_A}']\n"
    "  - source: registry.k8s.io/pause2\n"
    "    tags: *t\n"
)


@pytest.mark.parametrize("kind", ["list", "settings"])
@pytest.mark.parametrize("verb", ["validate", "generate"])
def test_aliases_in_the_repository_files_are_refused(
    tmp_path: Path, capsys, kind: str, verb: str
) -> None:
    if kind == "list":
        write_repo(tmp_path, ALIASED_LIST)
        name, line = "mirrors/images.yaml", 3
    else:
        write_repo(tmp_path, GOOD, "naming: &n {max_length: 100}\nother: *n\n")
        name, line = "mirrors/relay.yaml", 1
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert _run(verb, "--repo", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"{name}:{line}" in err and "aliases" in err and "Traceback" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_listedit_refuses_aliases() -> None:
    with pytest.raises(InputError) as exc:
        listedit.merge(ALIASED_LIST, "mirrors/images.yaml", [])
    assert "aliases" in str(exc.value.problems[0].message)
