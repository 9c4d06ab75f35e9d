"""Streaming blob downloads, verified against their digest and resumed after a broken read."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from types import TracebackType

import requests
import urllib3

from relay.net.retry import RetryPolicy
from relay.net.stats import RequestStats
from relay.net.transport import RequestContext, describe_exception
from relay.registry.digests import ByteCounter, DigestVerifier
from relay.registry.errors import DigestMismatchError, RegistryConnectionError

log = logging.getLogger("relay.registry")


class BlobStream:
    """A blob download: iterate for chunks; the digest is checked when the stream ends.

    A dropped connection mid-stream is resumed with a ``Range`` request (the hash continues
    where it stopped). Raises :class:`DigestMismatchError` at the end on a mismatch, so a
    consumer that writes chunks somewhere must discard them on that error. Iterate once.
    """

    def __init__(
        self,
        digest: str,
        ctx: RequestContext,
        response: requests.Response,
        chunk_size: int,
        *,
        reopen: Callable[[int], requests.Response],
        retry: RetryPolicy,
        sleep: Callable[[float], None],
        stats: RequestStats,
        verify: bool = True,
    ) -> None:
        self.digest = digest
        self.repository = ctx.repository
        self._reopen = reopen
        self._retry = retry
        self._sleep = sleep
        self._stats = stats
        self._ctx = ctx
        self._response = response
        self._chunk_size = chunk_size
        self._verifier = DigestVerifier(digest) if verify else ByteCounter(digest)
        self._iterated = False
        length = response.headers.get("Content-Length")
        self.size: int | None = int(length) if length and length.isdigit() else None

    @property
    def bytes_read(self) -> int:
        return self._verifier.size

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._response.close()

    def read(self) -> bytes:
        """The whole blob in memory (configs and other small blobs)."""
        return b"".join(self)

    def __iter__(self) -> Iterator[bytes]:
        if self._iterated:
            raise RuntimeError("a BlobStream can be iterated only once")
        self._iterated = True
        policy = self._retry
        resumes = 0
        skip = 0
        try:
            while True:
                try:
                    for chunk in self._response.raw.stream(self._chunk_size, decode_content=False):
                        if skip:
                            if len(chunk) <= skip:
                                skip -= len(chunk)
                                continue
                            chunk = chunk[skip:]
                            skip = 0
                        if not chunk:
                            continue
                        self._verifier.update(chunk)
                        self._stats.add_received(len(chunk))
                        yield chunk
                    break
                except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
                    resumes += 1
                    self._response.close()
                    if resumes >= policy.attempts:
                        raise RegistryConnectionError(
                            f"download broke off after {self.bytes_read} bytes "
                            f"and {resumes} attempts: {describe_exception(exc)}",
                            registry=self._ctx.registry,
                            repository=self._ctx.repository,
                            action=self._ctx.action,
                        ) from exc
                    delay = policy.backoff(resumes)
                    log.info(
                        "%s: download broke off at byte %d (%s); resuming in %.2fs",
                        self._ctx.action,
                        self.bytes_read,
                        describe_exception(exc),
                        delay,
                    )
                    self._sleep(delay)
                    offset = self.bytes_read
                    self._response = self._reopen(offset)
                    # A registry that ignores Range resends everything; drop what we have.
                    skip = offset if self._response.status_code == 200 else 0
        finally:
            self._response.close()
        if self.size is not None and resumes == 0 and self.bytes_read != self.size:
            raise DigestMismatchError(
                f"got {self.bytes_read} bytes, Content-Length said {self.size}",
                registry=self._ctx.registry,
                repository=self._ctx.repository,
                action=self._ctx.action,
            )
        if not self._verifier.matches():
            raise DigestMismatchError(
                f"content hashes to {self._verifier.actual} ({self.bytes_read} bytes)",
                registry=self._ctx.registry,
                repository=self._ctx.repository,
                action=self._ctx.action,
            )
