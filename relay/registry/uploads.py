"""Blob upload plumbing: where the bytes come from, and the upload-session URLs.

A source is restartable when the bytes can be produced again from the start (bytes, a file
path, a seekable file, a factory callable). Only restartable sources are re-sent after a failed
PUT/PATCH; a one-shot iterator is re-sent only if the failure happened before it was touched.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Union, cast
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from relay.registry.digests import DigestVerifier

# bytes | path | binary file | zero-arg factory returning any of these or an iterable of bytes |
# iterable of bytes (one-shot).
BlobData = Union[
    bytes,
    bytearray,
    memoryview,
    str,
    "os.PathLike[str]",
    IO[bytes],
    Callable[[], Any],
    Iterable[bytes],
]


def _iter_file(handle: IO[bytes], chunk_size: int) -> Iterator[bytes]:
    while True:
        chunk = handle.read(chunk_size)
        if not chunk:
            return
        yield chunk


def _is_file(obj: object) -> bool:
    """A binary file to read() in chunks, as opposed to an iterable of chunks.

    Checked by type first: iterables such as a BlobStream may also have a ``read()``.
    """
    if isinstance(obj, io.IOBase):
        return True
    return callable(getattr(obj, "read", None)) and not isinstance(obj, Iterable)


def _iter_produced(produced: Any, chunk_size: int) -> Iterator[bytes]:
    """Iterate whatever a factory returned, closing it afterwards if it can be closed."""
    try:
        if isinstance(produced, (bytes, bytearray, memoryview)):
            data = bytes(produced)
            for start in range(0, len(data), chunk_size):
                yield data[start : start + chunk_size]
        elif isinstance(produced, (str, os.PathLike)):
            with open(produced, "rb") as handle:
                yield from _iter_file(handle, chunk_size)
        elif _is_file(produced):
            yield from _iter_file(produced, chunk_size)
        else:
            for chunk in produced:
                if chunk:
                    yield bytes(chunk)
    finally:
        close = getattr(produced, "close", None)
        if callable(close) and not isinstance(produced, (bytes, bytearray, memoryview, str)):
            close()


class BlobSource:
    """Uniform access to the bytes of a blob being pushed."""

    def __init__(self, data: BlobData, size: int | None = None) -> None:
        self._data = data
        self._consumed = False
        self._start_offset: int | None = None
        self.size = size
        if isinstance(data, (bytes, bytearray, memoryview)):
            self.restartable = True
            self.size = len(data) if size is None else size
        elif isinstance(data, (str, os.PathLike)):
            self.restartable = True
            if size is None:
                self.size = os.path.getsize(data)
        elif _is_file(data):
            handle = cast(IO[bytes], data)  # _is_file() checked: a binary file
            seekable = False
            try:
                seekable = handle.seekable()
            except (AttributeError, ValueError, OSError):
                pass
            self.restartable = seekable
            if seekable:
                self._start_offset = handle.tell()
                if size is None:
                    end = handle.seek(0, io.SEEK_END)
                    handle.seek(self._start_offset)
                    self.size = end - self._start_offset
        elif callable(data):
            self.restartable = True
        else:
            self.restartable = False

    @property
    def consumed(self) -> bool:
        """True once a one-shot source has handed out any data."""
        return self._consumed

    @property
    def can_send(self) -> bool:
        return self.restartable or not self._consumed

    def chunks(self, chunk_size: int) -> Iterator[bytes]:
        """A fresh iterator over the bytes; a one-shot source raises if asked twice."""
        if not self.can_send:
            raise RuntimeError("this blob source can only be read once and was already read")
        data = self._data
        if isinstance(data, (bytes, bytearray, memoryview, str, os.PathLike)):
            return _iter_produced(data, chunk_size)
        if _is_file(data):
            handle = cast(IO[bytes], data)  # _is_file() checked: a binary file
            if self._start_offset is not None:
                handle.seek(self._start_offset)
            return self._mark(_iter_file(handle, chunk_size), one_shot=not self.restartable)
        if callable(data):
            return _iter_produced(data(), chunk_size)
        return self._mark(iter(data), one_shot=True)

    def _mark(self, chunks: Iterator[bytes], one_shot: bool) -> Iterator[bytes]:
        for chunk in chunks:
            if one_shot:
                self._consumed = True
            if chunk:
                yield bytes(chunk)


class UploadBody:
    """Streams chunks to requests while hashing and counting them.

    Having ``__len__`` makes requests send ``Content-Length`` instead of chunked encoding when
    the size is known (:class:`SizedUploadBody`).
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        verifier: DigestVerifier,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self._chunks = chunks
        self.verifier = verifier
        self._on_bytes = on_bytes

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.verifier.update(chunk)
            if self._on_bytes is not None:
                self._on_bytes(len(chunk))
            yield chunk


class SizeMismatch(ValueError):
    """The source produced a different number of bytes than the declared size."""

    def __init__(self, declared: int, produced: int) -> None:
        self.declared = declared
        self.produced = produced
        more = "at least " if produced > declared else ""
        super().__init__(
            f"the data has {more}{produced} bytes, but its size was given as {declared}"
        )


class SizedUploadBody(UploadBody):
    """Sent with Content-Length; stops the request if the source disagrees with the size,
    since a short body would leave the registry waiting until the read timeout."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        verifier: DigestVerifier,
        size: int,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(chunks, verifier, on_bytes)
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        for chunk in super().__iter__():
            if self.verifier.size > self._size:
                raise SizeMismatch(self._size, self.verifier.size)
            yield chunk
        if self.verifier.size != self._size:
            raise SizeMismatch(self._size, self.verifier.size)


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup arbitrary chunks into pieces of exactly ``size`` bytes (the last may be shorter)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


@dataclass(frozen=True)
class UploadLocation:
    """An upload session URL as the registry gave it, resolved against the registry base."""

    url: str

    @classmethod
    def resolve(cls, base_url: str, location: str) -> UploadLocation:
        """Location headers may be absolute or relative (distribution sends absolute ones,
        others relative ``/v2/...``); both are resolved against the registry URL."""
        return cls(urljoin(base_url, location))

    def with_digest(self, digest: str) -> str:
        """Append ``digest=`` keeping the existing query (``_state`` etc.) byte for byte."""
        parts = urlsplit(self.url)
        extra = "digest=" + quote(digest, safe="")
        query = f"{parts.query}&{extra}" if parts.query else extra
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
