"""Ending a run on Ctrl-C within a second, whichever thread is waiting on the network.

Python delivers Ctrl-C to the main thread only. Worker threads go on with what they are doing:
a socket read (up to the read timeout), a retry's backoff (up to 30 s), their share of the
queue. The main thread, leaving a ``with ThreadPoolExecutor`` block, waits for all of it. So
the CLI's SIGINT handler calls `trigger()`, and from then on, in every thread:

* a request in flight has its sockets shut down (the deadline watchdog's mechanism,
  `relay.net.deadline.abort_all`), so a blocked read returns at once;
* a new request, a retry's wait and a wait for another thread's probe of a host raise
  `Interrupted` instead of starting (`check`, `pause`).

What the process was doing is reported by the CLI, which also decides the exit code (130) and,
should a thread still be stuck (in a DNS lookup, a TCP connect), ends the process after a
grace period.
"""

from __future__ import annotations

import threading

from relay.net import deadline

_stop = threading.Event()
_lock = threading.Lock()
_abandoned: list[str] = []


class Interrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C). A KeyboardInterrupt, so nothing that handles errors
    (``except Exception``) takes it for a failure to report and carry on after."""

    def __init__(self) -> None:
        super().__init__("interrupted")


def requested() -> bool:
    return _stop.is_set()


def check() -> None:
    """Raise `Interrupted` once the run has been interrupted."""
    if _stop.is_set():
        raise Interrupted()


def pause(seconds: float) -> None:
    """``time.sleep`` that ends early, with `Interrupted`, when the run is interrupted: the
    default wait of the retry helper and the transports."""
    if _stop.wait(max(0.0, seconds)):
        raise Interrupted()


def trigger() -> list[str]:
    """Interrupt the run: shut down the sockets of every request in flight and refuse new
    ones. Returns what was in flight (one host per request), for the message; once only."""
    with _lock:
        if _stop.is_set():
            return list(_abandoned)
        _stop.set()
    hosts = deadline.abort_all()
    with _lock:
        _abandoned[:] = hosts
    return hosts


def abandoned() -> list[str]:
    """The hosts of the requests in flight when the run was interrupted."""
    with _lock:
        return list(_abandoned)


def reset() -> None:
    """Tests only: a run that was not interrupted."""
    with _lock:
        _stop.clear()
        _abandoned.clear()
