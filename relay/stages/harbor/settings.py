"""The `harbor:` section of mirrors/relay.yaml, and Harbor's credentials from the environment.

Credentials never live in the file: HARBOR_USERNAME / HARBOR_PASSWORD (an admin, or a system
robot account `robot$…`), and the AccessKey Harbor stores for its ali-acr endpoint from
RELAY_HARBOR_ACR_ACCESS_KEY_ID / _SECRET, falling back to ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from relay.config import schema, yamlnodes
from relay.config.settings import RETRY, RetrySettings
from relay.errors import InputError, Problem

USER_ENV = "HARBOR_USERNAME"
PASSWORD_ENV = "HARBOR_PASSWORD"
ACR_KEY_ENV_PAIRS = (
    ("RELAY_HARBOR_ACR_ACCESS_KEY_ID", "RELAY_HARBOR_ACR_ACCESS_KEY_SECRET"),
    ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
)
SETTINGS_PATH = "mirrors/relay.yaml"

# Harbor's project names: `[a-z0-9]+(?:[._-][a-z0-9]+)*`, 1-255 characters
# (src/pkg/project/manager.go; docs/vendors/harbor.md#projects).
PROJECT_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
# Registry endpoint and policy names: Harbor wants non-empty and at most 64 characters
# (src/controller/registry/controller.go validate); relay keeps them to printable words.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_URL_RE = re.compile(r"https?://[^\s/?#]+(?:/[^\s?#]*)?")


@dataclass(frozen=True)
class PollSettings:
    interval: float = 2.0  # first wait between execution reads, seconds
    max_interval: float = 15.0  # the wait grows by half each round up to this
    timeout: float = 3600.0  # overall deadline of `replicate --wait`, seconds
    # Harbor refreshes an execution's status asynchronously (every 30 s by default since
    # v2.8) and shows a retried task as Failed for a while: a Failed status is re-read after
    # this long before it is reported (docs/vendors/harbor.md#executions-tasks-and-logs).
    settle: float = 30.0


@dataclass(frozen=True)
class HarborSettings:
    url: str | None = None  # https://harbor.example.com
    project: str | None = None  # the destination project
    project_public: bool = False
    registry_name: str = "relay-acr"
    policy_name: str | None = None  # default relay-<source namespace>
    schedule: str = "0 0 * * * *"  # hourly, on the hour (6 fields, seconds first, UTC)
    ca_bundle: str | None = None  # relative to the repository
    speed_kbps: int = 0  # 0 = unlimited
    source_url: str | None = None  # default from acr: or copy:
    registry: str | None = None  # Harbor's registry host for pulls (default: the url's host)
    poll: PollSettings = field(default_factory=PollSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    # key → line in the settings file, for problems found when sections are combined
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def configured(self) -> bool:
        return self.url is not None

    def policy_for(self, namespace: str) -> str:
        return self.policy_name or f"relay-{namespace}"

    @property
    def registry_host(self) -> str:
        """Where images are pulled from: Harbor's own host unless `registry:` says otherwise."""
        if self.registry:
            return self.registry
        return urlsplit(self.url or "").netloc

    def problem(self, key: str, message: str) -> Problem:
        return Problem(SETTINGS_PATH, self.lines.get(key), message)


# --- cron, checked locally as Harbor checks it ---------------------------------------------------

_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("seconds", 0, 59, {}),
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    ),
    ("day of week", 0, 6, {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}),
)


def cron_problem(text: str) -> str | None:
    """Why Harbor would refuse ``text`` as a replication schedule, or None.

    Harbor parses with robfig/cron (six fields, seconds first, no descriptors:
    src/common/utils/utils.go CronParser) and since v2.9 also wants seconds ``0`` and minutes
    not ``*``, splitting on single spaces (src/controller/replication/model/model.go Validate).
    Written here apart from the emulator's checker on purpose: two readings of the same rule
    catch each other's mistakes.
    """
    if not text:
        return "must not be empty"
    fields = text.split(" ")
    if len(fields) != 6 or any(not f for f in fields):
        return (
            "needs 6 fields separated by single spaces, seconds first "
            "(e.g. '0 0 * * * *' is hourly)"
        )
    if fields[0] != "0":
        return "must start with 0: Harbor wants the seconds field to be 0"
    if fields[1] == "*":
        return "must not have * as its minutes field (Harbor refuses a replication every minute)"
    for value, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        wrong = _cron_field_problem(value.lower(), low, high, names)
        if wrong:
            return f"{name} field {value!r}: {wrong}"
    return None


_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes "²" and "٣"


def _cron_field_problem(value: str, low: int, high: int, names: Mapping[str, int]) -> str | None:
    for part in value.split(","):
        span, slash, step = part.partition("/")
        # robfig/cron wants a number after every "/" (an empty step is an error)
        if slash and (not _DIGITS.fullmatch(step) or int(step) == 0):
            return f"bad step {step!r}"
        if span in ("*", "?"):
            continue
        start, dash, end = span.partition("-")
        bounds = []
        for bound in (start, end) if dash else (start,):
            number = names.get(bound, int(bound) if _DIGITS.fullmatch(bound) else None)
            if number is None:
                return f"{bound!r} is not a number"
            if not low <= number <= high:
                return f"{number} is outside {low}-{high}"
            bounds.append(number)
        if dash and bounds[0] > bounds[1]:
            return f"range {span!r} runs backwards"
    return None


# --- the section --------------------------------------------------------------------------------


def _check(
    result: HarborSettings,
    doc: yamlnodes.Doc,
    node: yaml.Node,
    items: dict[str, tuple[yaml.Node, yaml.Node]],
    problems: list[Problem],
) -> None:
    for key, (key_node, _) in items.items():
        result.lines[key] = yamlnodes.line_of(key_node)
    result.lines.setdefault("harbor", yamlnodes.line_of(node))
    for key in ("url", "project"):
        if key not in items:
            problems.append(doc.problem(node, f"harbor.{key} is required"))


def _url(value: str) -> str | None:
    if not _URL_RE.fullmatch(value):
        return "must be http(s)://host[:port][/path], without a query"
    return None


# Keys people write for Harbor's login or the ACR key it keeps: they come from the environment.
_LOGIN_HINT = (
    f"secrets never go in mirrors/relay.yaml; the Harbor stage reads its login from {USER_ENV} "
    f"and {PASSWORD_ENV}"
)
_KEY_HINT = (
    "secrets never go in mirrors/relay.yaml; Harbor's ali-acr endpoint gets its AccessKey from "
    f"{' and '.join(ACR_KEY_ENV_PAIRS[0])}"
)
SECRET_HINTS = {
    **{k: _LOGIN_HINT for k in ("username", "password", "user", "robot", "secret", "token")},
    **{k: _KEY_HINT for k in ("access_key_id", "access_key_secret", "access_key", "accesskey")},
}

SECTION = schema.Section(
    HarborSettings,
    [
        schema.Key("url", schema.where(schema.text(), _url)),
        schema.Key(
            "project",
            schema.where(
                schema.text(PROJECT_RE, "must be lower-case letters and digits, joined by . _ -"),
                lambda v: "must be at most 255 characters" if len(v) > 255 else None,
            ),
        ),
        schema.Key("project_public", schema.boolean()),
        schema.Key("registry_name", schema.text(NAME_RE, "must be 1-64 of A-Z a-z 0-9 . _ -")),
        schema.Key("policy_name", schema.text(NAME_RE, "must be 1-64 of A-Z a-z 0-9 . _ -")),
        schema.Key("schedule", schema.where(schema.text(), cron_problem)),
        schema.Key("ca_bundle", schema.text()),
        schema.Key("speed_kbps", schema.integer(0, 10_000_000)),
        schema.Key("source_url", schema.where(schema.text(), _url)),
        schema.Key(
            "registry", schema.text(re.compile(r"[A-Za-z0-9.\-\[\]:]+"), "must be host[:port]")
        ),
        schema.Key(
            "poll",
            schema.Section(
                PollSettings,
                [
                    schema.Key(key, schema.number(0.01, 86_400 * 7))
                    for key in ("interval", "max_interval", "timeout", "settle")
                ],
            ),
        ),
        schema.Key("retry", RETRY),
    ],
    check=_check,
    hints=SECRET_HINTS,
)
"""The `harbor:` section, declared once; relay.commands.common hands it to the settings reader."""


def cross_check(
    harbor: HarborSettings, *, repo: Path, insecure: Sequence[str], has_source: bool
) -> list[Problem]:
    """What the section alone cannot know: plain http only for loopback or insecure hosts, the
    CA bundle file exists, and there is something to pull from (acr: or copy:)."""
    problems: list[Problem] = []
    if harbor.url is None:
        return problems
    parts = urlsplit(harbor.url)
    if parts.scheme == "http" and not _loopback_or_listed(parts.netloc, insecure):
        problems.append(
            harbor.problem(
                "url",
                "harbor.url is plain http:// but its host is neither loopback nor listed in "
                "registries.insecure; use https:// (with harbor.ca_bundle for a self-signed CA)",
            )
        )
    if harbor.ca_bundle is not None:
        path = repo / harbor.ca_bundle
        if not path.is_file():
            problems.append(
                harbor.problem("ca_bundle", f"harbor.ca_bundle {harbor.ca_bundle}: no such file")
            )
    if not has_source and harbor.source_url is None:
        problems.append(
            harbor.problem(
                "harbor",
                "the Harbor stage pulls from ACR: it needs an acr: section (namespace, region), "
                "copy.registry with copy.namespace, or harbor.source_url",
            )
        )
    return problems


def _loopback_or_listed(netloc: str, insecure: Sequence[str]) -> bool:
    host = (urlsplit(f"//{netloc}").hostname or "").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_loopback:
        return True
    for entry in insecure:
        entry = entry.strip().lower()
        if "/" in entry and address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        elif entry in (netloc.lower(), host):
            return True
    return False


# --- credentials --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Login({self.username!r}, <hidden>)"


@dataclass(frozen=True)
class AccessKey:
    key_id: str
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return "AccessKey(<hidden>)"


def login(env: Mapping[str, str]) -> Login:
    user, password = env.get(USER_ENV), env.get(PASSWORD_ENV)
    if not user or not password:
        raise InputError(
            f"the Harbor stage needs {USER_ENV} and {PASSWORD_ENV} (an admin, or a system robot "
            "account robot$… with registry, replication-policy, replication and project "
            "permissions)"
        )
    return Login(user, password)


def acr_access_key(env: Mapping[str, str]) -> AccessKey:
    for id_var, secret_var in ACR_KEY_ENV_PAIRS:
        key_id, secret = env.get(id_var), env.get(secret_var)
        if key_id and secret:
            return AccessKey(key_id, secret)
    raise InputError(
        "Harbor's ali-acr endpoint needs an AccessKey: set "
        f"{' and '.join(ACR_KEY_ENV_PAIRS[0])} (a read-only RAM key, recommended) or "
        f"{' and '.join(ACR_KEY_ENV_PAIRS[1])}"
    )


def secrets_of(env: Mapping[str, str]) -> list[str]:
    """Every secret this stage may handle, for scrubbing text before it is printed."""
    names = [PASSWORD_ENV, *(secret for _, secret in ACR_KEY_ENV_PAIRS)]
    return [env[n] for n in names if env.get(n)]
