"""Retry policy: which failures are retried, and how long to wait in between."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

# 501/505 mean "never going to work", so only the transient 5xx are retried.
DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.

    ``attempts`` counts every try including the first. Backoff is exponential with "equal jitter"
    (half fixed, half random) so that 8 worker threads hitting the same 503 spread out without any
    of them retrying immediately. A 429/503 ``Retry-After`` replaces the backoff, but one longer
    than ``max_retry_after`` is not waited for: Docker Hub may say "come back in 6 hours", and
    stalling a worker that long is worse than failing with a clear message.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def backoff(self, retry_number: int) -> float:
        """Delay before retry ``retry_number`` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, retry_number - 1)))
        return ceiling / 2 + self.rng() * ceiling / 2

    def delay_for(self, retry_number: int, retry_after: float | None) -> float:
        """The server's Retry-After if it gave one, else the backoff."""
        if retry_after is not None:
            return max(0.0, retry_after)
        return self.backoff(retry_number)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns None when absent or unparseable; dates in the past give 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def http_date(timestamp: float) -> str:
    """Format a timestamp as an HTTP date (tests and fakes use this)."""
    return email.utils.format_datetime(datetime.fromtimestamp(timestamp, tz=timezone.utc), True)
