#!/usr/bin/env python3
"""Benchmark `relay lock` on a bearer-token registry against a sequential `skopeo inspect` loop.

1,000 tags across 50 repositories (multi-platform OCI indexes) are pushed to a local
docker-registry behind a token server. `relay lock` resolves them all (a cold lock), then
`relay lock --check` re-checks them (a warm lock). Requests are counted by relay's client and
cross-checked in the registry's access log; tokens are counted by the token server. The
baseline is `skopeo inspect --format {{.Digest}}` run once per tag, one after another.

Targets on a 2-core machine: at most 1.05 registry requests per tag plus one token per
repository, and at least 10x faster than the skopeo loop.

    python benchmarks/lock.py [--repos 50] [--tags-per-repo 20] [--skopeo-sample N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Replace the benchmarks folder on the path: its copy.py would shadow the standard library.
sys.path[0] = str(ROOT)

from relay import cli  # noqa: E402
from relay.registry.credentials import EnvCredentials  # noqa: E402
from relay.sandbox.images import ImageFactory  # noqa: E402
from tests.fixtures.registries import RegistryFactory, generate_pki  # noqa: E402
from tests.fixtures.skopeo import Skopeo  # noqa: E402


def access_log_requests(log_file: str, agent: str, start: int) -> int:
    with open(log_file, "rb") as fh:
        fh.seek(start)
        return sum(
            1
            for line in fh
            if f'"{agent}'.encode() in line
            and b'"GET /v2/' in line
            or f'"{agent}'.encode() in line
            and b'"HEAD /v2/' in line
        )


def run_lock(repo: Path, *extra: str) -> tuple[float, str]:
    import contextlib
    import io

    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = cli.main(["lock", "--repo", str(repo), *extra])
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"relay lock failed ({code}): {out.getvalue()[-2000:]}")
    return elapsed, out.getvalue().strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--tags-per-repo", type=int, default=20)
    parser.add_argument(
        "--skopeo-sample",
        type=int,
        default=0,
        help="time skopeo on this many tags and extrapolate (0: every tag)",
    )
    args = parser.parse_args()
    total = args.repos * args.tags_per_repo
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        factory = RegistryFactory(base / "registries", generate_pki(base / "pki"))
        images = ImageFactory(base / "blobs")
        skopeo = Skopeo(base / "skopeo")
        try:
            registry = factory("token", name="token")
            pairs = [(r, t) for r in range(args.repos) for t in range(args.tags_per_repo)]
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(
                    pool.map(
                        lambda rt: images.push(
                            registry,
                            f"bench/repo{rt[0]}",
                            f"v1.{rt[1]}.0",
                            "oci-index",
                            seed=f"{rt[0]}-{rt[1]}",
                            layer_count=1,
                            layer_size=256,
                        ),
                        pairs,
                    )
                )
            setup = time.perf_counter() - start

            repo = base / "repo"
            (repo / "mirrors").mkdir(parents=True)
            lines = ["images:"]
            for r in range(args.repos):
                lines.append(f"  - source: {registry.host}/bench/repo{r}")
                tags = ", ".join(f'"v1.{t}.0"' for t in range(args.tags_per_repo))
                lines.append(f"    tags: [{tags}]")
            (repo / "mirrors/images.yaml").write_text("\n".join(lines) + "\n")
            (repo / "mirrors/relay.yaml").write_text(
                textwrap.dedent(
                    f"""\
                    naming:
                      max_length: 64
                    registries:
                      ca_bundles:
                        "127.0.0.1": "{registry.ca_file}"
                    """
                )
            )
            os.environ.update(
                EnvCredentials.environment(
                    {registry.host: f"{registry.username}:{registry.password}"}
                )
            )

            rows = []
            for name, extra in (
                ("relay lock (cold)", ()),
                ("relay lock --check (warm)", ("--check",)),
            ):
                registry.token_server.reset()
                offset = os.path.getsize(registry.log_file)
                seconds, summary = run_lock(repo, *extra)
                requests = int(summary.split(" with ")[1].split()[0])
                logged = access_log_requests(registry.log_file, "relay-registry", offset)
                tokens = registry.token_server.issued
                rows.append((name, seconds, requests, logged, tokens))

            sample = args.skopeo_sample or total
            start = time.perf_counter()
            for r, t in pairs[:: max(1, total // sample)][:sample]:
                skopeo.inspect_digest(f"{registry.host}/bench/repo{r}:v1.{t}.0", registry)
            skopeo_seconds = (time.perf_counter() - start) * total / sample
        finally:
            factory.close()

    print(f"relay lock: {total} tags across {args.repos} repositories on a token-auth registry")
    print(f"(setup: pushing the images took {setup:.1f} s)")
    # Token requests go to the token server; the registry's own requests are the rest.
    print(
        f"{'run':<26} {'seconds':>8} {'registry requests':>18} {'per tag':>8} "
        f"{'in access log':>14} {'tokens':>7}"
    )
    for name, seconds, requests, logged, tokens in rows:
        registry_requests = requests - tokens
        print(
            f"{name:<26} {seconds:>8.2f} {registry_requests:>18} "
            f"{registry_requests / total:>8.3f} {logged:>14} {tokens:>7}"
        )
    note = "" if sample == total else f" (extrapolated from {sample} tags)"
    print(f"{'skopeo inspect loop':<28} {skopeo_seconds:>8.2f}{note}")
    print(f"speed-up, cold lock vs skopeo loop: {skopeo_seconds / rows[0][1]:.1f}x (target >= 10x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
