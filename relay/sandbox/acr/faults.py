"""Fault injection: throttling, 5xx and latency, optionally for one action only."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from relay.sandbox.acr import errors

FAULTS = ("throttling", "5xx", "5xx-after", "latency")


@dataclass
class Fault:
    kind: str  # one of FAULTS
    remaining: int  # calls still to affect
    action: str | None = None  # None: any action
    seconds: float = 0.0  # latency only
    status: int | None = None  # throttling only: HTTP status override (400 default, or 429)


@dataclass(frozen=True)
class Decision:
    delay: float = 0.0
    error_before: errors.GatewayError | None = None  # answer this instead of running the action
    error_after: errors.GatewayError | None = None  # run the action, then answer this


class FaultInjector:
    """Faults are consumed in the order they were injected, one error fault per call.

    "5xx-after" applies the action and then answers 503: the ambiguous failure a client must
    survive when it retries a create that in fact succeeded.
    """

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        if fault.kind not in FAULTS:
            raise ValueError(f"unknown fault {fault.kind!r}; expected one of {FAULTS}")
        if fault.remaining < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.remaining > 0]

    def decide(self, action: str | None) -> Decision:
        delay = 0.0
        before = after = None
        with self._lock:
            for fault in self._faults:
                if fault.remaining <= 0 or (fault.action and fault.action != action):
                    continue
                if fault.kind == "latency":
                    if delay == 0.0:
                        delay = fault.seconds
                        fault.remaining -= 1
                    continue
                if before is not None or after is not None:
                    continue
                fault.remaining -= 1
                if fault.kind == "throttling":
                    before = errors.throttling(fault.status or errors.THROTTLING_STATUS)
                elif fault.kind == "5xx":
                    before = errors.service_unavailable()
                else:
                    after = errors.service_unavailable()
            self._faults = [f for f in self._faults if f.remaining > 0]
        return Decision(delay, before, after)
