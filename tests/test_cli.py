from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from relay import cli

from .helpers import DIGEST_A, write_repo

GOOD = f"images:\n  - source: registry.k8s.io/pause\n    tags: ['3.9@{DIGEST_A}']\n"


def relay(*args: str) -> int:
    return cli.main(list(args))


def test_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_repo(tmp_path, GOOD)
    assert relay("validate", "--repo", str(tmp_path)) == 0
    out, err = capsys.readouterr()
    assert "1 images, 1 explicit tags" in out and err == ""


def test_bad_input_exit_2_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_repo(tmp_path, "images:\n  - source: nginx\n    tag: [1]\n")
    assert relay("generate", "--repo", str(tmp_path)) == 2
    _, err = capsys.readouterr()
    assert err.startswith("mirrors/images.yaml:3: image entry: unknown key 'tag'")
    assert not (tmp_path / "mirrors/dockerfiles").exists()


def test_github_annotations(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    write_repo(tmp_path, "images:\n  - source: nginx\n    tags: ['a,b']\n")
    assert relay("validate", "--repo", str(tmp_path)) == 2
    _, err = capsys.readouterr()
    assert "::error file=mirrors/images.yaml,line=3::tag 'a,b' is not a valid tag" in err


def test_generate_then_check(tmp_path: Path, capsys) -> None:
    write_repo(tmp_path, GOOD)
    assert relay("generate", "--check", "--repo", str(tmp_path)) == 1
    out, _ = capsys.readouterr()
    assert "create mirrors/dockerfiles/k8s_pause/3.9/Dockerfile" in out
    assert not (tmp_path / "mirrors/dockerfiles").exists()  # --check writes nothing
    assert relay("generate", "--repo", str(tmp_path)) == 0
    out, _ = capsys.readouterr()
    assert "1 Dockerfiles: 1 created, 0 updated, 0 deleted, 0 unchanged" in out
    assert relay("generate", "--check", "--repo", str(tmp_path)) == 0
    assert relay("generate", "--repo", str(tmp_path)) == 0
    out, _ = capsys.readouterr()
    assert "1 Dockerfiles: 0 created, 0 updated, 0 deleted, 1 unchanged" in out


def test_check_lists_drift(tmp_path: Path, capsys) -> None:
    write_repo(tmp_path, GOOD)
    relay("generate", "--repo", str(tmp_path))
    df = tmp_path / "mirrors/dockerfiles/k8s_pause/3.9/Dockerfile"
    df.write_text(df.read_text() + "RUN evil\n")
    (tmp_path / "mirrors/dockerfiles/old/1").mkdir(parents=True)
    (tmp_path / "mirrors/dockerfiles/old/1/Dockerfile").write_text("FROM x\n")
    capsys.readouterr()
    assert relay("generate", "--check", "--repo", str(tmp_path)) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "update mirrors/dockerfiles/k8s_pause/3.9/Dockerfile",
        "delete mirrors/dockerfiles/old/1/Dockerfile",
    ]
    assert "2 Dockerfile(s) out of date" in err


def test_missing_lock_digest_exit_2(tmp_path: Path, capsys) -> None:
    write_repo(tmp_path, "images:\n  - source: nginx\n    tags: ['1.27']\n")
    assert relay("generate", "--repo", str(tmp_path)) == 2
    assert "run `relay lock`" in capsys.readouterr().err


def test_usage_error_exit_2(capsys) -> None:
    assert relay("frobnicate") == 2
    assert relay("generate", "--nope") == 2
    assert relay("validate", "--repo", "/nonexistent/dir") == 2


def test_settings_errors_are_input_errors(tmp_path: Path, capsys) -> None:
    write_repo(tmp_path, GOOD, relay_yaml="naming:\n  max_lenght: 40\n")
    assert relay("validate", "--repo", str(tmp_path)) == 2
    assert (
        "mirrors/relay.yaml:2: naming: unknown key 'max_lenght'; did you mean 'max_length'?"
        in capsys.readouterr().err
    )


def test_console_script_entry_point(tmp_path: Path) -> None:
    write_repo(tmp_path, GOOD)
    proc = subprocess.run(
        [sys.executable, "-m", "relay", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout


# The console entry point (relay.cli:run) ------------------------------------------------------

RUN = """
import atexit, sys, threading, time
from relay import cli
marker = sys.argv.pop(1)
atexit.register(lambda: open(marker, "w").write("atexit ran"))
if sys.argv.pop(1) == "thread":
    # A non-daemon thread still running: the exit must not cut it off.
    threading.Thread(target=lambda: (time.sleep(0.3), open(marker + ".thread", "w"))).start()
sys.argv[0] = "relay"
cli.run()
"""


@pytest.mark.parametrize("thread", ["thread", "none"])
def test_run_exits_with_main_code_output_and_atexit_handlers(tmp_path: Path, thread: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write_repo(repo, GOOD)
    marker = tmp_path / "marker"
    ok = subprocess.run(
        [sys.executable, "-c", RUN, str(marker), thread, "validate", "--repo", str(repo)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    # Output written to a pipe is block-buffered: it must arrive all the same.
    assert "1 images, 1 explicit tags" in ok.stdout
    assert marker.read_text() == "atexit ran"
    assert (tmp_path / "marker.thread").exists() == (thread == "thread")

    write_repo(repo, "images:\n  - source: nginx\n    tag: [1]\n")
    bad = subprocess.run(
        [sys.executable, "-c", RUN, str(marker), thread, "validate", "--repo", str(repo)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "mirrors/images.yaml:3: image entry: unknown key 'tag'" in bad.stderr
