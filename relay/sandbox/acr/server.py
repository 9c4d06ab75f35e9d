"""The HTTP front: one port serves both editions, like ``cr.<region>.aliyuncs.com``.

Per request, in the gateway's order: find the API (ROA route, or RPC ``Action``), check the
version, verify the signature, apply injected faults, run the action, record the call. ROA
success bodies get the ``{"data":...,"requestId":...}`` envelope; RPC success bodies get
``RequestId``/``Code``/``IsSuccess``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from relay.sandbox.acr import errors, signing
from relay.sandbox.acr.backend import Backend
from relay.sandbox.acr.builds import BuildRunner, BuildSettings
from relay.sandbox.acr.enterprise import EnterpriseApi
from relay.sandbox.acr.faults import FaultInjector
from relay.sandbox.acr.personal import Flat, PersonalApi, RoaRequest, match
from relay.sandbox.acr.registry_view import RegistryTarget
from relay.sandbox.acr.state import ENTERPRISE, PERSONAL, Call, Edition, State

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # API bodies are tiny; refuse anything silly


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    request_id: str


class AcrServer:
    """The emulator: state, build runner and an HTTP server on 127.0.0.1."""

    def __init__(
        self,
        *,
        region: str,
        registry: RegistryTarget,
        workdir: str | Path,
        access_keys: dict[str, str],
        token_user: str,
        token_password: str,
        registry_domain: str | None = None,
        build_settings: BuildSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.region = region
        self.state = State(region)
        self.host_id = f"cr.{region}.aliyuncs.com"
        self._access_keys = dict(access_keys)  # id -> secret; never logged
        self.registry_domain = registry_domain or f"registry.{region}.aliyuncs.com"
        self.ee_registry_domain = f"{self.state.instance_id}-registry.{region}.cr.aliyuncs.com"
        self.runner = BuildRunner(
            self.state,
            Path(workdir),
            registry,
            domain_for=lambda b: self.backend.domain_for(b),
            settings=build_settings,
        )
        self.backend = Backend(
            self.state,
            self.runner,
            registry,
            registry_domain=self.registry_domain,
            ee_registry_domain=self.ee_registry_domain,
        )
        self.personal = PersonalApi(self.backend, token_user, token_password)
        self.enterprise = EnterpriseApi(self.backend, token_user, token_password)
        self.faults = FaultInjector()
        self.nonces = signing.NonceCache()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.emulator = self
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> AcrServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="acr-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.runner.close()

    def add_access_key(self, access_key_id: str, secret: str) -> None:
        self._access_keys[access_key_id] = secret

    def _secret_for(self, access_key_id: str) -> str | None:
        return self._access_keys.get(access_key_id)

    # -- request handling ----------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        """Answer one request. ``headers`` keys must be lower-case."""
        rid = str(uuid.uuid4()).upper()
        url = urlsplit(target)
        query_pairs = parse_qsl(url.query, keep_blank_values=True)
        query = dict(query_pairs)
        form: list[tuple[str, str]] = []
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded" and body:
            form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        rpc = url.path == "/" and ("Action" in query or any(k == "Action" for k, _ in form))
        if rpc:
            params = query_pairs + form
            return self._handle_rpc(method, url.path, dict(params), params, rid)
        return self._handle_roa(method, target, url.path, query, headers, body, rid)

    def _record(
        self,
        action: str | None,
        edition: Edition | None,
        method: str,
        path: str,
        query: dict[str, str],
        body: Any,
        status: int,
        code: str | None,
    ) -> None:
        self.state.record(Call(action, edition, method, path, query, body, status, code))

    def _gateway_error(self, exc: errors.GatewayError, rid: str) -> Response:
        return Response(exc.status, exc.body(rid, self.host_id), rid)

    def _handle_roa(
        self,
        method: str,
        target: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        rid: str,
    ) -> Response:
        parsed_body = _parse_json_or_text(body)
        found = match(method, path)
        action = found[0] if found else None
        resp: Response
        try:
            if found is None:
                raise errors.api_not_found()
            version = headers.get("x-acs-version")
            if version != signing.ROA_VERSION:
                raise errors.invalid_version(version)
            signing.verify_roa(method, headers, target, body, self._secret_for, self.nonces)
            decision = self.faults.decide(action)
            if decision.delay:
                time.sleep(decision.delay)
            if decision.error_before is not None:
                raise decision.error_before
            req = RoaRequest(method, path, query, headers, body, params=found[1])
            try:
                result = self.personal.handle(found[0], req)
            except errors.ServiceError as exc:
                resp = Response(exc.status, exc.body(), rid)
                code: str | None = exc.code
            else:
                if isinstance(result, Flat):
                    resp = Response(200, {**result.body, "requestId": rid}, rid)
                else:
                    resp = Response(200, {"data": result, "requestId": rid}, rid)
                code = None
            if decision.error_after is not None:
                raise decision.error_after
        except errors.GatewayError as exc:
            resp = self._gateway_error(exc, rid)
            code = exc.code
        self._record(action, PERSONAL, method, path, query, parsed_body, resp.status, code)
        return resp

    def _handle_rpc(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        pairs: list[tuple[str, str]],
        rid: str,
    ) -> Response:
        action = params.get("Action")
        known = action in self.enterprise.actions()
        resp: Response
        code: str | None = None
        try:
            if not known:
                raise errors.api_not_found()
            if params.get("Version") != signing.RPC_VERSION:
                raise errors.invalid_version(params.get("Version"))
            signing.verify_rpc(method, pairs, self._secret_for, self.nonces)
            decision = self.faults.decide(action)
            if decision.delay:
                time.sleep(decision.delay)
            if decision.error_before is not None:
                raise decision.error_before
            assert action is not None
            try:
                result = self.enterprise.handle(action, params)
            except errors.EnterpriseError as exc:
                resp = Response(exc.status, exc.body(rid), rid)
                code = exc.code
            else:
                resp = Response(
                    200, {"RequestId": rid, "Code": "success", "IsSuccess": True, **result}, rid
                )
            if decision.error_after is not None:
                raise decision.error_after
        except errors.GatewayError as exc:
            resp = self._gateway_error(exc, rid)
            code = exc.code
        recorded = {k: v for k, v in params.items() if k != "Signature"}
        self._record(
            action if known else None, ENTERPRISE, method, path, recorded, None, resp.status, code
        )
        return resp


def _parse_json_or_text(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return body.decode("utf-8", "replace")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: AcrServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK's requests session reuses connections
    # Headers and body go out in two writes; with Nagle on, a keep-alive client waits ~40 ms
    # for the delayed ACK on every call.
    disable_nagle_algorithm = True
    server: _Server

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(413)
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), value)
        try:
            resp = self.server.emulator.handle(self.command, self.path, headers, body)
        except Exception:  # an emulator bug: answer 500 with the POP shape, and log it
            log.exception("acr emulator failed on %s %s", self.command, urlsplit(self.path).path)
            rid = str(uuid.uuid4()).upper()
            exc = errors.GatewayError("InternalError", "emulator internal error", 500)
            resp = Response(500, exc.body(rid, "emulator"), rid)
        data = json.dumps(resp.body).encode()
        self.send_response(resp.status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-acs-request-id", resp.request_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only go to debug logging; Authorization is never logged.
        log.debug("%s %s", self.address_string(), format % args)
