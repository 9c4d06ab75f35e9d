"""`relay doctor`: everything a run needs, checked at once, in seconds, one finding per line.

Each check is a function that returns findings; they run side by side, each request with one
try and a short timeout (no retries: a doctor says what is wrong now, it does not wait it out).
A finding says what was found and, when something is wrong, the fix. Only failures of what a
configured stage needs (`needed`) make the command exit 1:

* the list and the settings (offline, first: the other checks read them);
* every upstream registry the list names, and its mirrors (`registries.mirrors`): the ping
  `/v2/` every client starts with; Docker Hub's pull quota from the `ratelimit-*` headers of a
  HEAD on `ratelimitpreview/test` (Docker's documented way to read the quota; a HEAD is not a
  pull: https://docs.docker.com/docker-hub/usage/pulls/);
* with `acr:`, the AccessKey (one GetNamespaceList), the namespace and `acr.quotas`;
* with `transport: copy`, the target registry and its login variables;
* with `harbor:`, the URL and its TLS (a self-signed CA needs `harbor.ca_bundle`), the login,
  and the robot account's system permissions (`GET /users/current/permissions?scope=/system`,
  which Harbor answers for robots too: `src/server/v2.0/handler/user.go`,
  GetCurrentUserPermissions, evaluates each system policy with the caller's security context);
* `GITHUB_TOKEN`, when set: whether GitHub takes it, and a classic token's `X-OAuth-Scopes`;
* the proxies in effect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from relay import safety
from relay.config import lockfile
from relay.config.mirrors import MirrorList
from relay.errors import InputError
from relay.net.errors import TLSFailed, TransportError
from relay.net.proxies import proxy_for
from relay.net.retry import NEVER
from relay.net.tls import TLSConfig
from relay.net.transport import Transport
from relay.registry.client import RegistryClient
from relay.registry.credentials import CredentialProvider
from relay.registry.errors import RegistryConnectionError, RegistryError, RegistryTLSError
from relay.registry.pool import ClientPool

log = logging.getLogger(__name__)

Level = Literal["ok", "info", "warn", "fail"]
LEVELS: tuple[Level, ...] = ("ok", "info", "warn", "fail")

DOCKER_HUB = "docker.io"
# Docker's documented repository for reading the pull quota without spending it.
RATELIMIT_REPOSITORY = "ratelimitpreview/test"
QUOTA_LOW = 0.1  # warn below a tenth of the quota left

# What the Harbor stage asks of its login (README "The Harbor stage", one-time setup):
# system permissions, per resource. Delete is needed only by --prune.
HARBOR_NEEDS: dict[str, tuple[str, ...]] = {
    "registry": ("list", "read", "create", "update"),
    "replication-policy": ("list", "read", "create", "update"),
    "replication": ("list", "read", "create"),
    "project": ("list", "create"),
}
HARBOR_PRUNE_NEEDS: dict[str, tuple[str, ...]] = {
    "registry": ("delete",),
    "replication-policy": ("delete",),
}
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")

UPSTREAM_FIX = (
    "relay lock and relay plan need the upstream registries: run them in the GitHub workflow "
    "(its runners are outside the mainland), or set registries.mirrors to a mirror this machine "
    "reaches, or HTTPS_PROXY"
)


@dataclass(frozen=True)
class Finding:
    subject: str  # what was checked: "docker.io", "mirrors/relay.yaml", "ACR AccessKey"
    level: Level
    message: str
    fix: str = ""
    needed: bool = False  # a configured stage cannot run without it: a failure exits 1
    seconds: float = 0.0

    def line(self) -> str:
        mark = {"ok": "ok  ", "info": "info", "warn": "WARN", "fail": "FAIL"}[self.level]
        text = f"{mark}  {self.subject}: {self.message}"
        return f"{text}. Fix: {self.fix}" if self.fix else text

    def json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "level": self.level,
            "message": self.message,
            "fix": self.fix or None,
            "needed": self.needed,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(f.level == "fail" and f.needed for f in self.findings)

    def counts(self) -> dict[str, int]:
        return {level: sum(1 for f in self.findings if f.level == level) for level in LEVELS}

    def summary(self) -> str:
        c = self.counts()
        blocking = sum(1 for f in self.findings if f.level == "fail" and f.needed)
        text = (
            f"{len(self.findings)} findings in {self.seconds:.1f}s: {c['ok']} ok, "
            f"{c['warn']} warnings, {c['fail']} failed"
        )
        if blocking:
            text += f"; {blocking} of them block a configured stage"
        return text


@dataclass(frozen=True)
class Context:
    """What the checks share: the repository, its files (when they loaded), the environment."""

    repo: Path
    env: Mapping[str, str]
    timeout: float
    settings: Any | None  # relay.commands.common.RelaySettings (the stage layer does not import
    # commands): None when the settings file does not load
    mirrors: MirrorList | None

    @property
    def http_timeout(self) -> tuple[float, float]:
        # Half the budget per request: an insecure registry's ping may take two (HTTPS, then
        # plain HTTP) and must still end within it.
        return (self.timeout / 2, self.timeout / 2)


Check = Callable[[Context], list[Finding]]


def run(
    ctx: Context, checks: Sequence[Check], clock: Callable[[], float] = time.monotonic
) -> Report:
    """Every check side by side; one that does not end within the timeout (plus a second for
    the answer to arrive) is reported as such, and the command does not wait for it."""
    started = clock()
    report = Report()
    pool = ThreadPoolExecutor(max_workers=max(1, len(checks)), thread_name_prefix="doctor")
    futures = {pool.submit(_timed, check, ctx, clock): check for check in checks}
    done, late = wait(futures, timeout=ctx.timeout + 1.0)
    for future, check in futures.items():
        if future in late:
            name = check.__name__.removeprefix("check_").replace("_", " ")
            report.findings.append(
                Finding(name, "fail", f"no answer within {ctx.timeout:g}s", needed=True)
            )
            continue
        report.findings.extend(future.result())
    pool.shutdown(wait=False, cancel_futures=True)
    report.seconds = clock() - started
    return report


def _timed(check: Check, ctx: Context, clock: Callable[[], float]) -> list[Finding]:
    started = clock()
    try:
        found = check(ctx)
    except Exception as exc:  # noqa: BLE001 - a broken check is a finding, not a crash
        name = check.__name__.removeprefix("check_").replace("_", " ")
        log.debug("doctor check %s", name, exc_info=True)
        found = [Finding(name, "fail", f"the check itself failed: {safety.first_line(exc)}")]
    seconds = clock() - started
    return [replace(f, seconds=seconds) for f in found]


# --- the list and the settings (offline; run before the others) -------------------------------


def files(
    ctx_repo: Path, load: Callable[[Path], Any], load_list: Callable[[Path, Any], Any]
) -> tuple[list[Finding], Any, Any]:
    """The settings, the list and the lock, read as `relay validate` reads them. Returns the
    findings, the settings (None when they do not load) and the list (None likewise)."""
    findings: list[Finding] = []
    settings = mirror_list = None
    try:
        settings = load(ctx_repo)
    except InputError as exc:
        findings.append(_problems("mirrors/relay.yaml", exc))
    else:
        stages = configured_stages(settings)
        findings.append(
            Finding(
                "mirrors/relay.yaml",
                "ok",
                f"transport {settings.transport}; stages configured: "
                + (", ".join(stages) if stages else "none beyond lock and generate"),
            )
        )
    if settings is not None:
        try:
            mirror_list = load_list(ctx_repo, settings)
        except InputError as exc:
            findings.append(_problems("mirrors/images.yaml", exc))
        else:
            tags = sum(len(e.tags) for e in mirror_list.entries)
            findings.append(
                Finding(
                    "mirrors/images.yaml",
                    "ok",
                    f"{len(mirror_list.entries)} images, {tags} explicit tags",
                )
            )
        try:
            lock = lockfile.read(ctx_repo)
        except InputError as exc:
            findings.append(_problems("mirrors/images.lock", exc))
        else:
            locked = sum(len(t) for t in lock.images.values())
            findings.append(Finding("mirrors/images.lock", "ok", f"{locked} locked tags"))
    return findings, settings, mirror_list


def _problems(subject: str, exc: InputError) -> Finding:
    first = exc.problems[0]
    more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
    return Finding(
        subject,
        "fail",
        f"{first}{more}",
        fix="run relay validate for every problem with its line",
        needed=True,
    )


def configured_stages(settings: Any) -> list[str]:
    stages = []
    if settings.transport == "build" and settings.acr.namespace:
        stages.append("acr")
    if settings.transport == "copy":
        stages.append("publish (copy transport)")
    if settings.harbor.configured:
        stages.append("harbor")
    return stages


# --- registries --------------------------------------------------------------------------------


def _client(ctx: Context, pool: ClientPool, registry: str) -> RegistryClient:
    return RegistryClient(
        registry,
        credentials=pool.credentials,
        tls=pool.tls,
        retry=NEVER,
        timeout=ctx.http_timeout,
    )


def _ping(
    ctx: Context,
    pool: ClientPool,
    registry: str,
    subject: str,
    *,
    needed: bool,
    fix_unreachable: str,
    quota: bool = False,
) -> Finding:
    started = time.monotonic()
    with _client(ctx, pool, registry) as client:
        try:
            ping = client.ping()
        except RegistryTLSError as exc:
            return Finding(
                subject,
                "fail",
                f"TLS: {_reason(exc)}",
                fix=f"if it has a private CA, add it under registries.ca_bundles for {registry}",
                needed=needed,
            )
        except RegistryConnectionError as exc:
            return Finding(
                subject,
                "fail",
                f"not reachable from this machine ({_reason(exc)})",
                fix=fix_unreachable,
                needed=needed,
            )
        except RegistryError as exc:
            return Finding(subject, "fail", safety.first_line(exc), needed=needed)
        millis = (time.monotonic() - started) * 1000
        how = "plain HTTP" if ping.base_url.startswith("http://") else "HTTPS"
        message = f"reachable ({how}, {millis:.0f} ms)"
        if not quota:
            return Finding(subject, "ok", message)
        try:
            client.head_manifest(RATELIMIT_REPOSITORY, "latest")
        except RegistryError as exc:
            return Finding(
                subject, "warn", f"{message}; pull quota unknown ({safety.first_line(exc)})"
            )
        limit = client.rate_limit
        if limit is None or limit.limit is None or limit.remaining is None:
            return Finding(subject, "ok", f"{message}; no pull quota reported")
        window = f" per {limit.window // 3600}h" if limit.window else ""
        text = f"{message}; pull quota {limit.remaining} of {limit.limit} left{window}"
        if limit.remaining <= max(1, int(limit.limit * QUOTA_LOW)):
            return Finding(
                subject,
                "warn" if limit.remaining > 0 else "fail",
                text,
                fix="log in to Docker Hub (RELAY_REGISTRY_AUTH_DOCKER_IO=user:token) for a "
                "higher quota, or read through registries.mirrors",
                needed=limit.remaining <= 0,
            )
        return Finding(subject, "ok", text)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return safety.one_line(reason) if isinstance(reason, str) and reason else safety.first_line(exc)


def check_upstream(ctx: Context) -> list[Finding]:
    """Every registry the list reads from, and each mirror configured for it."""
    if ctx.mirrors is None or ctx.settings is None:
        return []
    registries = sorted({e.source.domain for e in ctx.mirrors.entries})
    # `select:` lists tags, and a pull-through mirror's list is only what it has cached, so
    # relay lock lists them from the registry itself: a mirror cannot stand in for it there.
    listed = {e.source.domain for e in ctx.mirrors.entries if e.select is not None}
    if not registries:
        return [Finding("upstream", "info", "the list names no image yet")]
    mirrored: Mapping[str, Sequence[str]] = ctx.settings.registries.mirrors
    findings: list[Finding] = []
    with ClientPool(ctx.settings.registries, repo=ctx.repo, environ=ctx.env) as pool:
        jobs: list[tuple[str, str, bool, bool]] = []  # registry, subject, needed, quota
        for registry in registries:
            mirrors = mirrored.get(registry, ())
            # With mirrors the registry itself is the last resort: not needed if one answers,
            # unless an entry on it lists tags (`select:`).
            needed = not mirrors or registry in listed
            jobs.append((registry, registry, needed, registry == DOCKER_HUB))
            for url in mirrors:
                jobs.append((url, f"{registry} mirror {url}", False, False))
        # Each registry on its own: one that never answers is reported as such, and does not
        # hide the others' findings.
        executor = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="doctor-ping")
        futures = [
            executor.submit(
                _ping,
                ctx,
                pool,
                _mirror_base(registry),
                subject,
                needed=needed,
                fix_unreachable=UPSTREAM_FIX,
                quota=quota,
            )
            for registry, subject, needed, quota in jobs
        ]
        wait(futures, timeout=ctx.timeout)
        executor.shutdown(wait=False, cancel_futures=True)
        found = [
            f.result()
            if f.done()
            else Finding(
                subject,
                "fail",
                f"not reachable from this machine (no answer within {ctx.timeout:g}s)",
                fix=UPSTREAM_FIX,
                needed=needed,
            )
            for f, (_, subject, needed, _) in zip(futures, jobs, strict=True)
        ]
    by_subject = dict(zip((job[1] for job in jobs), found, strict=True))
    for registry in registries:
        mirrors = mirrored.get(registry, ())
        answers = [by_subject[registry]] + [by_subject[f"{registry} mirror {u}"] for u in mirrors]
        findings.extend(answers)
        if mirrors and not any(f.level in ("ok", "warn") for f in answers):
            findings.append(
                Finding(
                    registry,
                    "fail",
                    "neither the registry nor any of its mirrors answers",
                    fix=UPSTREAM_FIX,
                    needed=True,
                )
            )
    return findings


def _mirror_base(url: str) -> str:
    """A mirror URL's registry: scheme and host (a prefix-style mirror's path is not pinged)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def check_copy_target(ctx: Context) -> list[Finding]:
    """`transport: copy`: the target registry answers, and its login is set."""
    cfg = ctx.settings
    if cfg is None or cfg.transport != "copy":
        return []
    registry = ctx.env.get("RELAY_COPY_REGISTRY") or cfg.copy.registry
    namespace = ctx.env.get("RELAY_COPY_NAMESPACE") or cfg.copy.namespace
    if not registry or not namespace:
        return [
            Finding(
                "copy target",
                "fail",
                "transport: copy needs copy.registry and copy.namespace",
                fix="set both in mirrors/relay.yaml (or RELAY_COPY_REGISTRY / "
                "RELAY_COPY_NAMESPACE)",
                needed=True,
            )
        ]
    findings = []
    with ClientPool(cfg.registries, repo=ctx.repo, environ=ctx.env) as pool:
        findings.append(
            _ping(
                ctx,
                pool,
                registry,
                f"copy target {registry}",
                needed=True,
                fix_unreachable="relay publish runs where the target registry is reachable",
            )
        )
    if not (ctx.env.get("RELAY_COPY_USERNAME") and ctx.env.get("RELAY_COPY_PASSWORD")):
        provider: CredentialProvider = pool.credentials
        if provider.get(registry) is None:
            findings.append(
                Finding(
                    "copy target login",
                    "warn",
                    f"no login for {registry} in the environment or docker's config",
                    fix="set RELAY_COPY_USERNAME and RELAY_COPY_PASSWORD (the workflow's "
                    "relay-delivery secrets)",
                )
            )
    return findings


# --- ACR -----------------------------------------------------------------------------------------


def check_acr(ctx: Context) -> list[Finding]:
    cfg = ctx.settings
    if cfg is None or cfg.transport != "build" or not cfg.acr.namespace:
        return []
    from relay.config.settings import RetrySettings
    from relay.stages.acr.connect import connect
    from relay.stages.acr.errors import AcrError
    from relay.stages.acr.settings import credentials

    acr = cfg.acr
    try:
        creds = credentials(ctx.env)
    except InputError as exc:
        return [
            Finding(
                "ACR AccessKey",
                "fail",
                "not set",
                fix=str(exc).removeprefix("relay: ").replace("no Alibaba Cloud AccessKey: ", ""),
                needed=True,
            )
        ]
    once = replace(acr, retry=RetrySettings(attempts=1, backoff=0.0, max_backoff=0.0))
    client = connect(once, creds, env=ctx.env)
    endpoint = acr.api_endpoint(ctx.env)
    try:
        namespaces = client.list_namespaces()
    except AcrError as exc:
        code = exc.code
        fix = "check ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET (a pair of one RAM user)"
        if exc.transport:
            fix = f"this machine cannot reach {endpoint}; check the network or HTTPS_PROXY"
        elif "Forbidden" in code or "NoPermission" in code:
            fix = "give the RAM user the ACR permissions the stage needs"
        return [
            Finding("ACR AccessKey", "fail", f"{endpoint} refused it: {code}", fix, needed=True)
        ]
    findings = [
        Finding(
            "ACR AccessKey",
            "ok",
            f"accepted by {endpoint}{' (an STS token)' if creds.temporary else ''}",
        )
    ]
    quotas = acr.quotas
    if acr.namespace in namespaces:
        existing = {r.name for r in client.list_repos(acr.namespace)}
        wanted = {e.target for e in ctx.mirrors.entries} if ctx.mirrors else set()
        new = wanted - existing
        total = len(existing) + len(new)
        text = (
            f"namespace {acr.namespace}: {len(existing)} repositories, {len(new)} more to "
            f"create; quota {quotas.repos} (acr.quotas.repos)"
        )
        if total > quotas.repos:
            findings.append(
                Finding(
                    "ACR quota",
                    "fail",
                    text,
                    fix="remove entries, relay acr apply --prune, or raise acr.quotas.repos if "
                    "your account allows more",
                    needed=True,
                )
            )
        else:
            findings.append(Finding("ACR quota", "ok", text))
    elif len(namespaces) + 1 > quotas.namespaces:
        findings.append(
            Finding(
                "ACR quota",
                "fail",
                f"namespace {acr.namespace} does not exist and the account has "
                f"{len(namespaces)} of {quotas.namespaces} namespaces (acr.quotas.namespaces)",
                fix=f"use one of {', '.join(sorted(namespaces))} as acr.namespace, or delete one",
                needed=True,
            )
        )
    else:
        findings.append(
            Finding(
                "ACR quota",
                "ok",
                f"namespace {acr.namespace} does not exist yet (relay acr apply creates it); "
                f"{len(namespaces)} of {quotas.namespaces} namespaces used",
            )
        )
    return findings


# --- Harbor -------------------------------------------------------------------------------------


def check_harbor(ctx: Context) -> list[Finding]:
    cfg = ctx.settings
    if cfg is None or not cfg.harbor.configured or not cfg.harbor.url:
        return []
    from relay.stages.harbor.api import HarborClient, HarborError
    from relay.stages.harbor.settings import acr_access_key, login

    harbor = cfg.harbor
    url = harbor.url.rstrip("/")
    ca = str(ctx.repo / harbor.ca_bundle) if harbor.ca_bundle else None
    netloc = urlsplit(url).netloc
    # Verified strictly, loopback included: relay goes on without verification for a loopback
    # or registries.insecure host (warning on every run), so there it is a warning only.
    lenient = TLSConfig(insecure_registries=tuple(cfg.registries.insecure)).is_insecure(netloc)
    bundles = {netloc: ca} if ca else {}
    findings: list[Finding] = []
    for strict in (True, False):
        tls = TLSConfig(ca_bundles=bundles, insecure_loopback=not strict)
        transport = Transport(tls=tls, retry=NEVER, timeout=ctx.http_timeout, cookies=False)
        try:
            response = transport.request(
                "GET", f"{url}/api/v2.0/ping", what="Harbor: ping", kind="read"
            )
            response.close()
        except TLSFailed as exc:
            findings.append(
                Finding(
                    f"Harbor {url}",
                    "warn" if lenient else "fail",
                    f"TLS: {_reason(exc)}"
                    + (
                        "; relay goes on without verifying it (an insecure host)" if lenient else ""
                    ),
                    fix="a self-signed or private CA? put its certificate (PEM) in the "
                    "repository and set harbor.ca_bundle to it",
                    needed=not lenient,
                )
            )
            if strict and lenient:
                continue  # see whether the rest works as relay would run it
            return findings
        except TransportError as exc:
            findings.append(
                Finding(
                    f"Harbor {url}",
                    "fail",
                    f"not reachable from this machine ({_reason(exc)})",
                    fix="run the Harbor stage where Harbor is reachable (a self-hosted runner "
                    "inside the company network)",
                    needed=True,
                )
            )
            return findings
        finally:
            transport.session.close()
        break
    if response.status_code != 200:
        findings.append(
            Finding(
                f"Harbor {url}",
                "fail",
                f"answers HTTP {response.status_code} at /api/v2.0/ping: not a Harbor API",
                fix="harbor.url is Harbor's address, without /api",
                needed=True,
            )
        )
        return findings
    if not findings:
        tls_text = "HTTPS" + (f" (CA {harbor.ca_bundle})" if harbor.ca_bundle else "")
        findings.append(
            Finding(f"Harbor {url}", "ok", tls_text if url.startswith("https") else "plain HTTP")
        )
    try:
        key = acr_access_key(ctx.env)
        del key
    except InputError as exc:
        findings.append(Finding("Harbor's ACR key", "fail", "not set", fix=str(exc), needed=True))
    try:
        who = login(ctx.env)
    except InputError as exc:
        findings.append(Finding("Harbor login", "fail", "not set", fix=str(exc), needed=True))
        return findings
    client = HarborClient(url, who, ca_bundle=ca, retry=NEVER)
    try:
        info = client.systeminfo()
        version = info.get("harbor_version")
        if not version:
            findings.append(
                Finding(
                    "Harbor login",
                    "fail",
                    f"Harbor did not accept {who.username}",
                    fix="check HARBOR_USERNAME / HARBOR_PASSWORD (a robot's name includes its "
                    "prefix, e.g. robot$relay)",
                    needed=True,
                )
            )
            return findings
        findings.append(Finding("Harbor login", "ok", f"{who.username} on Harbor {version}"))
        findings.append(_harbor_permissions(client, who.username))
    except HarborError as exc:
        findings.append(Finding("Harbor login", "fail", safety.first_line(exc), needed=True))
    finally:
        client.close()
    return findings


def _harbor_permissions(client: Any, username: str) -> Finding:
    from relay.stages.harbor.api import HarborError

    subject = f"Harbor permissions of {username}"
    if not username.startswith("robot$"):
        try:
            me = client.get("/users/current", "read the current user")
        except HarborError as exc:
            return Finding(subject, "warn", f"cannot read the user: {safety.first_line(exc)}")
        if isinstance(me, dict) and me.get("sysadmin_flag"):
            return Finding(subject, "ok", "a system administrator")
        return Finding(
            subject,
            "fail",
            "not a system administrator",
            fix="use an admin user, or a system robot account with the permissions the README "
            "lists (Harbor 2.10 or later)",
            needed=True,
        )
    try:
        granted = client.get(
            "/users/current/permissions",
            "read the robot's permissions",
            {"scope": "/system", "relative": "true"},
        )
    except HarborError as exc:
        return Finding(subject, "warn", f"cannot read them: {safety.first_line(exc)}")
    have = {
        (str(p.get("resource")), str(p.get("action"))) for p in granted or [] if isinstance(p, dict)
    }
    missing = [
        f"{r} {a}" for r, actions in HARBOR_NEEDS.items() for a in actions if (r, a) not in have
    ]
    for_prune = [
        f"{r} {a}"
        for r, actions in HARBOR_PRUNE_NEEDS.items()
        for a in actions
        if (r, a) not in have
    ]
    if missing:
        return Finding(
            subject,
            "fail",
            f"missing system permissions: {', '.join(missing)}",
            fix="edit the robot account (Administration → Robot Accounts) and grant them",
            needed=True,
        )
    if for_prune:
        return Finding(
            subject,
            "info",
            f"everything apply and replicate need; not {', '.join(for_prune)} (only --prune "
            "needs those)",
        )
    return Finding(subject, "ok", "every system permission the stage uses")


# --- GitHub and proxies -------------------------------------------------------------------------


def check_github(ctx: Context) -> list[Finding]:
    token = ctx.env.get("GITHUB_TOKEN")
    if not token:
        return []
    api = (ctx.env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    repository = ctx.env.get("GITHUB_REPOSITORY") or (
        ctx.settings.github.repository if ctx.settings is not None else None
    )
    path = f"/repos/{repository}" if repository else "/rate_limit"
    transport = Transport(retry=NEVER, timeout=ctx.http_timeout, cookies=False)
    try:
        response = transport.request(
            "GET",
            f"{api}{path}",
            what="GitHub: check the token",
            kind="read",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
        )
        response.close()
    except TransportError as exc:
        return [
            Finding("GITHUB_TOKEN", "fail", f"{api} not reachable ({_reason(exc)})", needed=True)
        ]
    finally:
        transport.session.close()
    if response.status_code == 401:
        return [
            Finding(
                "GITHUB_TOKEN",
                "fail",
                "GitHub refused it (401 Bad credentials)",
                fix="the token has expired or is not a token: make a new one",
                needed=True,
            )
        ]
    if response.status_code == 404 and repository:
        return [
            Finding(
                "GITHUB_TOKEN",
                "fail",
                f"cannot see {repository}",
                fix="give the token access to the repository",
                needed=True,
            )
        ]
    scopes_header = response.headers.get("X-OAuth-Scopes")
    if scopes_header is None:
        return [
            Finding(
                "GITHUB_TOKEN",
                "ok",
                "accepted; a fine-grained, app or Actions token (GitHub lists no scopes): relay "
                "plan --comment needs pull-requests write, relay github propose contents write",
            )
        ]
    scopes = sorted(s.strip() for s in scopes_header.split(",") if s.strip())
    if "repo" in scopes or "public_repo" in scopes:
        return [Finding("GITHUB_TOKEN", "ok", f"accepted; scopes {', '.join(scopes)}")]
    return [
        Finding(
            "GITHUB_TOKEN",
            "warn",
            f"accepted, but its scopes ({', '.join(scopes) or 'none'}) do not include repo",
            fix="relay plan --comment and relay github propose need the repo scope "
            "(public_repo for a public repository)",
        )
    ]


def check_proxies(ctx: Context) -> list[Finding]:
    """The proxy variables relay honours, with any password in them hidden."""
    shown = []
    for name in PROXY_VARIABLES:
        value = ctx.env.get(name) or ctx.env.get(name.lower())
        if value:
            shown.append(f"{name}={_hide_password(value)}")
    if not shown:
        return [Finding("proxies", "info", "none set (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY)")]
    findings = [Finding("proxies", "info", "; ".join(shown))]
    cfg = ctx.settings
    if cfg is not None and cfg.acr.namespace:
        # The ACR client applies NO_PROXY and ALL_PROXY like every other client
        # (relay.net.proxies): say where its calls go.
        endpoint = cfg.acr.api_endpoint(ctx.env)
        via = proxy_for(endpoint, ctx.env, loopback_direct=True)
        host = urlsplit(endpoint).hostname or endpoint
        route = f"through {_hide_password(via)}" if via else "direct (NO_PROXY or no proxy)"
        findings.append(Finding("proxies", "info", f"ACR API calls to {host} go {route}"))
    return findings


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


CHECKS: tuple[Check, ...] = (
    check_upstream,
    check_copy_target,
    check_acr,
    check_harbor,
    check_github,
    check_proxies,
)


def doctor(
    repo: Path,
    env: Mapping[str, str],
    *,
    timeout: float,
    load_settings: Callable[[Path], Any],
    load_list: Callable[[Path, Any], Any],
    checks: Sequence[Check] = CHECKS,
) -> Report:
    """The files first (offline), then every other check at once."""
    started = time.monotonic()
    found, settings, mirror_list = files(repo, load_settings, load_list)
    ctx = Context(repo, env, timeout, settings, mirror_list)
    report = run(ctx, checks)
    report.findings[:0] = found
    report.seconds = time.monotonic() - started
    return report


__all__ = ["CHECKS", "Finding", "Report", "doctor"]
