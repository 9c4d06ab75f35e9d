"""ACR API errors: one exception type, with the service's own code dug out of the SDK's wrapper.

The Python SDK only reads capitalised `Code`/`Message` (docs/vendors/acr.md#error-shapes). The 2016
personal API answers with lower-case `{"code": "REPO_NOT_EXIST", ...}`, which the SDK turns into
`ServerException("SDK.UnknownServerError", "ServerResponseBody: {...}")`, so the real code has to be
recovered from the message. Gateway errors (Throttling, InvalidAccessKeyId…) are capitalised and
arrive intact.
"""

from __future__ import annotations

import json
import re

from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException

from relay import safety
from relay.errors import OperationFailed
from relay.net.reachability import condense

_BODY_PREFIX = "ServerResponseBody:"
# Connection failures the SDK wraps as SDK.HttpError; a request that never connected cannot
# have had an effect, so even a write may be retried after one. "Connection aborted" (a reset,
# RemoteDisconnected) is not one of them: it comes after the request was sent, and the server
# may have done the work before the answer was lost, so a write is looked for before it is
# sent again (found by the chaos runs: a reset after CreateRepoBuildRule made a second rule).
_CONNECT_FAILURE = re.compile(
    r"Connection refused|ConnectTimeout|Failed to establish|NewConnectionError|"
    r"Name or service not known|Temporary failure in name resolution|Cannot connect to proxy",
    re.IGNORECASE,
)
_MAX_MESSAGE = 300
# Codes that mean "the server failed", whatever the HTTP status.
_SERVER_CODES = frozenset({"SystemError", "ServiceUnavailable", "InternalError"})


class AcrError(OperationFailed):
    """An ACR API call failed. `code` is the service's code (e.g. REPO_NOT_EXIST, Throttling)."""

    def __init__(
        self,
        action: str,
        code: str,
        message: str = "",
        *,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.action = action
        self.code = code
        # The SDK's transport errors are requests' messages, class names and URLs included:
        # said as one cause instead ("cannot reach cr.cn-hangzhou.aliyuncs.com: connection
        # refused"). The raw text still decides `connect_failure`.
        self._raw = " ".join(str(message).split())
        plain = condense(message) if code == "SDK.HttpError" else None
        self.message = _clip(plain or message)
        self.http_status = http_status
        self.request_id = request_id
        parts = [f"ACR {action} failed: {code}"]
        if self.message and self.message != code:
            parts.append(self.message)
        if http_status is not None:
            parts.append(f"(HTTP {http_status})")
        if request_id:
            parts.append(f"[request {request_id}]")
        super().__init__(" ".join(parts))

    @property
    def throttled(self) -> bool:
        return self.code.lower().startswith("throttling") or self.http_status == 429

    @property
    def server_error(self) -> bool:
        """A 5xx, or a server-failure code, which Enterprise may send inside an HTTP 200
        (SystemError: retryable, docs/vendors/acr.md#error-codes)."""
        if self.code in _SERVER_CODES:
            return True
        return self.http_status is not None and self.http_status >= 500

    @property
    def transport(self) -> bool:
        return self.code == "SDK.HttpError"

    @property
    def retryable(self) -> bool:
        return self.throttled or self.server_error or self.transport

    @property
    def ambiguous(self) -> bool:
        """The write may have happened: a 5xx or a lost answer, not a refusal at the door."""
        return self.server_error or (self.transport and not self.connect_failure)

    @property
    def connect_failure(self) -> bool:
        """The request never reached the server (safe to repeat whatever it was)."""
        return self.transport and bool(_CONNECT_FAILURE.search(self._raw))

    @property
    def unknown_action(self) -> bool:
        """The gateway does not know the operation (InvalidAction.NotFound, HTTP 404): the route
        itself is missing, which says nothing about the repository it names. Personal-edition
        routes the SDK does not document may be gone (docs/vendors/acr.md#personal-edition-
        operations)."""
        return self.code.startswith(("InvalidAction", "InvalidApi")) or (
            "api is not found" in self.message.lower()
        )

    @property
    def not_found(self) -> bool:
        """The thing named does not exist: a ``*_NOT_EXIST`` code, or a 404 that is neither an
        unknown operation nor a gateway ``Invalid*.NotFound`` (an access key, say)."""
        if "NOT_EXIST" in self.code.upper():
            return True
        gateway = self.unknown_action or (
            self.code.startswith("Invalid") and self.code.endswith("NotFound")
        )
        return self.http_status == 404 and not gateway

    @property
    def already_exists(self) -> bool:
        """Codes for "already exists" are UNCONFIRMED
        (docs/vendors/acr.md#already-exists-and-limit-errors); match the usual words. A limit
        comes first: a quota refusal ("maximum already reached") is not an existing thing."""
        upper = f"{self.code} {self.message}".upper()
        if "NOT_EXIST" in upper or "NOT EXIST" in upper or self.limit_reached:
            return False
        return "ALREADY" in upper or "EXIST" in self.code.upper() or "DUPLICATE" in upper

    @property
    def limit_reached(self) -> bool:
        """Quota/limit codes are UNCONFIRMED; match the usual words in code or message."""
        upper = f"{self.code} {self.message}".upper()
        return any(
            word in upper
            for word in ("LIMIT", "QUOTA", "EXCEED", "TOO_MANY", "TOO MANY", "MAXIMUM")
        )


def dig(message: str) -> tuple[str, str] | None:
    """(code, message) from a "ServerResponseBody: {...}" message, either casing; else None."""
    if _BODY_PREFIX not in message:
        return None
    raw = message.split(_BODY_PREFIX, 1)[1].strip()
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("code") or body.get("Code") or body.get("errorCode")
    text = body.get("message") or body.get("Message") or body.get("errorMessage") or ""
    if not isinstance(code, str) or not code:
        return None
    return code, str(text)


def from_sdk(action: str, exc: Exception) -> AcrError:
    """An AcrError for whatever the SDK raised."""
    if isinstance(exc, ServerException):
        code = exc.get_error_code() or "Unknown"
        message = exc.get_error_msg() or ""
        found = dig(message)
        if found is not None:
            code, message = found
        elif message.startswith(_BODY_PREFIX):
            message = message[len(_BODY_PREFIX) :].strip()
        return AcrError(
            action,
            code,
            message,
            http_status=exc.get_http_status(),
            request_id=exc.get_request_id(),
        )
    if isinstance(exc, ClientException):
        return AcrError(action, exc.get_error_code() or "SDK.ClientError", exc.get_error_msg())
    return AcrError(action, type(exc).__name__, str(exc))


def _clip(text: str) -> str:
    return safety.one_line(text, _MAX_MESSAGE)
