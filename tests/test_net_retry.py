"""The one retry helper (relay.net.retry), Retry-After parsing, and rate-limit headers."""

from __future__ import annotations

import time

import pytest

from relay.net.retry import NEVER, RetryPolicy, attempts, http_date, parse_retry_after, retrying
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
    low = RetryPolicy(backoff=1.0, max_backoff=10.0, rng=lambda: 0.0)
    high = RetryPolicy(backoff=1.0, max_backoff=10.0, rng=lambda: 0.999999)
    assert [low.delay(n) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert [round(high.delay(n), 3) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    real = RetryPolicy(backoff=0.2)
    delays = {real.delay(1) for _ in range(50)}
    assert all(0.1 <= d <= 0.2 for d in delays) and len(delays) > 1


def test_delay_prefers_retry_after() -> None:
    policy = RetryPolicy(backoff=1.0, rng=lambda: 0.0)
    assert policy.delay(1, 7.0) == 7.0
    assert policy.delay(1, None) == 0.5


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(backoff=-1)
    assert 429 in RetryPolicy().retry_statuses and 501 not in RetryPolicy().retry_statuses


class Flaky:
    """Fails with the given exceptions, then answers "ok"."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.calls: list[int] = []

    def __call__(self, number: int) -> str:
        self.calls.append(number)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Transient(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("transient")
        self.retry_after = retry_after


def test_retrying_counts_attempts_from_one_and_logs_one_wording(caplog) -> None:
    slept: list[float] = []
    fn = Flaky([Transient(), Transient()])
    policy = RetryPolicy(attempts=5, backoff=1.0, rng=lambda: 0.5)
    with caplog.at_level("INFO", logger="relay.net.retry"):
        assert (
            retrying(fn, policy, retry_if=lambda e: True, what="x: get", sleep=slept.append) == "ok"
        )
    assert fn.calls == [1, 2, 3]
    assert slept == [0.75, 1.5]  # equal jitter: ceiling/2 + rand * ceiling/2
    assert "x: get: transient; retry 1 of 4 in 0.8s" in caplog.text
    assert "x: get: transient; retry 2 of 4 in 1.5s" in caplog.text


def test_retrying_gives_up_after_the_attempts_and_on_what_it_must_not_retry() -> None:
    fn = Flaky([Transient()] * 10)
    with pytest.raises(Transient):
        retrying(
            fn, RetryPolicy(attempts=3), retry_if=lambda e: True, what="x", sleep=lambda _: None
        )
    assert fn.calls == [1, 2, 3]
    fn = Flaky([ValueError("permanent")])
    with pytest.raises(ValueError):
        retrying(fn, RetryPolicy(attempts=3), retry_if=lambda e: isinstance(e, Transient), what="x")
    assert fn.calls == [1]
    # NEVER: a layer inside an outer retry tries once.
    fn = Flaky([Transient()])
    with pytest.raises(Transient):
        retrying(fn, NEVER, retry_if=lambda e: True, what="x")
    assert fn.calls == [1]


def test_retry_after_replaces_the_backoff_but_not_beyond_the_cap() -> None:
    slept: list[float] = []
    fn = Flaky([Transient(retry_after=7.0)])
    policy = RetryPolicy(attempts=3, max_retry_after=60)
    assert retrying(fn, policy, retry_if=lambda e: True, what="x", sleep=slept.append) == "ok"
    assert slept == [7.0]
    fn = Flaky([Transient(retry_after=6 * 3600)])
    with pytest.raises(Transient):
        retrying(fn, policy, retry_if=lambda e: True, what="x", sleep=slept.append)
    assert fn.calls == [1] and slept == [7.0]


def test_attempts_as_a_statement_in_a_generator() -> None:
    """The loop form: work that yields as it goes (a download that resumes)."""
    failures = [Transient()]

    def chunks():
        for attempt in attempts(
            RetryPolicy(attempts=3), retry_if=lambda e: True, what="x", sleep=lambda _: None
        ):
            with attempt:
                yield attempt.number
                if failures:
                    raise failures.pop()

    assert list(chunks()) == [1, 2]


def test_interrupts_are_never_retried() -> None:
    fn = Flaky([KeyboardInterrupt()])  # type: ignore[list-item]
    with pytest.raises(KeyboardInterrupt):
        retrying(fn, RetryPolicy(attempts=3), retry_if=lambda e: True, what="x")
    assert fn.calls == [1]


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


@pytest.mark.parametrize("value", ["\xb2", "\u0663", "1\xb2", "9" * 5000])
def test_retry_after_with_non_ascii_digits_is_ignored_not_a_crash(value: str) -> None:
    # "²".isdigit() is True but float("²") raises: a 503 carrying it must not be a traceback.
    assert parse_retry_after(value) is None


def test_count_takes_ascii_digits_only() -> None:
    from relay.untrusted import count

    assert count("42") == 42 and count(" 7 ") == 7 and count("0") == 0
    for bad in (None, "", "\xb2", "\u0663", "-1", "+1", "1.0", "1e3", "9" * 33):
        assert count(bad) is None, bad
