"""Exceptions raised by the registry client.

Every error names the registry, the repository and what was asked for, plus the error codes the
registry sent back, so a log line alone is enough to act on. Secrets never appear: messages built
from server text go through :func:`redact` with the secrets the client knows about.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from relay.errors import OperationFailed
from relay.net.retry import parse_retry_after

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
            detail = json.dumps(self.detail, sort_keys=True, default=str)
            if len(detail) > 200:
                detail = detail[:200] + "..."
            text += f" ({detail})"
        return text


def parse_error_body(body: bytes | str | None) -> list[ErrorDetail]:
    """Read the distribution error list; token servers' ``details``/``error`` fields count too."""
    if not body:
        return []
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(doc, dict):
        return []
    found: list[ErrorDetail] = []
    errors = doc.get("errors")
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, dict):
                found.append(
                    ErrorDetail(
                        code=str(item.get("code") or "UNKNOWN"),
                        message=str(item.get("message") or ""),
                        detail=item.get("detail"),
                    )
                )
    # Docker Hub's token server answers {"details": "incorrect username or password"}; OAuth2
    # servers answer {"error": "...", "error_description": "..."}.
    if not found and isinstance(doc.get("details"), str):
        found.append(ErrorDetail(code="DETAILS", message=doc["details"]))
    if not found and isinstance(doc.get("error"), str):
        found.append(
            ErrorDetail(code=doc["error"], message=str(doc.get("error_description") or ""))
        )
    return found


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every known secret in ``text``; short strings are skipped to avoid mangling."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "***")
    return text


def body_excerpt(body: bytes | None) -> str:
    """A short printable excerpt of a non-JSON error body."""
    if not body:
        return ""
    text = body[:_MAX_BODY_IN_MESSAGE].decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    if len(body) > _MAX_BODY_IN_MESSAGE:
        text += "..."
    return text


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


class Redactor:
    """The secrets (passwords, tokens) a client has handled, for scrubbing server-derived text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, *secrets: str | None) -> None:
        # set.add is atomic under the GIL; readers iterate over a copy.
        for secret in secrets:
            if secret:
                self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        return redact(text, list(self._secrets))


def error_from_response(
    response: object,
    *,
    registry: str,
    repository: str | None,
    action: str,
    reason: str = "",
    redactor: Redactor | None = None,
) -> RegistryError:
    """Build the right exception for an HTTP error response (duck-typed ``requests.Response``)."""
    status = int(getattr(response, "status_code", 0) or 0)
    try:
        body: bytes | None = getattr(response, "content", b"")
    except Exception:  # noqa: BLE001 - a broken body must not hide the HTTP status
        body = None
    errors = parse_error_body(body)
    if not errors and not reason:
        reason = body_excerpt(body) or str(getattr(response, "reason", "") or "")
    if redactor is not None:
        reason = redactor(reason)
        errors = [_redact_detail(e, redactor) for e in errors]
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


def _redact_detail(error: ErrorDetail, redactor: Redactor) -> ErrorDetail:
    detail = error.detail
    if detail is not None:
        text = json.dumps(detail, default=str)
        cleaned = redactor(text)
        if cleaned != text:
            detail = cleaned
    return ErrorDetail(error.code, redactor(error.message), detail)
