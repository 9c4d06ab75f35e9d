"""Failures below any protocol: the request did not get an answer worth reading.

The registry client and the vendor clients turn these into their own errors where they call
the transport, so callers above deal with one family per service.
"""

from __future__ import annotations

from relay.errors import OperationFailed


class TransportError(OperationFailed):
    """A request could not be completed. ``reason`` is one line, without URLs or secrets."""

    def __init__(self, reason: str, *, action: str = "") -> None:
        self.reason = reason
        self.action = action  # what the request was for: "registry/repo: get manifest v1"
        super().__init__(f"{action} failed: {reason}" if action else reason)


class ConnectionFailed(TransportError):
    """Connection refused, reset or timed out, after the retries the policy allows."""


class TLSFailed(ConnectionFailed):
    """The TLS handshake failed: typically a certificate that is not trusted."""


class TooManyRedirects(TransportError):
    """The server kept redirecting."""


class InvalidAnswer(TransportError):
    """The server's answer cannot be used as it is: a redirect to an unusable URL, a body
    larger than allowed, an answer that did not complete before the deadline."""


class AnswerTooLarge(InvalidAnswer):
    """The body is larger than the cap set for this kind of answer."""


class DeadlineExceeded(InvalidAnswer):
    """The whole answer (headers and body) did not arrive within the request's deadline."""
