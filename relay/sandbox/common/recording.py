"""The record of what an emulator was asked: one :class:`Call` per request, in order."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar


@dataclass
class Call:
    """One request as an emulator saw it. Secrets (passwords, signatures) are never recorded.

    ``write`` says whether the operation changes state when it succeeds (a create, an update, a
    start); a failed write is still a write, so "no writes" means "never tried to change".
    """

    action: str | None  # the operation name; None when no operation matched
    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON, raw text when not JSON, None when empty
    status: int
    code: str | None = None  # the error code answered, None on success
    write: bool = False
    at: float = field(default_factory=time.time)

    @property
    def is_write(self) -> bool:
        return self.action is not None and self.write

    @property
    def is_read(self) -> bool:
        return self.action is not None and not self.write


def recorded_body(body: bytes) -> Any:
    """A request body as :attr:`Call.body` holds it."""
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return body.decode("utf-8", "replace")


C = TypeVar("C", bound=Call)


class Recorder(Generic[C]):
    """A thread-safe, append-only list of calls; ``calls`` is the list itself (clear in place)."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self.lock = lock if lock is not None else threading.RLock()
        self.calls: list[C] = []

    def record(self, call: C) -> None:
        with self.lock:
            self.calls.append(call)

    def snapshot(self) -> list[C]:
        with self.lock:
            return list(self.calls)

    def writes(self) -> list[C]:
        return [c for c in self.snapshot() if c.is_write]

    def reads(self) -> list[C]:
        return [c for c in self.snapshot() if c.is_read]

    def clear(self) -> None:
        with self.lock:
            self.calls.clear()
