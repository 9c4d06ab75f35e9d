"""ACR API client for both editions, on aliyun-python-sdk-core + aliyun-python-sdk-cr.

The SDK is used for signing and transport only; everything else it gets wrong for `cr` is done
here (acr-api.md):

* Bodies: the 2016 request classes set no body, so bodies are `json.dumps(...)` bytes sent as
  application/json, PascalCase under a wrapper (`{"Repo": {...}}`); answers are camelCase under
  `data`. Enterprise (2018-12-01) is RPC: parameters in the query, answers PascalCase and flat,
  and a 200 can still carry `IsSuccess: false`.
* Operations the SDK lacks (UpdateRepoSourceRepo, CreateRepoSourceCodeRepo, …) go through
  CommonRequest with the method and URI from the table below.
* Errors: lower-case service codes are dug out of ServerException messages (relay.acr.errors).
* Retries: the SDK retries nothing for cr; relay.net.retry does.
* Proxies: the SDK honours HTTP(S)_PROXY but ignores NO_PROXY, so the proxy map is worked out
  here and always passed explicitly (None for direct).
* Path parameters must be str (an int raises TypeError inside the SDK), so every id is str.

Both editions present one interface (`AcrClient`) in terms of relay.acr.state, and every call is
counted as a read, a write or a list page for the benchmark and the report.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import AcsRequest

from relay.net.retry import RetryPolicy, retrying
from relay.stages.acr.errors import AcrError, from_sdk
from relay.stages.acr.settings import AcrSettings, Credentials
from relay.stages.acr.state import (
    Binding,
    Build,
    Image,
    RepoInfo,
    Rule,
    RuleSpec,
    outcome,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

PERSONAL_VERSION = "2016-06-07"
ENTERPRISE_VERSION = "2018-12-01"
PAGE_SIZE = 100  # ACR's own maximum is UNCONFIRMED; paging below copes with a smaller cap
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 20

# Personal edition (ROA): action -> (method, URI). Used for CommonRequest when the SDK has no
# class; where it has one, tests check the two agree.
PERSONAL_OPERATIONS: dict[str, tuple[str, str]] = {
    "GetNamespaceList": ("GET", "/namespace"),
    "CreateNamespace": ("PUT", "/namespace"),
    "GetRepoListByNamespace": ("GET", "/repos/[RepoNamespace]"),
    "CreateRepo": ("PUT", "/repos"),
    "UpdateRepo": ("POST", "/repos/[RepoNamespace]/[RepoName]"),
    "DeleteRepo": ("DELETE", "/repos/[RepoNamespace]/[RepoName]"),
    "GetRepoSourceRepo": ("GET", "/repos/[RepoNamespace]/[RepoName]/sourceRepo"),
    "UpdateRepoSourceRepo": ("POST", "/repos/[RepoNamespace]/[RepoName]/sourceRepo"),
    "GetRepoTags": ("GET", "/repos/[RepoNamespace]/[RepoName]/tags"),
    "GetRepoBuildRuleList": ("GET", "/repos/[RepoNamespace]/[RepoName]/rules"),
    "CreateRepoBuildRule": ("PUT", "/repos/[RepoNamespace]/[RepoName]/rules"),
    "UpdateRepoBuildRule": ("POST", "/repos/[RepoNamespace]/[RepoName]/rules/[BuildRuleId]"),
    "DeleteRepoBuildRule": ("DELETE", "/repos/[RepoNamespace]/[RepoName]/rules/[BuildRuleId]"),
    "StartRepoBuildByRule": (
        "PUT",
        "/repos/[RepoNamespace]/[RepoName]/rules/[BuildRuleId]/build",
    ),
    "GetRepoBuildList": ("GET", "/repos/[RepoNamespace]/[RepoName]/build"),
    "GetRepoBuildStatus": ("GET", "/repos/[RepoNamespace]/[RepoName]/build/[BuildId]/status"),
}

# Writes that would happen twice if repeated after a lost answer (relay.acr.client._write_once).
ONCE_ONLY = frozenset({"CreateRepoBuildRule", "StartRepoBuildByRule", "CreateBuildRecordByRule"})

# Calls that page through a listing rather than read one repository's state.
LIST_ACTIONS = frozenset(
    {"GetNamespaceList", "GetRepoListByNamespace", "ListNamespace", "ListRepository"}
)


def kind_of(action: str, method: str = "POST") -> str:
    """ "list", "read" or "write", for counting."""
    if action in LIST_ACTIONS:
        return "list"
    if action.startswith(("Get", "List")) or method == "GET":
        return "read"
    return "write"


@dataclass
class CallStats:
    """API calls made (every attempt counts: that is what the service sees)."""

    reads: int = 0
    writes: int = 0
    list_pages: int = 0
    retries: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, action: str, kind: str) -> None:
        with self._lock:
            self.by_action[action] += 1
            if kind == "list":
                self.list_pages += 1
            elif kind == "read":
                self.reads += 1
            else:
                self.writes += 1

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    @property
    def total(self) -> int:
        return self.reads + self.writes + self.list_pages

    def summary(self) -> str:
        return (
            f"{self.total} ACR API calls: {self.reads} reads, {self.writes} writes, "
            f"{self.list_pages} list pages, {self.retries} retries"
        )


def proxies_for(url: str, env: Mapping[str, str]) -> dict[str, str | None]:
    """The proxy map to hand the SDK. Never empty: an empty map makes the SDK read HTTP(S)_PROXY
    itself and ignore NO_PROXY. Loopback endpoints (the emulator) always go direct."""
    direct: dict[str, str | None] = {"http": None, "https": None}
    host = urlsplit(url).hostname or ""
    if host == "localhost" or _is_loopback(host):
        return direct
    lower = {k.lower(): v for k, v in env.items()}
    no_proxy = lower.get("no_proxy", "")
    if no_proxy and _bypassed(host, no_proxy):
        return direct
    found: dict[str, str | None] = {s: lower.get(f"{s}_proxy") or None for s in ("http", "https")}
    return found if any(found.values()) else direct


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bypassed(host: str, no_proxy: str) -> bool:
    for item in (x.strip().lower() for x in no_proxy.split(",")):
        if not item:
            continue
        if item == "*":
            return True
        item = item.split(":", 1)[0].lstrip(".")
        if host == item or host.endswith("." + item):
            return True
    return False


class _QuietSdkErrors(logging.Filter):
    """The SDK logs every error answer at ERROR, body and all, before relay has decided whether
    it matters (a throttle that a retry absorbs, an expected "already exists"). Relay reports
    the errors that do matter itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("ServerException occurred", "HttpError occurred"))


_QUIET = _QuietSdkErrors()


def _reason(exc: BaseException) -> str:
    """An ACR failure for the retry log line: the code, and the HTTP status when there was one."""
    if isinstance(exc, AcrError):
        return exc.code if exc.http_status is None else f"{exc.code} (HTTP {exc.http_status})"
    return str(exc)


class AcrClient:
    """The edition-neutral interface; `connect()` returns one of the two subclasses."""

    edition = ""

    def __init__(
        self,
        settings: AcrSettings,
        creds: Credentials,
        *,
        env: Mapping[str, str],
        stats: CallStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.endpoint = settings.api_endpoint(env)
        self.stats = stats if stats is not None else CallStats()
        self._creds = creds
        self._proxy = proxies_for(self.endpoint, env)
        self._policy = RetryPolicy(
            attempts=settings.retry.attempts,
            backoff=settings.retry.backoff,
            max_backoff=settings.retry.max_backoff,
            rng=rand,
        )
        self._sleep = sleep
        self._rand = rand
        # One AcsClient per thread: observation reads many repositories in parallel.
        self._local = threading.local()
        sdk_log = logging.getLogger("aliyunsdkcore.client")
        if _QUIET not in sdk_log.filters:
            sdk_log.addFilter(_QUIET)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint})"

    def _acs(self) -> AcsClient:
        acs = getattr(self._local, "acs", None)
        if acs is None:
            acs = AcsClient(
                self._creds.access_key_id,
                self._creds.access_key_secret,
                self.settings.region,
                auto_retry=False,  # it would not retry cr anyway; relay.net.retry does
                timeout=READ_TIMEOUT,
                connect_timeout=CONNECT_TIMEOUT,
                proxy=self._proxy,
            )
            self._local.acs = acs
        return acs

    def _send(
        self,
        action: str,
        method: str,
        build: Callable[[], AcsRequest],
        *,
        idempotent: bool = True,
    ) -> Any:
        """Send a freshly built request (the SDK mutates requests while signing) with retries,
        counting every attempt; the parsed JSON answer.

        Creates of namespaces and repositories are idempotent enough (a repeat answers "already
        exists", which callers accept). A write that is not (a new rule, a build start) is only
        retried when the error proves it never happened; `_write_once` handles the rest."""
        kind = kind_of(action, method)

        def once() -> Any:
            request = build()
            request.set_endpoint(self.endpoint)
            self.stats.count(action, kind)
            try:
                raw = self._acs().do_action_with_exception(request)
            except (ServerException, ClientException) as exc:
                raise from_sdk(action, exc) from None
            return self._parse(action, raw)

        def retry_if(exc: BaseException) -> bool:
            return isinstance(exc, AcrError) and (
                exc.retryable and (idempotent or not exc.ambiguous)
            )

        return retrying(
            lambda _number: once(),
            self._policy,
            retry_if=retry_if,
            what=f"ACR {action}",
            reason=_reason,
            sleep=self._sleep,
            on_retry=lambda _exc: self.stats.retried(),
        )

    def _write_once(self, what: str, write: Callable[[], T], landed: Callable[[], T | None]) -> T:
        """A write that must not happen twice. When its answer is lost (5xx, read timeout),
        look whether it landed (`landed()` returns the result if so) before writing again."""

        def attempt(number: int) -> T:
            if number > 1:
                found = landed()
                if found is not None:
                    return found
            return write()

        return retrying(
            attempt,
            self._policy,
            retry_if=lambda exc: isinstance(exc, AcrError) and exc.ambiguous,
            what=f"ACR {what}",
            reason=lambda exc: f"{_reason(exc)}; checking whether it happened",
            sleep=self._sleep,
            on_retry=lambda _exc: self.stats.retried(),
        )

    def _parse(self, action: str, raw: bytes | str | None) -> dict[str, Any]:
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise AcrError(action, "BadResponse", "the answer is not JSON") from None
        if not isinstance(body, dict):
            raise AcrError(action, "BadResponse", "the answer is not a JSON object")
        return body

    # --- the interface ------------------------------------------------------------------------

    def list_namespaces(self) -> list[str]:
        raise NotImplementedError

    def create_namespace(self, name: str) -> None:
        raise NotImplementedError

    def list_repos(self, namespace: str) -> list[RepoInfo]:
        raise NotImplementedError

    def _repo_page(self, namespace: str, page: int, size: int) -> tuple[list[Any], int | None]:
        """One page of repositories and the total, in the edition's own casing."""
        raise NotImplementedError

    def count_repos(self, namespace: str) -> int:
        # One one-item page gives the total; without one, count the pages.
        _, total = self._repo_page(namespace, 1, 1)
        if total is not None:
            return total
        return sum(1 for _ in pages(lambda page: self._repo_page(namespace, page, PAGE_SIZE)))

    def create_repo(
        self, namespace: str, name: str, *, summary: str, detail: str, binding: Binding
    ) -> RepoInfo:
        raise NotImplementedError

    def update_repo(self, repo: RepoInfo, *, summary: str, detail: str) -> None:
        raise NotImplementedError

    def delete_repo(self, repo: RepoInfo) -> None:
        raise NotImplementedError

    def get_binding(self, repo: RepoInfo) -> Binding | None:
        raise NotImplementedError

    def bind_source(self, repo: RepoInfo, binding: Binding) -> None:
        raise NotImplementedError

    def list_images(self, repo: RepoInfo) -> dict[str, Image]:
        raise NotImplementedError

    def list_rules(self, repo: RepoInfo) -> list[Rule]:
        raise NotImplementedError

    def create_rule(self, repo: RepoInfo, spec: RuleSpec) -> str | None:
        raise NotImplementedError

    def update_rule(self, repo: RepoInfo, rule_id: str, spec: RuleSpec) -> None:
        raise NotImplementedError

    def delete_rule(self, repo: RepoInfo, rule_id: str) -> None:
        raise NotImplementedError

    def start_build(self, repo: RepoInfo, rule_id: str, tag: str) -> str | None:
        raise NotImplementedError

    def _rule_landed(self, repo: RepoInfo, spec: RuleSpec) -> str | None:
        for rule in self.list_rules(repo):
            if rule.matches(spec, check_platforms=False):
                return rule.rule_id
        return None

    def _build_landed(self, repo: RepoInfo, tag: str) -> str | None:
        # relay never starts a tag that has a build running, so a running one is this start's.
        for build in self.list_builds(repo):
            if build.tag == tag and outcome(build.status) == "running":
                return build.build_id
        return None

    def list_builds(self, repo: RepoInfo) -> list[Build]:
        raise NotImplementedError

    def build_status(self, repo: RepoInfo, build_id: str) -> str:
        raise NotImplementedError


def connect(
    settings: AcrSettings,
    creds: Credentials,
    *,
    env: Mapping[str, str],
    stats: CallStats | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
) -> AcrClient:
    # The editions import this module for the base class, so they are imported here.
    from relay.stages.acr.enterprise import EnterpriseClient
    from relay.stages.acr.personal import PersonalClient

    cls: type[AcrClient] = EnterpriseClient if settings.edition == "enterprise" else PersonalClient
    return cls(settings, creds, env=env, stats=stats, sleep=sleep, rand=rand)


def sdk_class(version: str, action: str) -> type[AcsRequest] | None:
    module = f"aliyunsdkcr.request.v{version.replace('-', '')}.{action}Request"
    try:
        return getattr(importlib.import_module(module), f"{action}Request")
    except (ImportError, AttributeError):
        return None


def pages(fetch: Callable[[int], tuple[list[Any], int | None]]) -> Iterator[Any]:
    """Every item over pages 1, 2, …; stops at the total, or at a short or empty page when the
    total is missing (so a server that caps the page size below ours still pages right)."""
    page, seen = 1, 0
    while True:
        items, total = fetch(page)
        yield from items
        seen += len(items)
        if not items or (total is not None and seen >= total):
            return
        if total is None and len(items) < PAGE_SIZE:
            return
        page += 1


def int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_text(value: Any) -> str:
    return "" if value is None else str(value)


def flag(value: bool) -> str:
    return "true" if value else "false"


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)
