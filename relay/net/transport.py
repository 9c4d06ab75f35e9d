"""HTTP plumbing: one requests Session, retries with backoff, per-request TLS, safe redirects.

Nothing here knows about registries' URL layout or authentication; the client does that.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from relay.net.retry import RetryPolicy, parse_retry_after
from relay.net.sslcontexts import SharedContextAdapter, shared_context
from relay.net.stats import RequestStats
from relay.net.tls import TLSConfig, normalise_netloc, split_netloc
from relay.registry.errors import ProtocolError, RegistryConnectionError, RegistryTLSError
from relay.registry.ratelimit import RateLimit, parse_rate_limit

log = logging.getLogger("relay.registry")

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 120.0)

Timeout = float | tuple[float, float]
# A request body, or a zero-argument callable producing a fresh one for every attempt.
Body = bytes | Callable[[], Any] | Any | None
Params = Mapping[str, str] | Sequence[tuple[str, str]] | None


@dataclass(frozen=True)
class RequestContext:
    """What a request is for; it ends up in error messages and log lines."""

    registry: str
    repository: str | None
    action: str


def safe_url(url: str) -> str:
    """A URL without its query string: presigned storage URLs carry signatures there."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{normalise_netloc(parts.netloc)}"


_URL_IN_MESSAGE = re.compile(r"with url: \S+")
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>: ")


def describe_exception(exc: BaseException) -> str:
    """A one-line reason without URLs (which may carry signed query strings).

    requests wraps urllib3's MaxRetryError, whose ``reason`` is the exception that matters.
    """
    inner: BaseException = exc
    wrapped = exc.args[0] if exc.args else None
    reason = getattr(wrapped, "reason", None)
    if isinstance(reason, BaseException):
        inner = reason
    text = _URL_IN_MESSAGE.sub("", str(inner))
    text = _OBJECT_REPR.sub("", text)
    text = " ".join(text.split())
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


def is_certificate_error(exc: BaseException) -> bool:
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text.lower()


def _silence_insecure_request_warning() -> None:
    """urllib3 warns on every unverified request; we log once per host instead.

    Process-wide, because ``warnings.catch_warnings`` is not thread-safe. Re-applied before
    each unverified request since test runners reset filters; ``filterwarnings`` de-duplicates.
    """
    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)


class Transport:
    """Sends requests with retries; shared by the client and the token fetcher.

    Retry rules: connection errors and ``RetryPolicy.retry_statuses`` are retried with backoff
    (429/503 honour ``Retry-After``) — but only when the body can be sent again
    (``replayable``); a consumed one-shot body is never resent here.
    """

    def __init__(
        self,
        *,
        tls: TLSConfig | None = None,
        retry: RetryPolicy | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        stats: RequestStats | None = None,
        user_agent: str = "relay-registry",
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 32,
    ) -> None:
        self.tls = tls or TLSConfig()
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.stats = stats or RequestStats()
        self.user_agent = user_agent
        self.sleep = sleep
        if session is None:
            session = requests.Session()
            # Retries are ours; the pool must hold a connection per worker thread and more.
            adapter = SharedContextAdapter(
                pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0
            )
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            # requests re-reads the whole environment on every request while trust_env is on
            # (proxies twice, plus a ~/.netrc lookup): a third of a request's CPU. The proxy
            # and CA-bundle variables are applied here instead, read once per origin. ~/.netrc
            # is not consulted: registry credentials come from relay's own providers.
            session.trust_env = False
        self.session = session
        self.rate_limit: RateLimit | None = None
        self._unverified: set[str] = set()
        self._proxies: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def proxies_for(self, url: str) -> dict[str, str]:
        """HTTP(S)_PROXY/ALL_PROXY for ``url``'s origin, NO_PROXY applied, as requests would."""
        if self.session.trust_env:
            return {}  # a caller-supplied session: requests reads the environment itself
        key = origin(url)
        with self._lock:
            found = self._proxies.get(key)
        if found is None:
            found = requests.utils.get_environ_proxies(key)
            with self._lock:
                self._proxies[key] = found
        return found

    def _verify_with_env(self, verify: bool | str) -> bool | str:
        """requests' rule under trust_env: verify=True means REQUESTS_CA_BUNDLE or
        CURL_CA_BUNDLE when one is set (a per-registry CA file still wins)."""
        if verify is True and not self.session.trust_env:
            return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        return verify

    def verify_for(self, netloc: str) -> bool | str:
        with self._lock:
            if normalise_netloc(netloc) in self._unverified:
                return False
        return self.tls.verify_for(netloc)

    def allow_unverified(self, netloc: str) -> None:
        with self._lock:
            self._unverified.add(normalise_netloc(netloc))

    def request(
        self,
        method: str,
        url: str,
        *,
        ctx: RequestContext,
        kind: str,
        headers: Mapping[str, str] | None = None,
        params: Params = None,
        body: Body = None,
        replayable: bool = True,
        stream: bool = False,
        follow_redirects: bool = False,
        auth_origin: str | None = None,
        timeout: Timeout | None = None,
    ) -> requests.Response:
        """Send one logical request; returns the final response whatever its status.

        With ``follow_redirects`` redirects are followed here rather than by requests so that
        the ``Authorization`` header goes only to ``auth_origin`` (scheme+host+port): blob GETs
        are redirected to S3/CDN hosts that must not see registry tokens (and reject them).
        """
        hdrs = {"User-Agent": self.user_agent, **(headers or {})}
        current_url, current_method, current_params = url, method.upper(), params
        hops = 0
        while True:
            response = self._send(
                current_method,
                current_url,
                ctx=ctx,
                kind=kind,
                headers=hdrs,
                params=current_params,
                body=body,
                replayable=replayable,
                stream=stream,
                timeout=timeout,
            )
            location = response.headers.get("Location")
            if (
                not follow_redirects
                or response.status_code not in REDIRECT_STATUSES
                or not location
            ):
                return response
            hops += 1
            response.close()
            if hops > MAX_REDIRECTS:
                raise ProtocolError(
                    f"more than {MAX_REDIRECTS} redirects",
                    registry=ctx.registry,
                    repository=ctx.repository,
                    action=ctx.action,
                )
            next_url = urljoin(response.url or current_url, location)
            if auth_origin is None or origin(next_url) != auth_origin:
                hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
            if response.status_code == 303 and current_method != "HEAD":
                current_method, body = "GET", None
            log.debug(
                "%s: redirected from %s to %s",
                ctx.action,
                safe_url(current_url),
                safe_url(next_url),
            )
            current_url, current_params = next_url, None

    def _send(
        self,
        method: str,
        url: str,
        *,
        ctx: RequestContext,
        kind: str,
        headers: Mapping[str, str],
        params: Params,
        body: Body,
        replayable: bool,
        stream: bool,
        timeout: Timeout | None,
    ) -> requests.Response:
        policy = self.retry
        attempt = 0
        netloc = urlsplit(url).netloc
        https = url.lower().startswith("https:")
        while True:
            attempt += 1
            verify = self.verify_for(netloc) if https else True
            if verify is False:
                _silence_insecure_request_warning()
            data = body() if callable(body) else body
            self.stats.record_request(method, kind)
            if attempt > 1:
                self.stats.record_retry()
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=dict(headers),
                    params=params,
                    data=data,
                    stream=stream,
                    verify=self._verify_with_env(verify),
                    proxies=self.proxies_for(url),
                    timeout=timeout or self.timeout,
                    allow_redirects=False,
                )
            except requests.exceptions.SSLError as exc:
                if (
                    verify is not False
                    and is_certificate_error(exc)
                    and self.tls.is_insecure(netloc)
                ):
                    log.warning(
                        "%s: TLS certificate is not trusted; continuing WITHOUT verification "
                        "because it is an insecure registry",
                        normalise_netloc(netloc),
                    )
                    self.allow_unverified(netloc)
                    attempt -= 1
                    if not replayable:
                        raise self._connection_error(RegistryTLSError, exc, ctx, netloc) from exc
                    continue
                raise self._connection_error(RegistryTLSError, exc, ctx, netloc) from exc
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                if not replayable or attempt >= policy.attempts:
                    raise self._connection_error(
                        RegistryConnectionError, exc, ctx, netloc, attempt
                    ) from exc
                delay = policy.backoff(attempt)
                log.info(
                    "%s: %s; retry %d/%d in %.2fs",
                    ctx.action,
                    describe_exception(exc),
                    attempt,
                    policy.attempts - 1,
                    delay,
                )
                self.sleep(delay)
                continue
            except OSError as exc:
                # requests raises a bare OSError when a CA bundle path (REQUESTS_CA_BUNDLE, say)
                # does not exist; say so as a TLS error instead of a traceback.
                raise self._connection_error(RegistryTLSError, exc, ctx, netloc) from exc
            self._note_rate_limit(response, ctx)
            status = response.status_code
            if status not in policy.retry_statuses or not replayable or attempt >= policy.attempts:
                return response
            retry_after = (
                parse_retry_after(response.headers.get("Retry-After"))
                if status in (429, 503)
                else None
            )
            if retry_after is not None and retry_after > policy.max_retry_after:
                log.warning(
                    "%s: HTTP %d asks to retry after %.0fs (more than %.0fs allowed); giving up",
                    ctx.action,
                    status,
                    retry_after,
                    policy.max_retry_after,
                )
                return response
            delay = policy.delay_for(attempt, retry_after)
            log.info(
                "%s: HTTP %d from %s; retry %d/%d in %.2fs",
                ctx.action,
                status,
                normalise_netloc(netloc),
                attempt,
                policy.attempts - 1,
                delay,
            )
            response.close()
            self.sleep(delay)

    def tls_refusal(self, netloc: str) -> str | None:
        """Why ``netloc`` does not speak TLS, or None if it does or we cannot tell.

        For insecure registries, which fall back to plain HTTP anyway: one bare handshake,
        without certificate checks, tells a plain-HTTP server apart without building and
        loading the verified context (14-18 ms of CPU) for a request that is bound to fail.
        Through a proxy, or when the connection itself fails, the normal request decides.
        """
        if self.session.trust_env or self.proxies_for(f"https://{netloc}"):
            return None
        host, port = split_netloc(netloc)
        context = shared_context(False)
        if context is None:  # pragma: no cover - an unverified context always builds
            return None
        connect_timeout = self.timeout[0] if isinstance(self.timeout, tuple) else self.timeout
        try:
            sock = socket.create_connection((host, port or 443), timeout=connect_timeout)
        except OSError:
            return None
        try:
            with context.wrap_socket(sock, server_hostname=host):
                return None
        except ssl.SSLError as exc:
            return f"TLS handshake with {normalise_netloc(netloc)}: {describe_exception(exc)}"
        except OSError:
            return None
        finally:
            sock.close()

    @staticmethod
    def _connection_error(
        cls: type[RegistryConnectionError],
        exc: BaseException,
        ctx: RequestContext,
        netloc: str,
        attempts: int = 1,
    ) -> RegistryConnectionError:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        what = "TLS handshake with" if cls is RegistryTLSError else "cannot reach"
        return cls(
            f"{what} {normalise_netloc(netloc)}{tries}: {describe_exception(exc)}",
            registry=ctx.registry,
            repository=ctx.repository,
            action=ctx.action,
        )

    def _note_rate_limit(self, response: requests.Response, ctx: RequestContext) -> None:
        limit = parse_rate_limit(response.headers)
        if limit is None:
            return
        self.rate_limit = limit
        if limit.remaining is not None and limit.remaining <= 0:
            log.warning("%s: %s pull quota exhausted (%s)", ctx.action, ctx.registry, limit)
        else:
            log.debug("%s: %s pull quota %s", ctx.action, ctx.registry, limit)
