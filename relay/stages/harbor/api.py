"""Harbor's REST API (/api/v2.0), the parts the stage uses, on relay's transport.

What Harbor's API expects of a client (docs/vendors/harbor.md):

* Basic auth on every request, and **no cookie jar**: a request that carries Harbor's `sid`
  session cookie is held to CSRF checks, and every write then fails with 403 "CSRF token
  invalid" (goharbor/harbor#13570, the maintainers' advice for scripts).
* Creates answer 201 with a relative `Location` ending in the new id; lists page with `page`,
  `page_size` (at most 100), `X-Total-Count` and a relative `Link` header.
* Errors are `{"errors":[{"code","message"}]}`; every 5xx has its message replaced by
  "internal server error" (src/lib/http/error.go), the real cause only in Harbor core's log.

Retries (429, 5xx, connection errors) are relay.net's one helper; server text is untrusted and
is cut to one short line, with every secret taken out (relay.safety), before it reaches a message.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from relay import safety
from relay.errors import OperationFailed
from relay.net import deadline as deadlines
from relay.net.errors import TransportError
from relay.net.paging import next_page
from relay.net.retry import RetryPolicy
from relay.net.stats import RequestStats
from relay.net.tls import TLSConfig
from relay.net.transport import DEFAULT_DEADLINE, Transport, describe_exception, origin
from relay.safety import one_line
from relay.stages.harbor.settings import Login
from relay.untrusted import count, load_json

log = logging.getLogger(__name__)

API = "/api/v2.0"
PAGE_SIZE = 100  # the swagger's maximum for every list
MAX_ANSWER = 8 << 20  # Harbor's answers are small; refuse to read a runaway body
MAX_LOG = 256 << 10  # a task log's tail is what a person reads
USER_AGENT = "relay-harbor"


class HarborError(OperationFailed):
    """A Harbor API call failed. ``code`` is Harbor's error code ("CONFLICT", …) when it sent
    one; ``status`` the HTTP status (None when no answer came)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        server_message: str = "",
        request_id: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.server_message = server_message
        self.request_id = request_id
        super().__init__(message)


@dataclass
class Counts:
    """Requests sent, by kind, for the report and the benchmark (every attempt counts)."""

    reads: int = 0
    writes: int = 0

    @property
    def total(self) -> int:
        return self.reads + self.writes


class HarborClient:
    def __init__(
        self,
        url: str,
        login: Login,
        *,
        ca_bundle: str | None = None,
        secrets: Sequence[str] = (),
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        stats: RequestStats | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        netloc = urlsplit(self.url).netloc
        tls = TLSConfig(ca_bundles={netloc: ca_bundle} if ca_bundle else {})
        self.transport = Transport(
            tls=tls,
            retry=retry or RetryPolicy(attempts=5, backoff=1.0, max_backoff=20.0),
            stats=stats,
            user_agent=USER_AGENT,
            sleep=sleep,
            cookies=False,
            pool_size=8,
        )
        token = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
        self._authorization = f"Basic {token}"
        self.username = login.username
        safety.add_credential(login.username, login.password)
        safety.add_secret(*secrets)
        self.counts = Counts()

    def close(self) -> None:
        self.transport.session.close()

    # --- the one request path -----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        ok: Sequence[int] = (200,),
        url: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> requests.Response:
        """Send, retrying what is safe to retry; raise HarborError unless the status is ``ok``."""
        if url is not None and not _same_origin(url, self.url):
            # A next-page Link names the URL: Harbor's credentials go to Harbor only.
            raise HarborError(
                f"Harbor {self.url}: {what}: the answer points at another host "
                f"({one_line(url, 100)}); relay sends Harbor's credentials only to Harbor"
            )
        hdrs = {"Authorization": self._authorization, "Accept": "application/json"}
        hdrs.update(headers or {})
        data: bytes | None = None
        if body is not None:
            hdrs["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if method in ("GET", "HEAD"):
            self.counts.reads += 1
        else:
            self.counts.writes += 1
        try:
            response = self.transport.request(
                method,
                url or f"{self.url}{API}{path}",
                what=f"Harbor: {what}",
                kind="write" if method not in ("GET", "HEAD") else "read",
                headers=hdrs,
                params=params,
                body=data,
                stream=True,
                retry=retry,
            )
        except TransportError as exc:
            raise HarborError(f"Harbor {self.url}: {what} failed: {one_line(exc.reason)}") from exc
        if response.status_code not in ok:
            raise self.error(response, what)
        return response

    def json(self, response: requests.Response) -> Any:
        raw = _read(response, MAX_ANSWER)
        if raw is None:
            raise HarborError(f"Harbor {self.url}: an answer larger than {MAX_ANSWER} bytes")
        if not raw:
            return None
        try:
            return load_json(raw)
        except ValueError:
            raise HarborError(f"Harbor {self.url}: the answer is not JSON") from None

    def get(self, path: str, what: str, params: Mapping[str, str] | None = None) -> Any:
        return self.json(self.request("GET", path, what=what, params=params))

    def paged(self, path: str, what: str, params: Mapping[str, str] | None = None) -> Iterator[Any]:
        """Every item of a list, page by page (Link: rel=next, or until a short page)."""
        query = {**(params or {}), "page": "1", "page_size": str(PAGE_SIZE)}
        url: str | None = None
        seen: set[str] = set()
        while True:
            response = self.request("GET", path, what=what, params=None if url else query, url=url)
            items = self.json(response)
            if not isinstance(items, list):
                raise HarborError(f"Harbor {self.url}: {what}: the answer is not a list")
            yield from items
            url = next_page(response)
            if url is None or not items:
                return
            if url in seen:
                raise HarborError(f"Harbor {self.url}: {what}: the pages loop")
            seen.add(url)

    def created_id(self, response: requests.Response, what: str) -> int:
        """The id at the end of a 201's relative `Location` (/api/v2.0/registries/7)."""
        location = response.headers.get("Location", "")
        tail = location.rstrip("/").rsplit("/", 1)[-1]
        created = count(tail)
        if created is None:
            raise HarborError(
                f"Harbor {self.url}: {what}: created, but the Location header "
                f"{one_line(location, 80)!r} names no id"
            )
        return created

    def error(self, response: requests.Response, what: str) -> HarborError:
        status = response.status_code
        raw = _read(response, 64 << 10) or b""
        code = message = ""
        try:
            doc = load_json(raw) if raw else None
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("errors"), list) and doc["errors"]:
            first = doc["errors"][0]
            if isinstance(first, dict):
                code = one_line(str(first.get("code") or ""), 60)
                message = one_line(str(first.get("message") or ""))
        elif raw:
            message = one_line(raw.decode("utf-8", "replace"))
        request_id = one_line(response.headers.get("X-Request-Id", ""), 80)
        text = f"Harbor {self.url}: {what} failed: HTTP {status}"
        if code or message:
            text += f" {code}: {message}" if code else f": {message}"
        hint = _hint(status, code, message, self.username)
        if hint:
            text += f". {hint}"
        if request_id:
            text += f" (X-Request-Id {request_id})"
        return HarborError(
            text, status=status, code=code, server_message=message, request_id=request_id
        )

    # --- operations ---------------------------------------------------------------------------

    def systeminfo(self) -> dict[str, Any]:
        info = self.get("/systeminfo", "read systeminfo")
        return info if isinstance(info, dict) else {}

    def find_by_name(self, path: str, name: str, what: str) -> dict[str, Any] | None:
        """The object named exactly ``name`` (the `q` filter is exact; the deprecated `name`
        parameter is fuzzy, so the name is compared again here)."""
        for item in self.paged(path, what, {"q": f"name={name}"}):
            if isinstance(item, dict) and item.get("name") == name:
                return item
        return None

    def project(self, name: str) -> dict[str, Any] | None:
        """The project named ``name``, from the project list. `GET /projects/{name}` and
        `HEAD /projects` need read access on that project, which a system robot never holds
        (its system permissions are all it is judged by: src/common/security/robot/context.go),
        while the list shows every project to a robot with the system permission project/list
        (src/server/v2.0/handler/project.go ListProjects)."""
        return self.find_by_name("/projects", name, f"look for project {name}")

    @property
    def endpoint_retry(self) -> RetryPolicy:
        """Retries for registry-endpoint writes: not on 500. Harbor pings the registry on every
        endpoint write, and a 500 there is its fixed answer to a wrong URL, an unknown
        provider or a failed ping (src/lib/http/error.go hides the cause): trying again only
        pings ACR again with the same result (docs/vendors/harbor.md#registries)."""
        policy = self.transport.retry
        return dataclasses.replace(policy, retry_statuses=policy.retry_statuses - {500})

    def create(
        self, path: str, body: dict[str, Any], what: str, *, retry: RetryPolicy | None = None
    ) -> int:
        """POST ``body``; the new object's id. A 409 (the name exists: another run created it
        meanwhile) is raised as HarborError with code CONFLICT for the caller to re-read."""
        response = self.request("POST", path, what=what, body=body, ok=(201,), retry=retry)
        response.close()
        return self.created_id(response, what)

    def put(
        self, path: str, body: dict[str, Any], what: str, *, retry: RetryPolicy | None = None
    ) -> None:
        self.request("PUT", path, what=what, body=body, retry=retry).close()

    def delete(self, path: str, what: str) -> None:
        self.request("DELETE", path, what=what).close()

    def task_log_tail(self, execution_id: int, task_id: int, lines: int = 20) -> list[str]:
        response = self.request(
            "GET",
            f"/replication/executions/{execution_id}/tasks/{task_id}/log",
            what=f"read the log of task {task_id}",
            headers={"Accept": "text/plain"},
        )
        raw = _read(response, MAX_LOG, tail=True) or b""
        text = raw.decode("utf-8", "replace")
        return [one_line(line, 400) for line in text.splitlines()[-lines:] if line]


def _same_origin(url: str, base: str) -> bool:
    try:
        return origin(url) == origin(base)
    except ValueError:
        return False


def _read(response: requests.Response, limit: int, *, tail: bool = False) -> bytes | None:
    """The body, at most ``limit`` bytes: None when larger (or its last ``limit`` bytes with
    ``tail``). A registry or a proxy in the way must not make relay read without end."""
    chunks: list[bytes] = []
    size = 0
    try:
        # The whole body within the transport's deadline: a trickling server cannot hold a run.
        with deadlines.guard(response, DEFAULT_DEADLINE) as watch:
            try:
                for chunk in response.iter_content(64 << 10):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > limit:
                        if not tail:
                            return None
                        joined = b"".join(chunks)[-limit:]
                        chunks, size = [joined], len(joined)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                late = watch is not None and watch.fired
                raise HarborError(
                    "Harbor's answer broke off: "
                    + (
                        f"not complete within {DEFAULT_DEADLINE:g} s"
                        if late
                        else describe_exception(exc)
                    )
                ) from exc
    finally:
        response.close()
    return b"".join(chunks)


def _hint(status: int, code: str, message: str, username: str) -> str:
    """What an error usually means, in the words of someone who has seen it before."""
    lower = message.lower()
    if status == 401:
        return (
            "Harbor did not accept HARBOR_USERNAME/HARBOR_PASSWORD (a robot account's name "
            "includes its prefix, e.g. robot$relay)"
        )
    if status == 403 and "csrf" in lower:
        return "a session cookie reached Harbor; relay sends none, so a proxy may be adding one"
    if status == 403:
        return (
            f"{username} lacks a permission this needs: give it system permissions on registry, "
            "replication-policy, replication and project (Harbor ≥ 2.10 for robot accounts)"
        )
    if status == 400 and "unhealthy" in lower:
        return (
            "Harbor checked the ali-acr endpoint and could not use it: the AccessKey is wrong "
            "(it must be an AccessKey ID/secret, not the docker login password), the RAM user "
            "has never opened ACR (USER_NOT_EXIST), or the Harbor host cannot reach the registry "
            "URL and cr.<region>.aliyuncs.com"
        )
    if status >= 500:
        return (
            "Harbor hides the cause of a 500 in its core log (docker logs harbor-core, or "
            "kubectl logs deploy/harbor-core); likely causes here: a provider type Harbor does "
            "not know, a URL that is not ACR's, or ACR not reachable from the Harbor host"
        )
    if status == 412 and "referenced" in lower:
        return "a replication policy still uses it; remove the policy first"
    return ""
