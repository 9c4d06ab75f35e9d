#!/usr/bin/env python3
"""Time to a clear failure when upstream is out of reach, and how fast Ctrl-C ends a run.

Behind the firewall upstream registries either do not resolve or accept a
connection and never answer. Each case runs the relay CLI in a child process whose upstream
names (registry.k8s.io, quay.io) either fail to resolve or lead to a black-hole listener on
loopback (tests/fixtures/blackhole.py; every other non-loopback name fails to resolve too, so
nothing reaches the internet):

* `relay lock` with two new entries, one on each registry (target: under 15 s);
* `relay publish` of the 13 shipped images (mirrors/images.yaml) to a reachable registry on
  loopback (the in-process fake), which is the copy transport's target (target: under 20 s);
* Ctrl-C: SIGINT to `relay lock` and to `relay publish` while they wait on the black hole,
  and the time until the process has exited (target: under 2 s).

A case that runs past --cap seconds is stopped and shown as "> cap".

    python benchmarks/unreachable.py [--cap 900] [--only lock|publish|interrupt]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Replace the benchmarks folder on the path: its copy.py would shadow the standard library.
sys.path[0] = str(ROOT)

from tests.fakes.registry import FakeRegistry  # noqa: E402
from tests.fixtures.blackhole import BlackHole  # noqa: E402

UPSTREAM = ("registry.k8s.io", "quay.io")
LOCK_LIST = """\
images:
  - source: registry.k8s.io/pause
    tags: ["3.10"]
  - source: quay.io/prometheus/node-exporter
    tags: [v1.8.2]
"""


def lock_repo(base: Path) -> Path:
    repo = base / "lock-repo"
    (repo / "mirrors").mkdir(parents=True)
    (repo / "mirrors" / "images.yaml").write_text(LOCK_LIST)
    return repo


def publish_repo(base: Path, target: str) -> Path:
    repo = base / "publish-repo"
    (repo / "mirrors").mkdir(parents=True)
    shutil.copy(ROOT / "mirrors" / "images.yaml", repo / "mirrors" / "images.yaml")
    settings = (ROOT / "mirrors" / "relay.yaml").read_text()
    settings += f"\ntransport: copy\ncopy:\n  registry: {target}\n  namespace: mirrors\n"
    (repo / "mirrors" / "relay.yaml").write_text(settings)
    return repo


def command(args: list[str], hole: BlackHole | None) -> list[str]:
    cmd = [sys.executable, "-m", "tests.fixtures.blackhole"]
    for host in UPSTREAM:
        cmd += ["--route", f"{host}={hole.netloc}"] if hole else ["--fail", host]
    return [*cmd, "--", *args]


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    out.pop("GITHUB_ACTIONS", None)
    out["PYTHONPATH"] = str(ROOT)
    return out


def timed(args: list[str], hole: BlackHole | None, cap: float) -> tuple[str, int | None, str]:
    start = time.monotonic()
    proc = subprocess.Popen(
        command(args, hole),
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return f"> {cap:.0f} s", None, ""
    elapsed = time.monotonic() - start
    return f"{elapsed:.1f} s", proc.returncode, last_error(err + out)


def interrupted(args: list[str], hole: BlackHole, cap: float) -> tuple[str, int | None, str]:
    """SIGINT once the child is waiting on the black hole; the time until it has exited."""
    seen = hole.accepted
    proc = subprocess.Popen(
        command(args, hole),
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while hole.accepted == seen and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)  # inside the handshake wait, not at its first byte
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return f"> {cap:.0f} s", None, ""
    elapsed = time.monotonic() - start
    return f"{elapsed:.2f} s", proc.returncode, last_error(err)


def last_error(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:150]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=900.0, help="seconds before a case is cut")
    parser.add_argument("--only", choices=("lock", "publish", "interrupt"))
    args = parser.parse_args()
    rows: list[tuple[str, str, str, int | None, str]] = []
    with tempfile.TemporaryDirectory() as tmp, BlackHole() as hole:
        base = Path(tmp)
        target = FakeRegistry()
        try:
            lock = ["lock", "--repo", str(lock_repo(base))]
            publish = ["publish", "--repo", str(publish_repo(base, target.host))]
            cases = []
            if args.only in (None, "lock"):
                cases += [
                    ("relay lock, 2 registries", "DNS fails", "< 15 s", lock, None, False),
                    ("relay lock, 2 registries", "black hole", "< 15 s", lock, hole, False),
                ]
            if args.only in (None, "publish"):
                cases += [
                    ("relay publish, 13 images", "DNS fails", "< 20 s", publish, None, False),
                    ("relay publish, 13 images", "black hole", "< 20 s", publish, hole, False),
                ]
            if args.only in (None, "interrupt"):
                cases += [
                    ("Ctrl-C relay lock", "black hole", "< 2 s", lock, hole, True),
                    ("Ctrl-C relay publish", "black hole", "< 2 s", publish, hole, True),
                ]
            for name, upstream, goal, argv, where, sigint in cases:
                print(f"running: {name} ({upstream})", file=sys.stderr, flush=True)
                if sigint:
                    assert where is not None
                    took, code, said = interrupted(argv, where, args.cap)
                else:
                    took, code, said = timed(argv, where, args.cap)
                rows.append((f"{name} ({upstream})", took, goal, code, said))
        finally:
            target.stop()
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'time':>9}  {'target':>7}  exit  last line of output")
    for case, took, goal, code, said in rows:
        shown = "-" if code is None else str(code)
        print(f"{case:<{width}}  {took:>9}  {goal:>7}  {shown:>4}  {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
