"""The `acr:` section of mirrors/relay.yaml, and the ACR credentials from the environment.

Every limit ACR does not document (acr-api.md §3, §7) is a setting with the safest reading as its
default, so a user who learns the real number can change it without a release.

Credentials never live in the file: they come from ALIBABA_CLOUD_ACCESS_KEY_ID /
ALIBABA_CLOUD_ACCESS_KEY_SECRET (or the older ALIYUN_* pair) and are never printed or logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from relay.config import yamlnodes
from relay.errors import InputError, Problem

EDITIONS = ("personal", "enterprise")
REPO_TYPES = ("PRIVATE", "PUBLIC")
ENDPOINT_ENV = "RELAY_ACR_ENDPOINT"
KEY_ENV_PAIRS = (
    ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
    ("ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET"),
)

# acr-api.md §3: 2–30 characters, lower case, digits, '-' and '_', not starting with '-' or '_'.
NAMESPACE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{1,29}")
REGION_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
INSTANCE_RE = re.compile(r"cri-[a-z0-9]{1,64}")
# GitHub: owner is letters, digits and '-'; a repository name may also hold '.' and '_'.
GITHUB_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
# A branch name safe to send and to show: git's rules, minus anything shell- or URL-special.
BRANCH_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}")
HOST_RE = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::[0-9]{1,5})?"
)
ENDPOINT_RE = re.compile(rf"(?:https?://)?{HOST_RE.pattern}/?")


@dataclass(frozen=True)
class SourceSettings:
    """The GitHub repository ACR builds from: this repository, as GitHub knows it."""

    github: str | None = None  # "owner/repo"
    branch: str = "main"

    @property
    def owner(self) -> str:
        return (self.github or "/").split("/", 1)[0]

    @property
    def name(self) -> str:
        return (self.github or "/").split("/", 1)[1]


@dataclass(frozen=True)
class QuotaSettings:
    # prior-art.md Part 3: "3 namespaces, 300 repos" for Personal Edition (a user report).
    namespaces: int = 3
    repos: int = 300


@dataclass(frozen=True)
class PollSettings:
    interval: float = 10.0  # first wait between build-status reads, seconds
    max_interval: float = 60.0  # the wait grows by half each round up to this
    timeout: float = 3600.0  # overall deadline of an apply that waits, seconds


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = 5  # tries per API call, the first included
    backoff: float = 1.0  # first delay, seconds; doubles each retry, with jitter
    max_backoff: float = 30.0


@dataclass(frozen=True)
class AcrSettings:
    edition: str = "personal"
    region: str = "cn-hangzhou"
    namespace: str | None = None
    instance_id: str | None = None  # enterprise only: cri-…
    endpoint: str | None = None  # API endpoint override; RELAY_ACR_ENDPOINT wins over it
    registry_domain: str | None = None  # default registry.<region>.aliyuncs.com
    repo_type: str = "PRIVATE"
    overseas_build: bool = True  # UNCONFIRMED that Personal Edition still offers it (§7)
    source: SourceSettings = field(default_factory=SourceSettings)
    # UNCONFIRMED (§3): the only evidence is one project hard-coding 5.
    rules_per_repo: int = 5
    # UNCONFIRMED (§7): no published number; two at a time is gentle on a shared builder pool.
    max_concurrent_builds: int = 2
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    poll: PollSettings = field(default_factory=PollSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    workers: int = 8  # parallel reads while observing many repositories

    @property
    def registry(self) -> str:
        return self.registry_domain or f"registry.{self.region}.aliyuncs.com"

    def api_endpoint(self, env: Mapping[str, str]) -> str:
        """Where API calls go, always with a scheme: the SDK's own default is plain HTTP, so a
        bare host means HTTPS, except a loopback one (an emulator), which means HTTP."""
        chosen = env.get(ENDPOINT_ENV) or self.endpoint or f"cr.{self.region}.aliyuncs.com"
        chosen = chosen.rstrip("/")
        if not chosen.startswith(("http://", "https://")):
            host = chosen.rsplit(":", 1)[0] if chosen.count(":") == 1 else chosen
            loopback = host in ("localhost", "[::1]") or host.startswith("127.")
            chosen = ("http://" if loopback else "https://") + chosen
        return chosen

    def require(self, path: str = "mirrors/relay.yaml") -> None:
        """What `relay acr plan/apply` cannot do without, checked when they run (validate and
        generate must keep working for lists that never touch ACR)."""
        missing = []
        if not self.namespace:
            missing.append("acr.namespace")
        if not self.source.github:
            missing.append("acr.source.github")
        if self.edition == "enterprise" and not self.instance_id:
            missing.append("acr.instance_id (enterprise edition)")
        if missing:
            raise InputError(
                Problem(path, None, f"the ACR stage needs {', '.join(missing)} in this file")
            )


@dataclass(frozen=True)
class Credentials:
    access_key_id: str = field(repr=False)
    access_key_secret: str = field(repr=False)

    def __repr__(self) -> str:  # never show either part, not even in a traceback
        return "Credentials(<hidden>)"


def credentials(env: Mapping[str, str]) -> Credentials:
    """The AccessKey pair from the environment; an InputError naming the variables if absent."""
    for id_var, secret_var in KEY_ENV_PAIRS:
        key_id, secret = env.get(id_var), env.get(secret_var)
        if key_id and secret:
            return Credentials(key_id, secret)
    names = " and ".join(KEY_ENV_PAIRS[0])
    fallback = " and ".join(KEY_ENV_PAIRS[1])
    raise InputError(f"no Alibaba Cloud AccessKey: set {names} (or {fallback})")


# --- parsing ------------------------------------------------------------------------------------

_TOP_KEYS = {
    "edition",
    "region",
    "namespace",
    "instance_id",
    "endpoint",
    "registry_domain",
    "repo_type",
    "overseas_build",
    "source",
    "rules_per_repo",
    "max_concurrent_builds",
    "quotas",
    "poll",
    "retry",
    "workers",
}


def parse(doc: yamlnodes.Doc, node: yaml.Node, problems: list[Problem]) -> AcrSettings:
    """The `acr:` mapping. Problems are appended (with line numbers), never raised, so the
    caller reports the whole settings file at once; what is wrong keeps its default."""
    items = yamlnodes.mapping_items(doc, node, "acr", _TOP_KEYS, problems)
    values: dict[str, object] = {}

    def text(key: str, pattern: re.Pattern[str] | None, hint: str) -> None:
        if key not in items:
            return
        value_node = items[key][1]
        value = yamlnodes.string(doc, value_node, f"acr.{key}", problems)
        if value is None:
            return
        if pattern is not None and not pattern.fullmatch(value):
            problems.append(doc.problem(value_node, f"acr.{key} {hint}"))
            return
        values[key] = value

    def choice(key: str, allowed: tuple[str, ...], fold: bool = False) -> None:
        if key not in items:
            return
        value_node = items[key][1]
        value = yamlnodes.string(doc, value_node, f"acr.{key}", problems)
        if value is None:
            return
        value = value.upper() if fold else value
        if value not in allowed:
            problems.append(
                doc.problem(value_node, f"acr.{key} must be one of {', '.join(allowed)}")
            )
            return
        values[key] = value

    choice("edition", EDITIONS)
    text("region", REGION_RE, "must be a region id such as cn-hangzhou")
    text("namespace", NAMESPACE_RE, "must be 2-30 of a-z, 0-9, '-' and '_', starting a-z or 0-9")
    text("instance_id", INSTANCE_RE, "must be an Enterprise instance id such as cri-abc123")
    text("endpoint", ENDPOINT_RE, "must be host[:port], optionally with http:// or https://")
    text("registry_domain", HOST_RE, "must be host[:port]")
    choice("repo_type", REPO_TYPES, fold=True)
    if "overseas_build" in items:
        flag = yamlnodes.boolean(doc, items["overseas_build"][1], "acr.overseas_build", problems)
        if flag is not None:
            values["overseas_build"] = flag
    if "source" in items:
        values["source"] = _source(doc, items["source"][1], problems)
    for key, low, high in (
        ("rules_per_repo", 1, 100),
        ("max_concurrent_builds", 1, 100),
        ("workers", 1, 64),
    ):
        if key in items:
            n = yamlnodes.integer_in(doc, items[key][1], f"acr.{key}", low, high, problems)
            if n is not None:
                values[key] = n
    if "quotas" in items:
        sub = yamlnodes.mapping_items(
            doc, items["quotas"][1], "acr.quotas", {"namespaces", "repos"}, problems
        )
        quota: dict[str, int] = {}
        for key in sub:
            n = yamlnodes.integer_in(doc, sub[key][1], f"acr.quotas.{key}", 1, 1_000_000, problems)
            if n is not None:
                quota[key] = n
        values["quotas"] = QuotaSettings(**quota)
    if "poll" in items:
        sub = yamlnodes.mapping_items(
            doc, items["poll"][1], "acr.poll", {"interval", "max_interval", "timeout"}, problems
        )
        poll: dict[str, float] = {}
        for key in sub:
            x = yamlnodes.number_in(doc, sub[key][1], f"acr.poll.{key}", 0.01, 86_400 * 7, problems)
            if x is not None:
                poll[key] = x
        values["poll"] = PollSettings(**poll)
    if "retry" in items:
        sub = yamlnodes.mapping_items(
            doc, items["retry"][1], "acr.retry", {"attempts", "backoff", "max_backoff"}, problems
        )
        retry: dict[str, float] = {}
        if "attempts" in sub:
            n = yamlnodes.integer_in(doc, sub["attempts"][1], "acr.retry.attempts", 1, 20, problems)
            if n is not None:
                retry["attempts"] = n
        for key in ("backoff", "max_backoff"):
            if key in sub:
                x = yamlnodes.number_in(doc, sub[key][1], f"acr.retry.{key}", 0.0, 600, problems)
                if x is not None:
                    retry[key] = x
        values["retry"] = RetrySettings(**retry)  # type: ignore[arg-type]

    result = AcrSettings(**values)  # type: ignore[arg-type]
    if result.edition == "enterprise" and "instance_id" not in items:
        problems.append(doc.problem(node, "acr.instance_id is required for the enterprise edition"))
    if result.edition == "personal" and "instance_id" in items:
        problems.append(
            doc.problem(items["instance_id"][0], "acr.instance_id only applies to enterprise")
        )
    return result


def _source(doc: yamlnodes.Doc, node: yaml.Node, problems: list[Problem]) -> SourceSettings:
    items = yamlnodes.mapping_items(doc, node, "acr.source", {"github", "branch"}, problems)
    values: dict[str, str] = {}
    for key, pattern, hint in (
        ("github", GITHUB_RE, "must be owner/repo as on github.com"),
        ("branch", BRANCH_RE, "must be a branch name"),
    ):
        if key not in items:
            continue
        value_node = items[key][1]
        value = yamlnodes.string(doc, value_node, f"acr.source.{key}", problems)
        if value is None:
            continue
        if not pattern.fullmatch(value) or ".." in value:
            problems.append(doc.problem(value_node, f"acr.source.{key} {hint}"))
            continue
        values[key] = value
    return SourceSettings(**values)
