"""Exceptions raised by the registry client.

Every error names the registry, the repository and what was asked for, plus the error codes the
registry sent back, so a log line alone is enough to act on. What the server said is untrusted:
it goes through relay.safety (one line, control characters escaped, capped, every secret relay
knows redacted) as it is read, before any message is built from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from relay import safety
from relay.errors import OperationFailed
from relay.net.retry import parse_retry_after
from relay.untrusted import load_json

_MAX_BODY_IN_MESSAGE = 300


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of a distribution error body: ``{"errors": [{"code", "message", "detail"}]}``."""

    code: str
    message: str = ""
    detail: object = None

    def __str__(self) -> str:
        text = self.code
        if self.message:
            text += f": {self.message}"
        if self.detail not in (None, "", [], {}):
            try:
                detail = json.dumps(self.detail, sort_keys=True, default=str)
            except (ValueError, RecursionError):
                detail = "…"
            text += f" ({safety.one_line(detail, 200)})"
        return text


def parse_error_body(body: bytes | str | None) -> list[ErrorDetail]:
    """Read the distribution error list; token servers' ``details``/``error`` fields count too."""
    if not body or len(body) > _MAX_ERROR_BODY:
        return []
    try:
        doc = load_json(body)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(doc, dict):
        return []
    found: list[ErrorDetail] = []
    errors = doc.get("errors")
    if isinstance(errors, list):
        for item in errors[:_MAX_ERRORS]:
            if isinstance(item, dict):
                found.append(
                    _detail(item.get("code") or "UNKNOWN", item.get("message"), item.get("detail"))
                )
    # Docker Hub's token server answers {"details": "incorrect username or password"}; OAuth2
    # servers answer {"error": "...", "error_description": "..."}.
    if not found and isinstance(doc.get("details"), str):
        found.append(_detail("DETAILS", doc["details"]))
    if not found and isinstance(doc.get("error"), str):
        found.append(_detail(doc["error"], doc.get("error_description")))
    return found


_MAX_ERRORS = 10  # a registry sends one or two; more is noise (or an attack on the log)
_MAX_ERROR_BODY = 1 << 20


def _detail(code: object, message: object = None, detail: object = None) -> ErrorDetail:
    """An error entry with the server's words made safe to print."""
    return ErrorDetail(
        code=safety.one_line(code, 60),
        message=safety.one_line(message or "", 300),
        detail=detail if isinstance(detail, (dict, list, str, int, float, bool)) else None,
    )


def body_excerpt(body: bytes | None) -> str:
    """A short printable excerpt of a non-JSON error body."""
    if not body:
        return ""
    text = body[:_MAX_BODY_IN_MESSAGE].decode("utf-8", "replace")
    excerpt = safety.one_line(text, _MAX_BODY_IN_MESSAGE)
    return excerpt + "..." if len(body) > _MAX_BODY_IN_MESSAGE else excerpt


class RegistryError(OperationFailed):
    """A registry operation failed. Base of everything in this module."""

    def __init__(
        self,
        message: str,
        *,
        registry: str = "",
        repository: str | None = None,
        action: str = "",
        status: int | None = None,
        errors: list[ErrorDetail] | None = None,
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.action = action
        self.status = status
        self.errors: list[ErrorDetail] = list(errors or [])
        self.reason = message
        super().__init__(self._format())

    @property
    def codes(self) -> list[str]:
        return [e.code for e in self.errors]

    def _format(self) -> str:
        where = self.registry or "registry"
        if self.repository:
            where += f"/{self.repository}"
        head = f"{where}: {self.action} failed" if self.action else f"{where}: failed"
        parts = [head]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.reason:
            parts.append(self.reason)
        if self.errors:
            parts.append("; ".join(str(e) for e in self.errors))
        return ": ".join(parts)


class RegistryConnectionError(RegistryError):
    """The registry could not be reached (connection refused, reset, timeout) after retries."""


class RegistryTLSError(RegistryConnectionError):
    """The TLS handshake failed, typically an untrusted certificate."""


class AuthenticationError(RegistryError):
    """Credentials are missing or were rejected (HTTP 401, or the token server said no)."""


class AccessDeniedError(RegistryError):
    """Authenticated, but not allowed to do this (HTTP 403 / ``DENIED``)."""


class NotFoundError(RegistryError):
    """The repository, manifest, tag or blob does not exist (HTTP 404 / ``*_UNKNOWN``)."""


class RateLimitedError(RegistryError):
    """HTTP 429 persisted after retries, or the registry asked us to wait longer than allowed."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        registry: str = "",
        repository: str | None = None,
        action: str = "",
        status: int | None = None,
        errors: list[ErrorDetail] | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(
            message,
            registry=registry,
            repository=repository,
            action=action,
            status=status,
            errors=errors,
        )


class DigestMismatchError(RegistryError):
    """Content does not hash to the digest it was requested or announced by."""


class UnsupportedManifestError(RegistryError):
    """A manifest we refuse to handle, e.g. Docker schema 1."""


class ProtocolError(RegistryError):
    """The registry answered something the protocol does not allow (no Location, bad JSON...)."""


_CODE_CLASSES: dict[str, type[RegistryError]] = {
    "UNAUTHORIZED": AuthenticationError,
    "DENIED": AccessDeniedError,
    "TOOMANYREQUESTS": RateLimitedError,
    "NAME_UNKNOWN": NotFoundError,
    "MANIFEST_UNKNOWN": NotFoundError,
    "BLOB_UNKNOWN": NotFoundError,
}


def error_class_for(status: int | None, errors: list[ErrorDetail]) -> type[RegistryError]:
    """Pick the exception class from the HTTP status first, then the registry's error codes."""
    by_status: dict[int, type[RegistryError]] = {
        401: AuthenticationError,
        403: AccessDeniedError,
        404: NotFoundError,
        429: RateLimitedError,
    }
    if status in by_status:
        return by_status[status]
    for err in errors:
        if err.code in _CODE_CLASSES:
            return _CODE_CLASSES[err.code]
    return RegistryError


def error_from_response(
    response: object,
    *,
    registry: str,
    repository: str | None,
    action: str,
    reason: str = "",
) -> RegistryError:
    """Build the right exception for an HTTP error response (duck-typed ``requests.Response``)."""
    status = int(getattr(response, "status_code", 0) or 0)
    try:
        body: bytes | None = getattr(response, "content", b"")
    except Exception:  # noqa: BLE001 - a broken body must not hide the HTTP status
        body = None
    errors = parse_error_body(body)
    if not errors and not reason:
        reason = body_excerpt(body) or safety.one_line(getattr(response, "reason", "") or "", 80)
    cls = error_class_for(status, errors)
    if cls is RateLimitedError:
        headers = getattr(response, "headers", None) or {}
        return RateLimitedError(
            reason or "rate limited",
            retry_after=parse_retry_after(headers.get("Retry-After")),
            registry=registry,
            repository=repository,
            action=action,
            status=status,
            errors=errors,
        )
    return cls(
        reason,
        registry=registry,
        repository=repository,
        action=action,
        status=status,
        errors=errors,
    )
