#!/usr/bin/env python3
"""Benchmark `relay generate` on a large list: 10,000 entries x 3 tags by default.

Measures a cold run (empty mirrors/dockerfiles/), a no-op re-run, and a run after one entry's
tag changed. Prints a table. Targets on a 2-core machine: cold < 5 s; no-op < 1 s writing 0 files.

    python benchmarks/generate.py [--entries N] [--tags N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Replace the benchmarks folder on the path: its copy.py would shadow the standard library.
sys.path[0] = str(ROOT)

from relay.config import lockfile as lock  # noqa: E402
from relay.config import mirrors, settings  # noqa: E402
from relay.stages import generate  # noqa: E402


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def write_list(repo: Path, entries: int, tags: int, changed: int | None = None) -> None:
    lines = ["images:"]
    for i in range(entries):
        lines.append(f"  - source: ghcr.io/bench/team{i % 97}/image-{i}")
        pins = []
        for t in range(tags):
            seed = f"{i}/{t}" + ("/changed" if i == changed else "")
            pins.append(f'"v1.{t}.0@{digest(seed)}"')
        lines.append(f"    tags: [{', '.join(pins)}]")
    (repo / "mirrors").mkdir(parents=True, exist_ok=True)
    (repo / "mirrors/images.yaml").write_text("\n".join(lines) + "\n")


def run(repo: Path) -> tuple[float, int, float]:
    """One in-process generate; returns (seconds, files written or deleted, peak RSS MiB)."""
    settle()
    start = time.perf_counter()
    cfg = settings.load(repo)
    ml = mirrors.load(repo, max_name_length=cfg.naming.max_length, prefixes=cfg.naming.prefixes)
    changes = generate.plan(generate.desired(ml, lock.read(repo)), generate.scan(repo))
    generate.apply(repo, changes)
    return time.perf_counter() - start, len(changes), 0.0


def settle() -> None:
    # Flush what earlier cases (and deleting their trees) left dirty, so each case is timed on
    # its own I/O: on this VM's disk, writeback from a previous case can double a cold run.
    os.sync()
    time.sleep(1)


def run_cli(repo: Path) -> tuple[float, int]:
    """The same through the real command line, to include interpreter start-up."""
    settle()
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "relay", "generate", "--repo", str(repo)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    elapsed = time.perf_counter() - start
    last = proc.stdout.strip().splitlines()[-1]
    return elapsed, last


def floor(entries: int, tags: int, where: str | None) -> float:
    """The same number of directories and files made by a bare Python loop: what the disk
    allows, for comparison with relay's cold run."""
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        settle()
        start = time.perf_counter()
        for i in range(entries):
            for t in range(tags):
                path = f"{tmp}/n{i}/t{t}"
                os.makedirs(path)
                with open(f"{path}/Dockerfile", "w") as fh:
                    fh.write("x" * 150)
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=3)
    parser.add_argument(
        "--dir", default=None, help="where to make the test repositories (default: the temp dir)"
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        repo = Path(tmp)
        write_list(repo, args.entries, args.tags)
        rows.append(("cold (in-process)", *run(repo)[:2]))
        rows.append(("no-op re-run (in-process)", *run(repo)[:2]))
        write_list(repo, args.entries, args.tags, changed=args.entries // 2)
        rows.append(("one entry changed (in-process)", *run(repo)[:2]))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        repo = Path(tmp)
        write_list(repo, args.entries, args.tags)
        seconds, summary = run_cli(repo)
        rows.append(("cold (relay CLI)", seconds, summary.split(":")[1].split(",")[0].strip()))
        seconds, summary = run_cli(repo)
        rows.append(
            ("no-op re-run (relay CLI)", seconds, summary.split(":")[1].split(",")[0].strip())
        )

    rows.append(
        ("floor: bare loop making the files", floor(args.entries, args.tags, args.dir), "-")
    )
    total = args.entries * args.tags
    where = args.dir or tempfile.gettempdir()
    print(
        f"relay generate: {args.entries} entries x {args.tags} tags = {total} Dockerfiles "
        f"(in {where})"
    )
    print(f"{'case':<34} {'seconds':>8} {'files written':>14}")
    for name, seconds, written in rows:
        print(f"{name:<34} {seconds:>8.2f} {written!s:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
