"""`relay sandbox demo` at its edges: a missing tool or a failed git command is one line and
exit 1, never a traceback; `--keep` runs until Ctrl-C and then stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from relay import cli
from relay.sandbox import demo as demo_module
from relay.sandbox.registries import RegistryStartError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the demo makes its temporary directory."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_missing_tool_is_one_line_with_the_install_hint(
    scratch: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = scratch / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no docker-registry, buildah, git
    assert cli.main(["sandbox", "demo", "--repo", str(ROOT)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line.startswith("relay: error:") and "apt-get install -y" in line
    assert not any(scratch.glob("relay-demo-*"))  # nothing left behind


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        (
            subprocess.CalledProcessError(
                128, ["git", "clone"], stderr=b"fatal: repository not found\nmore\n"
            ),
            "git clone failed (exit 128): fatal: repository not found",
        ),
        (
            RegistryStartError("registry upstream exited (rc=1) before becoming ready\n--- log"),
            "registry upstream exited (rc=1) before becoming ready",
        ),
    ],
)
def test_a_failed_start_is_one_line_and_exit_1(
    scratch: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raised: Exception,
    said: str,
) -> None:
    def fail(self: demo_module.Demo, *args: object) -> None:
        raise raised

    monkeypatch.setattr(demo_module.Demo, "start", fail)
    assert cli.main(["sandbox", "demo", "--repo", str(ROOT)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line.startswith("relay: error:") and said in line
    assert not any(scratch.glob("relay-demo-*"))


def test_keep_runs_until_ctrl_c_then_stops_everything(
    scratch: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--keep leaves the sandbox up after the job (the emulators are threads of this process,
    the registries its children) and stops it all at Ctrl-C, not at the process's end."""
    for step in ("start", "scratch_repository", "pull_request", "main_job", "show_pulls"):
        monkeypatch.setattr(demo_module.Demo, step, lambda self, *a, **k: None)
    stopped: list[Path] = []
    real_stop = demo_module.Sandbox.stop

    def stop(self: demo_module.Sandbox) -> None:
        stopped.append(self.base)
        real_stop(self)

    monkeypatch.setattr(demo_module.Sandbox, "stop", stop)
    ctrl_c = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    ctrl_c.start()
    try:
        code = cli.main(["sandbox", "demo", "--keep", "--repo", str(ROOT)])
    finally:
        ctrl_c.cancel()  # the demo returned before it: no Ctrl-C for pytest
    out = capsys.readouterr().out
    assert code == 0
    assert "Ctrl-C stops and removes everything" in out
    assert out.rstrip().endswith("everything it started is stopped and removed")
    assert len(stopped) == 1 and not any(scratch.glob("relay-demo-*"))
