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
* Retries: the SDK retries nothing for cr; relay.acr.retry does.
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
from aliyunsdkcore.request import AcsRequest, CommonRequest

from relay.acr import retry
from relay.acr.errors import AcrError, from_sdk
from relay.acr.settings import AcrSettings, Credentials
from relay.acr.state import (
    Binding,
    Build,
    Image,
    RepoInfo,
    Rule,
    RuleSpec,
    normalise_digest,
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
        self._policy = retry.RetryPolicy(
            settings.retry.attempts, settings.retry.backoff, settings.retry.max_backoff
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
                auto_retry=False,  # it would not retry cr anyway; ours does (relay.acr.retry)
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

        return retry.call(
            once,
            self._policy,
            sleep=self._sleep,
            rand=self._rand,
            on_retry=lambda _exc: self.stats.retried(),
            retryable=(lambda e: e.retryable)
            if idempotent
            else (lambda e: e.retryable and not e.ambiguous),
        )

    def _write_once(self, what: str, write: Callable[[], T], landed: Callable[[], T | None]) -> T:
        """A write that must not happen twice. When its answer is lost (5xx, read timeout),
        look whether it landed (`landed()` returns the result if so) before writing again."""
        for attempt in range(self._policy.attempts):
            try:
                return write()
            except AcrError as exc:
                if not exc.ambiguous or attempt + 1 >= self._policy.attempts:
                    raise
                log.info("ACR %s: %s; checking whether it happened", what, exc.code)
                self.stats.retried()
                found = landed()
                if found is not None:
                    return found
                self._sleep(self._policy.delay(attempt, self._rand))
        raise AssertionError("unreachable")  # pragma: no cover

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
        return sum(1 for _ in _pages(lambda page: self._repo_page(namespace, page, PAGE_SIZE)))

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
    cls = EnterpriseClient if settings.edition == "enterprise" else PersonalClient
    return cls(settings, creds, env=env, stats=stats, sleep=sleep, rand=rand)


def _sdk_class(version: str, action: str) -> type[AcsRequest] | None:
    module = f"aliyunsdkcr.request.v{version.replace('-', '')}.{action}Request"
    try:
        return getattr(importlib.import_module(module), f"{action}Request")
    except (ImportError, AttributeError):
        return None


def _pages(fetch: Callable[[int], tuple[list[Any], int | None]]) -> Iterator[Any]:
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


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _bool(value: bool) -> str:
    return "true" if value else "false"


# --- personal edition (2016-06-07, ROA) -------------------------------------------------------


class PersonalClient(AcrClient):
    edition = "personal"

    def _call(
        self,
        action: str,
        *,
        path: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        method, uri = PERSONAL_OPERATIONS[action]

        def build() -> AcsRequest:
            cls = _sdk_class(PERSONAL_VERSION, action)
            if cls is not None:
                request = cls()
            else:
                request = CommonRequest(
                    version=PERSONAL_VERSION, action_name=action, uri_pattern=uri, product="cr"
                )
                request.set_method(method)
            for key, value in (path or {}).items():
                request.add_path_param(key, str(value))  # type: ignore[attr-defined]
            for key, value in (query or {}).items():
                request.add_query_param(key, str(value))
            if body is not None:
                request.set_content(json.dumps(body).encode("utf-8"))
                request.set_content_type("application/json")
            return request

        answer = self._send(action, method, build, idempotent=action not in ONCE_ONLY)
        data = answer.get("data")
        if data is None and ("code" in answer or "Code" in answer):
            # A 2xx that still carries an error (§5: "always check that data exists").
            code = _str(answer.get("code") or answer.get("Code"))
            if code.lower() not in ("success", "ok", "200"):
                raise AcrError(action, code, _str(answer.get("message") or answer.get("Message")))
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _repo_path(repo: RepoInfo) -> dict[str, str]:
        return {"RepoNamespace": repo.namespace, "RepoName": repo.name}

    def list_namespaces(self) -> list[str]:
        data = self._call("GetNamespaceList")
        return [
            _str(ns.get("namespace"))
            for ns in data.get("namespaces") or []
            if isinstance(ns, dict) and ns.get("namespace")
        ]

    def create_namespace(self, name: str) -> None:
        self._call("CreateNamespace", body={"Namespace": {"Namespace": name}})

    def _repo_page(self, namespace: str, page: int, size: int) -> tuple[list[Any], int | None]:
        data = self._call(
            "GetRepoListByNamespace",
            path={"RepoNamespace": namespace},
            query={"Page": page, "PageSize": size, "Status": "ALL"},
        )
        return [r for r in data.get("repos") or [] if isinstance(r, dict)], _int(data.get("total"))

    def list_repos(self, namespace: str) -> list[RepoInfo]:
        return [
            RepoInfo(
                namespace=namespace,
                name=_str(r.get("repoName")),
                repo_id=_str(r.get("repoId")) or None,
                summary=_str(r.get("summary")),
                detail=_str(r.get("detail")),
            )
            for r in _pages(lambda page: self._repo_page(namespace, page, PAGE_SIZE))
        ]

    @staticmethod
    def _repo_source(binding: Binding) -> dict[str, Any]:
        # Undocumented but used by real code (acr-api.md §2); the same block serves
        # UpdateRepoSourceRepo, whose body is UNCONFIRMED.
        return {
            "Source": {
                "SourceRepoType": "GITHUB",
                "SourceRepoNamespace": binding.owner,
                "SourceRepoName": binding.name,
            },
            "BuildConfig": {
                "IsAutoBuild": binding.auto_build,
                "IsOversea": binding.overseas,
                "IsDisableCache": binding.no_cache,
            },
        }

    def create_repo(
        self, namespace: str, name: str, *, summary: str, detail: str, binding: Binding
    ) -> RepoInfo:
        body = {
            "Repo": {
                "RepoNamespace": namespace,
                "RepoName": name,
                "Summary": summary,
                "Detail": detail,
                "RepoType": self.settings.repo_type,
                "RepoBuildType": "AUTO_BUILD" if binding.auto_build else "MANUAL",
            },
            "RepoSource": self._repo_source(binding),
        }
        data = self._call("CreateRepo", body=body)
        repo = RepoInfo(namespace, name, _str(data.get("repoId")) or None, summary, detail)
        self._ensure_bound(repo, binding)
        return repo

    def _ensure_bound(self, repo: RepoInfo, binding: Binding) -> None:
        """RepoSource in CreateRepo is undocumented (acr-api.md §2): check that it took, and bind
        with UpdateRepoSourceRepo when it did not. A server that cannot say is trusted."""
        try:
            current = self.get_binding(repo)
        except AcrError as exc:
            if exc.retryable:
                raise
            log.debug(
                "cannot read the source binding of %s (%s); trusting CreateRepo",
                repo.name,
                exc.code,
            )
            return
        if current != binding:
            self.bind_source(repo, binding)

    def update_repo(self, repo: RepoInfo, *, summary: str, detail: str) -> None:
        body = {"Repo": {"Summary": summary, "Detail": detail, "RepoType": self.settings.repo_type}}
        self._call("UpdateRepo", path=self._repo_path(repo), body=body)

    def delete_repo(self, repo: RepoInfo) -> None:
        self._call("DeleteRepo", path=self._repo_path(repo))

    def get_binding(self, repo: RepoInfo) -> Binding | None:
        data = self._call("GetRepoSourceRepo", path=self._repo_path(repo))
        # Shape UNCONFIRMED: accept the request's PascalCase layout in camelCase, nested or flat.
        src = data.get("sourceRepo") or data.get("repoSource") or data
        source = src.get("source") if isinstance(src.get("source"), dict) else src
        config = src.get("buildConfig") if isinstance(src.get("buildConfig"), dict) else src
        owner = _str(source.get("sourceRepoNamespace"))
        name = _str(source.get("sourceRepoName"))
        if not owner or not name:
            return None
        return Binding(
            owner,
            name,
            overseas=bool(config.get("isOversea")),
            no_cache=bool(config.get("isDisableCache")),
            auto_build=bool(config.get("isAutoBuild")),
        )

    def bind_source(self, repo: RepoInfo, binding: Binding) -> None:
        self._call(
            "UpdateRepoSourceRepo",
            path=self._repo_path(repo),
            body={"RepoSource": self._repo_source(binding)},
        )

    def list_images(self, repo: RepoInfo) -> dict[str, Image]:
        def page(n: int) -> tuple[list[Any], int | None]:
            data = self._call(
                "GetRepoTags", path=self._repo_path(repo), query={"Page": n, "PageSize": PAGE_SIZE}
            )
            return [t for t in data.get("tags") or [] if isinstance(t, dict)], _int(
                data.get("total")
            )

        images: dict[str, Image] = {}
        for t in _pages(page):
            tag = _str(t.get("tag"))
            if tag:
                images[tag] = Image(
                    tag, normalise_digest(t.get("imageId")), normalise_digest(t.get("digest"))
                )
        return images

    def list_rules(self, repo: RepoInfo) -> list[Rule]:
        data = self._call("GetRepoBuildRuleList", path=self._repo_path(repo))
        return [
            Rule(
                rule_id=_str(r.get("buildRuleId")),
                push_type=_str(r.get("pushType")),
                push_name=_str(r.get("pushName")),
                location=_str(r.get("dockerfileLocation")),
                dockerfile_name=_str(r.get("dockerfileName")),
                image_tag=_str(r.get("imageTag") or r.get("tag")),
            )
            for r in data.get("buildRules") or []
            if isinstance(r, dict) and r.get("buildRuleId") is not None
        ]

    @staticmethod
    def _rule_body(spec: RuleSpec) -> dict[str, Any]:
        # Which of ImageTag / Tag the server reads is UNCONFIRMED (§3): send both.
        return {
            "BuildRule": {
                "PushType": spec.push_type,
                "PushName": spec.branch,
                "DockerfileLocation": spec.location,
                "DockerfileName": spec.dockerfile_name,
                "ImageTag": spec.tag,
                "Tag": spec.tag,
            }
        }

    def create_rule(self, repo: RepoInfo, spec: RuleSpec) -> str | None:
        def write() -> str | None:
            data = self._call(
                "CreateRepoBuildRule", path=self._repo_path(repo), body=self._rule_body(spec)
            )
            return _str(data.get("buildRuleId")) or None

        return self._write_once("CreateRepoBuildRule", write, lambda: self._rule_landed(repo, spec))

    def update_rule(self, repo: RepoInfo, rule_id: str, spec: RuleSpec) -> None:
        self._call(
            "UpdateRepoBuildRule",
            path={**self._repo_path(repo), "BuildRuleId": str(rule_id)},
            body=self._rule_body(spec),
        )

    def delete_rule(self, repo: RepoInfo, rule_id: str) -> None:
        self._call(
            "DeleteRepoBuildRule", path={**self._repo_path(repo), "BuildRuleId": str(rule_id)}
        )

    def start_build(self, repo: RepoInfo, rule_id: str, tag: str) -> str | None:
        # The answer is UNCONFIRMED (§1.1): take a build id if there is one; the caller finds
        # the build in GetRepoBuildList otherwise.
        def write() -> str | None:
            data = self._call(
                "StartRepoBuildByRule",
                path={**self._repo_path(repo), "BuildRuleId": str(rule_id)},
            )
            return _str(data.get("buildId")) or None

        return self._write_once(
            "StartRepoBuildByRule", write, lambda: self._build_landed(repo, tag)
        )

    def list_builds(self, repo: RepoInfo) -> list[Build]:
        data = self._call(
            "GetRepoBuildList", path=self._repo_path(repo), query={"Page": 1, "PageSize": 30}
        )
        builds = []
        for b in data.get("builds") or []:
            if not isinstance(b, dict) or b.get("buildId") is None:
                continue
            image = b.get("image") if isinstance(b.get("image"), dict) else {}
            builds.append(
                Build(_str(b.get("buildId")), _str(b.get("buildStatus")), image.get("tag"))
            )
        return builds

    def build_status(self, repo: RepoInfo, build_id: str) -> str:
        data = self._call(
            "GetRepoBuildStatus", path={**self._repo_path(repo), "BuildId": str(build_id)}
        )
        return _str(data.get("buildStatus"))


# --- enterprise edition (2018-12-01, RPC) -----------------------------------------------------


class EnterpriseClient(AcrClient):
    edition = "enterprise"

    def _call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        def build() -> AcsRequest:
            cls = _sdk_class(ENTERPRISE_VERSION, action)
            if cls is not None:
                request = cls()
            else:
                request = CommonRequest(
                    version=ENTERPRISE_VERSION, action_name=action, product="cr"
                )
            request.set_method("POST")
            request.add_query_param("InstanceId", str(self.settings.instance_id))
            for key, value in (params or {}).items():
                if isinstance(value, (list, tuple)):
                    # RPC repeat lists are flattened as Key.1, Key.2, …
                    for i, item in enumerate(value, start=1):
                        request.add_query_param(f"{key}.{i}", str(item))
                elif isinstance(value, bool):
                    request.add_query_param(key, _bool(value))
                else:
                    request.add_query_param(key, str(value))
            return request

        answer = self._send(action, "POST", build, idempotent=action not in ONCE_ONLY)
        if answer.get("IsSuccess") is False:
            raise AcrError(
                action,
                _str(answer.get("Code")) or "IsSuccessFalse",
                _str(answer.get("Message")),
                request_id=_str(answer.get("RequestId")) or None,
            )
        return answer

    def list_namespaces(self) -> list[str]:
        def page(n: int) -> tuple[list[Any], int | None]:
            data = self._call("ListNamespace", {"PageNo": n, "PageSize": PAGE_SIZE})
            items = [ns for ns in data.get("Namespaces") or [] if isinstance(ns, dict)]
            return items, _int(data.get("TotalCount"))

        return [_str(ns.get("NamespaceName")) for ns in _pages(page) if ns.get("NamespaceName")]

    def create_namespace(self, name: str) -> None:
        self._call(
            "CreateNamespace",
            {"NamespaceName": name, "AutoCreateRepo": False, "DefaultRepoType": "PRIVATE"},
        )

    def _repo_page(self, namespace: str, page: int, size: int) -> tuple[list[Any], int | None]:
        data = self._call(
            "ListRepository",
            {"RepoNamespaceName": namespace, "RepoStatus": "ALL", "PageNo": page, "PageSize": size},
        )
        items = [r for r in data.get("Repositories") or [] if isinstance(r, dict)]
        return items, _int(data.get("TotalCount"))

    def list_repos(self, namespace: str) -> list[RepoInfo]:
        return [
            RepoInfo(
                namespace=namespace,
                name=_str(r.get("RepoName")),
                repo_id=_str(r.get("RepoId")) or None,
                summary=_str(r.get("Summary")),
                detail=_str(r.get("Detail")),
            )
            for r in _pages(lambda page: self._repo_page(namespace, page, PAGE_SIZE))
        ]

    def create_repo(
        self, namespace: str, name: str, *, summary: str, detail: str, binding: Binding
    ) -> RepoInfo:
        data = self._call(
            "CreateRepository",
            {
                "RepoNamespaceName": namespace,
                "RepoName": name,
                "RepoType": self.settings.repo_type,
                "Summary": summary,
                "Detail": detail,
            },
        )
        repo = RepoInfo(namespace, name, _str(data.get("RepoId")) or None, summary, detail)
        if repo.repo_id is None:
            repo = self._find_repo(namespace, name) or repo
        self.bind_source(repo, binding)
        return repo

    def _find_repo(self, namespace: str, name: str) -> RepoInfo | None:
        data = self._call(
            "ListRepository",
            {"RepoNamespaceName": namespace, "RepoName": name, "PageNo": 1, "PageSize": 10},
        )
        for r in data.get("Repositories") or []:
            if isinstance(r, dict) and r.get("RepoName") == name:
                return RepoInfo(namespace, name, _str(r.get("RepoId")), _str(r.get("Summary")), "")
        return None

    def _repo_id(self, repo: RepoInfo) -> str:
        if repo.repo_id:
            return repo.repo_id
        found = self._find_repo(repo.namespace, repo.name)
        if found is None or not found.repo_id:
            raise AcrError("ListRepository", "REPO_NOT_EXIST", f"{repo.namespace}/{repo.name}")
        return found.repo_id

    def update_repo(self, repo: RepoInfo, *, summary: str, detail: str) -> None:
        self._call(
            "UpdateRepository",
            {
                "RepoId": self._repo_id(repo),
                "RepoType": self.settings.repo_type,
                "Summary": summary,
                "Detail": detail,
            },
        )

    def delete_repo(self, repo: RepoInfo) -> None:
        self._call("DeleteRepository", {"RepoId": self._repo_id(repo)})

    def get_binding(self, repo: RepoInfo) -> Binding | None:
        data = self._call("GetRepoSourceCodeRepo", {"RepoId": self._repo_id(repo)})
        owner, name = _str(data.get("CodeRepoNamespaceName")), _str(data.get("CodeRepoName"))
        if not owner or not name:
            return None
        return Binding(
            owner,
            name,
            overseas=_truthy(data.get("OverseaBuild")),
            no_cache=_truthy(data.get("DisableCacheBuild")),
            auto_build=_truthy(data.get("AutoBuild")),
        )

    def bind_source(self, repo: RepoInfo, binding: Binding) -> None:
        params = {
            "RepoId": self._repo_id(repo),
            "CodeRepoType": "GITHUB",
            "CodeRepoNamespaceName": binding.owner,
            "CodeRepoName": binding.name,
            "AutoBuild": binding.auto_build,
            "OverseaBuild": binding.overseas,
            "DisableCacheBuild": binding.no_cache,
        }
        try:
            self._call("CreateRepoSourceCodeRepo", params)
        except AcrError as exc:
            # A repository bound before (by hand, or by a run that crashed) is re-bound.
            if not exc.already_exists:
                raise
            self._call("UpdateRepoSourceCodeRepo", params)

    def list_images(self, repo: RepoInfo) -> dict[str, Image]:
        repo_id = self._repo_id(repo)

        def page(n: int) -> tuple[list[Any], int | None]:
            data = self._call(
                "ListRepoTag", {"RepoId": repo_id, "PageNo": n, "PageSize": PAGE_SIZE}
            )
            items = [i for i in data.get("Images") or [] if isinstance(i, dict)]
            return items, _int(data.get("TotalCount"))

        images: dict[str, Image] = {}
        for i in _pages(page):
            tag = _str(i.get("Tag"))
            if tag:
                images[tag] = Image(
                    tag, normalise_digest(i.get("ImageId")), normalise_digest(i.get("Digest"))
                )
        return images

    def list_rules(self, repo: RepoInfo) -> list[Rule]:
        repo_id = self._repo_id(repo)

        def page(n: int) -> tuple[list[Any], int | None]:
            data = self._call(
                "ListRepoBuildRule", {"RepoId": repo_id, "PageNo": n, "PageSize": PAGE_SIZE}
            )
            items = [r for r in data.get("BuildRules") or [] if isinstance(r, dict)]
            return items, _int(data.get("TotalCount"))

        return [
            Rule(
                rule_id=_str(r.get("BuildRuleId")),
                push_type=_str(r.get("PushType")),
                push_name=_str(r.get("PushName")),
                location=_str(r.get("DockerfileLocation")),
                dockerfile_name=_str(r.get("DockerfileName")),
                image_tag=_str(r.get("ImageTag")),
                platforms=tuple(str(p) for p in r.get("Platforms") or ()),
            )
            for r in _pages(page)
            if r.get("BuildRuleId")
        ]

    def _rule_params(self, repo: RepoInfo, spec: RuleSpec) -> dict[str, Any]:
        params: dict[str, Any] = {
            "RepoId": self._repo_id(repo),
            "PushType": spec.push_type,
            "PushName": spec.branch,
            "DockerfileLocation": spec.location,
            "DockerfileName": spec.dockerfile_name,
            "ImageTag": spec.tag,
        }
        if spec.platforms:
            params["Platforms"] = list(spec.platforms)
        return params

    def create_rule(self, repo: RepoInfo, spec: RuleSpec) -> str | None:
        def write() -> str | None:
            data = self._call("CreateRepoBuildRule", self._rule_params(repo, spec))
            return _str(data.get("BuildRuleId")) or None

        return self._write_once("CreateRepoBuildRule", write, lambda: self._rule_landed(repo, spec))

    def update_rule(self, repo: RepoInfo, rule_id: str, spec: RuleSpec) -> None:
        params = self._rule_params(repo, spec)
        params["BuildRuleId"] = str(rule_id)
        self._call("UpdateRepoBuildRule", params)

    def delete_rule(self, repo: RepoInfo, rule_id: str) -> None:
        self._call(
            "DeleteRepoBuildRule", {"RepoId": self._repo_id(repo), "BuildRuleId": str(rule_id)}
        )

    def start_build(self, repo: RepoInfo, rule_id: str, tag: str) -> str | None:
        def write() -> str | None:
            data = self._call(
                "CreateBuildRecordByRule",
                {"RepoId": self._repo_id(repo), "BuildRuleId": str(rule_id)},
            )
            return _str(data.get("BuildRecordId")) or None

        return self._write_once(
            "CreateBuildRecordByRule", write, lambda: self._build_landed(repo, tag)
        )

    def list_builds(self, repo: RepoInfo) -> list[Build]:
        data = self._call(
            "ListRepoBuildRecord", {"RepoId": self._repo_id(repo), "PageNo": 1, "PageSize": 30}
        )
        builds = []
        for b in data.get("BuildRecords") or []:
            if not isinstance(b, dict) or not b.get("BuildRecordId"):
                continue
            image = b.get("Image") if isinstance(b.get("Image"), dict) else {}
            builds.append(
                Build(
                    _str(b.get("BuildRecordId")),
                    _str(b.get("BuildStatus") or b.get("Status")),
                    image.get("ImageTag"),
                )
            )
        return builds

    def build_status(self, repo: RepoInfo, build_id: str) -> str:
        data = self._call(
            "GetRepoBuildRecordStatus",
            {"RepoId": self._repo_id(repo), "BuildRecordId": str(build_id)},
        )
        return _str(data.get("BuildStatus"))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)
