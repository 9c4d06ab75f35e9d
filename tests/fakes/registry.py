"""An in-memory OCI registry on 127.0.0.1 with fault injection, for relay.registry's tests.

The real distribution 2.8 fixtures (tests/fixtures/registries.py) cannot show some behaviour:
5xx/429 bursts, dropped connections mid-blob, blob redirects to another host, relative upload
Locations with query strings, servers that ignore Range... This fake can. It listens on
127.0.0.1 only. The few tests at the bottom check the fake itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from relay.sandbox.common.httpserver import FakeServer, server_context
from tests.fixtures.registries import TestPKI

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _ShortBody(Exception):
    """The request body ended before its Content-Length."""


@dataclass
class Fault:
    """Answer the next ``times`` requests matching method + path regex with this instead."""

    method: str
    path: str  # regex, searched in the path (no query)
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    times: int = 1
    drop: bool = False  # close the connection without answering
    truncate: int | None = None  # blob GETs: send this many bytes of the real body, then drop


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body_size: int


@dataclass
class StoredManifest:
    content: bytes
    content_type: str | None  # None: omit the header
    digest_header: str | None  # None: omit; otherwise what Docker-Content-Digest says


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                line = self.rfile.readline().strip()
                size = int(line.split(b";", 1)[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            # The client hung up mid-body: a real registry fails the upload (unexpected EOF).
            raise _ShortBody(f"got {len(data)} of {length} bytes")
        return data

    def reply(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        head: bool = False,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        hdrs = dict(headers or {})
        hdrs.setdefault("Content-Length", str(len(body) if length is None else length))
        for key, value in hdrs.items():
            self.send_header(key, value)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def reply_json(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        self.reply(status, json.dumps(doc).encode(), hdrs, head=self.command == "HEAD")

    def error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self.reply_json(
            status, {"errors": [{"code": code, "message": message, "detail": None}]}, headers
        )

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass


class _RegistryHandler(_Base):
    def do_GET(self) -> None:
        self.dispatch()

    def do_HEAD(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def do_PATCH(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def dispatch(self) -> None:
        reg: FakeRegistry = self.server.owner
        parts = urllib.parse.urlsplit(self.path)
        path, query = parts.path, urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        try:
            body = b"" if self.command in ("GET", "HEAD", "DELETE") else self.read_body()
        except _ShortBody:
            self.close_connection = True
            return
        reg.record(Recorded(self.command, path, parts.query, dict(self.headers.items()), len(body)))
        if path == "/token":
            self.token(query, body)
            return
        fault = reg.take_fault(self.command, path)
        if fault is not None and fault.truncate is None:
            if fault.drop:
                self.drop()
            else:
                self.reply(fault.status, fault.body, fault.headers, head=self.command == "HEAD")
            return
        if path in ("/v2", "/v2/"):
            if self.authorize(None, ()):
                self.reply_json(200, {}, {"Docker-Distribution-Api-Version": "registry/2.0"})
            return
        match = re.match(r"^/v2/(.+)/(manifests|blobs|tags)/(.*)$", path)
        if not match:
            self.error(404, "NOT_FOUND", "no route")
            return
        repo, what, rest = match.groups()
        if what == "blobs" and rest.startswith("uploads"):
            if self.authorize(repo, ("pull", "push"), query):
                self.uploads(reg, repo, rest[len("uploads") :].strip("/"), query, body)
            return
        write = self.command in ("PUT", "POST", "PATCH", "DELETE")
        if not self.authorize(repo, ("pull", "push") if write else ("pull",)):
            return
        if what == "manifests":
            self.manifests(reg, repo, rest, body)
        elif what == "blobs":
            self.blobs(reg, repo, rest, fault)
        else:
            self.tags(reg, repo, query)

    # -- auth --------------------------------------------------------------------------------

    def authorize(
        self,
        repo: str | None,
        actions: tuple[str, ...],
        query: dict[str, list[str]] | None = None,
    ) -> bool:
        reg: FakeRegistry = self.server.owner
        header = self.headers.get("Authorization", "")
        if reg.auth == "none":
            return True
        if reg.auth == "basic":
            if header.startswith("Basic "):
                user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                if reg.users.get(user) == pw:
                    return True
            self.error(401, "UNAUTHORIZED", "authentication required", reg.basic_challenge())
            return False
        scope = f"repository:{repo}:{','.join(actions)}" if repo else None
        token = header[7:] if header.startswith("Bearer ") else None
        granted = reg.token_grants(token)
        if granted is not None:
            if repo is None:
                return True
            have = granted.get(repo, set())
            if set(actions) <= have:
                return True
        self.error(
            401,
            "UNAUTHORIZED",
            "authentication required",
            reg.bearer_challenge(scope, insufficient=granted is not None),
        )
        return False

    def token(self, query: dict[str, list[str]], body: bytes) -> None:
        reg: FakeRegistry = self.server.owner
        account = None
        if self.command == "POST":
            form = urllib.parse.parse_qs(body.decode())
            if form.get("refresh_token", [""])[0] != reg.identity_token:
                self.reply_json(401, {"error": "invalid_grant"})
                return
            account = "relay"
            scopes = form.get("scope", [""])[0].split()
        else:
            scopes = [s for v in query.get("scope", []) for s in v.split()]
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                if reg.users.get(user) != pw:
                    reg.count_token(None)
                    self.reply_json(401, {"details": "incorrect username or password"})
                    return
                account = user
        if reg.token_delay:
            time.sleep(reg.token_delay)
        grants: dict[str, set[str]] = {}
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, acts = rest.rpartition(":")
            if kind != "repository":
                continue
            allowed = {"pull", "push", "delete"} if account else set()
            if any(name.startswith(p) for p in reg.anonymous_pull):
                allowed.add("pull")
            grants.setdefault(name, set()).update(set(acts.split(",")) & allowed)
        value = reg.issue(grants)
        reg.count_token(tuple(scopes))
        doc: dict[str, Any] = {"expires_in": reg.token_ttl}
        if reg.token_field in ("token", "both"):
            doc["token"] = value
        if reg.token_field in ("access_token", "both"):
            doc["access_token"] = value
        self.reply_json(200, doc)

    # -- routes --------------------------------------------------------------------------------

    def manifests(self, reg: FakeRegistry, repo: str, ref: str, body: bytes) -> None:
        head = self.command == "HEAD"
        if self.command in ("GET", "HEAD"):
            stored = reg.manifests.get((repo, ref))
            if stored is None:
                if head:
                    self.reply(404, head=True)
                else:
                    self.error(404, "MANIFEST_UNKNOWN", "manifest unknown")
                return
            headers = {}
            if stored.content_type is not None:
                headers["Content-Type"] = stored.content_type
            if stored.digest_header is not None:
                headers["Docker-Content-Digest"] = stored.digest_header
            self.reply(200, stored.content, headers, head=head)
        elif self.command == "PUT":
            digest = sha256(body)
            ctype = self.headers.get("Content-Type")
            reg.put_manifest(repo, ref, body, ctype)
            self.reply(
                201,
                headers={
                    "Docker-Content-Digest": digest,
                    "Location": f"/v2/{repo}/manifests/{digest}",
                },
            )
        else:
            self.error(405, "UNSUPPORTED", "no")

    def blobs(self, reg: FakeRegistry, repo: str, digest: str, fault: Fault | None) -> None:
        head = self.command == "HEAD"
        data = reg.blobs.get(digest) if digest in reg.repo_blobs.get(repo, set()) else None
        if data is None:
            if head:
                self.reply(404, head=True)
            else:
                self.error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            return
        if reg.storage is not None and not head:
            location = reg.storage.url + f"/blobs/{digest}?X-Signature=s3cr3t"
            self.reply(307, headers={"Location": location})
            return
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest}
        if reg.serve_gzip_encoding:
            headers["Content-Encoding"] = "gzip"
        start = 0
        rng = self.headers.get("Range")
        status = 200
        if rng and reg.honour_range and not head:
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))  # type: ignore[union-attr]
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        payload = data[start:]
        if fault is not None and fault.truncate is not None:
            self.reply(status, payload[: fault.truncate], headers, length=len(payload))
            self.drop()
            return
        self.reply(status, payload, headers, head=head, length=len(payload))

    def tags(self, reg: FakeRegistry, repo: str, query: dict[str, list[str]]) -> None:
        tags = sorted(t for (r, t) in reg.manifests if r == repo and not t.startswith("sha256:"))
        if not tags and not any(r == repo for (r, _) in reg.manifests):
            self.error(404, "NAME_UNKNOWN", "repository name not known to registry")
            return
        last = query.get("last", [None])[0]
        if last:
            tags = [t for t in tags if t > last]
        n = int(query.get("n", [0])[0] or 0) or reg.default_page_size
        headers = {}
        if n and len(tags) > n:
            tags = tags[:n]
            link = f"/v2/{repo}/tags/list?n={n}&last={tags[-1]}"
            if reg.absolute_links:
                link = reg.url + link
            headers["Link"] = f'<{link}>; rel="next"'
        self.reply_json(200, {"name": repo, "tags": tags}, headers)

    def uploads(
        self, reg: FakeRegistry, repo: str, upload_id: str, query: dict[str, list[str]], body: bytes
    ) -> None:
        if self.command == "POST":
            mount = query.get("mount", [None])[0]
            source = query.get("from", [None])[0]
            if mount and source and mount in reg.repo_blobs.get(source, set()):
                token = self.headers.get("Authorization", "")[7:]
                grants = reg.token_grants(token) if reg.auth == "token" else None
                if grants is None or "pull" in grants.get(source, set()):
                    reg.repo_blobs.setdefault(repo, set()).add(mount)
                    self.reply(
                        201,
                        headers={
                            "Location": f"/v2/{repo}/blobs/{mount}",
                            "Docker-Content-Digest": mount,
                        },
                    )
                    return
            new_id = reg.new_upload(body if reg.post_body_counts else b"")
            self.reply(202, headers={"Location": reg.upload_location(repo, new_id), "Range": "0-0"})
            return
        state = query.get("_state", [None])[0]
        if reg.location_query and state != reg.location_query.get(upload_id):
            self.error(400, "BLOB_UPLOAD_INVALID", "lost _state")
            return
        if upload_id not in reg.uploads:
            self.error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
            return
        buf = reg.uploads[upload_id]
        if self.command == "PATCH":
            crange = self.headers.get("Content-Range")
            if crange is not None:
                start, _, end = crange.partition("-")
                if int(start) != len(buf) or int(end) - int(start) + 1 != len(body):
                    self.error(416, "BLOB_UPLOAD_INVALID", "bad range")
                    return
            buf += body
            reg.patch_sizes.append(len(body))
            self.reply(
                202,
                headers={
                    "Location": reg.upload_location(repo, upload_id),
                    "Range": f"0-{len(buf) - 1}",
                },
            )
        elif self.command == "PUT":
            buf += body
            digest = query.get("digest", [""])[0]
            if sha256(bytes(buf)) != digest:
                del reg.uploads[upload_id]
                self.error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
                return
            reg.add_blob(repo, bytes(buf))
            del reg.uploads[upload_id]
            self.reply(
                201,
                headers={"Location": f"/v2/{repo}/blobs/{digest}", "Docker-Content-Digest": digest},
            )
        elif self.command == "DELETE":
            reg.uploads.pop(upload_id, None)
            reg.cancelled += 1
            self.reply(204)


class _StorageHandler(_Base):
    """Stands in for S3/a CDN behind a blob redirect."""

    def do_GET(self) -> None:
        store: BlobStorage = self.server.owner
        parts = urllib.parse.urlsplit(self.path)
        store.requests.append(Recorded("GET", parts.path, parts.query, dict(self.headers), 0))
        if self.headers.get("Authorization"):
            self.reply(400, b"<Error>Only one auth mechanism allowed</Error>")
            return
        digest = parts.path.rsplit("/", 1)[-1]
        data = store.registry.blobs.get(digest) if store.registry else None
        if data is None:
            self.reply(404)
            return
        self.reply(200, data, {"Content-Type": "application/octet-stream"})


class BlobStorage:
    """A second server reached as ``localhost`` (a different origin from 127.0.0.1)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.registry: FakeRegistry | None = None
        self._server = FakeServer(("127.0.0.1", 0), _StorageHandler, self)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://localhost:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class FakeRegistry:
    """In-memory registry. ``auth``: "none", "basic" or "token" (realm on the same server)."""

    def __init__(
        self,
        *,
        auth: str = "none",
        users: dict[str, str] | None = None,
        anonymous_pull: tuple[str, ...] = ("public/",),
        tls: tuple[str, str] | None = None,
        location_style: str = "absolute",
        location_query: bool = True,
    ) -> None:
        self.auth = auth
        self.users = users if users is not None else {"relay": "s3cret-pass"}
        self.anonymous_pull = anonymous_pull
        self.location_style = location_style
        self.location_query: dict[str, str] | None = {} if location_query else None
        self.identity_token = "identity-refresh-token-123"
        self.token_ttl = 300
        self.token_field = "both"
        self.token_delay = 0.0
        self.default_page_size = 0
        self.absolute_links = False
        self.honour_range = True
        self.serve_gzip_encoding = False
        self.post_body_counts = False
        self.storage: BlobStorage | None = None
        self.blobs: dict[str, bytes] = {}
        self.repo_blobs: dict[str, set[str]] = {}
        self.manifests: dict[tuple[str, str], StoredManifest] = {}
        self.uploads: dict[str, bytearray] = {}
        self.patch_sizes: list[int] = []
        self.cancelled = 0
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.token_log: list[tuple[str, ...] | None] = []
        self._tokens: dict[str, dict[str, set[str]]] = {}
        self._lock = threading.Lock()
        ctx = server_context(*tls) if tls is not None else None
        self.scheme = "https" if tls else "http"
        self._server = FakeServer(("127.0.0.1", 0), _RegistryHandler, self, ctx)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    # -- addresses -----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self.storage is not None:
            self.storage.stop()

    # -- state helpers -------------------------------------------------------------------------

    def record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def count(self, method: str, pattern: str = "") -> int:
        with self._lock:
            return sum(
                1 for r in self.requests if r.method == method and re.search(pattern, r.path)
            )

    def add_fault(self, method: str, path: str, **kwargs: Any) -> Fault:
        fault = Fault(method, path, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.path, path):
                    fault.times -= 1
                    return fault
        return None

    def add_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        with self._lock:
            self.blobs[digest] = data
            self.repo_blobs.setdefault(repo, set()).add(digest)
        return digest

    def put_manifest(
        self,
        repo: str,
        ref: str,
        content: bytes,
        content_type: str | None = OCI_MANIFEST,
        digest_header: str | None | bool = True,
    ) -> str:
        digest = sha256(content)
        header = digest if digest_header is True else (digest_header or None)
        stored = StoredManifest(content, content_type, header)
        with self._lock:
            self.manifests[(repo, ref)] = stored
            self.manifests[(repo, digest)] = stored
        return digest

    def new_upload(self, initial: bytes) -> str:
        upload_id = secrets.token_hex(8)
        with self._lock:
            self.uploads[upload_id] = bytearray(initial)
            if self.location_query is not None:
                # Base64 padding in _state, like distribution's: must survive untouched.
                self.location_query[upload_id] = base64.b64encode(secrets.token_bytes(7)).decode()
        return upload_id

    def upload_location(self, repo: str, upload_id: str) -> str:
        path = f"/v2/{repo}/blobs/uploads/{upload_id}"
        if self.location_query is not None:
            path += "?_state=" + urllib.parse.quote(self.location_query[upload_id], safe="")
        return self.url + path if self.location_style == "absolute" else path

    def issue(self, grants: dict[str, set[str]]) -> str:
        value = "tok-" + secrets.token_hex(12)
        with self._lock:
            self._tokens[value] = grants
        return value

    def token_grants(self, token: str | None) -> dict[str, set[str]] | None:
        if not token:
            return None
        with self._lock:
            return self._tokens.get(token)

    def revoke_all_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def count_token(self, scopes: tuple[str, ...] | None) -> None:
        with self._lock:
            self.token_log.append(scopes)

    @property
    def token_requests(self) -> int:
        with self._lock:
            return len(self.token_log)

    def basic_challenge(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="fake-realm"'}

    def bearer_challenge(self, scope: str | None, insufficient: bool) -> dict[str, str]:
        value = f'Bearer realm="{self.url}/token",service="fake-registry"'
        if scope:
            value += f',scope="{scope}"'
        if insufficient:
            value += ',error="insufficient_scope"'
        return {"WWW-Authenticate": value}

    def with_storage(self) -> BlobStorage:
        self.storage = BlobStorage()
        self.storage.registry = self
        return self.storage


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    """A fresh in-process registry per test, plain HTTP, no auth."""
    reg = FakeRegistry()
    yield reg
    reg.stop()


@pytest.fixture
def tls_fake(test_pki: TestPKI) -> Iterator[FakeRegistry]:
    """The same over TLS, with a certificate from the test CA (``test_pki``)."""
    reg = FakeRegistry(tls=(test_pki.cert_file, test_pki.key_file))
    yield reg
    reg.stop()
