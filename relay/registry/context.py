"""What a registry request is for, and the one way registry code sends one.

Every error names the registry, the repository and the action, so a log line alone is enough
to act on; `RequestContext.error()` builds one, and `send()` turns the transport's failures
into registry errors at the one place registry code calls the transport.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeVar

import requests

from relay.net.errors import InvalidAnswer, TLSFailed, TooManyRedirects, TransportError
from relay.net.transport import Transport
from relay.registry.errors import (
    ErrorDetail,
    ProtocolError,
    RegistryConnectionError,
    RegistryError,
    RegistryTLSError,
)

E = TypeVar("E", bound=RegistryError)


@dataclass(frozen=True)
class RequestContext:
    registry: str
    repository: str | None
    action: str

    @property
    def what(self) -> str:
        """How log lines name the request: ``registry/repository: action``."""
        where = f"{self.registry}/{self.repository}" if self.repository else self.registry
        return f"{where}: {self.action}"

    def then(self, suffix: str) -> RequestContext:
        """The same request's next step, e.g. its token fetch."""
        return replace(self, action=f"{self.action} {suffix}")

    def error(
        self,
        message: str,
        cls: type[E] = RegistryError,  # type: ignore[assignment]  # the default is an E
        *,
        status: int | None = None,
        errors: list[ErrorDetail] | None = None,
        **extra: Any,
    ) -> E:
        """A ``cls`` error about this request."""
        return cls(
            message,
            registry=self.registry,
            repository=self.repository,
            action=self.action,
            status=status,
            errors=errors,
            **extra,
        )


def send(
    transport: Transport, method: str, url: str, *, ctx: RequestContext, kind: str, **options: Any
) -> requests.Response:
    """``transport.request`` for registry code: the transport's failures become registry errors
    (unreachable, TLS, redirect loops) that name the registry and the repository."""
    try:
        return transport.request(method, url, what=ctx.what, kind=kind, **options)
    except TransportError as exc:
        cls: type[RegistryError]
        if isinstance(exc, TLSFailed):
            cls = RegistryTLSError
        elif isinstance(exc, (TooManyRedirects, InvalidAnswer)):
            cls = ProtocolError
        else:
            cls = RegistryConnectionError
        raise ctx.error(exc.reason, cls) from exc
