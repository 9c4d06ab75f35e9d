"""HTTP plumbing: one requests Session, retries with backoff, per-request TLS, safe redirects.

Nothing here knows about registries: callers say what a request is for (`what`, for log lines
and errors) and what kind it is (`kind`, for the request counters), and turn the errors below
into their own.
"""

from __future__ import annotations

import http.cookiejar
import logging
import os
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from relay import safety
from relay.net import cancel, reachability
from relay.net import deadline as deadlines
from relay.net.errors import (
    AnswerTooLarge,
    ConnectionFailed,
    DeadlineExceeded,
    InvalidAnswer,
    TLSFailed,
    TooManyRedirects,
)
from relay.net.proxies import environ_proxies
from relay.net.reachability import Contact, HostUnreachable, Outage, Reachability, classify
from relay.net.retry import RetryableAnswer, RetryPolicy, parse_retry_after, retrying
from relay.net.sslcontexts import SharedContextAdapter, shared_context
from relay.net.stats import RequestStats
from relay.net.tls import TLSConfig, normalise_netloc, split_netloc
from relay.units import human_size
from relay.untrusted import count

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
# Connect: the TCP connection, and the TLS handshake and proxy CONNECT urllib3 makes within it.
# 5 s holds the first SYN and its two retransmissions (Linux's initial RTO is 1 s, doubling:
# RFC 6298 2.1, 5.5), and a TLS handshake across the Pacific takes well under a second; a host
# silent for 5 s is out of reach (the Alibaba Cloud SDK's connect timeout is 5 s too:
# docs/vendors/acr.md#endpoints-and-the-python-sdk). Read: the longest wait for any byte once
# connected. A registry starts answering a manifest, tag or token request in well under a
# second; 30 s leaves room for a loaded one, and the blob upload's final PUT, where a registry
# may move a large layer inside its storage before it answers, waits up to the whole-answer
# deadline instead (relay.registry.push). Both are settable: registries.limits.connect_timeout
# and read_timeout.
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_TIMEOUT: tuple[float, float] = (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
# A whole answer (headers and body; a streamed blob: each chunk) must arrive within this.
DEFAULT_DEADLINE = 300.0
# Bodies read into memory (JSON answers, error pages) are refused above this.
DEFAULT_MAX_BODY = 16 << 20

Timeout = float | tuple[float, float]
# A request body, or a zero-argument callable producing a fresh one for every attempt.
Body = bytes | Callable[[], Any] | Any | None
Params = Mapping[str, str] | Sequence[tuple[str, str]] | None
# Exceptions from requests that mean "no usable answer came back".
_CONNECTION_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def safe_url(url: str) -> str:
    """A URL without its query string: presigned storage URLs carry signatures there."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{normalise_netloc(parts.netloc)}"


def urljoin_safe(base: str, link: str) -> str:
    """``urljoin``, with a server's unparseable URL ("http://[::1", say) as "" for
    `checked_url` to refuse."""
    try:
        return urljoin(base, link)
    except ValueError:
        return ""


def checked_url(url: str, what: str) -> str:
    """``url`` if a server may send relay there: http(s) with a host that parses. A server
    names redirects, token realms and next pages; anything else is an InvalidAnswer."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        ok = False
    if not ok:
        raise InvalidAnswer(f"the server sent an unusable URL {safety.show(url, 100)}", action=what)
    return url


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
    # Redacted before it is cut: a secret straddling the cut would leave its prefix behind.
    text = safety.redact(" ".join(text.split()))
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
    """Sends requests with retries; shared by the registry client, token fetches and vendor
    API clients.

    Retry rules: connection errors and ``RetryPolicy.retry_statuses`` are retried with backoff
    (429/503 honour ``Retry-After``), but only when the body can be sent again
    (``replayable``); a consumed one-shot body is never resent here. A host that has not
    answered in this run gets one re-check, and once found unreachable is not asked again:
    ``reach`` is the run's memory of that (relay.net.reachability), shared by the clients of
    a run.
    """

    def __init__(
        self,
        *,
        tls: TLSConfig | None = None,
        retry: RetryPolicy | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        stats: RequestStats | None = None,
        user_agent: str = "relay",
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = cancel.pause,
        pool_size: int = 32,
        cookies: bool = True,
        deadline: float | None = DEFAULT_DEADLINE,
        max_body: int = DEFAULT_MAX_BODY,
        limits_hint: str = "",
        reach: Reachability | None = None,
    ) -> None:
        self.deadline = deadline
        self.max_body = max_body
        # Where the limits are set, for the errors that name them ("registries.limits").
        self.limits_hint = limits_hint
        self.tls = tls or TLSConfig()
        self.reach = reach if reach is not None else Reachability()
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
            # is not consulted: credentials come from relay's own providers.
            session.trust_env = False
        if not cookies:
            # A jar that accepts nothing: some APIs switch on CSRF checks for requests that
            # carry a session cookie (Harbor's `sid`), which a script never needs.
            session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self.session = session
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
            found = environ_proxies(key, os.environ)
            with self._lock:
                self._proxies[key] = found
        return found

    def _verify_with_env(self, verify: bool | str) -> bool | str:
        """requests' rule under trust_env: verify=True means REQUESTS_CA_BUNDLE or
        CURL_CA_BUNDLE when one is set (a per-host CA file still wins)."""
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
        what: str,
        kind: str,
        headers: Mapping[str, str] | None = None,
        params: Params = None,
        body: Body = None,
        replayable: bool = True,
        stream: bool = False,
        follow_redirects: bool = False,
        auth_origin: str | None = None,
        timeout: Timeout | None = None,
        retry: RetryPolicy | None = None,
        on_response: Callable[[requests.Response], None] | None = None,
        max_body: int | None = None,
    ) -> requests.Response:
        """Send one logical request; returns the final response whatever its status.

        Unless ``stream``, the body is read here, at most ``max_body`` bytes (default: the
        transport's), and the whole answer must arrive within the transport's deadline;
        a streamed body is the caller's to read (relay.net.deadline.guard each read).

        ``what`` names the request in log lines and errors ("registry/repo: get manifest v1").
        With ``follow_redirects`` redirects are followed here rather than by requests so that
        the ``Authorization`` header goes only to ``auth_origin`` (scheme+host+port): blob GETs
        are redirected to S3/CDN hosts that must not see registry tokens (and reject them).
        ``on_response`` sees every response received, retried ones included.
        """
        hdrs = {"User-Agent": self.user_agent, **(headers or {})}
        # Servers name many of the URLs relay requests (realms, redirects, next pages, upload
        # locations): each must be one requests can send to, or it is the server's error.
        checked_url(url, what)
        current_url, current_method, current_params = url, method.upper(), params
        hops = 0
        while True:
            response = self._send(
                current_method,
                current_url,
                what=what,
                kind=kind,
                headers=hdrs,
                params=current_params,
                body=body,
                replayable=replayable,
                stream=stream,
                timeout=timeout,
                policy=retry or self.retry,
                on_response=on_response,
                max_body=max_body or self.max_body,
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
                raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", action=what)
            next_url = checked_url(urljoin_safe(response.url or current_url, location), what)
            if auth_origin is None or origin(next_url) != auth_origin:
                hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
            if response.status_code == 303 and current_method != "HEAD":
                current_method, body = "GET", None
            log.debug(
                "%s: redirected from %s to %s", what, safe_url(current_url), safe_url(next_url)
            )
            current_url, current_params = next_url, None

    def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        kind: str,
        headers: Mapping[str, str],
        params: Params,
        body: Body,
        replayable: bool,
        stream: bool,
        timeout: Timeout | None,
        policy: RetryPolicy,
        on_response: Callable[[requests.Response], None] | None,
        max_body: int,
    ) -> requests.Response:
        netloc = urlsplit(url).netloc
        https = url.lower().startswith("https:")
        shown = normalise_netloc(netloc)
        host, port = split_netloc(netloc)
        started = time.monotonic()
        tried = 0
        # Waits while another thread probes a host that has not answered yet; raises
        # HostUnreachable, without a request, for a host found unreachable in this run.
        contact = self.reach.enter(
            "https" if https else "http", host, port or (443 if https else 80), action=what
        )

        def attempt(number: int) -> requests.Response:
            nonlocal tried
            tried = number
            if number > 1:
                self.stats.record_retry()
            response = self._attempt(
                method,
                url,
                netloc,
                https,
                kind,
                headers,
                params,
                body,
                replayable,
                stream,
                timeout,
                what,
                max_body,
                contact,
            )
            if on_response is not None:
                on_response(response)
            status = response.status_code
            if status in policy.retry_statuses and replayable:
                retry_after = (
                    parse_retry_after(response.headers.get("Retry-After"))
                    if status in (429, 503)
                    else None
                )
                raise RetryableAnswer(response, f"HTTP {status} from {shown}", retry_after)
            return response

        def retry_if(exc: BaseException) -> bool:
            return isinstance(exc, RetryableAnswer) or (
                replayable and isinstance(exc, _CONNECTION_ERRORS)
            )

        def tries_for(exc: BaseException) -> int:
            # A host that has not answered yet and does not resolve, refuses or stays silent:
            # one quick re-check, not the policy made for load (5xx). A reset keeps the policy:
            # a registry restarting drops connections too.
            if (
                contact.unknown
                and isinstance(exc, _CONNECTION_ERRORS)
                and self._classify(exc, timeout).kind in reachability.FINAL_KINDS
            ):
                return reachability.ATTEMPTS
            return policy.attempts

        def reason(exc: BaseException) -> str:
            if isinstance(exc, RetryableAnswer):
                return str(exc)
            failure = self._classify(exc, timeout)
            if contact.unknown:
                return f"{shown} is not answering yet ({failure.detail})"
            return f"connection to {shown} failed ({failure.text})"

        def release(exc: BaseException) -> None:
            if isinstance(exc, RetryableAnswer) and isinstance(exc.answer, requests.Response):
                exc.answer.close()

        try:
            return retrying(
                attempt,
                policy,
                retry_if=retry_if,
                what=what,
                reason=reason,
                sleep=self.sleep,
                on_retry=release,
                tries_for=tries_for,
                # The first sign that a host is out of reach is worth seeing at once.
                loud=lambda exc: contact.unknown and isinstance(exc, _CONNECTION_ERRORS),
            )
        except RetryableAnswer as exc:
            # Out of attempts (or told to wait too long): the caller reads the last answer.
            response = exc.answer
            assert isinstance(response, requests.Response)
            return response
        except _CONNECTION_ERRORS as exc:
            failure = self._classify(exc, timeout)
            if contact.unknown:
                outage = Outage(
                    shown,
                    failure.kind,
                    failure.detail,
                    tried,
                    time.monotonic() - started,
                    proxy=self._proxy_shown(url),
                    setting=failure.setting,
                )
                contact.down(outage)
                raise HostUnreachable(outage, action=what) from exc
            after = f" after {tried} attempts" if tried > 1 else ""
            raise ConnectionFailed(
                f"cannot reach {shown}{after}: {failure.text}", action=what
            ) from exc
        finally:
            contact.close()

    def _attempt(
        self,
        method: str,
        url: str,
        netloc: str,
        https: bool,
        kind: str,
        headers: Mapping[str, str],
        params: Params,
        body: Body,
        replayable: bool,
        stream: bool,
        timeout: Timeout | None,
        what: str,
        max_body: int,
        contact: Contact | None = None,
    ) -> requests.Response:
        """One try. An untrusted certificate on an insecure host is retried at once without
        verification (Docker's rule for insecure registries), not counted as a retry."""
        while True:
            cancel.check()
            verify = self.verify_for(netloc) if https else True
            if verify is False:
                _silence_insecure_request_warning()
            data = body() if callable(body) else body
            self.stats.record_request(method, kind)
            with deadlines.watching(self.deadline, normalise_netloc(netloc)) as watch:
                try:
                    response = self.session.request(
                        method,
                        url,
                        headers=dict(headers),
                        params=params,
                        data=data,
                        stream=True,
                        verify=self._verify_with_env(verify),
                        proxies=self.proxies_for(url),
                        timeout=timeout or self.timeout,
                        allow_redirects=False,
                    )
                    if contact is not None:
                        contact.heard()
                    if not stream:
                        self._read_body(response, max_body, what)
                        # A body without Content-Length ends when the connection closes, and
                        # the watch's shutdown of the socket (deadline or Ctrl-C) reads as that
                        # end: what arrived is a truncated body, not an answer.
                        if watch is not None and (watch.fired or watch.aborted):
                            response.close()
                            self._check_deadline(watch, what, None)
                    return response
                except requests.exceptions.SSLError as exc:
                    self._check_deadline(watch, what, exc)
                    if not is_certificate_error(exc) and self._classify(exc, timeout).kind in (
                        "reset",
                        "tls-timeout",
                    ):
                        # A handshake cut off or never answered: a firewall's reset, not a
                        # TLS problem. A connection failure, retried and remembered as such.
                        raise
                    if contact is not None:
                        contact.heard()  # it took part in the handshake: it is there
                    if (
                        verify is not False
                        and is_certificate_error(exc)
                        and self.tls.is_insecure(netloc)
                    ):
                        log.warning(
                            "%s: TLS certificate is not trusted; continuing WITHOUT "
                            "verification because it is an insecure registry",
                            normalise_netloc(netloc),
                        )
                        self.allow_unverified(netloc)
                        if replayable:
                            continue
                    raise TLSFailed(
                        f"TLS handshake with {normalise_netloc(netloc)}: {describe_exception(exc)}",
                        action=what,
                    ) from exc
                except _CONNECTION_ERRORS as exc:
                    self._check_deadline(watch, what, exc)
                    raise
                except OSError as exc:
                    self._check_deadline(watch, what, exc)
                    # requests raises a bare OSError when a CA bundle path (REQUESTS_CA_BUNDLE,
                    # say) does not exist; say so as a TLS error instead of a traceback.
                    raise TLSFailed(
                        f"TLS handshake with {normalise_netloc(netloc)}: {describe_exception(exc)}",
                        action=what,
                    ) from exc
                except (requests.exceptions.RequestException, ValueError) as exc:
                    # Anything else requests refuses in an answer: an invalid header, or a
                    # Location it cannot parse ("http://[::1"), which it reads even when
                    # relay follows redirects itself.
                    self._check_deadline(watch, what, exc)
                    raise InvalidAnswer(
                        f"unusable answer: {describe_exception(exc)}", action=what
                    ) from exc

    def _check_deadline(
        self, watch: deadlines.Watch | None, what: str, exc: Exception | None
    ) -> None:
        if watch is not None and watch.aborted:
            raise cancel.Interrupted() from exc
        if watch is not None and watch.fired:
            raise DeadlineExceeded(
                f"no complete answer within {watch.seconds:g} s: the server sends too slowly"
                + (f" ({self.limits_hint}.deadline sets this limit)" if self.limits_hint else ""),
                action=what,
            ) from exc

    def _classify(self, exc: BaseException, timeout: Timeout | None) -> reachability.Failure:
        value = timeout or self.timeout
        connect, read = value if isinstance(value, tuple) else (value, value)
        return classify(exc, connect=connect, read=read, hint=self.limits_hint)

    def _proxy_shown(self, url: str) -> str:
        """The proxy a request to ``url`` goes through, as host[:port] (no credentials)."""
        proxies = self.proxies_for(url)
        found = proxies.get(urlsplit(url).scheme.lower()) or proxies.get("all") or ""
        if not found:
            return ""
        try:
            parts = urlsplit(found if "://" in found else f"http://{found}")
            return normalise_netloc(parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        except ValueError:
            return "the proxy"

    def _read_body(self, response: requests.Response, limit: int, what: str) -> None:
        """Read the body into ``response.content`` as requests would, refusing more than
        ``limit`` bytes (announced or received)."""
        length = count(response.headers.get("Content-Length"))
        if length is not None and length > limit:
            response.close()
            raise self.too_large(limit, what, f"announces {length} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(64 << 10):
            size += len(chunk)
            if size > limit:
                response.close()
                raise self.too_large(limit, what, "kept sending")
            chunks.append(chunk)
        response._content = b"".join(chunks)
        # What requests' own .content sets, so close() hands the connection back to the pool.
        response._content_consumed = True  # type: ignore[attr-defined]  # not in the stubs

    def read_error_body(self, response: requests.Response, limit: int = 64 << 10) -> bytes:
        """Up to ``limit`` bytes of a streamed error answer, for its message; the rest is
        dropped with the connection. Never raises: an error body is a courtesy."""
        if response._content is not False:  # already read (not streamed)
            return response._content or b""
        chunks: list[bytes] = []
        size = 0
        try:
            with deadlines.guard(response, self.deadline, urlsplit(response.url or "").netloc):
                for chunk in response.iter_content(16 << 10):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= limit:
                        break
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            pass
        response.close()
        body = b"".join(chunks)[:limit]
        response._content = body
        return body

    def too_large(self, limit: int, what: str, detail: str) -> AnswerTooLarge:
        hint = f"; {self.limits_hint} sets the limits" if self.limits_hint else ""
        return AnswerTooLarge(
            f"the answer is larger than the {human_size(limit)} relay reads ({detail}){hint}",
            action=what,
        )

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
        if self.reach.outage("https", host, port or 443) is not None:
            return None  # found out already: the request says so without a connection
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
