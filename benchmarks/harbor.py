#!/usr/bin/env python3
"""The Harbor stage on the emulators: what a no-op apply costs, and how soon built tags are
pullable from Harbor by the fast path (`relay harbor replicate --only`) and by a run of the
whole namespace's policy.

Starts the ACR emulator (relay/sandbox/acr) with its token-auth stand-in registry, pushes small
images into it as ACR builds would, starts the Harbor emulator (relay/sandbox/harbor) with its
stand-in registry, and drives relay's own commands. Prints two tables:

1. `relay harbor apply` at 10 and at 1,000 list entries: the first apply's writes, then a
   no-op apply's requests and writes (targets: 0 writes; the same few reads at both sizes).
2. From "builds done" to "every tag pullable from Harbor" for R repositories x T tags, when C of
   them changed: the fast path against a run of the namespace's policy, with the tasks and
   the ACR OpenAPI calls Harbor made. (Harbor's own schedule would add up to its interval.)

    python benchmarks/harbor.py [--repos 50] [--tags 2] [--changed 5]

Needs docker-registry, htpasswd and skopeo (as the tests do).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import secrets
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Replace the benchmarks folder on the path: its scripts must not shadow the standard library.
sys.path[0] = str(ROOT)

from relay.commands.harbor import harbor_apply, harbor_replicate  # noqa: E402
from relay.sandbox.acr import AcrServer  # noqa: E402
from relay.sandbox.acr.state import PERSONAL, Namespace, Repo  # noqa: E402
from relay.sandbox.harbor import HarborServer  # noqa: E402
from relay.sandbox.images import Image, ImageFactory, OracleClient  # noqa: E402
from tests.fixtures.registries import Registry, TestPKI, generate_pki, start_registry  # noqa: E402

REGION = "cn-hangzhou"
NAMESPACE = "bench"
TOKEN_USER = "cr_temp_user"
ADMIN_PASSWORD = "Harbor12345"


class World:
    def __init__(self, base: Path, pki: TestPKI) -> None:
        self.base = base
        self.pki = pki
        password = secrets.token_urlsafe(18)
        self.acr_registry = start_registry(
            base / "registries",
            name="acr",
            flavour="token",
            pki=pki,
            username=TOKEN_USER,
            password=password,
            anonymous_pull=(),
            service=f"registry.aliyuncs.com:{REGION}:26842",
        )
        self.key_id, self.secret = "LTAI" + secrets.token_hex(10), secrets.token_urlsafe(24)
        self.acr = AcrServer(
            region=REGION,
            registry=self.acr_registry,
            workdir=base / "builds",
            access_keys={self.key_id: self.secret},
            token_user=TOKEN_USER,
            token_password=password,
        ).start()
        self.harbors: list[tuple[HarborServer, Registry]] = []

    def harbor(self, name: str) -> tuple[HarborServer, Registry]:
        registry = start_registry(self.base / "registries", name=name, flavour="tls", pki=self.pki)
        server = HarborServer(
            registry=registry,
            workdir=self.base / name,
            acr_openapi_endpoint=self.acr.endpoint,
            host_map={f"registry.{REGION}.aliyuncs.com": self.acr_registry.host},
            trust_ca_file=self.pki.ca_file,
            admin_password=ADMIN_PASSWORD,
        ).start()
        self.harbors.append((server, registry))
        return server, registry

    def env(self) -> dict[str, str]:
        return {
            "HARBOR_USERNAME": "admin",
            "HARBOR_PASSWORD": ADMIN_PASSWORD,
            "RELAY_HARBOR_ACR_ACCESS_KEY_ID": self.key_id,
            "RELAY_HARBOR_ACR_ACCESS_KEY_SECRET": self.secret,
        }

    def seed(self, names: list[str], tags: int, image: Image) -> None:
        with self.acr.state.lock:
            self.acr.state.namespaces[(PERSONAL, NAMESPACE)] = Namespace(PERSONAL, NAMESPACE)
            for name in names:
                key = (PERSONAL, NAMESPACE, name)
                if key not in self.acr.state.repos:
                    self.acr.state.repos[key] = Repo(
                        PERSONAL, NAMESPACE, name, self.acr.state.new_repo_id(PERSONAL)
                    )

        def push(name: str) -> None:
            with OracleClient(self.acr_registry) as cli:
                for t in range(tags):
                    cli.push_image(f"{NAMESPACE}/{name}", image, f"v{t}")

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(push, names))

    def stop(self) -> None:
        for server, registry in self.harbors:
            server.stop()
            registry.stop()
        self.acr.stop()
        self.acr_registry.stop()


def write_repo(repo: Path, server: HarborServer, names: list[str], tags: int) -> None:
    (repo / "mirrors").mkdir(parents=True, exist_ok=True)
    digest = "sha256:" + "0" * 64
    lines = ["images:"]
    for name in names:
        pins = ", ".join(f'"v{t}@{digest}"' for t in range(tags))
        lines += [f"  - source: quay.io/bench/{name}", f"    name: {name}", f"    tags: [{pins}]"]
    (repo / "mirrors/images.yaml").write_text("\n".join(lines) + "\n")
    (repo / "mirrors/relay.yaml").write_text(
        textwrap.dedent(
            f"""\
            naming: {{max_length: 64}}
            acr: {{namespace: {NAMESPACE}, source: {{github: bench/relay}}}}
            harbor:
              url: {server.url}
              project: mirror
              poll: {{interval: 0.05, max_interval: 0.2, timeout: 600, settle: 0.5}}
            """
        )
    )


def quietly(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def all_pullable(registry: Registry, names: list[str], tags: int) -> bool:
    with OracleClient(registry) as cli:
        for name in names:
            for t in range(tags):
                resp = cli.request(
                    "HEAD",
                    f"/v2/mirror/{name}/manifests/v{t}",
                    scope=f"repository:mirror/{name}:pull",
                    headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
                )
                if resp.status_code != 200:
                    return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--tags", type=int, default=2)
    parser.add_argument("--changed", type=int, default=5)
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="relay-harbor-bench-") as tmp:
        base = Path(tmp)
        world = World(base, generate_pki(base / "pki"))
        try:
            image = ImageFactory(base / "images").build(
                "docker", seed="bench", layer_count=1, layer_size=512
            )
            # 1. no-op applies at two list sizes
            print("relay harbor apply: first run, then a no-op run")
            print(f"{'entries':>8}  {'1st writes':>10}  {'no-op reads':>11}  {'no-op writes':>12}")
            for entries in (10, 1000):
                server, _ = world.harbor(f"harbor-apply-{entries}")
                repo = base / f"repo-apply-{entries}"
                write_repo(repo, server, [f"img-{i}" for i in range(entries)], 1)
                server.state.recorder.clear()
                quietly(harbor_apply, repo=repo, env=world.env())
                first = sum(1 for c in server.state.calls if c.write)
                server.state.recorder.clear()
                quietly(harbor_apply, repo=repo, env=world.env())
                reads = sum(1 for c in server.state.calls if not c.write)
                writes = sum(1 for c in server.state.calls if c.write)
                ok &= writes == 0
                print(f"{entries:>8}  {first:>10}  {reads:>11}  {writes:>12}")
            print()

            # 2. builds done -> pullable
            names = [f"img-{i}" for i in range(args.repos)]
            changed = names[: args.changed]
            world.seed(names, args.tags, image)
            print(
                f"builds done -> pullable: {args.repos} repositories x {args.tags} tags in the "
                f"namespace, {args.changed} of them just built"
            )
            print(
                f"{'path':<26} {'wall s':>7} {'tasks':>6} {'tags copied':>11} "
                f"{'ACR OpenAPI calls':>18}  by action"
            )
            for path in ("fast (--only changed)", "policy run (whole ns)"):
                server, registry = world.harbor("harbor-" + path.split()[0])
                repo = base / f"repo-{path.split()[0]}"
                write_repo(repo, server, names, args.tags)
                quietly(harbor_apply, repo=repo, env=world.env())
                server.reset_openapi_calls()
                started = time.perf_counter()
                only = changed if path.startswith("fast") else []
                quietly(harbor_replicate, repo=repo, wait=True, only=only, env=world.env())
                pullable = all_pullable(registry, changed, args.tags)
                wall = time.perf_counter() - started
                ok &= pullable
                tasks = len(server.state.tasks)
                copied = len(only or names) * args.tags
                calls = server.openapi_calls
                by_action = ", ".join(f"{k}={v}" for k, v in sorted(calls.items()))
                print(
                    f"{path:<26} {wall:>7.2f} {tasks:>6} {copied:>11} {sum(calls.values()):>18}"
                    f"  {by_action}"
                )
        finally:
            world.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
