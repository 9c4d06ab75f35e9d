"""Content digests: computing them, and verifying content while it streams.

Which digests are valid is the reference grammar's business (:mod:`relay.reference`); every
algorithm it accepts can be computed here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from relay.reference import SUPPORTED_DIGEST_ALGORITHMS, check_digest

_ALGORITHMS: dict[str, Callable[[], Any]] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
assert set(_ALGORITHMS) == set(SUPPORTED_DIGEST_ALGORITHMS), "one list of digest algorithms"


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    hasher = _ALGORITHMS[algorithm]()
    hasher.update(data)
    return f"{algorithm}:{hasher.hexdigest()}"


class Hasher:
    """Hashes chunks as they pass and counts them."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in _ALGORITHMS:
            raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._hash = _ALGORITHMS[algorithm]()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def actual(self) -> str:
        return f"{self.algorithm}:{self._hash.hexdigest()}"


class DigestVerifier(Hasher):
    """A :class:`Hasher` that knows which digest the content must have."""

    def __init__(self, expected: str) -> None:
        check_digest(expected)
        super().__init__(expected.split(":", 1)[0])
        self.expected = expected

    def matches(self) -> bool:
        return self.actual == self.expected


class ByteCounter(DigestVerifier):
    """Counts bytes without hashing them.

    For a copy between registries only: the destination must check the digest of what it
    receives (the distribution spec requires it), so hashing the same bytes on the way through
    would only spend CPU that the two registries on the same machine need.
    """

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)

    def matches(self) -> bool:
        return True

    @property
    def actual(self) -> str:
        return self.expected
