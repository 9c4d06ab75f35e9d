#!/usr/bin/env python3
"""From "merge" to "pullable from Harbor" for N images, on the sandbox, split by step.

Runs `make demo`'s flow with N images from the four upstream stand-ins: after the merge, relay
lock, generate (and the commit), ACR builds (real buildah), Harbor setup, replication started
by relay as soon as the builds finish (the fast path, not the cron), and `relay verify`.
Prints each step's wall time and the requests it made of the upstream registry, the ACR API
and the Harbor API. Target on 2 cores: under 60 s for 10 images.

    python benchmarks/e2e.py [--images 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from relay.sandbox.demo import Demo  # noqa: E402
from relay.sandbox.stack import seed_images  # noqa: E402


def upstream_requests(demo: Demo) -> int:
    upstream = demo.sandbox.upstream
    if upstream is None or not upstream.log_file:
        return 0
    return Path(upstream.log_file).read_text(errors="replace").count("response completed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10)
    args = parser.parse_args()
    wanted = seed_images(args.images)
    with (
        tempfile.TemporaryDirectory(prefix="relay-e2e-bench-") as tmp,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        demo = Demo(Path(tmp) / "demo", ROOT, io.StringIO())
        try:
            demo.start(wanted)
            demo.scratch_repository()
            demo.pull_request(wanted)
            counts: list[tuple[str, float, int, int, int]] = []
            sandbox = demo.sandbox
            assert sandbox.acr is not None and sandbox.harbor is not None

            def snapshot() -> tuple[int, int, int]:
                assert sandbox.acr is not None and sandbox.harbor is not None
                return (
                    upstream_requests(demo),
                    len(sandbox.acr.state.calls),
                    len(sandbox.harbor.state.calls),
                )

            before_steps = len(demo.run.steps)
            marks = [snapshot()]
            original_step = demo.step

            def measured(name: str, action):  # type: ignore[no-untyped-def]
                code = original_step(name, action)
                marks.append(snapshot())
                return code

            demo.step = measured  # type: ignore[method-assign]
            demo.main_job()
            steps = demo.run.steps[before_steps:]
            for i, step in enumerate(steps):
                a, b = marks[i], marks[i + 1]
                counts.append((step.name, step.seconds, b[0] - a[0], b[1] - a[1], b[2] - a[2]))
        finally:
            demo.stop()
    total = sum(c[1] for c in counts)
    print(f"merge -> pullable from Harbor, {args.images} images (sandbox, 2 cores)")
    print(f"{'step':<58} {'s':>6} {'upstream':>9} {'ACR API':>8} {'Harbor API':>10}")
    for name, seconds, up, acr, harbor in counts:
        print(f"{name[:58]:<58} {seconds:>6.1f} {up:>9} {acr:>8} {harbor:>10}")
    print(f"{'total':<58} {total:>6.1f}")
    return 0 if total < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
