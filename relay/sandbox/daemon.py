"""`relay sandbox up` runs this in the background: the sandbox, until SIGTERM.

    python -m relay.sandbox.daemon STATE_DIR

It writes STATE_DIR/state.json (pid, the environment relay needs, the addresses) once
everything answers, and STATE_DIR/relay.yaml (settings pointing relay at the sandbox). On
SIGTERM or SIGINT it stops every server and registry process it started.

With RELAY_SANDBOX_FAULTS (relay.sandbox.stack.faults_from_env) relay's requests meet random
faults; the faults injected so far are in STATE_DIR/faults.json, refreshed every second.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from relay.sandbox.stack import DEFAULT_IMAGES, Sandbox, faults_from_env

STATE = "state.json"
SETTINGS = "relay.yaml"
FAULTS = "faults.json"


def state_of(sandbox: Sandbox) -> dict[str, Any]:
    assert sandbox.upstream and sandbox.acr and sandbox.harbor and sandbox.acr_registry
    return {
        "pid": os.getpid(),
        "env": sandbox.env(),
        "upstream": sandbox.upstream_url,  # the fault front relay is pointed at
        "acr_endpoint": sandbox.acr.endpoint,
        "acr_registry": sandbox.acr_registry.host,
        "harbor": sandbox.harbor.url,
        "harbor_registry": sandbox.harbor_host,
        "git_remote": str(sandbox.git_remote),
        "images": sorted(sandbox.pushed),
        "faults": (
            {"rate": f.rate, "seed": f.seed, "kinds": list(f.kinds)}
            if (f := sandbox.faults) is not None
            else None
        ),
    }


def main(argv: list[str]) -> int:
    base = Path(argv[0])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sandbox = Sandbox(base / "world", faults=faults_from_env(os.environ))
    try:
        sandbox.start()
        sandbox.seed(DEFAULT_IMAGES)
        sandbox.init_git_remote()
        (base / SETTINGS).write_text(sandbox.settings())
        tmp = base / (STATE + ".tmp")
        tmp.write_text(json.dumps(state_of(sandbox), indent=2))
        os.chmod(tmp, 0o600)  # it holds the sandbox's (throwaway) secrets
        tmp.replace(base / STATE)
        written: dict[str, dict[str, int]] | None = None
        while not stop.wait(1.0 if sandbox.faults is not None else None):
            counts = sandbox.faults_injected()
            if counts != written:
                _write(base / FAULTS, json.dumps(counts, indent=2))
                written = counts
    finally:
        sandbox.stop()
    return 0


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
