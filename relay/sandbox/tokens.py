"""In-process bearer-token server for distribution 2.8 ``auth.token`` registries.

This plays the part that Harbor's ``/service/token`` or Docker Hub's ``auth.docker.io`` play in
production: the registry answers ``401 Bearer realm=...,service=...,scope=...`` and the client
fetches a JWT here, authenticating with HTTP Basic (or anonymously).

Why in-process and not a subprocess: tests assert on how many token requests a client made (a
client that re-fetches a token per blob is a real performance bug against Harbor), and a
thread in the test process lets them read and reset the counters directly.

Token format (what distribution 2.8 ``registry/auth/token`` accepts):

* RS256-signed JWT whose header carries ``x5c`` = [signing certificate, base64 DER]. The
  registry verifies that certificate against its ``rootcertbundle``; the certificate is
  self-signed, so the bundle is just that certificate
  (see :meth:`TokenServer.write_rootcertbundle`).
* claims ``iss`` (must equal the registry's ``issuer``), ``aud`` (must equal its ``service``),
  ``exp``/``nbf``/``iat``, ``sub`` and ``access`` = [{type, name, actions}].
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from relay.sandbox.common.httpserver import FakeServer, server_context

# Actions a distribution 2.8 registry asks for: pull (GET/HEAD), push (uploads, manifest PUT),
# delete (DELETE manifest/blob). "*" on registry:catalog is the catalog listing.
ALL_REPO_ACTIONS = frozenset({"pull", "push", "delete"})


@dataclass
class TokenUser:
    """One account on the token server and what it may do."""

    password: str
    # Actions granted on matching repositories. A user with only {"pull"} is a read-only robot,
    # the typical Harbor "pull secret" account.
    actions: frozenset[str] = ALL_REPO_ACTIONS
    # Repository-name prefixes the grant applies to; "" matches every repository.
    repositories: tuple[str, ...] = ("",)
    # Whether "registry:catalog:*" is granted (GET /v2/_catalog).
    catalog: bool = True


@dataclass(frozen=True)
class TokenRequestRecord:
    """One request to the token endpoint, kept so tests can assert on what a client asked for."""

    method: str
    account: str | None  # the Basic-auth user name, None when anonymous
    scopes: tuple[str, ...]  # the scopes as requested, unparsed
    granted: tuple[dict[str, Any], ...]  # the "access" claim that was issued
    status: int  # HTTP status returned (200, 400 or 401)


@dataclass
class _Stats:
    requests: int = 0
    issued: int = 0
    denied: int = 0
    log: list[TokenRequestRecord] = field(default_factory=list)


def generate_signing_identity(common_name: str = "relay-test-token-signer") -> tuple[bytes, bytes]:
    """Return (private key PEM, self-signed certificate PEM) for signing tokens.

    The certificate is marked as a CA and self-signed because distribution verifies the ``x5c``
    leaf against ``rootcertbundle`` with Go's x509 verifier, and a self-signed root that is in the
    pool is the simplest chain that passes.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Back-dated so that a clock that is a little off does not make the cert "not yet valid".
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def parse_scope(scope: str) -> tuple[str, str, tuple[str, ...]] | None:
    """Split ``repository:name:pull,push`` into (type, name, actions).

    Names may contain ':' (``repository:127.0.0.1:5000/foo:pull`` from sloppy clients), so the
    actions are split off the right and the type off the left.
    """
    type_, sep, rest = scope.partition(":")
    if not sep:
        return None
    name, sep, actions = rest.rpartition(":")
    if not sep or not name:
        return None
    # "repository(plugin)" style resource classes: drop the class, keep the type.
    type_ = type_.split("(", 1)[0]
    return type_, name, tuple(a for a in actions.split(",") if a)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so clients can keep the connection alive like they would with Harbor.
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        # Silence the per-request stderr line; the TokenServer keeps its own structured log.
        pass

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        self._serve(query, "GET")

    def do_POST(self) -> None:
        # OAuth2 password grant (containerd / docker CLI with --password-stdin use it when the
        # realm supports it). Form fields: grant_type, username, password, service, scope.
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        form = urllib.parse.parse_qs(body)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        for key, values in form.items():
            query.setdefault(key, []).extend(values)
        self._serve(query, "POST", form=form)

    def _serve(
        self,
        query: dict[str, list[str]],
        method: str,
        form: dict[str, list[str]] | None = None,
    ) -> None:
        owner = self.server.owner
        path = urllib.parse.urlsplit(self.path).path
        if path != owner.token_path:
            self._send_json(404, {"errors": [{"code": "NOT_FOUND", "message": path}]})
            return
        # A scope parameter may repeat and each may hold several space-separated scopes.
        scopes = tuple(s for value in query.get("scope", []) for s in value.split() if s)
        account, password = self._credentials(form)
        status, payload = owner._handle(method, query, scopes, account, password)
        self._send_json(status, payload)

    def _credentials(self, form: dict[str, list[str]] | None) -> tuple[str | None, str | None]:
        if form is not None and form.get("grant_type", [""])[0] == "password":
            return form.get("username", [None])[0], form.get("password", [None])[0]
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return None, None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            # Malformed Basic header: treat as wrong credentials, not as anonymous, so a client
            # bug does not silently degrade to anonymous access.
            return "", ""
        user, _, pw = decoded.partition(":")
        return user, pw

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class TokenServer:
    """A bearer-token endpoint on 127.0.0.1 served from a daemon thread.

    Counters (``requests``, ``issued``, ``denied``) and ``log`` are thread-safe snapshots;
    ``reset()`` zeroes them so a test can measure only its own traffic.
    """

    def __init__(
        self,
        *,
        users: dict[str, TokenUser] | None = None,
        service: str = "relay-test-registry",
        issuer: str = "relay-test-token-issuer",
        anonymous_pull: Sequence[str] = (),
        tls_cert: str | None = None,
        tls_key: str | None = None,
        ttl: int = 300,
        host: str = "127.0.0.1",
        token_path: str = "/token",
    ) -> None:
        self.users: dict[str, TokenUser] = dict(users or {})
        self.service = service
        self.issuer = issuer
        # Repository-name prefixes on which anonymous clients get "pull" (e.g. ("public/",)).
        self.anonymous_pull: tuple[str, ...] = tuple(anonymous_pull)
        # Token lifetime in seconds; tests of token refresh may lower it at run time.
        self.ttl = ttl
        self.host = host
        self.token_path = token_path
        self._tls = (tls_cert, tls_key)
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        self.signing_key_pem, self.signing_cert_pem = generate_signing_identity()
        cert = x509.load_pem_x509_certificate(self.signing_cert_pem)
        self._x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self._lock = threading.Lock()
        self._stats = _Stats()
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> TokenServer:
        if self._server is not None:
            return self
        ctx: ssl.SSLContext | None = None
        if self._tls[0] is not None and self._tls[1] is not None:
            ctx = server_context(self._tls[0], self._tls[1])
        # Port 0: the kernel picks a free port, and we keep the bound socket (no race).
        self._server = FakeServer((self.host, 0), _Handler, self, ctx)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"token-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("token server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._tls[0] is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def realm(self) -> str:
        """The value for the registry's ``auth.token.realm``."""
        return self.url + self.token_path

    def write_rootcertbundle(self, path: str) -> str:
        """Write the signing certificate where the registry's ``rootcertbundle`` points."""
        with open(path, "wb") as fh:
            fh.write(self.signing_cert_pem)
        return path

    # -- counters --------------------------------------------------------------------------

    @property
    def requests(self) -> int:
        """Token endpoint requests received since the last reset (any outcome)."""
        with self._lock:
            return self._stats.requests

    @property
    def issued(self) -> int:
        """Tokens issued (HTTP 200) since the last reset."""
        with self._lock:
            return self._stats.issued

    @property
    def denied(self) -> int:
        """Requests refused (bad credentials or bad request) since the last reset."""
        with self._lock:
            return self._stats.denied

    @property
    def log(self) -> list[TokenRequestRecord]:
        with self._lock:
            return list(self._stats.log)

    def reset(self) -> None:
        with self._lock:
            self._stats = _Stats()

    # -- token logic -----------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        password: str,
        actions: Iterable[str] = ALL_REPO_ACTIONS,
        repositories: tuple[str, ...] = ("",),
        catalog: bool = True,
    ) -> None:
        self.users[name] = TokenUser(password, frozenset(actions), repositories, catalog)

    def grant(self, account: str | None, scope: str) -> dict[str, Any] | None:
        """The access entry ``account`` gets for one requested scope, or None for nothing."""
        parsed = parse_scope(scope)
        if parsed is None:
            return None
        type_, name, wanted = parsed
        user = self.users.get(account) if account is not None else None
        allowed: set[str] = set()
        if type_ == "repository":
            if user is not None and any(name.startswith(p) for p in user.repositories):
                allowed |= user.actions
            if any(name.startswith(p) for p in self.anonymous_pull):
                # Anonymous pull is also granted to authenticated users, as on Harbor public
                # projects: a read-only robot can still pull public images.
                allowed.add("pull")
        elif type_ == "registry" and name == "catalog":
            if user is not None and user.catalog:
                allowed.add("*")
        actions = [a for a in wanted if a in allowed or (a == "*" and allowed >= ALL_REPO_ACTIONS)]
        if not actions:
            # Like Docker Hub and Harbor: the token is still issued, it just lacks the access;
            # the registry then answers 401 insufficient_scope / 403 denied.
            return None
        return {"type": type_, "name": name, "actions": actions}

    def _handle(
        self,
        method: str,
        query: dict[str, list[str]],
        scopes: tuple[str, ...],
        account: str | None,
        password: str | None,
    ) -> tuple[int, dict[str, Any]]:
        service = query.get("service", [None])[0]
        status: int
        payload: dict[str, Any]
        granted: tuple[dict[str, Any], ...] = ()
        if service is not None and service != self.service:
            # A client that echoes the wrong service would get tokens the registry rejects;
            # fail loudly here instead so the test points at the real bug.
            status = 400
            payload = _error("DENIED", f"unknown service {service!r}")
        elif account is not None and (
            account not in self.users
            or not secrets.compare_digest(
                self.users[account].password.encode(), (password or "").encode()
            )
        ):
            status = 401
            payload = _error("UNAUTHORIZED", "invalid username/password")
        else:
            entries = [self.grant(account, s) for s in scopes]
            granted = tuple(e for e in entries if e is not None)
            status = 200
            payload = self._issue(account, granted)
        with self._lock:
            self._stats.requests += 1
            if status == 200:
                self._stats.issued += 1
            else:
                self._stats.denied += 1
            self._stats.log.append(TokenRequestRecord(method, account, scopes, granted, status))
        return status, payload

    def _issue(self, account: str | None, access: tuple[dict[str, Any], ...]) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": account or "",
            "aud": self.service,
            # nbf a little in the past: distribution allows 60 s of leeway, but a registry and
            # a test on one machine should never need it.
            "nbf": now - 5,
            "iat": now,
            "exp": now + self.ttl,
            "jti": secrets.token_hex(16),
            "access": list(access),
        }
        token = jwt.encode(
            claims,
            self.signing_key_pem,
            algorithm="RS256",
            headers={"x5c": self._x5c},
        )
        issued_at = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        # Both "token" (Docker registry token spec) and "access_token" (OAuth2) carry the same
        # JWT, as Docker Hub and Harbor do.
        return {
            "token": token,
            "access_token": token,
            "expires_in": self.ttl,
            "issued_at": issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def _error(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "detail": None}]}


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on host:port (used by tests to check teardown)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) != 0
