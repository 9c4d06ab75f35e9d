"""`relay sandbox demo` at its edges: a missing tool or a failed git command is one line and
exit 1, never a traceback; `--keep` runs until Ctrl-C and then stops everything."""

from __future__ import annotations

import subprocess
import tempfile
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
