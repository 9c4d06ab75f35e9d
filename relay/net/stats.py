"""Request and byte counters, so benchmarks can report requests per tag and throughput."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class StatsSnapshot:
    """An immutable copy of the counters at one moment."""

    requests: dict[str, int]
    retries: int
    bytes_sent: int
    bytes_received: int

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def by_kind(self) -> dict[str, int]:
        """Requests summed over methods: ``{"manifest": 3, "blob": 5, ...}``."""
        out: Counter[str] = Counter()
        for key, count in self.requests.items():
            out[key.split(" ", 1)[1]] += count
        return dict(out)

    def minus(self, earlier: StatsSnapshot) -> StatsSnapshot:
        """What happened between ``earlier`` and this snapshot."""
        requests = Counter(self.requests)
        requests.subtract(earlier.requests)
        return StatsSnapshot(
            requests={k: v for k, v in requests.items() if v},
            retries=self.retries - earlier.retries,
            bytes_sent=self.bytes_sent - earlier.bytes_sent,
            bytes_received=self.bytes_received - earlier.bytes_received,
        )


class RequestStats:
    """Thread-safe counters. One instance may be shared by several clients to aggregate.

    Every HTTP request actually sent is counted once, keyed ``"<METHOD> <kind>"`` where kind is
    one of ping, token, manifest, tags, blob, upload, mount. Retries and redirect hops are real
    requests and are counted; ``retries`` additionally counts how many were retries.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._retries = 0
        self._bytes_sent = 0
        self._bytes_received = 0

    def record_request(self, method: str, kind: str) -> None:
        with self._lock:
            self._requests[f"{method.upper()} {kind}"] += 1

    def record_retry(self) -> None:
        with self._lock:
            self._retries += 1

    def add_sent(self, count: int) -> None:
        with self._lock:
            self._bytes_sent += count

    def add_received(self, count: int) -> None:
        with self._lock:
            self._bytes_received += count

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self._requests.values())

    @property
    def bytes_sent(self) -> int:
        with self._lock:
            return self._bytes_sent

    @property
    def bytes_received(self) -> int:
        with self._lock:
            return self._bytes_received

    def count(self, method: str | None = None, kind: str | None = None) -> int:
        """Requests matching a method and/or kind; both None gives the total."""
        with self._lock:
            total = 0
            for key, value in self._requests.items():
                m, k = key.split(" ", 1)
                if (method is None or m == method.upper()) and (kind is None or k == kind):
                    total += value
            return total

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                requests=dict(self._requests),
                retries=self._retries,
                bytes_sent=self._bytes_sent,
                bytes_received=self._bytes_received,
            )

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._retries = 0
            self._bytes_sent = 0
            self._bytes_received = 0
