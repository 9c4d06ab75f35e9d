"""Registry authentication: WWW-Authenticate parsing, scopes, bearer tokens and their cache.

The flow (Docker token auth): ``GET /v2/`` answers 401 with ``Bearer realm=..,service=..``; the
client asks the realm for a token for the scopes it needs (``repository:<name>:pull,push``),
with Basic credentials if it has any, and sends ``Authorization: Bearer <token>``. A 401 later on
(token expired, or a pull token used for a push) carries a challenge naming the scope needed;
the client fetches a token for it and retries once.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import requests

from relay import safety
from relay.net.transport import Transport, origin, safe_url
from relay.registry.context import RequestContext, send
from relay.registry.credentials import Credential, CredentialProvider
from relay.registry.errors import (
    AuthenticationError,
    ProtocolError,
    error_from_response,
)
from relay.untrusted import load_json

log = logging.getLogger("relay.registry")

# Sent as client_id in OAuth2 refresh-token grants (identity tokens from `docker login`).
CLIENT_ID = "relay"
DEFAULT_TOKEN_LIFETIME = 60  # seconds; the token spec's default when expires_in is absent

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass
class Challenge:
    """One challenge from a ``WWW-Authenticate`` header; ``scheme`` is lower-case."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.params.get("scope", "").split())

    @property
    def error(self) -> str | None:
        return self.params.get("error")

    def without_scope(self) -> Challenge:
        """The registry-wide part (realm, service) worth remembering between requests."""
        keep = {k: v for k, v in self.params.items() if k in ("realm", "service")}
        return Challenge(self.scheme, keep)


def _skip(value: str, i: int, chars: str) -> int:
    while i < len(value) and value[i] in chars:
        i += 1
    return i


def _quoted(value: str, i: int) -> tuple[str, int]:
    """Parse a quoted-string starting at the opening quote; returns (text, index after it)."""
    out: list[str] = []
    i += 1
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    return "".join(out), i


def parse_www_authenticate(value: str | None) -> list[Challenge]:
    """All challenges in a header value (requests joins repeated headers with ", ").

    ``Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="a b"``
    → ``[Challenge("bearer", {"realm": ..., "service": ..., "scope": "a b"})]``.
    """
    if not value:
        return []
    challenges: list[Challenge] = []
    current: Challenge | None = None
    i = 0
    while i < len(value):
        i = _skip(value, i, " \t,")
        match = _TOKEN_RE.match(value, i)
        if not match:
            i += 1
            continue
        name = match.group(0)
        j = _skip(value, match.end(), " \t")
        if j < len(value) and value[j] == "=" and current is not None:
            j = _skip(value, j + 1, " \t")
            if j < len(value) and value[j] == '"':
                text, i = _quoted(value, j)
            else:
                end = j
                while end < len(value) and value[end] not in ", \t":
                    end += 1
                text, i = value[j:end], end
            current.params[name.lower()] = text
        else:
            current = Challenge(name.lower())
            challenges.append(current)
            i = match.end()
    return challenges


def select_challenge(challenges: Iterable[Challenge]) -> Challenge | None:
    """Bearer if offered (it is what scopes work with), else Basic, else None."""
    found = {c.scheme: c for c in challenges}
    return found.get("bearer") or found.get("basic")


# --- scopes -------------------------------------------------------------------------------


def repository_scope(repository: str, *actions: str) -> str:
    return f"repository:{repository}:{','.join(actions)}"


def _parse_scope(scope: str) -> tuple[str, str, frozenset[str]] | None:
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not name:
        return None
    return kind, name, frozenset(a for a in actions.split(",") if a)


def merge_scopes(*groups: Iterable[str]) -> tuple[str, ...]:
    """Union of scopes, one entry per resource, actions merged: a canonical, sortable key."""
    merged: dict[tuple[str, str], set[str]] = {}
    unparsed: set[str] = set()
    for group in groups:
        for scope in group:
            parsed = _parse_scope(scope)
            if parsed is None:
                unparsed.add(scope)
                continue
            kind, name, actions = parsed
            merged.setdefault((kind, name), set()).update(actions)
    out = [f"{k}:{n}:{','.join(sorted(a))}" for (k, n), a in merged.items()]
    return tuple(sorted(out + sorted(unparsed)))


def scopes_cover(have: Iterable[str], want: Iterable[str]) -> bool:
    """True when a token for ``have`` is good for everything in ``want``."""
    granted: dict[tuple[str, str], frozenset[str]] = {}
    raw: set[str] = set()
    for scope in have:
        parsed = _parse_scope(scope)
        if parsed is None:
            raw.add(scope)
        else:
            kind, name, actions = parsed
            granted[(kind, name)] = granted.get((kind, name), frozenset()) | actions
    for scope in want:
        parsed = _parse_scope(scope)
        if parsed is None:
            if scope not in raw:
                return False
            continue
        kind, name, actions = parsed
        have_actions = granted.get((kind, name))
        if have_actions is None:
            return False
        if "*" not in have_actions and not actions <= have_actions:
            return False
    return True


# --- tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A bearer token; ``expires_at`` is on the cache's (monotonic) clock."""

    value: str = field(repr=False)
    expires_at: float
    scopes: tuple[str, ...]
    lifetime: float = DEFAULT_TOKEN_LIFETIME

    def valid(self, now: float) -> bool:
        # Refresh a little early so a token does not expire between check and use.
        margin = min(30.0, self.lifetime / 10)
        return now < self.expires_at - margin


TokenKey = tuple[str, ...]


class TokenCache:
    """Thread-safe bearer-token cache with single-flight fetching.

    Keyed by an identity (realm, service, user) and a canonical scope set. A cached token whose
    scopes cover the request is reused (a push token serves later pulls). Concurrent callers
    needing the same scope set wait for one fetch instead of each asking the token server.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[tuple[TokenKey, tuple[str, ...]], Token] = {}
        self._flights: dict[tuple[TokenKey, tuple[str, ...]], threading.Lock] = {}
        self.fetches = 0

    def _find(self, identity: TokenKey, scopes: tuple[str, ...], stale: str | None) -> Token | None:
        now = self.clock()
        exact = self._tokens.get((identity, scopes))
        if exact is not None and exact.valid(now) and exact.value != stale:
            return exact
        for (ident, _), token in self._tokens.items():
            if (
                ident == identity
                and token.valid(now)
                and token.value != stale
                and scopes_cover(token.scopes, scopes)
            ):
                return token
        return None

    def get(
        self,
        identity: TokenKey,
        scopes: Iterable[str],
        fetch: Callable[[tuple[str, ...]], Token],
        stale: str | None = None,
    ) -> Token:
        """A valid token for ``scopes``; ``stale`` is a token the registry just refused."""
        wanted = merge_scopes(scopes)
        key = (identity, wanted)
        with self._lock:
            token = self._find(identity, wanted, stale)
            if token is not None:
                return token
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            with self._lock:
                # Another thread may have fetched while we waited for the flight lock.
                token = self._find(identity, wanted, stale)
                if token is not None:
                    return token
            token = fetch(wanted)
            with self._lock:
                now = self.clock()
                self._tokens = {
                    k: t
                    for k, t in self._tokens.items()
                    if t.valid(now) and (stale is None or t.value != stale)
                }
                self._tokens[key] = token
                self.fetches += 1
            return token

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


def basic_header(credential: Credential) -> str:
    raw = f"{credential.username}:{credential.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def fetch_token(
    transport: Transport,
    challenge: Challenge,
    scopes: tuple[str, ...],
    credential: Credential | None,
    ctx: RequestContext,
    *,
    clock: Callable[[], float] = time.monotonic,
    plain_http_ok: bool = False,
    max_bytes: int = 1 << 20,
    realm_hosts: frozenset[str] | None = None,
) -> Token:
    """Ask the challenge's realm for a token covering ``scopes``. Credentials go to a
    plain-HTTP realm only with ``plain_http_ok`` (the registry itself is plain HTTP), and,
    when ``realm_hosts`` is given, only to a realm on one of those hosts."""
    realm = challenge.realm
    if not realm:
        raise ctx.error(
            "Bearer challenge without a realm",
            ProtocolError,
        )
    try:
        parts = urlsplit(realm)
        realm_ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # "http://[::1" and other unparseable URLs
        realm_ok = False
    if not realm_ok:
        raise ctx.error(
            f"the registry names an invalid token realm {safety.show(realm)}", ProtocolError
        )
    if credential is not None and parts.scheme == "http" and not plain_http_ok:
        # Basic credentials (or a refresh token) in clear text to a host an HTTPS registry
        # named: anyone on the path could read them. Docker sends them; relay does not.
        raise ctx.error(
            f"the registry names the plain-HTTP token realm {safe_url(realm)}; relay sends "
            f"{credential.source or 'credentials'} in clear text only to a registry that is "
            "itself plain HTTP (an insecure registry), and this one is not",
            AuthenticationError,
        )
    if credential is not None and not realm_host_allowed(realm, realm_hosts):
        # Checked on every challenge, not only the ping's: a registry (or a proxy before it)
        # may name its own token service on /v2/ and another host on a later 401.
        raise ctx.error(
            f"the registry names the token realm {safe_url(realm)}, on none of the hosts "
            f"{', '.join(sorted(realm_hosts or ()))}; relay sends "
            f"{credential.source or 'credentials'} only to those",
            AuthenticationError,
        )
    token_ctx = ctx.then("(token)")
    service = challenge.service
    response: requests.Response
    if credential is not None and credential.identity_token:
        # OAuth2 refresh-token grant, what Docker does with an identity token.
        form = {
            "grant_type": "refresh_token",
            "refresh_token": credential.identity_token,
            "client_id": CLIENT_ID,
        }
        if service:
            form["service"] = service
        if scopes:
            form["scope"] = " ".join(scopes)
        response = send(
            transport,
            "POST",
            realm,
            ctx=token_ctx,
            kind="token",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=urlencode(form).encode("ascii"),
            max_body=max_bytes,
        )
    else:
        params: list[tuple[str, str]] = []
        if service:
            params.append(("service", service))
        params.extend(("scope", s) for s in scopes)
        headers: dict[str, str] = {}
        if credential is not None:
            params.append(("account", credential.username))
            headers["Authorization"] = basic_header(credential)
        response = send(
            transport,
            "GET",
            realm,
            ctx=token_ctx,
            kind="token",
            headers=headers,
            params=params,
            follow_redirects=True,
            auth_origin=origin(realm),
            max_body=max_bytes,
        )
    who = (
        f"credentials of user {credential.username!r} ({credential.source})"
        if credential is not None and credential.username
        else "an identity token"
        if credential is not None
        else "an anonymous request"
    )
    realm_host = urlsplit(realm).netloc
    if response.status_code in (401, 403):
        err = error_from_response(
            response,
            registry=ctx.registry,
            repository=ctx.repository,
            action=token_ctx.action,
            reason=f"token server {realm_host} rejected {who} for scope {' '.join(scopes) or '-'}",
        )
        raise AuthenticationError(
            err.reason,
            registry=ctx.registry,
            repository=ctx.repository,
            action=token_ctx.action,
            status=response.status_code,
            errors=err.errors,
        )
    if response.status_code != 200:
        raise error_from_response(
            response,
            registry=ctx.registry,
            repository=ctx.repository,
            action=token_ctx.action,
            reason=f"token server {safe_url(realm)} failed",
        )
    try:
        data = load_json(response.content)
    except ValueError:
        data = None
    value = None
    if isinstance(data, dict):
        # The spec allows either field; OAuth2 servers send access_token, Docker's send both.
        value = data.get("access_token") or data.get("token")
    if not isinstance(value, str) or not value:
        raise ProtocolError(
            f"token server {realm_host} returned no token",
            registry=ctx.registry,
            repository=ctx.repository,
            action=token_ctx.action,
        )
    safety.add_secret(value)
    lifetime = float(DEFAULT_TOKEN_LIFETIME)
    raw_expiry = data.get("expires_in") if isinstance(data, dict) else None
    if raw_expiry is not None:
        try:
            lifetime = max(1.0, float(raw_expiry))
        except (TypeError, ValueError):
            pass
    log.debug(
        "%s: got a token from %s for %s (%s), valid %.0fs",
        ctx.registry,
        realm_host,
        " ".join(scopes) or "no scope",
        who,
        lifetime,
    )
    return Token(value=value, expires_at=clock() + lifetime, scopes=scopes, lifetime=lifetime)


def realm_host_allowed(realm: str | None, hosts: frozenset[str] | None) -> bool:
    """Whether a token realm may receive a credential bound to ``hosts`` (host names, any
    port; None: any host). No realm (Basic auth) means the registry itself."""
    if hosts is None or not realm:
        return True
    try:
        parts = urlsplit(realm)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    return parts.scheme in ("https", "http") and host in {h.lower() for h in hosts}


class Authenticator:
    """Produces the Authorization header for a registry and reacts to 401 challenges."""

    def __init__(
        self,
        registry: str,
        transport: Transport,
        credentials: CredentialProvider | None,
        cache: TokenCache | None = None,
        *,
        max_token_bytes: int = 1 << 20,
        realm_hosts: frozenset[str] | None = None,
    ) -> None:
        self.registry = registry
        self.max_token_bytes = max_token_bytes
        # The hosts whose token service may receive this registry's credential (None: the
        # realm the registry names, as Docker does).
        self.realm_hosts = realm_hosts
        self.transport = transport
        self.credentials = credentials
        self.cache = cache or TokenCache()
        # Set by the client once it knows the registry speaks plain HTTP (an insecure
        # registry): then its realm may too, as nothing is protected on that path anyway.
        self.plain_http = False
        self._challenge: Challenge | None = None
        self._lock = threading.Lock()

    @property
    def challenge(self) -> Challenge | None:
        with self._lock:
            return self._challenge

    def set_challenge(self, challenge: Challenge | None) -> None:
        with self._lock:
            self._challenge = challenge.without_scope() if challenge else None

    def credential(self, repository: str | None) -> Credential | None:
        if self.credentials is None:
            return None
        return self.credentials.get(self.registry, repository)

    def describe(self, repository: str | None) -> str:
        """Who we are acting as, for error messages (never the secret)."""
        cred = self.credential(repository)
        if cred is None:
            return f"anonymously (no credentials found for {self.registry})"
        if cred.username:
            return f"as user {cred.username!r} from {cred.source or 'given credentials'}"
        return f"with an identity token from {cred.source or 'given credentials'}"

    def _token(
        self,
        challenge: Challenge,
        cred: Credential | None,
        scopes: Iterable[str],
        ctx: RequestContext,
        stale: str | None,
    ) -> Token:
        # The registry is part of the key: a token that registry A's flow obtained is never
        # sent to registry B, even when B names A's realm and service (a look-alike or a
        # mirror can), and even for the same user name.
        identity: TokenKey = (
            self.registry,
            challenge.realm or "",
            challenge.service or "",
            cred.username if cred else "",
            "identity" if cred and cred.identity_token else "basic" if cred else "anonymous",
        )
        return self.cache.get(
            identity,
            scopes,
            lambda wanted: fetch_token(
                self.transport,
                challenge,
                wanted,
                cred,
                ctx,
                clock=self.cache.clock,
                plain_http_ok=self.plain_http,
                max_bytes=self.max_token_bytes,
                realm_hosts=self.realm_hosts,
            ),
            stale=stale,
        )

    def authorization(
        self, repository: str | None, scopes: Iterable[str], ctx: RequestContext
    ) -> str | None:
        """The header value to send, or None when the registry has not asked for auth."""
        challenge = self.challenge
        if challenge is None:
            return None
        cred = self.credential(repository)
        if challenge.scheme == "basic":
            return basic_header(cred) if cred is not None and cred.username else None
        if challenge.scheme == "bearer":
            token = self._token(challenge, cred, scopes, ctx, stale=None)
            return f"Bearer {token.value}"
        return None

    def handle_unauthorized(
        self,
        response: requests.Response,
        repository: str | None,
        scopes: Iterable[str],
        sent: str | None,
        ctx: RequestContext,
    ) -> bool:
        """React to a 401. True means a retry with a fresh Authorization header may succeed."""
        challenge = select_challenge(
            parse_www_authenticate(response.headers.get("WWW-Authenticate"))
        )
        if challenge is None:
            return False
        self.set_challenge(challenge)
        cred = self.credential(repository)
        if challenge.scheme == "basic":
            # Retrying helps only if we did not already send Basic credentials.
            return cred is not None and not (sent or "").startswith("Basic ")
        wanted = merge_scopes(scopes, challenge.scopes)
        stale = sent[len("Bearer ") :] if sent and sent.startswith("Bearer ") else None
        log.debug(
            "%s: 401 (%s); fetching a token for %s",
            ctx.action,
            challenge.error or "no error given",
            " ".join(wanted),
        )
        self._token(challenge.without_scope(), cred, wanted, ctx, stale=stale)
        return True
