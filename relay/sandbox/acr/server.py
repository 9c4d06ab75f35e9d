"""The HTTP front: one port serves both editions, like ``cr.<region>.aliyuncs.com``.

Per request, in the gateway's order: find the API (ROA route, or RPC ``Action``), check the
version, verify the signature, apply injected faults, run the action, record the call. ROA
success bodies get the ``{"data":...,"requestId":...}`` envelope; RPC success bodies get
``RequestId``/``Code``/``IsSuccess``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from relay.sandbox.acr import errors, signing
from relay.sandbox.acr.backend import Backend
from relay.sandbox.acr.builds import BuildRunner, BuildSettings
from relay.sandbox.acr.enterprise import EnterpriseApi
from relay.sandbox.acr.faults import FaultInjector, gateway_error
from relay.sandbox.acr.personal import Flat, PersonalApi, RoaRequest, match
from relay.sandbox.acr.quirks import Quirks
from relay.sandbox.acr.state import ENTERPRISE, PERSONAL, Call, Edition, State, is_read_action
from relay.sandbox.common.faults import Decision
from relay.sandbox.common.front import HttpFront, Reply, Request, ResetConnection
from relay.sandbox.common.recording import recorded_body
from relay.sandbox.common.registry import RegistryTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    request_id: str
    headers: dict[str, str] = field(default_factory=dict)


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
        quirks: Quirks | None = None,
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
            quirks=quirks,
        )
        self.personal = PersonalApi(self.backend, token_user, token_password)
        self.enterprise = EnterpriseApi(self.backend, token_user, token_password)
        self.faults = FaultInjector()
        self.nonces = signing.NonceCache()
        self.front = HttpFront(
            self._serve, on_error=self._front_error, name="acr-emulator", host=host, port=port
        )

    @property
    def quirks(self) -> Quirks:
        """The readings of UNCONFIRMED behaviour in play; mutable, or replace it whole."""
        return self.backend.quirks

    @quirks.setter
    def quirks(self, value: Quirks) -> None:
        self.backend.quirks = value

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self.front.endpoint

    def start(self) -> AcrServer:
        self.front.start()
        return self

    def stop(self) -> None:
        self.front.stop()
        self.runner.close()

    def add_access_key(self, access_key_id: str, secret: str) -> None:
        self._access_keys[access_key_id] = secret

    def _secret_for(self, access_key_id: str) -> str | None:
        return self._access_keys.get(access_key_id)

    # -- request handling ----------------------------------------------------------------------

    def _serve(self, request: Request) -> Reply:
        resp = self.handle(request.method, request.target, request.headers, request.body)
        return _reply(resp)

    def _front_error(self, status: int, reason: str) -> Reply:
        # A too-large body or an emulator bug: the gateway's capitalised shape.
        rid = str(uuid.uuid4()).upper()
        code = "RequestEntityTooLarge" if status == 413 else "InternalError"
        exc = errors.GatewayError(code, reason, status)
        return _reply(Response(status, exc.body(rid, self.host_id), rid))

    def _apply_faults(self, action: str | None, access_key_id: str | None = None) -> Decision:
        decision = self.faults.decide(action, access_key_id)
        if decision.delay:
            time.sleep(decision.delay)
        if decision.reset:
            raise ResetConnection
        if decision.before is not None:
            raise gateway_error(decision.before)
        return decision

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
        self.state.record(
            Call(
                action,
                method,
                path,
                query,
                body,
                status,
                code,
                write=action is not None and not is_read_action(action),
                edition=edition,
            )
        )

    def _gateway_error(self, exc: errors.GatewayError, rid: str) -> Response:
        return Response(exc.status, exc.body(rid, self.host_id), rid, dict(exc.headers))

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
        parsed_body = recorded_body(body)
        found = match(method, path)
        action = found[0] if found else None
        resp: Response
        try:
            if found is None:
                raise errors.api_not_found()
            version = headers.get("x-acs-version")
            if version != signing.ROA_VERSION:
                raise errors.invalid_version(version)
            key = signing.verify_roa(method, headers, target, body, self._secret_for, self.nonces)
            decision = self._apply_faults(action, key)
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
            if decision.reset_after:
                self._record(action, PERSONAL, method, path, query, parsed_body, 0, "RESET")
                raise ResetConnection
            if decision.after is not None:
                raise gateway_error(decision.after)
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
            key = signing.verify_rpc(method, pairs, self._secret_for, self.nonces)
            decision = self._apply_faults(action, key)
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
            if decision.reset_after:
                recorded = {k: v for k, v in params.items() if k != "Signature"}
                self._record(action, ENTERPRISE, method, path, recorded, None, 0, "RESET")
                raise ResetConnection
            if decision.after is not None:
                raise gateway_error(decision.after)
        except errors.GatewayError as exc:
            resp = self._gateway_error(exc, rid)
            code = exc.code
        recorded = {k: v for k, v in params.items() if k != "Signature"}
        self._record(
            action if known else None, ENTERPRISE, method, path, recorded, None, resp.status, code
        )
        return resp


def _reply(resp: Response) -> Reply:
    headers = [("x-acs-request-id", resp.request_id), *resp.headers.items()]
    return Reply(
        resp.status,
        json.dumps(resp.body).encode(),
        content_type="application/json;charset=utf-8",
        headers=headers,
    )
