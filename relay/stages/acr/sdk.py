"""The SDK plumbing both editions share, on aliyun-python-sdk-core + aliyun-python-sdk-cr.

The SDK is used for signing and transport only; everything else it gets wrong for `cr` is done
here (docs/vendors/acr.md#endpoints-and-the-python-sdk):

* Bodies: the 2016 request classes set no body, so bodies are `json.dumps(...)` bytes sent as
  application/json, PascalCase under a wrapper (`{"Repo": {...}}`); answers are camelCase under
  `data`. Enterprise (2018-12-01) is RPC: parameters in the query, answers PascalCase and flat,
  and a 200 can still carry `IsSuccess: false`.
* Operations the SDK lacks (UpdateRepoSourceRepo, CreateRepoSourceCodeRepo, …) go through
  CommonRequest with the method and URI from the table below.
* Errors: lower-case service codes are dug out of ServerException messages (relay.acr.errors).
* Retries: the SDK retries nothing for cr; relay.net.retry does.
* Proxies: the SDK honours HTTP(S)_PROXY but ignores NO_PROXY and ALL_PROXY, so the proxy map
  is worked out by relay.net.proxies (the registry transport's rule) and always passed
  explicitly (None for direct).
* Path parameters must be str (an int raises TypeError inside the SDK), so every id is str.

Both editions implement the interface in relay.stages.acr.api on `SdkClient`, and every call is
counted as a read, a write or a list page for the benchmark and the report.
"""

from __future__ import annotations

import importlib
import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.auth.credentials import AccessKeyCredential, StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import AcsRequest, CommonRequest

from relay.net import cancel
from relay.net.proxies import environ_proxies
from relay.net.retry import RetryPolicy, retrying
from relay.stages.acr.api import CallStats, kind_of
from relay.stages.acr.errors import AcrError, from_sdk
from relay.stages.acr.settings import AcrSettings, Credentials
from relay.stages.acr.state import (
    Build,
    RepoInfo,
    Rule,
    RuleSpec,
    outcome,
)
from relay.stages.acr.wire import PAGE_SIZE, pages

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 20


def proxies_for(url: str, env: Mapping[str, str]) -> dict[str, str | None]:
    """The proxy map to hand the SDK. Never empty: an empty map makes the SDK read HTTP(S)_PROXY
    itself and ignore NO_PROXY (and ALL_PROXY). The rule is relay.net.proxies', the one the
    registry transport uses. Loopback endpoints (the emulator) go direct."""
    found = environ_proxies(url, env, loopback_direct=True)
    return {s: found.get(s) or found.get("all") or None for s in ("http", "https")}


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
        if exc.transport and exc.message:
            return f"{exc.code} ({exc.message})"  # which host, and why (relay.net.reachability)
        return exc.code if exc.http_status is None else f"{exc.code} (HTTP {exc.http_status})"
    return str(exc)


class SdkClient:
    """Signing, retries, proxies and counting for one edition's client (a subclass)."""

    edition = ""

    def __init__(
        self,
        settings: AcrSettings,
        creds: Credentials,
        *,
        env: Mapping[str, str],
        stats: CallStats | None = None,
        sleep: Callable[[float], None] = cancel.pause,
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
            creds = self._creds
            # An STS token signs like an AccessKey and travels as x-acs-security-token (ROA) or
            # SecurityToken (RPC); the SDK's StsTokenSigner adds it.
            credential = (
                StsTokenCredential(
                    creds.access_key_id, creds.access_key_secret, creds.security_token
                )
                if creds.security_token
                else AccessKeyCredential(creds.access_key_id, creds.access_key_secret)
            )
            acs = AcsClient(
                region_id=self.settings.region,
                credential=credential,
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
            # After Ctrl-C no new request goes out (workers would otherwise keep creating).
            cancel.check()
            request = build()
            request.set_endpoint(self.endpoint)
            self.stats.count(action, kind)
            try:
                raw = self._acs().do_action_with_exception(request)
            except (ServerException, ClientException) as exc:
                raise from_sdk(action, exc) from None
            answer = self._parse(action, raw)
            # An error inside a 2xx answer (docs/vendors/acr.md#error-shapes) is raised here,
            # inside the attempt, so a Throttling or SystemError in the body is retried too.
            self._envelope(action, answer)
            return answer

        def retry_if(exc: BaseException) -> bool:
            return isinstance(exc, AcrError) and (
                exc.retryable and (idempotent or not exc.ambiguous)
            )

        return retrying(
            lambda _number: once(),
            self._policy,
            retry_if=retry_if,
            what=f"ACR: {action}",
            reason=_reason,
            sleep=self._sleep,
            on_retry=lambda _exc: self.stats.retried(),
        )

    def _write_once(self, what: str, write: Callable[[], T], landed: Callable[[], T | None]) -> T:
        """A write that must not happen twice. When its answer is lost (5xx, read timeout),
        look whether it landed (`landed()` returns the result if so) before writing again."""

        def attempt(number: int) -> T:
            cancel.check()
            if number > 1:
                found = landed()
                if found is not None:
                    return found
            return write()

        return retrying(
            attempt,
            self._policy,
            retry_if=lambda exc: isinstance(exc, AcrError) and exc.ambiguous,
            what=f"ACR: {what}",
            reason=lambda exc: f"{_reason(exc)}; checking whether it happened",
            sleep=self._sleep,
            on_retry=lambda _exc: self.stats.retried(),
        )

    def _envelope(self, action: str, answer: dict[str, Any]) -> None:
        """Raise the AcrError a 2xx answer carries in its body, in the edition's shape."""

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

    # --- shared by both editions (the interface itself: relay.stages.acr.api) ---------------

    def _repo_page(self, namespace: str, page: int, size: int) -> tuple[list[Any], int | None]:
        """One page of repositories and the total, in the edition's own casing."""
        raise NotImplementedError

    def count_repos(self, namespace: str) -> int:
        # One one-item page gives the total; without one, count the pages.
        _, total = self._repo_page(namespace, 1, 1)
        if total is not None:
            return total
        return sum(1 for _ in pages(lambda page: self._repo_page(namespace, page, PAGE_SIZE)))

    def list_rules(self, repo: RepoInfo) -> list[Rule]:
        raise NotImplementedError

    def _rule_landed(self, repo: RepoInfo, spec: RuleSpec) -> str | None:
        for rule in self.list_rules(repo):
            if rule.matches(spec, check_platforms=False):
                return rule.rule_id
        return None

    def _build_landed(self, repo: RepoInfo, tag: str, known: frozenset[str] | None) -> str | None:
        """The build a start whose answer was lost made, if it did. With the builds known
        before the start, a new build of the tag is this start's whatever its status (it may
        have failed or finished already: found by the chaos runs, a fast build was started
        twice). Without them, relay never starts a tag that has a build running, so a running
        one is this start's."""
        for build in self.list_builds(repo):
            if build.tag != tag:
                continue
            if known is not None and build.build_id not in known:
                return build.build_id
            if known is None and outcome(build.status) == "running":
                return build.build_id
        return None

    def list_builds(self, repo: RepoInfo) -> list[Build]:
        raise NotImplementedError


def sdk_class(version: str, action: str) -> type[AcsRequest] | None:
    module = f"aliyunsdkcr.request.v{version.replace('-', '')}.{action}Request"
    try:
        return getattr(importlib.import_module(module), f"{action}Request")
    except (ImportError, AttributeError):
        return None


def new_request(version: str, action: str, method: str, uri: str | None = None) -> AcsRequest:
    """A fresh request for `action`: the SDK's own class, or a CommonRequest (with the URI, for
    ROA) for operations aliyun-python-sdk-cr lacks. The method is set either way; for the SDK's
    classes it is the one they carry (tests/test_acr_client.py checks the table against them)."""
    cls = sdk_class(version, action)
    request = (
        cls()
        if cls is not None
        else CommonRequest(version=version, action_name=action, uri_pattern=uri, product="cr")
    )
    request.set_method(method)
    return request
