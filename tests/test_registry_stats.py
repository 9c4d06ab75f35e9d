"""Request/byte counters (relay.registry.stats)."""

from __future__ import annotations

import threading

from relay.net.stats import RequestStats


def test_counts_by_method_and_kind() -> None:
    stats = RequestStats()
    stats.record_request("get", "manifest")
    stats.record_request("GET", "blob")
    stats.record_request("HEAD", "blob")
    stats.add_sent(10)
    stats.add_received(5)
    assert stats.count() == 3 == stats.total_requests
    assert stats.count(kind="blob") == 2
    assert stats.count("GET") == 2
    snap = stats.snapshot()
    assert snap.requests == {"GET manifest": 1, "GET blob": 1, "HEAD blob": 1}
    assert snap.by_kind() == {"manifest": 1, "blob": 2}
    assert (snap.bytes_sent, snap.bytes_received) == (10, 5)
    stats.record_request("GET", "blob")
    assert stats.snapshot().minus(snap).requests == {"GET blob": 1}
    stats.reset()
    assert stats.total_requests == 0 and stats.bytes_sent == 0


def test_thread_safe() -> None:
    stats = RequestStats()

    def work() -> None:
        for _ in range(1000):
            stats.record_request("GET", "blob")
            stats.add_received(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.count(kind="blob") == 8000 and stats.bytes_received == 8000
