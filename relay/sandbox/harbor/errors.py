"""Harbor's error body and codes, as ``src/lib/http/error.go`` and ``src/lib/errors`` send them.

Every error is ``{"errors":[{"code":"<CODE>","message":"<text>"}]}`` with
``Content-Type: application/json; charset=utf-8``. Status follows the code (``codeMap`` in
``src/lib/http/error.go``); anything at or above 500 is answered as ``UNKNOWN`` /
``internal server error`` and the real message only goes to the core log. go-swagger's binding
and validation errors (``go-openapi/errors``) are re-coded as the upper-cased status text, e.g.
``UNPROCESSABLE_ENTITY``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

BAD_REQUEST = "BAD_REQUEST"
UNAUTHORIZED = "UNAUTHORIZED"
FORBIDDEN = "FORBIDDEN"
DENIED = "DENIED"
NOT_FOUND = "NOT_FOUND"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
CONFLICT = "CONFLICT"
PRECONDITION = "PRECONDITION"
REQUEST_ENTITY_TOO_LARGE = "REQUEST_ENTITY_TOO_LARGE"
TOO_MANY_REQUEST = "TOO_MANY_REQUEST"
UNKNOWN = "UNKNOWN"  # errors.GeneralCode
UNPROCESSABLE_ENTITY = "UNPROCESSABLE_ENTITY"

# src/lib/http/error.go codeMap (plus the codes go-swagger's statuses turn into).
STATUS = {
    BAD_REQUEST: 400,
    UNAUTHORIZED: 401,
    FORBIDDEN: 403,
    DENIED: 403,
    NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405,
    CONFLICT: 409,
    PRECONDITION: 412,
    REQUEST_ENTITY_TOO_LARGE: 413,
    UNPROCESSABLE_ENTITY: 422,
    TOO_MANY_REQUEST: 429,
    UNKNOWN: 500,
}

INTERNAL = "internal server error"
CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass
class HarborError(Exception):
    """An error answer. ``cause`` is what the core log would show for a 5xx (never sent)."""

    code: str
    message: str
    status: int = 0  # 0: from the code
    cause: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            self.status = STATUS.get(self.code, 500)

    @property
    def public_message(self) -> str:
        # SendError: "the error detail is logged only, and will not be sent to the client".
        return INTERNAL if self.status >= 500 else self.message

    @property
    def public_code(self) -> str:
        return UNKNOWN if self.status >= 500 else self.code

    def body(self) -> bytes:
        # fmt.Fprintln adds a newline after the JSON.
        payload = {"errors": [{"code": self.public_code, "message": self.public_message}]}
        return (json.dumps(payload) + "\n").encode()


def bad_request(message: str) -> HarborError:
    return HarborError(BAD_REQUEST, message)


def not_found(message: str) -> HarborError:
    return HarborError(NOT_FOUND, message)


def conflict(message: str) -> HarborError:
    return HarborError(CONFLICT, message)


def precondition(message: str) -> HarborError:
    return HarborError(PRECONDITION, message)


def unauthorized() -> HarborError:
    # errors.UnauthorizedError(nil): the default message is the lower-cased code.
    return HarborError(UNAUTHORIZED, "unauthorized")


def forbidden(message: str) -> HarborError:
    return HarborError(FORBIDDEN, message)


def internal(cause: str) -> HarborError:
    """A plain Go error reaching SendError: 500, ``internal server error``, cause logged."""
    return HarborError(UNKNOWN, cause, 500, cause)


def validation(messages: list[str], status: int = 422) -> HarborError:
    """go-openapi's CompositeValidationError, as Harbor re-codes it (apiError in error.go)."""
    text = "validation failure list:\n" + "\n".join(messages)
    code = {400: BAD_REQUEST, 404: NOT_FOUND, 405: METHOD_NOT_ALLOWED}.get(
        status, UNPROCESSABLE_ENTITY
    )
    return HarborError(code, text, status)
