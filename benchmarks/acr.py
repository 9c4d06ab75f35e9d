#!/usr/bin/env python3
"""Benchmark a no-op `relay acr apply`: 300 repositories x 3 tags, everything already built.

Starts the ACR emulator (relay/sandbox/acr) and its stand-in registry, seeds the emulator's state
directly (the namespace; 300 repositories marked as relay's and bound as relay binds them) and
pushes one small image under every repository:tag, with the config upstream has. Then runs
`relay acr apply --wait` in-process and prints the API calls, as the emulator saw them and as
relay counted them, and the wall time.

Targets: 0 writes; at most one read per repository, plus list pages.

    python benchmarks/acr.py [--repos N] [--tags N] [--runs N]

Needs docker-registry and htpasswd (as the tests do); no build runs, so buildah is not used.
"""

from __future__ import annotations

import argparse
import io
import secrets
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Replace the benchmarks folder on the path: its copy.py would shadow the standard library.
sys.path[0] = str(ROOT)

from relay.commands import acr as commands  # noqa: E402
from relay.config import lockfile as lock_mod  # noqa: E402
from relay.config import mirrors  # noqa: E402
from relay.reference import parse_repository  # noqa: E402
from relay.sandbox.acr import AcrServer  # noqa: E402
from relay.sandbox.acr.state import PERSONAL, Namespace, Repo, SourceBinding  # noqa: E402
from relay.sandbox.images import Image, ImageFactory, OracleClient  # noqa: E402
from relay.stages import generate  # noqa: E402
from relay.stages.acr.api import LIST_ACTIONS, CallStats  # noqa: E402
from relay.stages.acr.plan import binding_for, detail_for, summary_for  # noqa: E402
from relay.stages.acr.settings import AcrSettings, SourceSettings  # noqa: E402
from tests.fixtures.registries import Registry, generate_pki, start_registry  # noqa: E402

REGION = "cn-hangzhou"
NAMESPACE = "bench"
GITHUB = "octo/mirrors"
TOKEN_USER = "cr_temp_user"


def write_repo(repo: Path, repos: int, tags: int, digest: str) -> None:
    lines = ["images:"]
    for i in range(repos):
        lines.append(f"  - source: quay.io/bench/img-{i}")
        pins = ", ".join(f'"v{t}@{digest}"' for t in range(tags))
        lines.append(f"    tags: [{pins}]")
    (repo / "mirrors").mkdir(parents=True, exist_ok=True)
    (repo / "mirrors/images.yaml").write_text("\n".join(lines) + "\n")
    ml = mirrors.load(repo)
    lock = lock_mod.read(repo)
    generate.apply(repo, generate.plan(generate.desired(ml, lock), generate.scan(repo)))


def seed(
    server: AcrServer,
    registry: Registry,
    settings: AcrSettings,
    image: Image,
    repos: int,
    tags: int,
) -> None:
    """The emulator's state after a finished apply, written directly."""
    state = server.state
    binding = binding_for(settings)
    with state.lock:
        state.namespaces[(PERSONAL, NAMESPACE)] = Namespace(PERSONAL, NAMESPACE)
        for i in range(repos):
            source = parse_repository(f"quay.io/bench/img-{i}")
            name = f"quay_bench_img-{i}"
            state.repos[(PERSONAL, NAMESPACE, name)] = Repo(
                edition=PERSONAL,
                namespace=NAMESPACE,
                name=name,
                repo_id=state.new_repo_id(PERSONAL),
                summary=summary_for(source, binding),
                detail=detail_for(source, settings),
                source=SourceBinding("GITHUB", binding.owner, binding.name, False, True, True),
            )

    def push(i: int) -> None:
        with OracleClient(registry) as cli:
            for t in range(tags):
                cli.push_image(f"{NAMESPACE}/quay_bench_img-{i}", image, f"v{t}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(push, range(repos)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=300)
    parser.add_argument("--tags", type=int, default=3)
    parser.add_argument("--runs", type=int, default=2, help="no-op applies to time (default 2)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="relay-acr-bench-") as tmp:
        base = Path(tmp)
        password = secrets.token_urlsafe(18)
        registry = start_registry(
            base / "registries",
            name="acr",
            flavour="tls",
            pki=generate_pki(base / "pki"),
            username=TOKEN_USER,
            password=password,
        )
        key_id, secret = "LTAI" + secrets.token_hex(10), secrets.token_urlsafe(24)
        server = AcrServer(
            region=REGION,
            registry=registry,
            workdir=base / "builds",
            access_keys={key_id: secret},
            token_user=TOKEN_USER,
            token_password=password,
        ).start()
        try:
            settings = AcrSettings(namespace=NAMESPACE, source=SourceSettings(GITHUB), workers=8)
            image = ImageFactory(base / "images").build(
                "docker", seed="bench", layer_count=1, layer_size=512
            )
            started = time.perf_counter()
            seed(server, registry, settings, image, args.repos, args.tags)
            seeded = time.perf_counter() - started
            repo = base / "relay"
            write_repo(repo, args.repos, args.tags, image.digest)
            ml = mirrors.load(repo)
            lock = lock_mod.read(repo)
            env = {
                "RELAY_ACR_ENDPOINT": server.endpoint,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
            }
            print(f"seeded {args.repos} repositories x {args.tags} tags in {seeded:.1f}s")
            print()
            header = (
                f"{'run':<4} {'wall s':>7} {'reads':>6} {'writes':>6} {'list pages':>10} "
                f"{'per repo':>8} {'builds':>6}  ok"
            )
            print(header)
            print("-" * len(header))
            worst: tuple[int, int, int] = (0, 0, 0)
            for run in range(1, args.runs + 1):
                server.state.calls.clear()
                stats = CallStats()
                t0 = time.perf_counter()
                report = commands.apply(
                    repo,
                    settings,
                    ml,
                    lock,
                    wait=True,
                    env=env,
                    out=io.StringIO(),
                    upstream_config=lambda *_: image.config_digest,
                    stats=stats,
                )
                wall = time.perf_counter() - t0
                calls = list(server.state.calls)
                lists = sum(1 for c in calls if c.action in LIST_ACTIONS)
                reads = sum(1 for c in calls if c.is_read) - lists
                writes = sum(1 for c in calls if c.is_write)
                assert (reads, writes, lists) == (stats.reads, stats.writes, stats.list_pages)
                print(
                    f"{run:<4} {wall:>7.2f} {reads:>6} {writes:>6} {lists:>10} "
                    f"{reads / args.repos:>8.2f} {len(report.rows):>6}  {report.ok}"
                )
                worst = max(worst, (writes, reads, lists))
            print()
            by_action = Counter(c.action for c in calls)
            print(
                "calls by action (last run): "
                + ", ".join(f"{a}={n}" for a, n in sorted(by_action.items()))
            )
            writes, reads, lists = worst
            ok = writes == 0 and reads <= args.repos
            print(
                f"target 0 writes and <= 1 read per repository (+ list pages): "
                f"{'met' if ok else 'NOT met'} ({writes} writes, {reads} reads, {lists} list pages)"
            )
            return 0 if ok else 1
        finally:
            server.stop()
            registry.stop()


if __name__ == "__main__":
    sys.exit(main())
