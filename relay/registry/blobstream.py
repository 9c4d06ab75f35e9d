"""Streaming blob downloads, verified against their digest and resumed after a broken read."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from types import TracebackType

import requests
import urllib3

from relay.net import deadline as deadlines
from relay.net.cancel import Interrupted
from relay.net.retry import RetryPolicy, attempts
from relay.net.stats import RequestStats
from relay.net.transport import describe_exception
from relay.registry.context import RequestContext
from relay.registry.digests import ByteCounter, DigestVerifier
from relay.registry.errors import DigestMismatchError, ProtocolError, RegistryConnectionError
from relay.untrusted import count

log = logging.getLogger(__name__)
# What a broken read raises, from urllib3 up to the socket.
_BROKEN_READ = (urllib3.exceptions.HTTPError, requests.RequestException, OSError)


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
        deadline: float | None = None,
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
        # Each chunk must arrive within this (relay.net.deadline): a server trickling bytes
        # cannot hold the copy, and no retry is spent on it.
        self._deadline = deadline
        length = response.headers.get("Content-Length")
        self.size: int | None = count(length)

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

    def read(self, limit: int) -> bytes:
        """The whole blob in memory (configs and other small blobs), at most ``limit`` bytes:
        a registry that sends more (or announces more) is stopped at ``limit`` + 1 bytes, not
        read to the end, since the digest check comes only after the last byte."""
        if self.size is not None and self.size > limit:
            self.close()
            raise self._ctx.error(
                f"blob is larger than {limit} bytes (Content-Length {self.size}); not read",
                ProtocolError,
            )
        parts: list[bytes] = []
        total = 0
        chunks = iter(self)
        try:
            for chunk in chunks:
                total += len(chunk)
                if total > limit:
                    raise self._ctx.error(
                        f"blob is larger than {limit} bytes; stopped reading it",
                        ProtocolError,
                    )
                parts.append(chunk)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return b"".join(parts)

    def __iter__(self) -> Iterator[bytes]:
        if self._iterated:
            raise RuntimeError("a BlobStream can be iterated only once")
        self._iterated = True
        skip = 0
        resumes = 0

        def resume(_exc: BaseException) -> None:
            nonlocal resumes
            resumes += 1
            self._response.close()

        try:
            for attempt in attempts(
                self._retry,
                retry_if=lambda exc: isinstance(exc, _BROKEN_READ),
                what=self._ctx.what,
                reason=lambda exc: (
                    f"download broke off at byte {self.bytes_read} ({describe_exception(exc)})"
                ),
                sleep=self._sleep,
                on_retry=resume,
            ):
                with attempt:
                    if attempt.number > 1:
                        offset = self.bytes_read
                        self._response = self._reopen(offset)
                        # A registry that ignores Range resends everything; drop what we have.
                        skip = offset if self._response.status_code == 200 else 0
                    for chunk in self._chunks():
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
        except _BROKEN_READ as exc:
            raise self._ctx.error(
                f"download broke off after {self.bytes_read} bytes "
                f"and {resumes + 1} attempts: {describe_exception(exc)}",
                RegistryConnectionError,
            ) from exc
        finally:
            self._response.close()
        if self.size is not None and resumes == 0 and self.bytes_read != self.size:
            raise self._ctx.error(
                f"got {self.bytes_read} bytes, Content-Length said {self.size}",
                DigestMismatchError,
            )
        if not self._verifier.matches():
            raise self._ctx.error(
                f"content hashes to {self._verifier.actual} ({self.bytes_read} bytes)",
                DigestMismatchError,
            )

    def _chunks(self) -> Iterator[bytes]:
        """The current response's chunks, each read under the deadline."""
        response = self._response
        stream = response.raw.stream(self._chunk_size, decode_content=False)
        while True:
            with deadlines.guard(response, self._deadline) as watch:
                try:
                    chunk = next(stream)
                except StopIteration:
                    return
                except _BROKEN_READ as exc:
                    if watch is not None and watch.aborted:
                        raise Interrupted() from exc
                    if watch is not None and watch.fired:
                        raise self._ctx.error(
                            f"no {self._chunk_size} bytes within {self._deadline:g} s after "
                            f"byte {self.bytes_read}: the server sends too slowly",
                            RegistryConnectionError,
                        ) from exc
                    raise
            yield chunk
