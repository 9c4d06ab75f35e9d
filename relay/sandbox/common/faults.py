"""Fault injection, vendor-neutral: which call fails, how, and for how many calls.

An emulator asks :meth:`FaultInjector.decide` once per request, naming the operation (an ACR
action such as ``CreateRepo``, a Harbor route such as ``createRegistry``), and turns the
:class:`FaultHit` it gets into its own vendor's error body.

Two sources of faults, one injector: scripted ones (:class:`Fault`, consumed in order, for a
test that wants *this* call to fail) and random ones (:class:`RandomFaults`: each call meets a
fault with a set probability, drawn from a seeded generator, for chaos runs). Every fault
injected, of either source, is counted by kind (:meth:`FaultInjector.injected`).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Literal, get_args

FaultKind = Literal["throttling", "5xx", "5xx-after", "latency", "reset", "reset-after"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


@dataclass
class Fault:
    """One injected fault, consumed by the next ``remaining`` matching calls.

    kind: "throttling" (the vendor's throttling answer; ``status`` overrides its HTTP status and
    ``retry_after`` adds a ``Retry-After`` header where the vendor sends one), "5xx" (answer a
    server error instead of running the operation; ``status`` picks 500/502/503...), "5xx-after"
    (run the operation, then answer a server error: the ambiguous failure a client must survive
    when it retries a create that in fact succeeded), "latency" (``seconds`` added), "reset"
    (close the connection with a TCP reset instead of answering), "reset-after" (run the
    operation, then reset: the answer lost on the way back, as a load balancer's idle timeout
    or a dropped link loses it; to the client it looks exactly like "reset").
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
    reset_after: bool = False  # run the operation, then close the connection without an answer


@dataclass(frozen=True)
class RandomFaults:
    """Faults at random: each call meets one with probability ``rate``, its kind drawn evenly
    from ``kinds``. The generator is seeded, so one seed gives one sequence of draws (which
    call gets which draw still depends on the order calls arrive in from several threads).

    ``max_latency``: a latency fault adds a uniform 0..max_latency seconds. ``statuses``: the
    server errors a "5xx"/"5xx-after" answers, drawn evenly. ``clients``: only calls from these
    clients (an emulator names the caller, e.g. ACR's AccessKeyId) meet faults; None: every call.
    """

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    max_latency: float = 0.3
    statuses: tuple[int, ...] = (500, 502, 503, 504)
    clients: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate {self.rate} is not between 0 and 1")
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"unknown fault kinds {unknown}; expected some of {FAULT_KINDS}")
        if self.max_latency < 0:
            raise ValueError("max_latency must not be negative")

    def derive(self, salt: int) -> RandomFaults:
        """The same faults from another seed, for the next component of one sandbox (each
        emulator draws from its own generator, so one's traffic does not shift another's)."""
        return RandomFaults(
            self.rate,
            self.seed * 1_000_003 + salt,
            self.kinds,
            self.max_latency,
            self.statuses,
            self.clients,
        )


class FaultInjector:
    """Faults are consumed in the order they were injected, one error fault per call.

    A latency fault combines with one error fault on the same call; two error faults never do.
    Random faults (:meth:`set_random`) are drawn only for a call no scripted fault failed.
    """

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._random: RandomFaults | None = None
        self._rng = random.Random(0)
        self._injected: Counter[str] = Counter()

    def set_random(self, faults: RandomFaults | None) -> None:
        """Turn random faults on (or off with None); the generator restarts from the seed."""
        with self._lock:
            self._random = faults
            self._rng = random.Random(faults.seed if faults is not None else 0)

    @property
    def random_faults(self) -> RandomFaults | None:
        return self._random

    def injected(self) -> dict[str, int]:
        """Faults injected so far, by kind (scripted and random alike)."""
        with self._lock:
            return dict(self._injected)

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

    def decide(self, action: str | None, client: str | None = None) -> Decision:
        """What to do with one call of ``action``; ``client`` names the caller where the
        emulator knows it (for :attr:`RandomFaults.clients`)."""
        delay = 0.0
        before: FaultHit | None = None
        after: FaultHit | None = None
        reset = reset_after = False
        with self._lock:
            for fault in self._faults:
                if fault.remaining <= 0 or (fault.action and fault.action != action):
                    continue
                if fault.kind == "latency":
                    if delay == 0.0:
                        delay = fault.seconds
                        fault.remaining -= 1
                        self._injected["latency"] += 1
                    continue
                if before is not None or after is not None or reset or reset_after:
                    continue
                fault.remaining -= 1
                self._injected[fault.kind] += 1
                hit = FaultHit(fault.kind, fault.status, fault.retry_after)
                if fault.kind == "reset":
                    reset = True
                elif fault.kind == "reset-after":
                    reset_after = True
                elif fault.kind == "5xx-after":
                    after = hit
                else:
                    before = hit
            self._faults = [f for f in self._faults if f.remaining > 0]
            chance = self._random
            scripted_error = before is not None or after is not None or reset or reset_after
            if chance is not None and not scripted_error and _meets(chance, client):
                # Three draws per call whatever happens, so one call's outcome never shifts the
                # draws of the calls after it.
                roll, pick, extra = self._rng.random(), self._rng.random(), self._rng.random()
                if roll < chance.rate:
                    kind = chance.kinds[min(int(pick * len(chance.kinds)), len(chance.kinds) - 1)]
                    self._injected[kind] += 1
                    if kind == "latency":
                        delay = max(delay, extra * chance.max_latency)
                    elif kind == "reset":
                        reset = True
                    elif kind == "reset-after":
                        reset_after = True
                    elif kind == "throttling":
                        before = FaultHit(kind)
                    else:
                        status = chance.statuses[
                            min(int(extra * len(chance.statuses)), len(chance.statuses) - 1)
                        ]
                        hit = FaultHit(kind, status)
                        if kind == "5xx-after":
                            after = hit
                        else:
                            before = hit
        return Decision(delay, before, after, reset, reset_after)


def _meets(faults: RandomFaults, client: str | None) -> bool:
    return faults.clients is None or (client is not None and client in faults.clients)
