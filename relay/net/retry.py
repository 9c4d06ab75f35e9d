"""The one retry helper: a policy (how hard to try) and `retrying()` (the loop).

Used by the HTTP transport, the blob downloader and uploader, the ACR client and the Harbor
client, so every retry in relay backs off the same way and says the same thing in the log.
Modelled on go-containerregistry's `internal/retry.Retry(f, predicate, backoff)`.

Retries must not nest: a layer that runs inside an outer retry (a request inside an upload
that restarts as a whole, say) passes `NEVER`, so one failure is not multiplied into
attempts × attempts requests.

Some failures deserve fewer tries than the policy allows (a host that has never answered and
whose name does not resolve: relay.net.reachability): ``tries_for`` caps them per failure. A
retry is logged at INFO, or at WARNING when ``loud`` says it is the first sign of trouble worth
seeing at once. Waits end early when the run is interrupted (relay.net.cancel.pause).
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

from relay.net.cancel import pause
from relay.untrusted import count

log = logging.getLogger(__name__)

T = TypeVar("T")

# 501/505 mean "never going to work", so only the transient 5xx are retried.
DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.

    ``attempts`` counts every try, the first included. Retries are numbered from 1. The delay
    before retry n is exponential (``backoff`` × 2^(n-1), at most ``max_backoff``) with "equal
    jitter": half fixed, half random, so clients throttled together do not come back together,
    yet none retries at once. A server's ``Retry-After`` replaces the backoff, but one longer
    than ``max_retry_after`` is not waited for: Docker Hub may say "come back in 6 hours", and
    stalling a worker that long is worse than failing with a clear message.
    """

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds before retry number ``retry`` (1 for the first retry): the server's
        ``Retry-After`` when it gave one, else the jittered backoff."""
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(self.max_backoff, self.backoff * (2 ** max(0, retry - 1)))
        return ceiling / 2 + self.rng() * ceiling / 2


NEVER = RetryPolicy(attempts=1)
"""For a layer inside an outer retry: try once, let the outer layer decide."""


class RetryableAnswer(Exception):
    """Raised by an attempt whose *answer* (not an exception) calls for another try, e.g. an
    HTTP 503. When the attempts run out, `retrying()` re-raises it and the caller takes
    `answer` as the final result."""

    def __init__(self, answer: object, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.answer = answer
        self.retry_after = retry_after


class Attempt:
    """One try of an `attempts()` loop; use it as a context manager around the work."""

    def __init__(self, number: int, run: _Attempts) -> None:
        self.number = number
        self._run = run
        self.succeeded = False

    def __enter__(self) -> Attempt:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if exc is None:
            self.succeeded = True
            return False
        # KeyboardInterrupt and friends end the loop at once.
        return isinstance(exc, Exception) and self._run.absorb(self.number, exc)


class _Attempts:
    def __init__(
        self,
        policy: RetryPolicy,
        retry_if: Callable[[BaseException], bool],
        what: str,
        reason: Callable[[BaseException], str],
        sleep: Callable[[float], None],
        on_retry: Callable[[BaseException], None] | None,
        tries_for: Callable[[BaseException], int] | None = None,
        loud: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self.policy = policy
        self.retry_if = retry_if
        self.what = what
        self.reason = reason
        self.sleep = sleep
        self.on_retry = on_retry
        self.tries_for = tries_for
        self.loud = loud

    def absorb(self, number: int, exc: Exception) -> bool:
        """True to try again (after waiting), False to let `exc` propagate."""
        policy = self.policy
        tries = policy.attempts
        if self.tries_for is not None:
            tries = max(1, min(tries, self.tries_for(exc)))
        if number >= tries or not self.retry_if(exc):
            return False
        retry_after = getattr(exc, "retry_after", None)
        if not isinstance(retry_after, (int, float)):
            retry_after = None
        if retry_after is not None and retry_after > policy.max_retry_after:
            log.warning(
                "%s: %s; the server asks to wait %.0fs (more than %.0fs allowed); giving up",
                self.what,
                self.reason(exc),
                retry_after,
                policy.max_retry_after,
            )
            return False
        wait = policy.delay(number, retry_after)
        log.log(
            logging.WARNING if self.loud is not None and self.loud(exc) else logging.INFO,
            "%s: %s; retry %d of %d in %.1fs",
            self.what,
            self.reason(exc),
            number,
            tries - 1,
            wait,
        )
        if self.on_retry is not None:
            self.on_retry(exc)
        self.sleep(wait)
        return True


def attempts(
    policy: RetryPolicy,
    *,
    retry_if: Callable[[BaseException], bool],
    what: str,
    reason: Callable[[BaseException], str] = str,
    sleep: Callable[[float], None] = pause,
    on_retry: Callable[[BaseException], None] | None = None,
    tries_for: Callable[[BaseException], int] | None = None,
    loud: Callable[[BaseException], bool] | None = None,
) -> Iterator[Attempt]:
    """The retry loop as a statement, for work that cannot be a function (a generator that
    yields as it reads, say)::

        for attempt in attempts(policy, retry_if=..., what="registry/repo: get blob"):
            with attempt:
                ...   # raises to fail this try

    The loop ends after the first try whose block finishes without an exception. A failure
    is absorbed (logged, waited for) while ``retry_if`` accepts it and tries remain; then it
    propagates. An exception's ``retry_after`` attribute (seconds, from a server) replaces the
    backoff; beyond ``policy.max_retry_after`` the exception propagates at once. Each retry is
    logged once, in one wording: ``<what>: <reason>; retry n of m in s``. ``tries_for(exc)``
    caps the tries for that failure below ``policy.attempts``; ``loud(exc)`` logs its retry
    as a warning.
    """
    run = _Attempts(policy, retry_if, what, reason, sleep, on_retry, tries_for, loud)
    number = 1
    while True:
        attempt = Attempt(number, run)
        yield attempt
        if attempt.succeeded:
            return
        number += 1


def retrying(
    attempt: Callable[[int], T],
    policy: RetryPolicy,
    *,
    retry_if: Callable[[BaseException], bool],
    what: str,
    reason: Callable[[BaseException], str] = str,
    sleep: Callable[[float], None] = pause,
    on_retry: Callable[[BaseException], None] | None = None,
    tries_for: Callable[[BaseException], int] | None = None,
    loud: Callable[[BaseException], bool] | None = None,
) -> T:
    """``attempt(n)`` for n = 1, 2, … until it returns; the rules are `attempts()`'s.
    ``on_retry`` runs before each wait (to count retries, or release what the failed try
    holds)."""
    for each in attempts(
        policy,
        retry_if=retry_if,
        what=what,
        reason=reason,
        sleep=sleep,
        on_retry=on_retry,
        tries_for=tries_for,
        loud=loud,
    ):
        with each:
            return attempt(each.number)
    raise AssertionError("unreachable")  # pragma: no cover - a failed last try propagates


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns None when absent or unparseable; dates in the past give 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    whole = count(value)
    if whole is not None:
        return float(whole)
    if not value.isascii() or len(value) > 64:  # float() takes "٣"; an HTTP date is short
        return None
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
