"""Blob sources, re-chunking and upload Location handling (relay.registry.uploads)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from relay.registry.uploads import BlobSource, UploadLocation, rechunk


def test_bytes_source_is_restartable(tmp_path: Path) -> None:
    src = BlobSource(b"abcdefg")
    assert src.restartable and src.size == 7
    assert list(src.chunks(3)) == [b"abc", b"def", b"g"]
    assert b"".join(src.chunks(100)) == b"abcdefg"


def test_path_source(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 10)
    src = BlobSource(str(path))
    assert src.restartable and src.size == 10
    assert b"".join(src.chunks(4)) == b"x" * 10
    assert b"".join(BlobSource(path).chunks(4)) == b"x" * 10


def test_seekable_file_restarts_from_its_position() -> None:
    handle = io.BytesIO(b"HEADERpayload")
    handle.seek(6)
    src = BlobSource(handle)
    assert src.restartable and src.size == 7
    assert b"".join(src.chunks(2)) == b"payload"
    assert b"".join(src.chunks(2)) == b"payload"


def test_factory_source_is_restartable_and_closes() -> None:
    closed: list[bool] = []

    class Stream:
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield b"ab"
            yield b"c"

        def close(self) -> None:
            closed.append(True)

    src = BlobSource(Stream)
    assert src.restartable and src.size is None
    assert b"".join(src.chunks(1)) == b"abc"
    assert b"".join(src.chunks(1)) == b"abc"
    assert closed == [True, True]


def test_one_shot_iterator() -> None:
    src = BlobSource(iter([b"a", b"", b"b"]), size=2)
    assert not src.restartable and src.can_send
    assert list(src.chunks(10)) == [b"a", b"b"]
    assert src.consumed and not src.can_send
    with pytest.raises(RuntimeError):
        src.chunks(10)


def test_untouched_one_shot_can_still_be_sent() -> None:
    src = BlobSource(iter([b"a"]))
    src.chunks(10)  # created but never iterated: nothing consumed
    assert src.can_send


def test_rechunk() -> None:
    assert list(rechunk([b"ab", b"cde", b"f", b"ghij"], 3)) == [b"abc", b"def", b"ghi", b"j"]
    assert list(rechunk([], 3)) == []
    assert list(rechunk([b"abc"], 3)) == [b"abc"]


@pytest.mark.parametrize(
    ("base", "location", "expected"),
    [
        (
            "https://r.example/v2/a/blobs/uploads/",
            "/v2/a/blobs/uploads/u1?_state=ab%3D%3D",
            "https://r.example/v2/a/blobs/uploads/u1?_state=ab%3D%3D&digest=sha256%3A00",
        ),
        (
            "https://r.example/v2/a/blobs/uploads/",
            "https://storage.example/up/u1",
            "https://storage.example/up/u1?digest=sha256%3A00",
        ),
        (
            "http://127.0.0.1:5000/v2/a/blobs/uploads/",
            "u2?x=1&y=a+b",
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u2?x=1&y=a+b&digest=sha256%3A00",
        ),
    ],
)
def test_location_keeps_query_and_appends_digest(base: str, location: str, expected: str) -> None:
    assert UploadLocation.resolve(base, location).with_digest("sha256:00") == expected
