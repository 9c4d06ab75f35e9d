"""Retry policy, Retry-After parsing and rate-limit headers (retry.py, ratelimit.py)."""

from __future__ import annotations

import time

import pytest

from relay.net.retry import RetryPolicy, http_date, parse_retry_after
from relay.registry.ratelimit import RateLimit, parse_rate_limit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
    ],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(http_date(now + 30), now=now) == pytest.approx(30.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=0.0) == pytest.approx(
        1445412480.0
    )
    # Without `now`, the wall clock is used.
    assert 0 < parse_retry_after(http_date(time.time() + 100)) <= 100  # type: ignore[operator]


def test_backoff_is_exponential_with_bounded_jitter() -> None:
    low = RetryPolicy(base_delay=1.0, max_delay=10.0, rng=lambda: 0.0)
    high = RetryPolicy(base_delay=1.0, max_delay=10.0, rng=lambda: 0.999999)
    assert [low.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert [round(high.backoff(n), 3) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    real = RetryPolicy(base_delay=0.2)
    delays = {real.backoff(1) for _ in range(50)}
    assert all(0.1 <= d <= 0.2 for d in delays) and len(delays) > 1


def test_delay_prefers_retry_after() -> None:
    policy = RetryPolicy(base_delay=1.0, rng=lambda: 0.0)
    assert policy.delay_for(1, 7.0) == 7.0
    assert policy.delay_for(1, None) == 0.5


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)
    assert 429 in RetryPolicy().retry_statuses and 501 not in RetryPolicy().retry_statuses


def test_docker_hub_rate_limit_headers() -> None:
    headers = {
        "ratelimit-limit": "100;w=21600",
        "ratelimit-remaining": "76;w=21600",
        "docker-ratelimit-source": "203.0.113.7",
    }
    limit = parse_rate_limit(headers)
    assert limit == RateLimit(limit=100, remaining=76, window=21600, source="203.0.113.7")
    assert str(limit) == "76/100 per 21600s"
    # A typo seen in the wild: "200=21600".
    assert parse_rate_limit({"ratelimit-limit": "200=21600"}) == RateLimit(200, None, 21600)
    assert parse_rate_limit({}) is None
    assert parse_rate_limit({"ratelimit-remaining": "x"}) == RateLimit(None, None, None)
