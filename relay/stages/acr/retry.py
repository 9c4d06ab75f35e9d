"""Retries for ACR calls. The SDK retries nothing for `cr` (acr-api.md §5), so this is all there is.

Retried: Throttling*, HTTP 5xx and transport errors (SDK.HttpError). Everything else (not
found, bad request, no privilege) fails at once: repeating it cannot help.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from relay.stages.acr.errors import AcrError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries in all, the first included
    backoff: float = 1.0  # the first delay's ceiling, seconds
    max_backoff: float = 30.0

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before retry number `retry` (0-based): exponential with "equal jitter", so
        clients that were throttled together do not come back together, yet never retry at
        once."""
        ceiling = min(self.max_backoff, self.backoff * (2**retry))
        return ceiling / 2 + rand() * ceiling / 2


def call(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    on_retry: Callable[[AcrError], None] | None = None,
    retryable: Callable[[AcrError], bool] = lambda exc: exc.retryable,
) -> T:
    """`fn()`, retried per `policy` while it raises an AcrError that `retryable` accepts."""
    retry = 0
    while True:
        try:
            return fn()
        except AcrError as exc:
            if not retryable(exc) or retry + 1 >= policy.attempts:
                raise
            wait = policy.delay(retry, rand)
            log.info(
                "ACR %s: %s; retry %d of %d in %.1fs",
                exc.action,
                exc.code if exc.http_status is None else f"{exc.code} (HTTP {exc.http_status})",
                retry + 1,
                policy.attempts - 1,
                wait,
            )
            if on_retry is not None:
                on_retry(exc)
            sleep(wait)
            retry += 1
