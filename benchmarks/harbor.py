#!/usr/bin/env python3
"""Benchmark one Harbor pull replication from ACR: N repositories x T tags, all copied.

Starts the ACR emulator (relay/sandbox/acr) with its token-auth stand-in registry, pushes one
small image under every repository:tag, starts the Harbor emulator (relay/sandbox/harbor) and
its stand-in registry, then drives Harbor's API with plain requests: create the ali-acr
registry, a pull policy, one execution, and waits for it. Prints the wall time of each step,
the tasks, and the ACR OpenAPI calls Harbor made (by action), which is what a literal namespace
in the name filter saves.

    python benchmarks/harbor.py [--repos N] [--tags N] [--filter PATTERN]

Needs docker-registry, htpasswd and skopeo (as the tests do).
"""

from __future__ import annotations

import argparse
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

import http.cookiejar  # noqa: E402  (imports copy: after the path fix)

import requests  # noqa: E402

from relay.sandbox.acr import AcrServer  # noqa: E402
from relay.sandbox.acr.state import PERSONAL, Namespace, Repo  # noqa: E402
from relay.sandbox.harbor import HarborServer  # noqa: E402
from tests.fixtures.images import ImageFactory, OracleClient  # noqa: E402
from tests.fixtures.registries import generate_pki, start_registry  # noqa: E402

REGION = "cn-hangzhou"
NAMESPACE = "bench"
TOKEN_USER = "cr_temp_user"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--tags", type=int, default=2)
    parser.add_argument("--filter", default=f"{NAMESPACE}/**", help="the policy's name filter")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="relay-harbor-bench-") as tmp:
        base = Path(tmp)
        pki = generate_pki(base / "pki")
        password = secrets.token_urlsafe(18)
        acr_registry = start_registry(
            base / "registries",
            name="acr",
            flavour="token",
            pki=pki,
            username=TOKEN_USER,
            password=password,
            anonymous_pull=(),
            service=f"registry.aliyuncs.com:{REGION}:26842",
        )
        harbor_registry = start_registry(base / "registries", name="harbor", flavour="tls", pki=pki)
        key_id, secret = "LTAI" + secrets.token_hex(10), secrets.token_urlsafe(24)
        acr = AcrServer(
            region=REGION,
            registry=acr_registry,
            workdir=base / "builds",
            access_keys={key_id: secret},
            token_user=TOKEN_USER,
            token_password=password,
        ).start()
        harbor = HarborServer(
            registry=harbor_registry,
            workdir=base / "harbor",
            acr_openapi_endpoint=acr.endpoint,
            host_map={f"registry.{REGION}.aliyuncs.com": acr_registry.host},
            trust_ca_file=pki.ca_file,
        ).start()
        try:
            started = time.perf_counter()
            image = ImageFactory(base / "images").build(
                "docker", seed="bench", layer_count=1, layer_size=512
            )
            with acr.state.lock:
                acr.state.namespaces[(PERSONAL, NAMESPACE)] = Namespace(PERSONAL, NAMESPACE)
                for i in range(args.repos):
                    acr.state.repos[(PERSONAL, NAMESPACE, f"img-{i}")] = Repo(
                        PERSONAL, NAMESPACE, f"img-{i}", acr.state.new_repo_id(PERSONAL)
                    )

            def push(i: int) -> None:
                with OracleClient(acr_registry) as cli:
                    for t in range(args.tags):
                        cli.push_image(f"{NAMESPACE}/img-{i}", image, f"v{t}")

            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(push, range(args.repos)))
            seeded = time.perf_counter() - started

            s = requests.Session()
            s.trust_env = False
            # Harbor sets a sid cookie; a session that sends it back must pass CSRF checks
            # (goharbor/harbor#13570), so keep no cookies, as a script should.
            s.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
            s.auth = ("admin", "Harbor12345")
            api = harbor.api_url
            t0 = time.perf_counter()
            resp = s.post(
                api + "/registries",
                json={
                    "name": "acr",
                    "type": "ali-acr",
                    "url": f"https://registry.{REGION}.aliyuncs.com",
                    "credential": {"type": "basic", "access_key": key_id, "access_secret": secret},
                },
            )
            resp.raise_for_status()
            registry_id = int(resp.headers["Location"].rsplit("/", 1)[1])
            resp = s.post(
                api + "/replication/policies",
                json={
                    "name": "bench",
                    "src_registry": {"id": registry_id},
                    "dest_namespace": "mirror",
                    "dest_namespace_replace_count": 1,
                    "filters": [{"type": "name", "value": args.filter}],
                    "trigger": {"type": "manual"},
                    "enabled": True,
                    "deletion": False,
                    "override": True,
                },
            )
            resp.raise_for_status()
            policy_id = int(resp.headers["Location"].rsplit("/", 1)[1])
            setup = time.perf_counter() - t0
            harbor.reset_openapi_calls()
            t1 = time.perf_counter()
            resp = s.post(api + "/replication/executions", json={"policy_id": policy_id})
            resp.raise_for_status()
            execution_id = int(resp.headers["Location"].rsplit("/", 1)[1])
            polls = 0
            while True:
                polls += 1
                execution = s.get(api + f"/replication/executions/{execution_id}").json()
                if execution["status"] != "InProgress" and execution["in_progress"] == 0:
                    break
                time.sleep(0.1)
            wall = time.perf_counter() - t1
            calls: Counter[str] = Counter(harbor.openapi_calls)
            print(f"seeded {args.repos} repositories x {args.tags} tags in {seeded:.1f}s")
            print(f"registry + policy created in {setup:.2f}s (health check included)")
            print()
            print("status    tasks  succeed  failed  wall s  polls  ACR OpenAPI calls")
            print("-" * 68)
            print(
                f"{execution['status']:<9} {execution['total']:>5}  {execution['succeed']:>7}  "
                f"{execution['failed']:>6}  {wall:>6.2f}  {polls:>5}  {sum(calls.values())}"
            )
            print()
            print(
                "ACR OpenAPI calls by action: "
                + ", ".join(f"{k}={v}" for k, v in sorted(calls.items()))
            )
            ok = execution["status"] == "Succeed" and execution["succeed"] == args.repos
            return 0 if ok else 1
        finally:
            harbor.stop()
            acr.stop()
            harbor_registry.stop()
            acr_registry.stop()


if __name__ == "__main__":
    sys.exit(main())
