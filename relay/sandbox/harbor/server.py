"""The Harbor emulator: routes, the request pipeline, and the handlers for relay's endpoints.

Per request, in Harbor's order as far as it shows from outside: find the route (go-swagger's
router), apply injected faults, build the security context (Basic auth; a failed login falls
back to anonymous, ``src/server/middleware/security``), the CSRF check for requests that carry a
``sid`` cookie (``src/server/middleware/csrf/csrf.go``), read-only mode, parameter and body
binding against the swagger, then the handler. Every request is recorded.

Handler behaviour follows ``src/server/v2.0/handler/{registry,replication,project,
systeminfo,user}.go`` and the controllers they call at tag v2.15.2; comments name the place.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlencode, urlsplit

from relay.sandbox.common.faults import Decision, Fault, FaultInjector
from relay.sandbox.common.front import HttpFront, Reply, Request, ResetConnection
from relay.sandbox.common.recording import recorded_body
from relay.sandbox.common.registry import RegistryTarget, session
from relay.sandbox.harbor import cron as cronlib
from relay.sandbox.harbor import errors, spec
from relay.sandbox.harbor.adapter import (
    Adapter,
    AdapterError,
    Net,
    Unhealthy,
    check_old_url,
    rewrite_cr_url,
)
from relay.sandbox.harbor.copier import Copier, Endpoint
from relay.sandbox.harbor.errors import HarborError
from relay.sandbox.harbor.flow import ExecutionRunner
from relay.sandbox.harbor.quirks import (
    ACR_EE_SINCE,
    ACR_VPC_URLS_SINCE,
    ADAPTER_WHITELIST_SINCE,
    ASYNC_STATUS_SINCE,
    CLEAR_SECRET_ON_URL_CHANGE_SINCE,
    CRON_CHECKS_SINCE,
    DEFAULT_ADAPTER_WHITELIST,
    DEFAULT_VERSION,
    FIELD_SINCE,
    ROBOT_SYSTEM_PERMISSIONS_SINCE,
    Quirks,
    Version,
    parse_version,
)
from relay.sandbox.harbor.state import (
    ALL_ROBOT_PERMISSIONS,
    EXECUTION_WORDS,
    FINAL,
    IN_PROGRESS,
    TASK_WORDS,
    Call,
    Credential,
    Execution,
    Filter,
    JobStatus,
    Policy,
    Project,
    Registry,
    Robot,
    State,
    Task,
    now,
    timestamp,
)
from relay.stages.acr.regions import REGIONS as ACR_REGIONS

log = logging.getLogger(__name__)

BASE = spec.BASE_PATH
JSON = "application/json"
MASKED = "*****"  # handler/replication.go convertRegistry masks a set secret like this
MAX_CSRF_TOKENS = 10_000
MAX_CORE_LOG = 1_000

# Adapter types a Harbor build registers (src/pkg/reg/adapter/*); only ali-acr is emulated.
REGISTERED_ADAPTERS = (
    "ali-acr",
    "aws-ecr",
    "azure-acr",
    "docker-hub",
    "docker-registry",
    "dtr",
    "github-ghcr",
    "gitlab",
    "google-gcr",
    "harbor",
    "huawei-SWR",
    "jfrog-artifactory",
    "quay",
    "tencent-tcr",
    "volcengine-cr",
)
# distribution's reference.NameRegexp, anchored (lib.RepositoryNameRe).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
REPOSITORY_NAME_RE = re.compile(
    rf"^(?:{_DOMAIN}(?:\.{_DOMAIN})*(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*$"
)
# Query parameters a handler reads although the swagger does not declare them: the legacy
# replication scheduler job starts executions with ?trigger=scheduled (handler/replication.go).
UNDECLARED_QUERY = {("startReplication", "trigger")}
# src/controller/health/checker.go (trivy only when enabled)
HEALTH_COMPONENTS = ("core", "database", "jobservice", "portal", "redis", "registry", "registryctl")
PROJECT_NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")  # src/pkg/project/manager.go


# --------------------------------------------------------------------------------------------
# routes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # the swagger path, e.g. "/registries/{id}"
    operation: str  # the swagger operationId
    write: bool
    pattern: re.Pattern[str]


def _route(method: str, template: str, operation: str, write: bool = False) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return Route(method, template, operation, write, re.compile(f"^{regex}/?$"))


ROUTES: tuple[Route, ...] = (
    _route("GET", "/ping", "getPing"),
    _route("GET", "/health", "getHealth"),
    _route("GET", "/systeminfo", "getSystemInfo"),
    _route("GET", "/users/current", "getCurrentUserInfo"),
    _route("GET", "/users/current/permissions", "getCurrentUserPermissions"),
    _route("GET", "/registries", "listRegistries"),
    _route("POST", "/registries", "createRegistry", True),
    _route("POST", "/registries/ping", "pingRegistry"),
    _route("GET", "/registries/{id}", "getRegistry"),
    _route("PUT", "/registries/{id}", "updateRegistry", True),
    _route("DELETE", "/registries/{id}", "deleteRegistry", True),
    _route("GET", "/registries/{id}/info", "getRegistryInfo"),
    _route("GET", "/replication/adapters", "listRegistryProviderTypes"),
    _route("GET", "/replication/adapterinfos", "listRegistryProviderInfos"),
    _route("HEAD", "/projects", "headProject"),
    _route("GET", "/projects", "listProjects"),
    _route("POST", "/projects", "createProject", True),
    _route("GET", "/projects/{project_name_or_id}", "getProject"),
    _route("GET", "/replication/policies", "listReplicationPolicies"),
    _route("POST", "/replication/policies", "createReplicationPolicy", True),
    _route("GET", "/replication/policies/{id}", "getReplicationPolicy"),
    _route("PUT", "/replication/policies/{id}", "updateReplicationPolicy", True),
    _route("DELETE", "/replication/policies/{id}", "deleteReplicationPolicy", True),
    _route("GET", "/replication/executions", "listReplicationExecutions"),
    _route("POST", "/replication/executions", "startReplication", True),
    _route("GET", "/replication/executions/{id}", "getReplicationExecution"),
    _route("PUT", "/replication/executions/{id}", "stopReplication", True),
    _route("GET", "/replication/executions/{id}/tasks", "listReplicationTasks"),
    _route("GET", "/replication/executions/{id}/tasks/{task_id}/log", "getReplicationLog"),
)


def find_route(method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """(route, path params, methods allowed on the path) for an API path (below BASE)."""
    allowed: list[str] = []
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is None:
            continue
        if route.method == method:
            return route, {k: unquote(v) for k, v in found.groupdict().items()}, []
        allowed.append(route.method)
    return None, {}, allowed


# --------------------------------------------------------------------------------------------
# request context
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Security:
    kind: Literal["anonymous", "admin", "robot"]
    username: str | None = None
    robot: Robot | None = None

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"


ANONYMOUS = Security("anonymous")


@dataclass
class Ctx:
    request: Request
    route: Route
    path_params: dict[str, Any]
    query: dict[str, Any]
    body: Any
    security: Security
    request_id: str
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    number: int
    size: int


# --------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------


class HarborServer:
    """A Harbor core API on 127.0.0.1 that replicates from ACR for real.

    registry: the stand-in for Harbor's own registry (where replicated images land).
    acr_openapi_endpoint: ``127.0.0.1:PORT`` of the ACR emulator (real Harbor derives
    ``cr.<region>.aliyuncs.com``). host_map: hostname (or host:port) -> ``127.0.0.1:PORT``, the
    DNS stand-in used for every registry URL. trust_ca_file: the CA the Harbor host trusts
    besides the system store (a registry's own ``ca_certificate`` wins).
    """

    def __init__(
        self,
        *,
        registry: RegistryTarget,
        workdir: str | Path,
        version: str = DEFAULT_VERSION,
        quirks: Quirks | None = None,
        admin_password: str = "Harbor12345",
        robots: Iterable[Robot] = (),
        acr_openapi_endpoint: str | None = None,
        host_map: Mapping[str, str] | None = None,
        trust_ca_file: str | None = None,
        adapter_whitelist: Sequence[str] | None = DEFAULT_ADAPTER_WHITELIST,
        read_only: bool = False,
        build_sha: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body: int = 1 << 20,
    ) -> None:
        self.version = version
        self.version_tuple: Version = parse_version(version)
        self.build_sha = build_sha or hashlib.sha1(version.encode()).hexdigest()[:8]
        self.quirks = quirks or Quirks()
        self.state = State()
        self.faults = FaultInjector()
        self.registry = registry
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._admin_password = admin_password
        self.robots: dict[str, Robot] = {r.name: r for r in robots}
        self.acr_openapi_endpoint = acr_openapi_endpoint
        self.net = Net(dict(host_map or {}), trust_ca_file)
        self.adapter_whitelist = tuple(adapter_whitelist) if adapter_whitelist is not None else ()
        self.read_only = read_only
        self.openapi_calls: Counter[str] = Counter()
        self._openapi_lock = threading.Lock()
        self.core_log: list[str] = []  # what Harbor's core log would say (5xx causes ...)
        self.log = log
        self.copier = Copier(self.workdir / "copies")
        # Issued CSRF tokens, newest last; bounded so a long-running sandbox does not grow.
        self._csrf_tokens: OrderedDict[str, None] = OrderedDict()
        self._runners: dict[int, ExecutionRunner] = {}
        self._ca_dir = Path(tempfile.mkdtemp(prefix="ca-", dir=self.workdir))
        self.front = HttpFront(
            self._serve,
            on_error=self._front_error,
            name="harbor-emulator",
            host=host,
            port=port,
            tls_cert=tls_cert,
            tls_key=tls_key,
            max_body=max_body,
        )

    def __repr__(self) -> str:
        return f"HarborServer({self.url!r}, version={self.version!r})"

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.front.url

    @property
    def api_url(self) -> str:
        return self.front.url + BASE

    def start(self) -> HarborServer:
        self.front.start()
        return self

    def stop(self) -> None:
        self.front.stop()
        with self.state.lock:
            for execution in self.state.executions.values():
                execution.stop_requested = True
        for runner in list(self._runners.values()):
            runner.thread.join(timeout=30)

    # -- test helpers ----------------------------------------------------------------------

    def add_robot(self, robot: Robot) -> None:
        self.robots[robot.name] = robot

    def inject(self, fault: Fault) -> None:
        self.faults.add(fault)

    def openapi_total(self) -> int:
        with self._openapi_lock:
            return sum(self.openapi_calls.values())

    def reset_openapi_calls(self) -> None:
        with self._openapi_lock:
            self.openapi_calls.clear()

    def fire_schedule(self, policy_id: int) -> int:
        """What the scheduler does when a policy's cron fires; returns the execution id."""
        with self.state.lock:
            if policy_id not in self.state.schedules:
                raise KeyError(f"policy {policy_id} has no schedule")
            policy = self.state.policies[policy_id]
        return self.start_execution(policy, "scheduled")

    def wait_execution(self, execution_id: int, timeout: float = 60.0) -> Execution:
        """Block until the execution's flow and tasks are all done (status is not consulted)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.state.lock:
                execution = self.state.executions[execution_id]
                tasks = self.state.tasks_of(execution_id)
                done = execution.flow_done and all(t.status in FINAL for t in tasks)
            if done:
                runner = self._runners.get(execution_id)
                if runner is not None:
                    runner.thread.join(timeout=max(0.0, deadline - time.monotonic()))
                return execution
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_id} still running after {timeout}s")
            time.sleep(0.02)

    def core(self, message: str) -> None:
        """A line for the emulated core log (never holds secrets)."""
        with self.state.lock:
            self.core_log.append(message)
            del self.core_log[:-MAX_CORE_LOG]
        log.info("harbor core: %s", message)

    # -- versions --------------------------------------------------------------------------

    def at_least(self, version: Version) -> bool:
        return self.version_tuple >= version

    @property
    def strict_fields(self) -> bool:
        return self.quirks.unknown_fields == "reject"

    # ======================================================================================
    # the pipeline
    # ======================================================================================

    def _front_error(self, status: int, reason: str) -> Reply:
        code = errors.REQUEST_ENTITY_TOO_LARGE if status == 413 else errors.UNKNOWN
        err = HarborError(code, reason, status)
        return self._error_reply(err, str(uuid.uuid4()), [])

    def _serve(self, request: Request) -> Reply:
        rid = request.headers.get("x-request-id") or str(uuid.uuid4())
        path = request.path
        route: Route | None = None
        params: dict[str, str] = {}
        allowed: list[str] = []
        if path.startswith(BASE + "/") or path == BASE:
            route, params, allowed = find_route(request.method, path[len(BASE) :] or "/")
        action = route.operation if route else None
        sec = ANONYMOUS
        extra: list[tuple[str, str]] = []
        body_record = recorded_body(request.body)
        try:
            decision = self.faults.decide(action)
            if decision.delay:
                time.sleep(decision.delay)
            if decision.reset:
                self._record(request, action, route, 0, "RESET", sec, body_record)
                raise ResetConnection
            if decision.before is not None:
                raise self._fault_error(decision, extra)
            sec = self._security(request)
            if route is None:
                if allowed:
                    raise errors.validation(
                        [f"method {request.method} is not allowed, but [{','.join(allowed)}] are"],
                        405,
                    )
                raise HarborError(errors.NOT_FOUND, f"path {path} was not found")
            self._check_csrf(request)
            self._check_read_only(route)
            ctx = self._bind(request, route, params, sec, rid)
            reply = getattr(self, "op_" + route.operation)(ctx)
            assert isinstance(reply, Reply)
            reply.headers = [*ctx.headers, *reply.headers]
            if decision.reset_after:
                self._record(request, action, route, 0, "RESET", sec, body_record)
                raise ResetConnection
            if decision.after is not None:
                raise self._fault_error(decision, extra, after=True)
        except HarborError as err:
            if err.status >= 500 and err.cause:
                self.core(f"{request.method} {path}: {err.cause}")
            self._record(request, action, route, err.status, err.public_code, sec, body_record)
            return self._error_reply(err, rid, [*extra, *self._cookies(request, sec)])
        self._record(request, action, route, reply.status, None, sec, body_record)
        reply.headers = [("X-Request-Id", rid), *self._cookies(request, sec), *reply.headers]
        return reply

    def _fault_error(
        self, decision: Decision, extra: list[tuple[str, str]], after: bool = False
    ) -> HarborError:
        hit = decision.after if after else decision.before
        assert hit is not None
        if hit.kind == "throttling":
            if hit.retry_after is not None:
                extra.append(("Retry-After", f"{hit.retry_after:g}"))
            # codeMap: TOO_MANY_REQUEST -> 429
            return HarborError(errors.TOO_MANY_REQUEST, "too many requests", hit.status or 429)
        status = hit.status or 500
        return HarborError(errors.UNKNOWN, "injected fault", status, "injected fault")

    def _error_reply(self, err: HarborError, rid: str, headers: list[tuple[str, str]]) -> Reply:
        return Reply(
            err.status,
            err.body(),
            content_type=errors.CONTENT_TYPE,
            headers=[("X-Request-Id", rid), *headers],
        )

    def _record(
        self,
        request: Request,
        action: str | None,
        route: Route | None,
        status: int,
        code: str | None,
        sec: Security,
        body: Any,
    ) -> None:
        self.state.recorder.record(
            Call(
                action=action,
                method=request.method,
                path=request.path,
                query=request.query,
                body=_scrub(body),
                status=status,
                code=code,
                write=bool(route and route.write),
                user=sec.username,
            )
        )

    # -- security ----------------------------------------------------------------------------

    def _security(self, request: Request) -> Security:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return ANONYMOUS
        try:
            user, sep, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return ANONYMOUS
        if not sep:
            return ANONYMOUS
        # A failed login does not end the request: it goes on as anonymous (basic_auth.go).
        if user == "admin" and hmac.compare_digest(password, self._admin_password):
            return Security("admin", "admin")
        if user.startswith("robot$"):
            robot = self.robots.get(user[len("robot$") :])
            if robot and not robot.disabled and hmac.compare_digest(password, robot.secret):
                return Security("robot", robot.username, robot)
        return ANONYMOUS

    def _require_authenticated(self, ctx: Ctx) -> None:
        if not ctx.security.authenticated:
            raise errors.unauthorized()

    def _robot_can(self, robot: Robot, resource: str, action: str) -> bool:
        if not self.at_least(ROBOT_SYSTEM_PERMISSIONS_SINCE) and not (
            self.quirks.robot_system_permissions_before_v2_10
        ):
            return False
        return (resource, action) in robot.permissions

    def _require_system(self, ctx: Ctx, resource: str, action: str) -> None:
        """BaseAPI.RequireSystemAccess: 401 anonymous, 403 with the username as message."""
        sec = ctx.security
        if not sec.authenticated:
            raise errors.unauthorized()
        if sec.kind == "admin":
            return
        assert sec.robot is not None
        if not self._robot_can(sec.robot, resource, action):
            raise errors.forbidden(sec.username or "")

    def _cookies(self, request: Request, sec: Security) -> list[tuple[str, str]]:
        mode = self.quirks.sid_cookie
        if mode == "never" or (mode == "authenticated" and not sec.authenticated):
            return []
        sid = secrets.token_hex(16)
        token = secrets.token_urlsafe(24)
        with self.state.lock:
            self._csrf_tokens[token] = None
            while len(self._csrf_tokens) > MAX_CSRF_TOKENS:
                self._csrf_tokens.popitem(last=False)
        return [
            ("Set-Cookie", f"sid={sid}; Path=/; HttpOnly"),
            ("X-Harbor-Csrf-Token", token),
        ]

    def _check_csrf(self, request: Request) -> None:
        """csrf.go: /api/ requests skip the check unless they carry the ``sid`` cookie."""
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return
        if not _has_sid_cookie(request):
            return
        token = request.headers.get("x-harbor-csrf-token", "")
        with self.state.lock:
            valid = token in self._csrf_tokens
        if not valid:
            raise errors.forbidden("CSRF token invalid")

    def _check_read_only(self, route: Route) -> None:
        if not self.read_only or not route.write:
            return
        if route.operation == "createProject" or self.quirks.read_only_blocks_replication:
            raise HarborError(
                errors.DENIED, "The system is in read only mode. Any modification is prohibited."
            )

    # -- binding ------------------------------------------------------------------------------

    def _bind(
        self, request: Request, route: Route, raw_params: dict[str, str], sec: Security, rid: str
    ) -> Ctx:
        """go-swagger's BindRequest: parameters converted and validated, the body checked."""
        problems: list[str] = []
        path_params: dict[str, Any] = {}
        query: dict[str, Any] = {}
        body: Any = None
        declared = spec.operation_params(route.template, route.method)
        by_place = {(p.where, p.name): p for p in declared}
        for name, raw in raw_params.items():
            p = by_place.get(("path", name))
            if p is None:
                path_params[name] = raw
                continue
            value, problem = spec.convert_param(p, raw)
            if problem:
                problems.append(problem)
            path_params[name] = value
        for name, raw in request.query_pairs:
            p = by_place.get(("query", name))
            if p is None:
                if (route.operation, name) in UNDECLARED_QUERY:
                    query[name] = raw
                    continue
                if self.strict_fields:
                    problems.append(f"{name} in query is not a parameter of {route.operation}")
                continue
            value, problem = spec.convert_param(p, raw)
            if problem and name == "page_size" and self.quirks.page_size_over_max == "clamp":
                if isinstance(value, int) and value > 100:
                    value, problem = 100, None
            if problem:
                problems.append(problem)
            query[name] = value
        given = {name for name, _ in request.query_pairs}
        for p in declared:
            if p.where == "query" and p.schema.get("required") and p.name not in given:
                problems.append(f"{p.name} in query is required")  # go-openapi errors.Required
            if p.where == "header" and p.name.lower() in request.headers:
                _, problem = spec.convert_param(p, request.headers[p.name.lower()])
                if problem:
                    problems.append(problem)
        body_param = next((p for p in declared if p.where == "body"), None)
        if body_param is not None:
            body = self._bind_body(request, body_param, problems)
        if problems:
            raise errors.validation(problems)
        return Ctx(request, route, path_params, query, body, sec, rid)

    def _bind_body(self, request: Request, param: spec.Param, problems: list[str]) -> Any:
        if not request.body.strip():
            problems.append(f"{param.name} in body is required")
            return None
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != JSON:
            # go-openapi/runtime validateContentType -> errors.InvalidContentType (415)
            raise HarborError(
                "UNSUPPORTED_MEDIA_TYPE",
                f'unsupported media type "{ctype}", only [application/json] are allowed',
                415,
            )
        try:
            body = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            problems.append(
                f'parsing {param.name} body from "" failed, because invalid JSON: {exc}'
            )
            return None
        found = spec.validate_body(
            param.name,
            param.schema,
            body,
            version=self.version_tuple,
            strict=self.strict_fields,
        )
        problems.extend(found)
        if not self.strict_fields and isinstance(body, dict) and "$ref" in param.schema:
            model = param.schema["$ref"].rsplit("/", 1)[1]
            known = spec.definition_properties(model, self.version_tuple)
            body = {k: v for k, v in body.items() if k in known}
        return body

    # -- replies ---------------------------------------------------------------------------

    def _json(self, payload: Any, status: int = 200) -> Reply:
        return Reply(status, json.dumps(payload).encode(), content_type=JSON)

    def _created(self, ctx: Ctx, ident: int | str) -> Reply:
        location = f"{ctx.request.path.rstrip('/')}/{ident}"
        return Reply(201, b"", headers=[("Location", location)])

    def _ok(self) -> Reply:
        return Reply(200, b"")

    def _page(self, ctx: Ctx) -> Page:
        number = ctx.query.get("page", 1)
        size = ctx.query.get("page_size", 10)
        return Page(max(1, int(number)), int(size))

    def _list(self, ctx: Ctx, items: list[Any], render: Callable[[Any], Any]) -> Reply:
        page = self._page(ctx)
        total = len(items)
        start = (page.number - 1) * page.size
        chosen = items[start : start + page.size] if page.size > 0 else items
        reply = self._json([render(i) for i in chosen])
        reply.headers += [("X-Total-Count", str(total))]
        link = _links(ctx.request, total, page)
        if link:
            reply.headers.append(("Link", link))
        return reply

    # ======================================================================================
    # handlers: system
    # ======================================================================================

    def op_getPing(self, ctx: Ctx) -> Reply:
        return Reply(200, b"Pong", content_type="text/plain")

    def op_getHealth(self, ctx: Ctx) -> Reply:
        components = []
        for name in HEALTH_COMPONENTS:
            status, error = "healthy", None
            if name == "registry":
                try:
                    with session() as s:
                        s.get(
                            self.registry.url + "/v2/",
                            verify=self.registry.ca_file or True,
                            timeout=2,
                        )
                except Exception as exc:  # any failure makes the component unhealthy
                    status, error = "unhealthy", f"failed to check the health status: {exc}"
            entry: dict[str, Any] = {"name": name, "status": status}
            if error:
                entry["error"] = error
            components.append(entry)
        overall = "healthy" if all(c["status"] == "healthy" for c in components) else "unhealthy"
        return self._json(
            spec.render("OverallHealthStatus", {"status": overall, "components": components})
        )

    def op_getSystemInfo(self, ctx: Ctx) -> Reply:
        # handler/systeminfo.go: the protected fields only for authenticated callers.
        info: dict[str, Any] = {
            "auth_mode": "db_auth",
            "primary_auth_mode": False,
            "self_registration": False,
            "banner_message": "",
            "oidc_provider_name": "",
        }
        if ctx.security.authenticated:
            info.update(
                {
                    "has_ca_root": False,
                    "project_creation_restriction": "adminonly",
                    "harbor_version": f"{self.version}-{self.build_sha}",
                    "external_url": self.url,
                    "registry_url": self.registry.host,
                    "read_only": self.read_only,
                    "registry_storage_provider_name": "filesystem",
                    "notification_enable": True,
                    "current_time": timestamp(now()),
                }
            )
        return self._json(spec.render("GeneralInfo", info))

    def op_getCurrentUserInfo(self, ctx: Ctx) -> Reply:
        self._require_authenticated(ctx)
        if ctx.security.kind == "robot":
            raise errors.precondition("get current user not available for security context: robot")
        t = timestamp(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
        reply: dict[str, Any] = {
            "user_id": 1,
            "username": "admin",
            "email": "admin@example.com",
            "realname": "system admin",
            "comment": "admin user",
            "sysadmin_flag": True,
            "admin_role_in_auth": False,
            "creation_time": t,
            "update_time": t,
        }
        return self._json(spec.render("UserResp", reply))

    def op_getCurrentUserPermissions(self, ctx: Ctx) -> Reply:
        # handler/user.go GetCurrentUserPermissions: every policy of the scope's namespace the
        # caller's security context can do (robots included). The emulator knows the system
        # namespace only, and its policies are the ones robots can be granted here.
        self._require_authenticated(ctx)
        scope = str(ctx.query.get("scope") or "")
        relative = str(ctx.query.get("relative") or "").lower() == "true"
        out: list[dict[str, str]] = []
        if scope == "/system":
            sec = ctx.security
            for resource, action in sorted(ALL_ROBOT_PERMISSIONS):
                if sec.kind == "admin" or (
                    sec.robot is not None and self._robot_can(sec.robot, resource, action)
                ):
                    name = resource if relative else f"/system/{resource}"
                    out.append(spec.render("Permission", {"resource": name, "action": action}))
        return self._json(out)

    # ======================================================================================
    # handlers: registries
    # ======================================================================================

    def registry_snapshot(self, registry_id: int) -> Registry | None:
        with self.state.lock:
            found = self.state.registries.get(registry_id)
            if found is None:
                return None
            cred = replace(found.credential) if found.credential else None
            return replace(found, credential=cred)

    def _get_registry(self, registry_id: int) -> Registry:
        with self.state.lock:
            found = self.state.registries.get(registry_id)
        if found is None:
            raise errors.not_found(f"registry {registry_id} not found")
        return found

    def _render_registry(self, r: Registry) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": r.id,
            "name": r.name,
            "type": r.type,
            "url": r.url,
            "insecure": r.insecure,
            "description": r.description,
            "status": r.status,
            "creation_time": timestamp(r.creation_time),
            "update_time": timestamp(r.update_time),
        }
        if r.credential is not None:
            out["credential"] = {
                "type": r.credential.type,
                "access_key": r.credential.access_key,
                "access_secret": MASKED if r.credential.access_secret else "",
            }
        if self.at_least(FIELD_SINCE[("Registry", "ca_certificate")]) and r.ca_certificate:
            out["ca_certificate"] = r.ca_certificate  # a pointer, set only when non-empty
        return spec.render("Registry", out)

    def _ca_file(self, pem: str | None) -> str | None:
        if not pem:
            return None
        path = self._ca_dir / (hashlib.sha256(pem.encode()).hexdigest()[:16] + ".crt")
        if not path.exists():
            path.write_text(pem)
        return str(path)

    def create_adapter(self, registry: Registry) -> Adapter:
        """adapter.GetFactory(type).Create(registry); raises AdapterError (-> 500)."""
        if registry.type not in REGISTERED_ADAPTERS:
            raise AdapterError(f"adapter factory for {registry.type} not found")
        if registry.type != "ali-acr":
            raise AdapterError(f"the {registry.type} adapter is not emulated")
        url = rewrite_cr_url(registry.url)
        if not self.at_least(ACR_EE_SINCE):
            check_old_url(url, vpc_urls=self.at_least(ACR_VPC_URLS_SINCE))
        registry.url = url  # newAdapter mutates the registry it was given
        cred = registry.credential
        adapter = Adapter(
            url=url,
            access_key=cred.access_key if cred else "",
            access_secret=cred.access_secret if cred else "",
            insecure=registry.insecure,
            ca_file=self._ca_file(registry.ca_certificate),
            net=self.net,
            openapi_endpoint=self.acr_openapi_endpoint,
            counts=self.openapi_calls,
            counts_lock=self._openapi_lock,
        )
        if adapter.info.enterprise and not self.at_least(ACR_EE_SINCE):
            raise AdapterError("Invalid Rgistry|CR service url")
        if cred is None:
            # registry.Credential.AccessKey on a nil Credential: a nil dereference.
            if self.quirks.missing_credential_status == 400:
                raise errors.bad_request("credential is required for ali-acr registries")
            raise AdapterError("runtime error: invalid memory address or nil pointer dereference")
        return adapter

    def _is_healthy(self, registry: Registry) -> None:
        """controller.IsHealthy: adapter creation errors 500, an unhealthy ping 400."""
        try:
            adapter = self.create_adapter(registry)
            adapter.health_check()
        except AdapterError as exc:
            raise errors.internal(str(exc)) from None
        except Unhealthy as exc:
            self.core(str(exc))
            raise errors.bad_request("the registry is unhealthy") from None

    def _validate_registry(self, registry: Registry) -> None:
        """controller.validate in src/controller/registry/controller.go."""
        if not registry.name:
            raise errors.bad_request("name cannot be empty")
        if len(registry.name) > 64:
            raise errors.bad_request("the max length of name is 64")
        registry.url = validate_http_url(registry.url)
        stored_url = registry.url
        self._is_healthy(registry)
        if not self.quirks.persist_rewritten_cr_url:
            registry.url = stored_url
        registry.status = "healthy"

    def _check_ca(self, pem: str | None) -> None:
        if pem is not None and "-----BEGIN CERTIFICATE-----" not in pem:
            # commonhttp.ValidateCACertificate
            raise errors.bad_request("invalid CA certificate: no PEM data found")

    def op_createRegistry(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "registry", "create")
        body = ctx.body or {}
        cred_in = body.get("credential")
        self._check_ca(body.get("ca_certificate"))
        registry = Registry(
            id=0,
            name=body.get("name") or "",
            type=body.get("type") or "",
            url=body.get("url") or "",
            credential=(
                Credential(
                    cred_in.get("type") or "",
                    cred_in.get("access_key") or "",
                    cred_in.get("access_secret") or "",
                )
                if isinstance(cred_in, dict)
                else None
            ),
            insecure=bool(body.get("insecure")),
            ca_certificate=body.get("ca_certificate"),
            description=body.get("description") or "",
        )
        self._validate_registry(registry)
        with self.state.lock:
            if any(r.name == registry.name for r in self.state.registries.values()):
                raise errors.conflict(f"registry {registry.name} already exists")
            registry.id = self.state.next_id("registry")
            self.state.registries[registry.id] = registry
        return self._created(ctx, registry.id)

    def op_listRegistries(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "registry", "list")
        keywords = parse_q(ctx.query.get("q"))
        if ctx.query.get("name"):
            keywords["name"] = Fuzzy(str(ctx.query["name"]))
        with self.state.lock:
            items = [r for r in self.state.registries.values() if _matches(r, keywords)]
        items = _sort(items, ctx.query.get("sort"), default=("id", False))
        return self._list(ctx, items, self._render_registry)

    def op_getRegistry(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "registry", "read")
        return self._json(self._render_registry(self._get_registry(ctx.path_params["id"])))

    def op_updateRegistry(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "registry", "update")
        current = self.registry_snapshot(ctx.path_params["id"])
        if current is None:
            raise errors.not_found(f"registry {ctx.path_params['id']} not found")
        body = ctx.body or {}
        updated = replace(current)
        old_url = current.url
        if body.get("name") is not None:
            updated.name = body["name"]
        if body.get("description") is not None:
            updated.description = body["description"]
        if body.get("url") is not None:
            updated.url = body["url"]
        if body.get("insecure") is not None:
            updated.insecure = body["insecure"]
        if body.get("ca_certificate") is not None:
            self._check_ca(body["ca_certificate"])
            updated.ca_certificate = body["ca_certificate"]
        cred = replace(current.credential) if current.credential else Credential()
        if body.get("credential_type") is not None:
            cred.type = body["credential_type"]
        if body.get("access_key") is not None:
            cred.access_key = body["access_key"]
        if body.get("access_secret") is not None:
            cred.access_secret = body["access_secret"]
        clear = self.quirks.clear_secret_on_url_change
        if clear is None:
            clear = self.at_least(CLEAR_SECRET_ON_URL_CHANGE_SINCE)
        if clear and body.get("url") is not None and body.get("access_secret") is None:
            if validate_http_url(body["url"]) != old_url:
                cred.access_secret = ""  # commit 7709557123 (#23671)
        updated.credential = cred
        self._validate_registry(updated)
        with self.state.lock:
            if any(
                r.name == updated.name and r.id != updated.id
                for r in self.state.registries.values()
            ):
                raise errors.conflict(f"registry {updated.name} already exists")
            if updated.id not in self.state.registries:
                raise errors.not_found(f"registry {updated.id} not found")
            updated.update_time = now()
            self.state.registries[updated.id] = updated
        return self._ok()

    def op_deleteRegistry(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "registry", "delete")
        registry_id = ctx.path_params["id"]
        with self.state.lock:
            self._get_registry(registry_id)
            if any(
                registry_id in (p.src_registry_id, p.dest_registry_id)
                for p in self.state.policies.values()
            ):
                raise errors.precondition(
                    f"the registry {registry_id} is referenced by replication policies, "
                    "cannot delete it"
                )
            if any(p.registry_id == registry_id for p in self.state.projects.values()):
                raise errors.precondition(
                    f"the registry {registry_id} is referenced by proxy cache project, "
                    "cannot delete it"
                )
            del self.state.registries[registry_id]
        return self._ok()

    def op_pingRegistry(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "registry", "read")
        body = ctx.body or {}
        registry = Registry(0, "", "", "", None)
        if body.get("id") is not None:
            found = self.registry_snapshot(int(body["id"]))
            if found is None:
                raise errors.not_found(f"registry {body['id']} not found")
            registry = found
        if body.get("type") is not None:
            registry.type = body["type"]
        if body.get("url") is not None:
            registry.url = validate_http_url(body["url"])
        if body.get("insecure") is not None:
            registry.insecure = body["insecure"]
        for key, attr in (
            ("credential_type", "type"),
            ("access_key", "access_key"),
            ("access_secret", "access_secret"),
        ):
            if body.get(key) is not None:
                if registry.credential is None:
                    registry.credential = Credential()
                setattr(registry.credential, attr, body[key])
        if body.get("ca_certificate") is not None:
            self._check_ca(body["ca_certificate"])
            registry.ca_certificate = body["ca_certificate"]
        if not registry.type or not registry.url:
            raise errors.bad_request("type or url cannot be empty")
        self._is_healthy(registry)
        return self._ok()

    def op_getRegistryInfo(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "registry", "read")
        registry = self.registry_snapshot(ctx.path_params["id"])
        if registry is None:
            raise errors.not_found(f"registry {ctx.path_params['id']} not found")
        try:
            self.create_adapter(registry)  # GetInfo creates the adapter, which pings
        except AdapterError as exc:
            raise errors.internal(str(exc)) from None
        return self._json(
            spec.render(
                "RegistryInfo",
                {
                    "type": "ali-acr",
                    "description": "",
                    "supported_resource_filters": [
                        {"type": "name", "style": "input"},
                        {"type": "tag", "style": "input"},
                        {"type": "resource", "style": "radio", "values": ["image"]},
                    ],
                    "supported_triggers": ["manual", "scheduled"],
                },
            )
        )

    def _adapters(self) -> list[str]:
        if not self.at_least(ADAPTER_WHITELIST_SINCE):
            return list(REGISTERED_ADAPTERS)
        # getWhitelistedAdapters: an empty whitelist means no adapter at all (harbor-helm#2389)
        return [a for a in REGISTERED_ADAPTERS if a in self.adapter_whitelist]

    def op_listRegistryProviderTypes(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication-adapter", "list")
        return self._json(self._adapters())

    def op_listRegistryProviderInfos(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication-adapter", "list")
        infos: dict[str, Any] = {}
        for name in self._adapters():
            if name != "ali-acr":
                infos[name] = {}
                continue
            endpoints = []
            for r in ACR_REGIONS:
                endpoints += [
                    {"key": r, "value": f"https://registry.{r}.aliyuncs.com"},
                    {"key": f"{r}-vpc", "value": f"https://registry-vpc.{r}.aliyuncs.com"},
                    {
                        "key": f"{r}-internal",
                        "value": f"https://registry-internal.{r}.aliyuncs.com",
                    },
                    {
                        "key": f"{r}-ee-vpc",
                        "value": f"https://instanceName-registry-vpc.{r}.cr.aliyuncs.com",
                    },
                    {
                        "key": f"{r}-ee",
                        "value": f"https://instanceName-registry.{r}.cr.aliyuncs.com",
                    },
                ]
            infos[name] = {
                "endpoint_pattern": {
                    "endpoint_type": "EndpointPatternTypeList",
                    "endpoints": endpoints,
                }
            }
        return self._json(infos)

    # ======================================================================================
    # handlers: projects
    # ======================================================================================

    def _render_project(self, p: Project) -> dict[str, Any]:
        out = {
            "project_id": p.id,
            "owner_id": p.owner_id,
            "name": p.name,
            "registry_id": p.registry_id,
            "creation_time": timestamp(p.creation_time),
            "update_time": timestamp(p.update_time),
            "deleted": False,
            "owner_name": p.owner_name,
            "repo_count": 0,
            "metadata": {"public": "true" if p.public else "false", **p.metadata},
        }
        return spec.render("Project", out)

    def _can_list(self, sec: Security, p: Project) -> bool:
        """ListProjects: an admin, or a robot holding the system permission project/list,
        sees every project; anyone else the public ones (handler/project.go ListProjects)."""
        if p.public or sec.kind == "admin":
            return True
        if sec.robot is not None:
            return self._robot_can(sec.robot, "project", "list")
        return False

    def _require_project_read(self, ctx: Ctx, p: Project | None) -> None:
        """BaseAPI.RequireProjectAccess(read): a system robot is judged by its system
        permissions only, and none of them covers a project's own resource, so it gets 403
        even for a public project (src/common/security/robot/context.go: with system
        policies only the system evaluator is built)."""
        sec = ctx.security
        if not sec.authenticated:
            if p is not None and p.public:
                return
            raise errors.unauthorized()
        if sec.kind == "robot":
            raise errors.forbidden(sec.username or "")

    def op_headProject(self, ctx: Ctx) -> Reply:
        self._require_authenticated(ctx)
        name = ctx.query.get("project_name") or ""
        project = self.state.project_by_name(str(name))
        self._require_project_read(ctx, project)
        if project is None:
            raise errors.not_found(f"project {name} not found")
        return self._ok()

    def op_getProject(self, ctx: Ctx) -> Reply:
        key = str(ctx.path_params["project_name_or_id"])
        by_name = ctx.request.headers.get("x-is-resource-name", "").lower() == "true"
        with self.state.lock:
            if not by_name and key.isdigit():
                project = self.state.projects.get(int(key))
            else:
                project = self.state.project_by_name(key)
        self._require_project_read(ctx, project)
        if project is None:
            raise errors.not_found(f"project {key} not found")
        return self._json(self._render_project(project))

    def op_listProjects(self, ctx: Ctx) -> Reply:
        keywords = parse_q(ctx.query.get("q"))
        if ctx.query.get("name"):
            keywords["name"] = Fuzzy(str(ctx.query["name"]))
        with self.state.lock:
            items = [
                p
                for p in self.state.projects.values()
                if _matches(p, keywords) and self._can_list(ctx.security, p)
            ]
        if "public" in ctx.query:
            items = [p for p in items if p.public == ctx.query["public"]]
        items = _sort(items, ctx.query.get("sort"), default=("name", False))
        return self._list(ctx, items, self._render_project)

    def _create_project(self, name: str, public: bool, owner: str) -> Project:
        if not 1 <= len(name) <= 255:
            raise errors.bad_request(
                f"Project name {name} is illegal in length. (greater than 255 or less than 1)"
            )
        if not PROJECT_NAME_RE.match(name):
            raise errors.bad_request(
                "project name is not in lower case or contains illegal characters"
            )
        with self.state.lock:
            if self.state.project_by_name(name) is not None:
                raise errors.conflict(f"The project named {name} already exists")
            project = Project(self.state.next_id("project"), name, public, owner_name=owner)
            self.state.projects[project.id] = project
        return project

    def op_createProject(self, ctx: Ctx) -> Reply:
        self._require_authenticated(ctx)
        sec = ctx.security
        if sec.robot is not None and not self._robot_can(sec.robot, "project", "create"):
            raise errors.forbidden("Only system admin can create project")
        body = ctx.body or {}
        metadata = body.get("metadata") or {}
        public = metadata.get("public") or ""
        if body.get("public") is not None and not public:
            public = "true" if body["public"] else "false"
        public = public or "false"
        if public not in ("true", "false"):
            raise errors.bad_request(
                f"metadata.public should only be 'true' or 'false', but got: '{public}'"
            )
        project = self._create_project(body.get("project_name") or "", public == "true", "admin")
        if ctx.request.headers.get("x-resource-name-in-location", "").lower() == "true":
            return self._created(ctx, project.name)
        return self._created(ctx, project.id)

    def create_project_for_replication(self, name: str) -> str | None:
        """PrepareForPush's project creation; the Go client's error text, or None."""
        if self.state.project_by_name(name) is not None:
            return None
        try:
            self._create_project(name, False, "admin")
        except HarborError as err:
            if err.status == 409:
                return None
            return f"http error: code {err.status}, message {err.body().decode().strip()}"
        return None

    # ======================================================================================
    # handlers: replication policies
    # ======================================================================================

    def _render_policy(self, p: Policy) -> dict[str, Any]:
        src = self.registry_snapshot(p.src_registry_id) if p.src_registry_id else None
        dst = self.registry_snapshot(p.dest_registry_id) if p.dest_registry_id else None
        local = {
            "id": 0,
            "name": "Local",
            "type": "harbor",
            "url": "http://core:8080",
            "insecure": True,
            "status": "healthy",
            "credential": {"type": "secret", "access_key": "", "access_secret": MASKED},
            "description": "",
            "creation_time": timestamp(None),
            "update_time": timestamp(None),
        }
        out: dict[str, Any] = {
            "id": p.id,
            "name": p.name,
            "description": p.description,
            "src_registry": self._render_registry(src) if src else local,
            "dest_registry": self._render_registry(dst) if dst else local,
            "dest_namespace": p.dest_namespace,
            "filters": [
                {
                    "type": f.type,
                    "value": f.value,
                    **({"decoration": f.decoration} if f.decoration else {}),
                }
                for f in p.filters
            ]
            or None,
            "deletion": p.deletion,
            "override": p.override,
            "enabled": p.enabled,
            "creation_time": timestamp(p.creation_time),
            "update_time": timestamp(p.update_time),
        }
        if p.trigger_type is not None:
            trigger: dict[str, Any] = {"type": p.trigger_type}
            if p.cron is not None:
                trigger["trigger_settings"] = {"cron": p.cron}
            out["trigger"] = trigger
        gated = {
            "dest_namespace_replace_count": p.dest_namespace_replace_count,
            "replicate_deletion": p.deletion,
            "speed": p.speed,
            "copy_by_chunk": p.copy_by_chunk,
            "single_active_replication": p.single_active_replication,
        }
        for name, value in gated.items():
            if self.at_least(FIELD_SINCE[("ReplicationPolicy", name)]):
                out[name] = value
        return spec.render("ReplicationPolicy", out)

    def _policy_from_body(self, ctx: Ctx, policy_id: int) -> Policy:
        """The handler's conversion: only what the body says (PUT replaces everything)."""
        body = ctx.body or {}
        src = body.get("src_registry") or {}
        dst = body.get("dest_registry") or {}
        trigger = body.get("trigger")
        settings = (trigger or {}).get("trigger_settings") or {}
        count = body.get("dest_namespace_replace_count")
        speed = body.get("speed")
        single = body.get("single_active_replication")
        if single and trigger and trigger.get("type") == "event_based":
            # a plain fmt.Errorf in the handler: 500
            raise errors.internal(
                "single active replication is not allowed for event_based triggers"
            )
        return Policy(
            id=policy_id,
            name=body.get("name") or "",
            description=body.get("description") or "",
            creator=ctx.security.username or "",
            src_registry_id=int(src.get("id") or 0),
            dest_registry_id=int(dst.get("id") or 0),
            dest_namespace=body.get("dest_namespace") or "",
            dest_namespace_replace_count=-1 if count is None else int(count),
            filters=[
                Filter(f.get("type") or "", f.get("value"), f.get("decoration") or "")
                for f in body.get("filters") or []
            ],
            trigger_type=(trigger.get("type") or "") if trigger is not None else None,
            cron=settings.get("cron") if trigger and "trigger_settings" in trigger else None,
            # The handler reads Deletion, never ReplicateDeletion (handler/replication.go).
            deletion=bool(body.get("deletion")),
            override=bool(body.get("override")),
            enabled=bool(body.get("enabled")),
            speed=max(0, int(speed)) if speed is not None else 0,
            copy_by_chunk=bool(body.get("copy_by_chunk")),
            single_active_replication=bool(single),
        )

    def _validate_policy(self, p: Policy) -> None:
        """model.Policy.Validate, then the registries must exist (controller validatePolicy)."""
        if not p.name:
            raise errors.bad_request("empty name")
        if (p.src_registry_id != 0) == (p.dest_registry_id != 0):
            raise errors.bad_request(
                "either src_registry or dest_registry should be empty and the other one "
                "shouldn't be empty"
            )
        for f in p.filters:
            validate_filter(f)
        if p.dest_namespace and not REPOSITORY_NAME_RE.match(p.dest_namespace):
            raise errors.bad_request(f"invalid destination namespace: {p.dest_namespace}")
        if p.trigger_type is not None:
            if p.trigger_type in ("manual", "event_based"):
                pass
            elif p.trigger_type == "scheduled":
                problem = cronlib.replication_error(
                    p.cron or "", harbor_checks=self.at_least(CRON_CHECKS_SINCE)
                )
                if problem:
                    raise errors.bad_request(problem)
            else:
                raise errors.bad_request("invalid trigger type")
        for registry_id in (p.src_registry_id, p.dest_registry_id):
            if registry_id:
                self._get_registry(registry_id)

    def _check_columns(self, p: Policy) -> None:
        """What the database refuses: `replication_policy.filters` is varchar(1024) and holds
        the filters as Go marshals them (make/migrations/postgresql/0001_initial_schema.up.sql;
        src/controller/replication/model/model.go To). The driver's error is a plain Go error,
        so the client sees a 500 "internal server error"."""
        stored = stored_filters(p.filters)
        if len(stored) > FILTERS_COLUMN:
            raise errors.internal(
                f"pq: value too long for type character varying({FILTERS_COLUMN})"
            )

    def op_createReplicationPolicy(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication-policy", "create")
        policy = self._policy_from_body(ctx, 0)
        self._validate_policy(policy)
        self._check_columns(policy)
        with self.state.lock:
            if any(p.name == policy.name for p in self.state.policies.values()):
                raise errors.conflict(f"replication policy {policy.name} already exists")
            policy.id = self.state.next_id("policy")
            self.state.policies[policy.id] = policy
            if policy.scheduled:
                self.state.schedules[policy.id] = policy.cron or ""
        return self._created(ctx, policy.id)

    def _get_policy(self, policy_id: int) -> Policy:
        with self.state.lock:
            found = self.state.policies.get(policy_id)
        if found is None:
            raise errors.not_found(f"replication policy {policy_id} not found")
        return found

    def op_listReplicationPolicies(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication-policy", "list")
        keywords = parse_q(ctx.query.get("q"))
        if ctx.query.get("name"):
            keywords["name"] = Fuzzy(str(ctx.query["name"]))
        with self.state.lock:
            items = [p for p in self.state.policies.values() if _matches(p, keywords)]
        # src/pkg/replication/model/model.go: sort:"default:desc" on creation_time
        items = _sort(items, ctx.query.get("sort"), default=("creation_time", True))
        return self._list(ctx, items, self._render_policy)

    def op_getReplicationPolicy(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication-policy", "read")
        return self._json(self._render_policy(self._get_policy(ctx.path_params["id"])))

    def op_updateReplicationPolicy(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication-policy", "update")
        policy_id = ctx.path_params["id"]
        policy = self._policy_from_body(ctx, policy_id)
        self._validate_policy(policy)
        with self.state.lock:
            current = self._get_policy(policy_id)
        self._check_columns(policy)
        with self.state.lock:
            if any(
                p.name == policy.name and p.id != policy_id for p in self.state.policies.values()
            ):
                raise errors.conflict(f"replication policy {policy.name} already exists")
            # The DAO updates every column: creator is not carried over (dao.go Update).
            policy.creation_time = current.creation_time
            policy.creator = ""
            policy.update_time = now()
            self.state.policies[policy_id] = policy
            self.state.schedules.pop(policy_id, None)
            if policy.scheduled:
                self.state.schedules[policy_id] = policy.cron or ""
        return self._ok()

    def op_deleteReplicationPolicy(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication-policy", "delete")
        policy_id = ctx.path_params["id"]
        with self.state.lock:
            self._get_policy(policy_id)
            executions = [e for e in self.state.executions.values() if e.policy_id == policy_id]
            if any(self._live_status(e) not in FINAL for e in executions):
                raise errors.precondition(
                    "contains executions that aren't in final status, stop the execution first"
                )
            for e in executions:
                for t in self.state.tasks_of(e.id):
                    del self.state.tasks[t.id]
                del self.state.executions[e.id]
            self.state.schedules.pop(policy_id, None)
            del self.state.policies[policy_id]
        return self._ok()

    # ======================================================================================
    # handlers: executions and tasks
    # ======================================================================================

    def _live_status(self, execution: Execution) -> JobStatus:
        """The status the refresher computes from the tasks (src/pkg/task/hook.go)."""
        if execution.marked:
            return execution.status
        tasks = self.state.tasks_of(execution.id)
        if not execution.flow_done or any(t.status in IN_PROGRESS for t in tasks):
            return "Running"
        statuses = {t.status for t in tasks}
        if "Error" in statuses:
            return "Error"
        if "Stopped" in statuses or (not tasks and execution.stop_requested):
            return "Stopped"
        return "Success"

    def refresh(self, execution: Execution, *, immediate: bool = False) -> None:
        """The status refresher: asynchronous since v2.8, every status_refresh_interval."""
        interval = self.quirks.status_refresh_interval
        if not self.at_least(ASYNC_STATUS_SINCE):
            interval = 0.0
        with self.state.lock:
            if execution.marked:
                return
            t = time.monotonic()
            if not immediate and interval > 0 and t - execution.refreshed_at < interval:
                return
            new = self._live_status(execution)
            execution.refreshed_at = t
            if new != execution.status:
                execution.status = new
                if new in FINAL:
                    execution.end_time = now()

    def _mark(self, execution: Execution, status: JobStatus, message: str) -> None:
        with self.state.lock:
            execution.status = status
            execution.status_text = message
            execution.end_time = now()
            execution.marked = True

    def mark_error(self, execution: Execution, message: str) -> None:
        """MarkError / StopAndWaitWithError: Failed, the message only in status_text."""
        self._mark(execution, "Error", message)

    def mark_done(self, execution: Execution, message: str) -> None:
        self._mark(execution, "Success", message)

    def _render_execution(self, e: Execution) -> dict[str, Any]:
        self.refresh(e)
        with self.state.lock:
            tasks = self.state.tasks_of(e.id)
            counts = Counter(t.status for t in tasks)
            return spec.render(
                "ReplicationExecution",
                {
                    "id": e.id,
                    "policy_id": e.policy_id,
                    "status": EXECUTION_WORDS.get(e.status, e.status),
                    "status_text": e.status_text,
                    "trigger": e.trigger,
                    "start_time": timestamp(e.start_time),
                    "end_time": timestamp(e.end_time) if e.end_time else timestamp(None),
                    # populateExecution -> GetMetrics: live from the task table
                    "total": len(tasks),
                    "failed": counts["Error"],
                    "succeed": counts["Success"],
                    "in_progress": counts["Pending"] + counts["Scheduled"] + counts["Running"],
                    "stopped": counts["Stopped"],
                },
            )

    def _render_task(self, t: Task) -> dict[str, Any]:
        return spec.render(
            "ReplicationTask",
            {
                "id": t.id,
                "execution_id": t.execution_id,
                "status": TASK_WORDS.get(t.status, t.status),
                "job_id": t.job_id,
                "operation": t.operation,
                "resource_type": t.resource_type,
                "src_resource": t.src_resource,
                "dst_resource": t.dst_resource,
                "start_time": timestamp(t.start_time),
                "end_time": timestamp(t.end_time),
            },
        )

    def start_execution(self, policy: Policy, trigger: Literal["manual", "scheduled"]) -> int:
        """controller.Start in src/controller/replication/execution.go."""
        if not policy.enabled:
            raise errors.precondition(f"the policy {policy.id} is disabled")
        with self.state.lock:
            busy = policy.single_active_replication and any(
                e.policy_id == policy.id and self._live_status(e) == "Running"
                for e in self.state.executions.values()
            )
            execution = Execution(self.state.next_id("execution"), policy.id, trigger)
            execution.refreshed_at = time.monotonic()
            self.state.executions[execution.id] = execution
            if busy:
                self.mark_error(
                    execution, "Execution skipped: active replication still in progress."
                )
                execution.flow_done = True
                return execution.id
            snapshot = replace(policy, filters=[replace(f) for f in policy.filters])
        runner = ExecutionRunner(self, execution, snapshot)
        self._runners[execution.id] = runner
        runner.start()
        return execution.id

    def op_startReplication(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication", "create")
        body = ctx.body or {}
        policy = self._get_policy(int(body.get("policy_id") or 0))
        trigger: Literal["manual", "scheduled"] = (
            "scheduled" if ctx.query.get("trigger") == "scheduled" else "manual"
        )
        return self._created(ctx, self.start_execution(policy, trigger))

    def _get_execution(self, execution_id: int) -> Execution:
        with self.state.lock:
            found = self.state.executions.get(execution_id)
        if found is None:
            raise errors.not_found(f"replication execution {execution_id} not found")
        return found

    def op_listReplicationExecutions(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication", "list")
        with self.state.lock:
            items = list(self.state.executions.values())
        for e in items:
            self.refresh(e)
        if ctx.query.get("policy_id") is not None:
            items = [e for e in items if e.policy_id == ctx.query["policy_id"]]
        if ctx.query.get("status"):
            wanted = ctx.query["status"]
            items = [e for e in items if EXECUTION_WORDS.get(e.status, e.status) == wanted]
        if ctx.query.get("trigger"):
            items = [e for e in items if e.trigger == ctx.query["trigger"]]
        items = _sort(items, ctx.query.get("sort"), default=("start_time", True))
        return self._list(ctx, items, self._render_execution)

    def op_getReplicationExecution(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication", "read")
        return self._json(self._render_execution(self._get_execution(ctx.path_params["id"])))

    def op_stopReplication(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication", "create")
        execution = self._get_execution(ctx.path_params["id"])
        with self.state.lock:
            tasks = self.state.tasks_of(execution.id)
            execution.stop_requested = True
            if not tasks:
                # executionManager.Stop: no tasks and not final -> Stopped directly
                if self._live_status(execution) not in FINAL:
                    self._mark(execution, "Stopped", execution.status_text)
                return self._ok()
            for t in tasks:
                if t.status in ("Pending", "Scheduled"):
                    t.status = "Stopped"
                    t.end_time = now()
        # a Stopped task updates the execution status at once
        self.refresh(execution, immediate=True)
        return self._ok()

    def op_listReplicationTasks(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication", "list")
        execution = self._get_execution(ctx.path_params["id"])
        with self.state.lock:
            items = self.state.tasks_of(execution.id)
        if ctx.query.get("status"):
            wanted = ctx.query["status"]
            items = [t for t in items if TASK_WORDS.get(t.status, t.status) == wanted]
        if ctx.query.get("resource_type"):
            items = [t for t in items if t.resource_type == ctx.query["resource_type"]]
        items = _sort(items, ctx.query.get("sort"), default=("id", False))
        return self._list(ctx, items, self._render_task)

    def op_getReplicationLog(self, ctx: Ctx) -> Reply:
        self._require_system(ctx, "replication", "read")
        execution = self._get_execution(ctx.path_params["id"])
        task_id = ctx.path_params["task_id"]
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task is None:
                raise errors.not_found(f"replication task {task_id} not found")
            if task.execution_id != execution.id:
                raise errors.not_found(
                    f"execution {execution.id} contains no task with ID {task_id}"
                )
            text = "\n".join(task.log) + ("\n" if task.log else "")
        return Reply(200, text.encode(), content_type="text/plain")

    # -- the destination -------------------------------------------------------------------

    def destination_endpoint(self) -> Endpoint:
        target = self.registry
        tls = target.url.startswith("https://")
        return Endpoint(
            host=target.host,
            tls=tls,
            verify=(target.ca_file or True) if tls else False,
            username=target.username,
            password=target.password,
        )


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


FILTERS_COLUMN = 1024  # replication_policy.filters varchar(1024), counted in characters


def stored_filters(filters: Sequence[Filter]) -> str:
    """The filters as Go's json.Marshal writes them into the column: no spaces, fields in the
    struct's order, `decoration` omitted when empty (src/pkg/reg/model/policy.go Filter)."""
    items: list[dict[str, Any]] = []
    for f in filters:
        item: dict[str, Any] = {"type": f.type, "value": f.value}
        if f.decoration:
            item["decoration"] = f.decoration
        items.append(item)
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False) if items else ""


def validate_http_url(raw: str) -> str:
    """lib.ValidateHTTPURL (src/lib/endpoint.go)."""
    s = raw.strip(" ").rstrip("/")
    if not s:
        raise errors.bad_request("empty string")
    if "://" not in s:
        s = "http://" + s
    parts = urlsplit(s)
    if parts.scheme not in ("http", "https"):
        raise errors.bad_request(f"invalid HTTP scheme: {parts.scheme}")
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def validate_filter(f: Filter) -> None:
    """Filter.Validate in src/pkg/reg/model/policy.go."""
    if f.type in ("resource", "name", "tag"):
        if not isinstance(f.value, str):
            raise errors.bad_request("the type of filter value isn't string")
        if f.type == "resource" and f.value not in ("image", "artifact"):
            raise errors.bad_request(f"invalid resource filter: {f.value}")
        if f.type in ("name", "resource") and f.decoration:
            raise errors.bad_request("only tag and label filter support decoration")
    elif f.type == "label":
        if not isinstance(f.value, list) or not all(isinstance(v, str) for v in f.value):
            raise errors.bad_request("the type of label filter value isn't string slice")
    else:
        raise errors.bad_request("invalid filter type")
    if f.decoration and f.decoration not in ("matches", "excludes"):
        raise errors.bad_request(f"invalid filter decoration, :{f.decoration}")


@dataclass(frozen=True)
class Fuzzy:
    value: str


@dataclass(frozen=True)
class OneOf:
    values: tuple[str, ...]


def parse_q(q: Any) -> dict[str, Any]:
    """lib/q Build: ``k=v`` exact, ``k=~v`` fuzzy, ``k={a b}`` or-list (others rejected)."""
    out: dict[str, Any] = {}
    if not q:
        return out
    text = unquote(str(q))
    for clause in text.split(","):
        key, sep, value = clause.partition("=")
        if not sep or not key or not value:
            raise errors.bad_request(
                'the query string must contain "=" and the key/value cannot be empty'
            )
        if value.startswith("~"):
            if len(value) < 2:
                raise errors.bad_request(f"invalid query string value: {value}")
            out[key] = Fuzzy(value[1:])
        elif value.startswith("{"):
            if not value.endswith("}"):
                raise errors.bad_request(f"invalid query string value: {value}")
            out[key] = OneOf(tuple(v for v in value[1:-1].split(" ") if v))
        elif value.startswith(("[", "(")):
            raise errors.bad_request(f"the emulator does not support this query: {value}")
        else:
            out[key] = value
    return out


def _field(item: Any, key: str) -> Any:
    aliases = {"project_id": "id", "src_registry_id": "src_registry_id"}
    return getattr(item, aliases.get(key, key), None)


def _matches(item: Any, keywords: dict[str, Any]) -> bool:
    for key, wanted in keywords.items():
        value = _field(item, key)
        if value is None:
            continue  # the ORM ignores keys the model does not have
        text = str(value)
        if isinstance(wanted, Fuzzy):
            if wanted.value not in text:
                return False
        elif isinstance(wanted, OneOf):
            if text not in wanted.values and text.strip("'\"") not in wanted.values:
                if f"'{text}'" not in wanted.values:
                    return False
        elif text != wanted:
            return False
    return True


def _sort(items: list[Any], sort: Any, *, default: tuple[str, bool]) -> list[Any]:
    keys: list[tuple[str, bool]] = []
    if sort:
        for part in str(sort).split(","):
            desc = part.startswith("-")
            keys.append((part.lstrip("-"), desc))
    else:
        keys = [default]
    out = list(items)
    for key, desc in reversed(keys):

        def sort_key(item: Any, k: str = key) -> tuple[bool, Any]:
            value = _field(item, k)
            return (value is None, value if value is not None else 0)

        out.sort(key=sort_key, reverse=desc)
    return out


def _links(request: Request, total: int, page: Page) -> str:
    """BaseAPI.Links + lib.Links.String: relative URLs, sorted query, `` , `` separator."""
    if page.size == 0:
        return ""
    path = request.path
    base_query = request.query_pairs
    links: list[str] = []

    def url_for(number: int) -> str:
        query = {k: v for k, v in base_query}
        query["page"] = str(number)
        query["page_size"] = str(page.size)
        encoded = urlencode(sorted(query.items()), quote_via=quote)
        return f"{path}?{unquote(encoded)}"

    if page.number > 1 and (page.number - 1) * page.size < total:
        links.append(f'<{url_for(page.number - 1)}>; rel="prev"')
    if page.size * page.number < total:
        links.append(f'<{url_for(page.number + 1)}>; rel="next"')
    return " , ".join(links)


def _has_sid_cookie(request: Request) -> bool:
    for header in request.header_values("cookie"):
        for part in header.split(";"):
            name, _, _ = part.strip().partition("=")
            if name == "sid":
                return True
    return False


_SECRET_KEYS = {"access_secret", "secret", "password"}


def _scrub(body: Any) -> Any:
    """The body as recorded: secrets replaced, so calls can be printed safely."""
    if isinstance(body, dict):
        return {k: (MASKED if k in _SECRET_KEYS and v else _scrub(v)) for k, v in body.items()}
    if isinstance(body, list):
        return [_scrub(v) for v in body]
    return body
