#!/usr/bin/env python3
"""Chaos across the pipeline, large: N images, several seeds, on the sandbox.

Each seed is one chaos run (relay.sandbox.chaos): 20 % of relay's requests to the upstream
stand-in, the ACR emulator and the Harbor emulator meet a fault (429, 5xx, 5xx after the work
was done, resets before and after it, latency), and `--kills` of relay's own processes are
SIGKILLed at seeded points of lock, generate, acr apply, harbor apply and harbor replicate;
each run starts again from `relay lock` until one passes every step. Then `--moves` upstream
tags move and it all happens again with `relay lock --update` (the scheduled run), with its own
kills. Then the world is checked:
nothing lost, nothing made twice, verify's report exact. Prints one row per seed: runs, kills
(by step), runs that failed on their own (retries ran out), faults injected (by part, and by
kind below), relay's retries, ACR builds, time to converge.

    python benchmarks/chaos.py [--images 10] [--seeds 1 2 3] [--kills 5] [--moves 2] [--rate 0.2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from relay.sandbox.chaos import Chaos, ChaosConfig, ChaosResult, table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--moves", type=int, default=2, help="tags that move upstream (0: none)")
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--story", action="store_true", help="print every step of every run")
    args = parser.parse_args()
    results: list[ChaosResult] = []
    for seed in args.seeds:
        config = ChaosConfig(
            images=args.images,
            seed=seed,
            rate=args.rate,
            max_kills=args.kills,
            max_runs=args.kills + 8,
            moves=args.moves,
        )
        with tempfile.TemporaryDirectory(prefix="relay-chaos-bench-") as tmp:
            result = Chaos(Path(tmp), ROOT, config).run()
        results.append(result)
        if args.story or not result.ok:
            print(f"--- seed {seed}\n{result.story()}\n", flush=True)
        print(
            f"seed {seed}: {'ok' if result.ok else 'FAILED'} in {result.runs} runs",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"chaos across the pipeline: {args.images} images, {args.rate:.0%} faults, up to "
        f"{args.kills} kills per phase, {args.moves} tags moved in a second phase "
        "(sandbox, 2 cores)"
    )
    print(table(results).text())
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
