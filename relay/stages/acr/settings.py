"""The `acr:` section of mirrors/relay.yaml, and the ACR credentials from the environment.

Every limit ACR does not document (docs/vendors/acr.md#limits-and-quotas) is a setting with the
safest reading as its default, so a user who learns the real number can change it without a release.

Credentials never live in the file: they come from ALIBABA_CLOUD_ACCESS_KEY_ID /
ALIBABA_CLOUD_ACCESS_KEY_SECRET (or the older ALIYUN_* pair) and are never printed or logged.
With ALIBABA_CLOUD_SECURITY_TOKEN as well, the three are an STS token (a temporary AccessKey and
its token, as AssumeRole / AssumeRoleWithOIDC return them, and as
aliyun/configure-aliyun-credentials-action exports them after GitHub's OIDC exchange); relay
then signs with the token (the SDK's StsTokenCredential).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import yaml

from relay.config import naming, schema, yamlnodes
from relay.config.settings import RETRY, RetrySettings
from relay.errors import InputError, Problem
from relay.stages.acr.regions import REGIONS

Edition = Literal["personal", "enterprise"]
EDITIONS: tuple[Edition, ...] = ("personal", "enterprise")
REPO_TYPES = ("PRIVATE", "PUBLIC")
ENDPOINT_ENV = "RELAY_ACR_ENDPOINT"
KEY_ENV_PAIRS = (
    ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
    ("ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET"),
)
# The STS token that goes with a temporary AccessKey: the variable Alibaba's SDKs and CLI read
# (https://www.alibabacloud.com/help/en/sdk/developer-reference/credentials), one per pair above.
TOKEN_ENV = ("ALIBABA_CLOUD_SECURITY_TOKEN", "ALIYUN_SECURITY_TOKEN")

# Keys people write for the AccessKey: it comes from the environment, never from the file.
SECRET_HINT = (
    "secrets never go in mirrors/relay.yaml; relay reads the AccessKey from "
    f"{' and '.join(KEY_ENV_PAIRS[0])} (plus {TOKEN_ENV[0]} for an STS token)"
)
SECRET_HINTS = {
    key: SECRET_HINT
    for key in (
        "access_key_id",
        "access_key_secret",
        "access_key",
        "accesskey",
        "accesskeyid",
        "accesskeysecret",
        "secret",
        "security_token",
        "password",
        "token",
    )
}

# The namespace rule is naming's (docs/vendors/acr.md#name-rules): 2-30, no '.'.
NAMESPACE_RE = naming.NAMESPACE_RE
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
# Where mirrors/relay.yaml may send the AccessKey's signatures and the STS token: Alibaba
# Cloud's own API domain over HTTPS (docs/vendors/acr.md#endpoints-and-the-python-sdk), or a
# loopback emulator. A file edit merged in a pull request must not be able to point them
# anywhere else, or over plain HTTP; other endpoints come only from RELAY_ACR_ENDPOINT.
ALIBABA_API_SUFFIX = ".aliyuncs.com"


def _is_loopback_host(host: str) -> bool:
    return host in ("localhost", "[::1]", "::1") or host.startswith("127.")


def endpoint_problem(value: str) -> str | None:
    """Why `value` may not be acr.endpoint in the file; None when it may."""
    scheme, _, rest = value.rpartition("://")
    host = rest.rstrip("/")
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if _is_loopback_host(host):
        return None
    if host.lower().endswith(ALIBABA_API_SUFFIX) and scheme in ("", "https"):
        return None
    return (
        f"must be an https://…{ALIBABA_API_SUFFIX} host (or a loopback emulator); the "
        f"AccessKey's signatures and STS token go there. Set {ENDPOINT_ENV} in the environment "
        "for any other endpoint"
    )


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
    # "3 namespaces, 300 images" for Personal Edition, a user report
    # (tech-shrimp/docker_image_pusher issue 86; docs/vendors/acr.md#quotas-and-concurrency).
    namespaces: int = 3
    repos: int = 300


@dataclass(frozen=True)
class PollSettings:
    interval: float = 10.0  # first wait between build-status reads, seconds
    max_interval: float = 60.0  # the wait grows by half each round up to this
    timeout: float = 3600.0  # overall deadline of an apply that waits, seconds


@dataclass(frozen=True)
class AcrSettings:
    edition: Edition = "personal"
    region: str = "cn-hangzhou"
    namespace: str | None = None
    instance_id: str | None = None  # enterprise only: cri-…
    # API endpoint override: in the file only https://*.aliyuncs.com or loopback
    # (endpoint_problem); RELAY_ACR_ENDPOINT, from the environment, wins over it and may be any.
    endpoint: str | None = None
    registry_domain: str | None = None  # default registry.<region>.aliyuncs.com
    repo_type: str = "PRIVATE"
    overseas_build: bool = True  # UNCONFIRMED that Personal Edition still offers it
    # (docs/vendors/acr.md#github-source-binding-and-overseas-build)
    source: SourceSettings = field(default_factory=SourceSettings)
    # UNCONFIRMED (docs/vendors/acr.md#quotas-and-concurrency): one project hard-codes 5.
    rules_per_repo: int = 5
    # UNCONFIRMED (docs/vendors/acr.md#quotas-and-concurrency): no published number; two at a
    # time is gentle on a shared builder pool.
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
            chosen = ("http://" if _is_loopback_host(host) else "https://") + chosen
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
    # Set for a temporary (STS) AccessKey, which is useless without it.
    security_token: str | None = field(default=None, repr=False)

    @property
    def temporary(self) -> bool:
        return bool(self.security_token)

    def __repr__(self) -> str:  # never show any part, not even in a traceback
        return f"Credentials(<hidden>{', sts' if self.temporary else ''})"


def credentials(env: Mapping[str, str]) -> Credentials:
    """The AccessKey pair (and its STS token, if any) from the environment; an InputError naming
    the variables if absent."""
    for (id_var, secret_var), token_var in zip(KEY_ENV_PAIRS, TOKEN_ENV, strict=True):
        key_id, secret = env.get(id_var), env.get(secret_var)
        if key_id and secret:
            return Credentials(key_id, secret, env.get(token_var) or None)
    names = " and ".join(KEY_ENV_PAIRS[0])
    fallback = " and ".join(KEY_ENV_PAIRS[1])
    raise InputError(
        f"no Alibaba Cloud AccessKey: set {names}, plus {TOKEN_ENV[0]} for an STS token "
        f"(or {fallback})"
    )


# --- the `acr:` section ---------------------------------------------------------------------


def _text_without_dot_dot(pattern: re.Pattern[str], hint: str) -> schema.Reader:
    """A string matching ``pattern`` that holds no ``..`` (a path or a name, never a climb)."""
    return schema.where(schema.text(pattern, hint), lambda v: hint if ".." in v else None)


def _check(
    result: AcrSettings,
    doc: yamlnodes.Doc,
    node: yaml.Node,
    items: dict[str, tuple[yaml.Node, yaml.Node]],
    problems: list[Problem],
) -> None:
    # A region Harbor's adapter does not list is refused with the nearest one, unless acr.endpoint
    # names the API explicitly (a region opened after the list was written).
    if "region" in items and result.region not in REGIONS and "endpoint" not in items:
        close = difflib.get_close_matches(result.region, REGIONS, n=1, cutoff=0.6)
        problems.append(
            doc.problem(
                items["region"][1],
                f"acr.region '{result.region}' is not an ACR region"
                + (f"; did you mean '{close[0]}'?" if close else f" ({', '.join(REGIONS)})")
                + " (for a region newer than this list, set acr.endpoint: "
                f"cr.{result.region}.aliyuncs.com as well)",
            )
        )
    if result.edition == "enterprise" and "instance_id" not in items:
        problems.append(doc.problem(node, "acr.instance_id is required for the enterprise edition"))
    if result.edition == "personal" and "instance_id" in items:
        problems.append(
            doc.problem(items["instance_id"][0], "acr.instance_id only applies to enterprise")
        )


SECTION = schema.Section(
    AcrSettings,
    [
        schema.Key("edition", schema.choice(*EDITIONS)),
        schema.Key("region", schema.text(REGION_RE, "must be a region id such as cn-hangzhou")),
        schema.Key(
            "namespace",
            schema.text(NAMESPACE_RE, naming.NAMESPACE_RULE),
        ),
        schema.Key(
            "instance_id",
            schema.text(INSTANCE_RE, "must be an Enterprise instance id such as cri-abc123"),
        ),
        schema.Key(
            "endpoint",
            schema.where(
                schema.text(
                    ENDPOINT_RE, "must be host[:port], optionally with http:// or https://"
                ),
                endpoint_problem,
            ),
        ),
        schema.Key("registry_domain", schema.text(HOST_RE, "must be host[:port]")),
        schema.Key("repo_type", schema.choice(*REPO_TYPES, fold_upper=True)),
        schema.Key("overseas_build", schema.boolean()),
        schema.Key(
            "source",
            schema.Section(
                SourceSettings,
                [
                    schema.Key(
                        "github",
                        _text_without_dot_dot(GITHUB_RE, "must be owner/repo as on github.com"),
                    ),
                    schema.Key("branch", _text_without_dot_dot(BRANCH_RE, "must be a branch name")),
                ],
            ),
        ),
        schema.Key("rules_per_repo", schema.integer(1, 100)),
        schema.Key("max_concurrent_builds", schema.integer(1, 100)),
        schema.Key("workers", schema.integer(1, 64)),
        schema.Key(
            "quotas",
            schema.Section(
                QuotaSettings,
                [
                    schema.Key("namespaces", schema.integer(1, 1_000_000)),
                    schema.Key("repos", schema.integer(1, 1_000_000)),
                ],
            ),
        ),
        schema.Key(
            "poll",
            schema.Section(
                PollSettings,
                [
                    schema.Key(key, schema.number(0.01, 86_400 * 7))
                    for key in ("interval", "max_interval", "timeout")
                ],
            ),
        ),
        schema.Key("retry", RETRY),
    ],
    check=_check,
    hints=SECRET_HINTS,
)
"""The `acr:` section, declared once; relay.commands.common hands it to the settings reader."""


def parse(doc: yamlnodes.Doc, node: yaml.Node, problems: list[Problem]) -> AcrSettings:
    """The `acr:` mapping. Problems are appended (with line numbers), never raised, so the
    caller reports the whole settings file at once; what is wrong keeps its default."""
    return SECTION.read(doc, node, "acr", problems)
