"""The whole relay world on one machine, on loopback: upstream stand-ins, ACR, Harbor, "GitHub".

* **Upstream**: one docker-registry serving docker.io, registry.k8s.io, ghcr.io and quay.io
  under path prefixes (`127.0.0.1:P/docker.io/library/nginx`), seeded with small
  multi-platform images under their real names. relay reaches it through its own
  `registries.mirrors` setting, as a user in the mainland reaches a pull-through mirror.
* **ACR**: the ACR emulator (relay.sandbox.acr) with its token-auth registry stand-in; builds
  are real (git clone, buildah bud, push) and pull their FROM images from the upstream stand-in.
* **Harbor**: the Harbor emulator (relay.sandbox.harbor) with its registry stand-in, which
  accepts Harbor's admin login as a real Harbor does; replication really copies from ACR.
* **GitHub**: a bare git repository ACR's builds clone, standing for the GitHub repository.

`Sandbox(base).start()` brings it up in this process (the demo and the end-to-end test);
`relay sandbox up` runs the same in a background process (relay.sandbox.daemon).

With ``faults`` (`relay sandbox up --faults 0.2 --seed N`, the chaos runs of
relay.sandbox.chaos) every request relay makes meets a random fault at that rate: the upstream
stand-in is then reached through a fault-injecting front (relay.sandbox.common.proxy), and the
ACR and Harbor emulators draw from their own injectors. Harbor's own calls to ACR (its ali-acr
adapter, with its own AccessKey) meet none: what is tested is relay, not Harbor's retries.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from relay.sandbox.acr import AcrServer, BuildSettings
from relay.sandbox.acr.builds import Upstream
from relay.sandbox.common.faults import FAULT_KINDS, RandomFaults
from relay.sandbox.common.proxy import FaultyFront
from relay.sandbox.harbor import HarborServer
from relay.sandbox.images import OCI_INDEX_KIND, ImageFactory, OracleClient, PushedImage
from relay.sandbox.registries import Registry, TestPKI, generate_pki, require_tool, start_registry

UPSTREAMS = ("docker.io", "registry.k8s.io", "ghcr.io", "quay.io")
REGION = "cn-hangzhou"
ACR_SERVICE = f"registry.aliyuncs.com:{REGION}:26842"  # what ACR's /v2/ challenge names
ACR_TOKEN_USER = "cr_temp_user"
ACR_DOMAIN = f"registry.{REGION}.aliyuncs.com"
ACR_NAMESPACE = "sandbox"
HARBOR_ADMIN = "admin"
GITHUB = "sandbox/relay"  # the "GitHub repository" ACR builds from


@dataclass(frozen=True)
class SeedImage:
    name: str  # as upstream names it: docker.io/library/nginx
    tag: str
    kind: str = OCI_INDEX_KIND  # multi-platform (linux/amd64, linux/arm64/v8) by default
    seed: str = ""  # changes the content (a "moved" tag)

    @property
    def host(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def path(self) -> str:
        return self.name.split("/", 1)[1]


# Names under the four upstream stand-ins, one registry after another, so that a few images
# already touch every registry; beyond twelve, a suffix makes each name new.
SEED_NAMES = (
    "docker.io/library/nginx",
    "registry.k8s.io/pause",
    "quay.io/coreos/etcd",
    "docker.io/library/redis",
    "ghcr.io/fluxcd/source-controller",
    "registry.k8s.io/coredns",
    "quay.io/prometheus/node-exporter",
    "docker.io/library/alpine",
    "ghcr.io/dexidp/dex",
    "quay.io/cilium/cilium",
    "registry.k8s.io/etcd",
    "docker.io/library/busybox",
)


def seed_images(n: int) -> tuple[SeedImage, ...]:
    """N distinct multi-platform images at tag 1.0.0 (benchmarks and the chaos run)."""
    out = []
    for i in range(n):
        name = SEED_NAMES[i % len(SEED_NAMES)]
        suffix = "" if i < len(SEED_NAMES) else f"-{i // len(SEED_NAMES)}"
        out.append(SeedImage(name + suffix, "1.0.0"))
    return tuple(out)


DEFAULT_IMAGES = (
    SeedImage("docker.io/library/nginx", "1.27.3"),
    SeedImage("docker.io/library/alpine", "3.20.3"),
    SeedImage("registry.k8s.io/pause", "3.10"),
    SeedImage("ghcr.io/fluxcd/source-controller", "v1.4.1"),
    SeedImage("quay.io/jetstack/cert-manager-controller", "v1.16.2"),
    SeedImage("quay.io/coreos/etcd", "v3.5.17"),
)


@dataclass
class _Located:
    """A registry seen under a path prefix: what a registries.conf `location` may name."""

    host: str
    url: str
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_dir: str | None = None


@dataclass
class Sandbox:
    base: Path
    pki: TestPKI | None = None
    upstream: Registry | None = None
    acr_registry: Registry | None = None
    harbor_registry: Registry | None = None
    acr: AcrServer | None = None
    harbor: HarborServer | None = None
    access_key_id: str = ""
    access_key_secret: str = field(default="", repr=False)
    # Harbor's ali-acr endpoint gets a key of its own, as the README advises (a read-only user).
    harbor_key_id: str = ""
    harbor_key_secret: str = field(default="", repr=False)
    harbor_password: str = field(default="", repr=False)
    pushed: dict[str, PushedImage] = field(default_factory=dict)  # "name:tag" -> image
    faults: RandomFaults | None = None  # random faults on relay's requests; None: none
    upstream_front: FaultyFront | None = None  # in front of `upstream` when faults are on

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        for tool in ("docker-registry", "htpasswd", "buildah", "git"):
            require_tool(tool)
        self.base.mkdir(parents=True, exist_ok=True)
        regs = self.base / "registries"
        self.pki = generate_pki(self.base / "pki")
        self.upstream = start_registry(regs, name="upstream", flavour="plain", pki=self.pki)
        token_password = secrets.token_urlsafe(18)
        self.acr_registry = start_registry(
            regs,
            name="acr",
            flavour="token",
            pki=self.pki,
            username=ACR_TOKEN_USER,
            password=token_password,
            anonymous_pull=(),
            service=ACR_SERVICE,
        )
        self.harbor_password = secrets.token_urlsafe(18)
        # Harbor's registry takes Harbor's own logins (docker login harbor.example.com).
        self.harbor_registry = start_registry(
            regs,
            name="harbor",
            flavour="tls",
            pki=self.pki,
            username=HARBOR_ADMIN,
            password=self.harbor_password,
        )
        self.access_key_id = "LTAI" + secrets.token_hex(10)
        self.access_key_secret = secrets.token_urlsafe(24)
        self.harbor_key_id = "LTAI" + secrets.token_hex(10)
        self.harbor_key_secret = secrets.token_urlsafe(24)
        self.acr = AcrServer(
            region=REGION,
            registry=self.acr_registry,
            workdir=self.base / "acr",
            access_keys={
                self.access_key_id: self.access_key_secret,
                self.harbor_key_id: self.harbor_key_secret,
            },
            token_user=ACR_TOKEN_USER,
            token_password=token_password,
            build_settings=BuildSettings(workers=2),
        ).start()
        runner = self.acr.runner
        for host in UPSTREAMS:
            located = _Located(f"{self.upstream.host}/{host}", f"{self.upstream.url}/{host}")
            runner.upstreams[host] = Upstream(host, located)
        runner.upstreams[self.acr.registry_domain] = Upstream(
            self.acr.registry_domain, self.acr_registry
        )
        runner.git_remotes[GITHUB] = str(self.git_remote)
        self.harbor = HarborServer(
            registry=self.harbor_registry,
            workdir=self.base / "harbor",
            acr_openapi_endpoint=self.acr.endpoint,
            host_map={ACR_DOMAIN: self.acr_registry.host},
            trust_ca_file=self.pki.ca_file,
            admin_password=self.harbor_password,
        ).start()
        self.upstream_front = FaultyFront(self.upstream.url, name="upstream-front").start()
        self.set_faults(self.faults)
        return self

    def set_faults(self, faults: RandomFaults | None) -> None:
        """Turn random faults on (at ``faults.rate``) or off, on every part at once. Each part
        draws from its own seed (derived from ``faults.seed``)."""
        assert self.upstream_front and self.acr and self.harbor
        self.faults = faults
        self.upstream_front.faults.set_random(faults.derive(1) if faults else None)
        if faults is not None:
            only_relay = replace(faults.derive(2), clients=frozenset({self.access_key_id}))
            self.acr.faults.set_random(only_relay)
        else:
            self.acr.faults.set_random(None)
        self.harbor.faults.set_random(faults.derive(3) if faults else None)

    def faults_injected(self) -> dict[str, dict[str, int]]:
        """Faults injected so far, by part and kind."""
        assert self.upstream_front and self.acr and self.harbor
        return {
            "upstream": self.upstream_front.faults.injected(),
            "acr": self.acr.faults.injected(),
            "harbor": self.harbor.faults.injected(),
        }

    @property
    def upstream_url(self) -> str:
        """Where relay reaches the upstream stand-in: through the fault front."""
        assert self.upstream_front is not None
        return self.upstream_front.url

    def stop(self) -> None:
        for stop in (
            self.upstream_front.stop if self.upstream_front else None,
            self.harbor.stop if self.harbor else None,
            self.acr.stop if self.acr else None,
            self.harbor_registry.stop if self.harbor_registry else None,
            self.acr_registry.stop if self.acr_registry else None,
            self.upstream.stop if self.upstream else None,
        ):
            if stop is not None:
                try:
                    stop()
                except Exception:  # noqa: BLE001 - stop the rest whatever one does
                    pass

    # --- upstream -------------------------------------------------------------------------------

    def seed(self, images: tuple[SeedImage, ...] = DEFAULT_IMAGES) -> dict[str, PushedImage]:
        """Push ``images`` to the upstream stand-in under their real names."""
        assert self.upstream is not None
        factory = ImageFactory(self.base / "image-cache")
        with OracleClient(self.upstream) as client:
            for image in images:
                self.pushed[f"{image.name}:{image.tag}"] = factory.push(
                    self.upstream,
                    f"{image.host}/{image.path}",
                    image.tag,
                    image.kind,
                    seed=image.seed or f"{image.name}:{image.tag}",
                    layer_count=1,
                    layer_size=2048,
                    client=client,
                )
        return self.pushed

    # --- "GitHub" -------------------------------------------------------------------------------

    @property
    def git_remote(self) -> Path:
        """The bare repository standing for github.com/sandbox/relay."""
        return self.base / "github" / "sandbox__relay.git"

    def init_git_remote(self) -> Path:
        path = self.git_remote
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["git", "init", "--quiet", "--bare", "--initial-branch", "main", str(path)],
                check=True,
                env=git_env(self.base),
            )
        return path

    # --- pointing relay at it -------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment relay needs: endpoints and credentials (sandbox-only secrets)."""
        assert self.acr is not None and self.acr_registry is not None
        assert self.acr_registry.password is not None
        return {
            "RELAY_ACR_ENDPOINT": self.acr.endpoint,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": self.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": self.access_key_secret,
            "RELAY_HARBOR_ACR_ACCESS_KEY_ID": self.harbor_key_id,
            "RELAY_HARBOR_ACR_ACCESS_KEY_SECRET": self.harbor_key_secret,
            "HARBOR_USERNAME": HARBOR_ADMIN,
            "HARBOR_PASSWORD": self.harbor_password,
            # relay reads ACR's registry (verify) with the temporary user ACR hands out.
            **_auth_environment(
                {
                    self.acr_registry.host: f"{ACR_TOKEN_USER}:{self.acr_registry.password}",
                    self.harbor_host: f"{HARBOR_ADMIN}:{self.harbor_password}",
                }
            ),
        }

    @property
    def harbor_host(self) -> str:
        assert self.harbor_registry is not None
        return self.harbor_registry.host

    def settings(self, *, project: str = "mirrors") -> str:
        """mirrors/relay.yaml for a repository that uses this sandbox."""
        assert self.upstream and self.acr_registry and self.harbor and self.pki
        mirrors = "\n".join(f'    {host}: ["{self.upstream_url}/{host}"]' for host in UPSTREAMS)
        return textwrap.dedent(
            """\
            # relay settings for the local sandbox (relay sandbox up / make demo).
            registries:
              ca_bundles:
                "127.0.0.1": {ca}
              mirrors:
            {mirrors}
            acr:
              namespace: {namespace}
              registry_domain: {acr_host}
              source:
                github: {github}
                branch: main
              poll: {{interval: 0.2, max_interval: 1, timeout: 600}}
              retry: {{backoff: 0.05, max_backoff: 0.5}}
            harbor:
              url: {harbor_url}
              project: {project}
              source_url: https://{acr_domain}
              registry: {harbor_host}
              poll: {{interval: 0.1, max_interval: 0.5, timeout: 600, settle: 1}}
              retry: {{backoff: 0.05, max_backoff: 0.5}}
            """
        ).format(
            ca=self.pki.ca_file,
            mirrors=mirrors,
            namespace=ACR_NAMESPACE,
            acr_host=self.acr_registry.host,
            github=GITHUB,
            harbor_url=self.harbor.url,
            project=project,
            acr_domain=ACR_DOMAIN,
            harbor_host=self.harbor_host,
        )


FAULTS_ENV = "RELAY_SANDBOX_FAULTS"  # the rate, 0 to 1
SEED_ENV = "RELAY_SANDBOX_SEED"  # an integer; 0 by default
KINDS_ENV = "RELAY_SANDBOX_FAULT_KINDS"  # comma-separated; every kind by default


def faults_from_env(env: Mapping[str, str]) -> RandomFaults | None:
    """The random faults `relay sandbox up` is asked for (RELAY_SANDBOX_FAULTS=0.2,
    RELAY_SANDBOX_SEED=7, RELAY_SANDBOX_FAULT_KINDS=throttling,5xx); None when unset. A bad
    value is a ValueError naming the variable."""
    rate = env.get(FAULTS_ENV, "").strip()
    if not rate:
        return None
    try:
        value = float(rate)
    except ValueError:
        raise ValueError(f"{FAULTS_ENV}={rate!r}: not a number between 0 and 1") from None
    seed = env.get(SEED_ENV, "0").strip() or "0"
    if not seed.lstrip("-").isdigit() or len(seed) > 20:
        raise ValueError(f"{SEED_ENV}={seed!r}: not an integer")
    kinds = tuple(k.strip() for k in env.get(KINDS_ENV, "").split(",") if k.strip())
    try:
        return RandomFaults(value, int(seed), kinds or FAULT_KINDS)
    except ValueError as exc:
        raise ValueError(f"{FAULTS_ENV}/{KINDS_ENV}: {exc}") from None


def _auth_environment(entries: dict[str, str]) -> dict[str, str]:
    from relay.registry.credentials import EnvCredentials

    return EnvCredentials.environment(entries)


def git_env(base: Path) -> dict[str, str]:
    """git with no user or system configuration, and a fixed identity."""
    home = base / "git-home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "relay sandbox",
        "GIT_AUTHOR_EMAIL": "sandbox@relay.invalid",
        "GIT_COMMITTER_NAME": "relay sandbox",
        "GIT_COMMITTER_EMAIL": "sandbox@relay.invalid",
        # Fixed dates: the same content makes the same commits, run after run.
        "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
        "LANG": "C",
    }
