"""Fault injection, vendor-neutral: which call fails, how, and for how many calls.

An emulator asks :meth:`FaultInjector.decide` once per request, naming the operation (an ACR
action such as ``CreateRepo``, a Harbor route such as ``createRegistry``), and turns the
:class:`FaultHit` it gets into its own vendor's error body.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal, get_args

FaultKind = Literal["throttling", "5xx", "5xx-after", "latency", "reset"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


@dataclass
class Fault:
    """One injected fault, consumed by the next ``remaining`` matching calls.

    kind: "throttling" (the vendor's throttling answer; ``status`` overrides its HTTP status and
    ``retry_after`` adds a ``Retry-After`` header where the vendor sends one), "5xx" (answer a
    server error instead of running the operation; ``status`` picks 500/502/503...), "5xx-after"
    (run the operation, then answer a server error: the ambiguous failure a client must survive
    when it retries a create that in fact succeeded), "latency" (``seconds`` added), "reset"
    (close the connection with a TCP reset instead of answering).
    """

    kind: str
    remaining: int
    action: str | None = None  # the operation name; None: any
    seconds: float = 0.0  # latency only
    status: int | None = None  # throttling and 5xx: HTTP status override
    retry_after: float | None = None  # throttling: seconds for a Retry-After header


@dataclass(frozen=True)
class FaultHit:
    kind: str
    status: int | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Decision:
    delay: float = 0.0
    before: FaultHit | None = None  # answer this instead of running the operation
    after: FaultHit | None = None  # run the operation, then answer this
    reset: bool = False  # close the connection without an answer, operation not run


class FaultInjector:
    """Faults are consumed in the order they were injected, one error fault per call.

    A latency fault combines with one error fault on the same call; two error faults never do.
    """

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {fault.kind!r}; expected one of {FAULT_KINDS}")
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
        before: FaultHit | None = None
        after: FaultHit | None = None
        reset = False
        with self._lock:
            for fault in self._faults:
                if fault.remaining <= 0 or (fault.action and fault.action != action):
                    continue
                if fault.kind == "latency":
                    if delay == 0.0:
                        delay = fault.seconds
                        fault.remaining -= 1
                    continue
                if before is not None or after is not None or reset:
                    continue
                fault.remaining -= 1
                hit = FaultHit(fault.kind, fault.status, fault.retry_after)
                if fault.kind == "reset":
                    reset = True
                elif fault.kind == "5xx-after":
                    after = hit
                else:
                    before = hit
            self._faults = [f for f in self._faults if f.remaining > 0]
        return Decision(delay, before, after, reset)
