"""A fault-injecting front for a real registry: the shared HTTP front, forwarding each request
to a docker-registry process, with the shared fault injector deciding what to break.

docker-registry itself cannot be told to fail, so the sandbox puts this in front of its upstream
stand-in when faults are on (`relay sandbox up --faults RATE`). Faults are answered the way
distribution answers them (its `errcode` JSON, docker/distribution registry/api/errcode):
throttling is 429 `TOOMANYREQUESTS`, a 5xx is `UNAVAILABLE`, "5xx-after" forwards the request
and then answers the error, "reset" drops the connection ("reset-after" once the registry has
answered), "latency" waits first.

Answers are read whole before they are passed on: the sandbox's images are a few KiB, and a
client must see a complete answer or a broken connection, never half of one from this front.
"""

from __future__ import annotations

import json
import re
import threading
import time

import requests

from relay.sandbox.common.faults import Decision, FaultHit, FaultInjector
from relay.sandbox.common.front import HttpFront, Reply, Request, ResetConnection
from relay.sandbox.common.recording import Call, Recorder

# Headers that describe one hop, not the message (RFC 9110 section 7.6.1), and the length,
# which the front sets from the body it writes (a HEAD's is passed on as it came).
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}
)
_OPERATION = re.compile(r"\A/v2/(?:(?P<name>.+)/(?P<kind>manifests|blobs|tags)/(?P<rest>.*))?\Z")
MAX_BODY = 64 << 20  # what a client may send (a pushed layer in a test); the sandbox's are KiB
TIMEOUT = 30.0


def operation(method: str, path: str) -> str:
    """The operation a registry request is, for fault rules and counts: ``GET manifest``,
    ``HEAD blob``, ``GET tags``, ``GET ping``; ``other`` for the rest."""
    found = _OPERATION.match(path)
    if found is None:
        return f"{method} other"
    kind = found.group("kind")
    if kind is None:
        return f"{method} ping"
    return f"{method} {kind.rstrip('s')}"


class FaultyFront:
    """``FaultyFront(upstream_url).start()``: ``url``/``host`` of the front; ``faults`` to
    inject (scripted or random); ``calls`` for what it was asked; ``stop()``."""

    def __init__(self, upstream_url: str, *, name: str = "registry-front") -> None:
        self.upstream_url = upstream_url.rstrip("/")
        self.faults = FaultInjector()
        self.recorder: Recorder[Call] = Recorder()
        self.calls = self.recorder.calls
        self._local = threading.local()
        self.front = HttpFront(self._serve, on_error=_error_reply, name=name, max_body=MAX_BODY)

    @property
    def url(self) -> str:
        return self.front.url

    @property
    def host(self) -> str:
        return self.front.endpoint

    def start(self) -> FaultyFront:
        self.front.start()
        return self

    def stop(self) -> None:
        self.front.stop()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # 127.0.0.1 must never go through a proxy from the env
            self._local.session = session
        return session

    def _serve(self, request: Request) -> Reply:
        action = operation(request.method, request.path)
        decision: Decision = self.faults.decide(action)
        if decision.delay:
            time.sleep(decision.delay)
        if decision.reset:
            self._record(request, action, 0, "RESET")
            raise ResetConnection
        if decision.before is not None:
            return self._fault(request, action, decision.before)
        reply = self._forward(request)
        if decision.reset_after:
            self._record(request, action, 0, "RESET")
            raise ResetConnection
        if decision.after is not None:
            return self._fault(request, action, decision.after)
        self._record(request, action, reply.status, None)
        return reply

    def _forward(self, request: Request) -> Reply:
        headers = {k: v for k, v in request.header_items if k.lower() not in _HOP_BY_HOP}
        # The client's Host goes through, so URLs the registry builds (Location) name this front.
        headers["Host"] = request.headers.get("host", self.host)
        try:
            answer = self._session().request(
                request.method,
                self.upstream_url + request.target,
                headers=headers,
                data=request.body or None,
                allow_redirects=False,
                timeout=TIMEOUT,
            )
        except requests.RequestException:
            return _error_reply(502, "the registry behind the front did not answer")
        out = [
            (k, v)
            for k, v in answer.headers.items()
            if k.lower() not in _HOP_BY_HOP
            and (request.method == "HEAD" or k.lower() != "content-length")
        ]
        return Reply(answer.status_code, answer.content, content_type=None, headers=out)

    def _fault(self, request: Request, action: str, hit: FaultHit) -> Reply:
        if hit.kind == "throttling":
            status, code, message = hit.status or 429, "TOOMANYREQUESTS", "too many requests"
        else:
            status, code, message = hit.status or 503, "UNAVAILABLE", "service unavailable"
        reply = _error_reply(status, message, code)
        if hit.retry_after is not None:
            reply.headers.append(("Retry-After", f"{hit.retry_after:g}"))
        self._record(request, action, status, code)
        return reply

    def _record(self, request: Request, action: str, status: int, code: str | None) -> None:
        self.recorder.record(
            Call(action, request.method, request.path, {}, None, status, code, write=False)
        )


def _error_reply(status: int, message: str, code: str = "UNKNOWN") -> Reply:
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]})
    return Reply(status, body.encode(), content_type="application/json; charset=utf-8")
