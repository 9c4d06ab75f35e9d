"""Error bodies, messages and redaction (relay.registry.errors)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from relay.errors import OperationFailed, RelayError
from relay.registry.errors import (
    AccessDeniedError,
    AuthenticationError,
    ErrorDetail,
    NotFoundError,
    RateLimitedError,
    RegistryError,
    error_from_response,
    parse_error_body,
)
from relay.safety import add_secret, redact


@dataclass
class FakeResponse:
    status_code: int
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reason: str = ""


def test_parse_distribution_error_body() -> None:
    body = json.dumps(
        {
            "errors": [
                {"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {"Tag": "x"}},
                {"code": "DENIED", "message": "no"},
            ]
        }
    ).encode()
    errors = parse_error_body(body)
    assert [e.code for e in errors] == ["MANIFEST_UNKNOWN", "DENIED"]
    assert str(errors[0]) == 'MANIFEST_UNKNOWN: manifest unknown ({"Tag": "x"})'


def test_parse_token_server_bodies() -> None:
    assert parse_error_body(b'{"details": "incorrect username or password"}')[0].message == (
        "incorrect username or password"
    )
    oauth = parse_error_body(b'{"error": "invalid_grant", "error_description": "expired"}')
    assert oauth == [ErrorDetail("invalid_grant", "expired")]
    assert parse_error_body(b"<html>") == []
    assert parse_error_body(b"[]") == []
    assert parse_error_body(None) == []


def test_message_names_registry_repository_action_status_and_codes() -> None:
    resp = FakeResponse(
        404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
    )
    err = error_from_response(
        resp, registry="ghcr.io", repository="org/app", action="get manifest v1"
    )
    assert isinstance(err, NotFoundError)
    assert isinstance(err, OperationFailed) and isinstance(err, RelayError)
    assert str(err) == (
        "ghcr.io/org/app: get manifest v1 failed: HTTP 404: MANIFEST_UNKNOWN: manifest unknown"
    )
    assert err.codes == ["MANIFEST_UNKNOWN"]


def test_class_by_status_and_code() -> None:
    def cls(status: int, code: str | None = None) -> type[RegistryError]:
        body = json.dumps({"errors": [{"code": code}]}).encode() if code else b""
        return type(
            error_from_response(
                FakeResponse(status, body), registry="r", repository=None, action="a"
            )
        )

    assert cls(401) is AuthenticationError
    assert cls(403) is AccessDeniedError
    assert cls(400, "DENIED") is AccessDeniedError
    assert cls(404) is NotFoundError
    assert cls(400, "BLOB_UNKNOWN") is NotFoundError
    assert cls(429) is RateLimitedError
    assert cls(500) is RegistryError


def test_rate_limited_carries_retry_after() -> None:
    err = error_from_response(
        FakeResponse(429, b"", {"Retry-After": "42"}), registry="r", repository="x", action="a"
    )
    assert isinstance(err, RateLimitedError) and err.retry_after == 42.0


def test_non_json_body_excerpt_is_used() -> None:
    err = error_from_response(
        FakeResponse(502, b"<html>  Bad   gateway </html>"),
        registry="r",
        repository=None,
        action="a",
    )
    assert "<html> Bad gateway </html>" in str(err)


def test_redaction() -> None:
    add_secret("abcdef123", "ab", None)
    assert redact("token=abcdef123 and abcdef123") == "token=*** and ***"
    assert redact("short ab") == "short ab"  # too short to redact safely
    add_secret("p@ssw0rd-long")
    body = json.dumps(
        {
            "errors": [
                {"code": "UNAUTHORIZED", "message": "bad p@ssw0rd-long", "detail": "p@ssw0rd-long"}
            ]
        }
    ).encode()
    err = error_from_response(FakeResponse(401, body), registry="r", repository="x", action="a")
    assert "p@ssw0rd-long" not in str(err)
    assert "***" in str(err)
