"""The whole pipeline on one machine, the way `make demo` runs it: a pull request adds images,
the main job locks, generates, commits, has ACR build (real buildah), sets up Harbor and
replicates; a pull from Harbor gives upstream's image. Then one upstream tag moves, and exactly
that tag is rebuilt and replicated. And `relay sandbox up/status/down` leaves nothing behind."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from relay.sandbox.demo import DEMO_IMAGES, Demo
from relay.sandbox.stack import SeedImage

pytestmark = [pytest.mark.buildah, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def test_pull_request_to_harbor_and_a_moved_tag(tmp_path: Path) -> None:
    out = io.StringIO()
    demo = Demo(tmp_path / "demo", ROOT, out)
    try:
        demo.start(DEMO_IMAGES)
        demo.scratch_repository()
        demo.pull_request(DEMO_IMAGES)
        built = demo.main_job()
        assert built == ["k8s_pause", "nginx", "quay_coreos_etcd"], out.getvalue()
        demo.show_pulls(DEMO_IMAGES)
        assert "is upstream's" in out.getvalue()
        sandbox = demo.sandbox
        assert sandbox.harbor is not None and sandbox.acr is not None

        # Upstream re-pushes one tag with other content: the scheduled run takes it.
        moved = SeedImage("registry.k8s.io/pause", "3.10", seed="moved")
        sandbox.seed((moved,))
        builds_before = len(sandbox.acr.state.builds)
        tasks_before = len(sandbox.harbor.state.tasks)
        rebuilt = demo.main_job(lock_args=("--update",))
        assert rebuilt == ["k8s_pause"]
        assert len(sandbox.acr.state.builds) == builds_before + 1
        new_tasks = list(sandbox.harbor.state.tasks.values())[tasks_before:]
        assert [t.dst_resource.split(" [")[0] for t in new_tasks] == ["mirrors/k8s_pause"]
        assert demo.prove_pull(moved, "k8s_pause") == 0
        lock = (demo.repo / "mirrors/images.lock").read_text()
        assert sandbox.pushed["registry.k8s.io/pause:3.10"].digest in lock
    finally:
        demo.stop()
    assert not (tmp_path / "demo").exists()


def test_sandbox_up_status_down_leaves_nothing(tmp_path: Path) -> None:
    base = tmp_path / "sandbox"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def relay(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "relay", "sandbox", *args, "--dir", str(base)],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
        )

    up = relay("up")
    assert up.returncode == 0, up.stderr
    assert "export HARBOR_USERNAME=admin" in up.stdout and "RELAY_ACR_ENDPOINT=" in up.stdout
    settings = (base / "relay.yaml").read_text()
    assert "mirrors:" in settings and "docker.io:" in settings
    state = relay("status")
    assert state.returncode == 0 and "the sandbox is up" in state.stdout
    assert relay("up").returncode == 0  # a second up finds it running
    pid = int(state.stdout.split("pid ")[1].split(",")[0])
    down = relay("down")
    assert down.returncode == 0, down.stderr
    assert not base.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    leftovers = subprocess.run(
        ["pgrep", "-f", str(base)], capture_output=True, text=True
    ).stdout.strip()
    assert leftovers == "", "processes of the sandbox are still running"
    assert relay("status").returncode == 1
