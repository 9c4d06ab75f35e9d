"""One write of a digest into a repository at a time, per process.

Why: distribution's registry (the reference registry, Harbor's and many others' storage) keeps
a repository's link to a blob or manifest in a small file that every write of that digest
rewrites, and its filesystem driver rewrites it by truncating first
(registry/storage/driver/filesystem/driver.go: PutContent opens the file and Truncate(0)s it
before writing). A manifest PUT that reads the link in that instant reads "" and fails with
`DIGEST_INVALID` + `MANIFEST_BLOB_UNKNOWN` (blobstore.go readlink → digest.Parse;
handlers/manifests.go maps ErrDigestInvalidFormat to DIGEST_INVALID). Two copies of one image
into one repository at once (by tag, by digest, by digest under another tag: image-syncer's
own CI config) rewrite the same links while each other's manifests are verified.

So the copy operation writes a digest into a repository only while holding that pair's lock,
and not at all once this process has written it: after the first write the link is only read.
The gate belongs to a RegistryClient, so everything sharing a client (a ClientPool: one
command) shares it. Two separate processes writing one repository can still race; relay runs
one sync or publish per repository.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WriteGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._written: set[tuple[str, str]] = set()

    @contextmanager
    def hold(self, repository: str, digest: str) -> Iterator[None]:
        """Exclusive use of ``digest`` in ``repository`` for a write and what checks it."""
        key = (repository, digest)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def written(self, repository: str, digest: str) -> bool:
        """Whether this process already wrote ``digest`` into ``repository`` (hold it first)."""
        with self._lock:
            return (repository, digest) in self._written

    def mark(self, repository: str, digest: str) -> None:
        with self._lock:
            self._written.add((repository, digest))
