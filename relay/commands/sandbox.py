"""`relay sandbox up | status | down | demo`: the whole of relay on this machine.

The sandbox stands in for everything relay talks to (upstream registries, ACR, Harbor,
GitHub) with the emulators in relay.sandbox, on loopback. `up` runs it in the background and
prints the environment to point relay at it; `demo` runs relay's main job through it and
cleans up after itself.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from relay.errors import InputError, OperationFailed

STATE = "state.json"


def default_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime or "/tmp") / f"relay-sandbox-{os.getuid()}"


def up(*, base: Path, timeout: float = 120.0) -> int:
    from relay.sandbox.stack import faults_from_env

    try:
        # RELAY_SANDBOX_FAULTS=0.2 (and _SEED, _FAULT_KINDS): relay's requests meet faults.
        faults_from_env(os.environ)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    state = _state(base)
    if state is not None and _alive(state["pid"]):
        print(f"the sandbox is already up ({base}); `relay sandbox down` stops it")
        _print_env(base, state)
        return 0
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    (base / STATE).unlink(missing_ok=True)
    log = open(base / "sandbox.log", "ab")  # noqa: SIM115 - the daemon keeps it open
    process = subprocess.Popen(
        [sys.executable, "-m", "relay.sandbox.daemon", str(base)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,  # not killed with this terminal's process group
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(base)
        if state is not None:
            _print_env(base, state)
            return 0
        if process.poll() is not None:
            tail = (base / "sandbox.log").read_text(errors="replace")[-2000:]
            raise OperationFailed(f"the sandbox did not start:\n{tail}")
        time.sleep(0.2)
    process.terminate()
    raise OperationFailed(
        f"the sandbox did not start within {timeout:.0f}s; see {base}/sandbox.log"
    )


def status(*, base: Path) -> int:
    state = _state(base)
    if state is None or not _alive(state["pid"]):
        print(f"the sandbox is down ({base})")
        return 1
    print(f"the sandbox is up (pid {state['pid']}, {base})")
    for key in ("upstream", "acr_endpoint", "acr_registry", "harbor", "harbor_registry"):
        print(f"  {key:<16} {state[key]}")
    print(f"  {'git_remote':<16} {state['git_remote']}")
    faults = state.get("faults")
    if isinstance(faults, dict):
        try:
            counts = json.loads((base / "faults.json").read_text())
        except (OSError, ValueError):
            counts = {}
        injected = ", ".join(
            f"{part} {sum(kinds.values())}"
            for part, kinds in sorted(counts.items())
            if isinstance(kinds, dict)
        )
        print(
            f"  {'faults':<16} rate {faults.get('rate')}, seed {faults.get('seed')}; "
            f"injected: {injected or 'none yet'}"
        )
    return 0


def down(*, base: Path, timeout: float = 30.0) -> int:
    import shutil

    state = _state(base)
    if state is not None and _alive(state["pid"]):
        os.kill(state["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(state["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(state["pid"]):
            os.kill(state["pid"], signal.SIGKILL)
    if base.exists():
        shutil.rmtree(base, ignore_errors=True)
    print(f"the sandbox is down and {base} is gone")
    return 0


def demo(*, repo: Path, keep: bool = False) -> int:
    from relay.sandbox import demo as run_demo

    if not (repo / ".git").exists():
        raise InputError(f"--repo {repo}: the demo copies a git checkout of relay; this is none")
    return run_demo.run(repo.resolve(), keep=keep)


def _state(base: Path) -> dict[str, Any] | None:
    try:
        found = json.loads((base / STATE).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _print_env(base: Path, state: dict[str, Any]) -> None:
    print("# the sandbox: point relay at it with")
    for key, value in sorted(state["env"].items()):
        print(f"export {key}={shlex.quote(value)}")
    print(f"# and use {base / 'relay.yaml'} as mirrors/relay.yaml")
