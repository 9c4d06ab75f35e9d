"""What every emulator in :mod:`relay.sandbox` shares, and nothing vendor-specific.

``front``      a threaded HTTP(S) server on 127.0.0.1 that hands each request to an emulator
``recording``  the record of every call (:class:`Call`) and the list that holds them
``faults``     fault injection, scripted or random (seeded, by rate): throttling, 5xx, 5xx after
               applying, latency, connection reset before or after applying; counted by kind
``proxy``      a fault-injecting front for a real docker-registry (the upstream stand-in)
``registry``   a small distribution-API reader (Basic and Bearer auth) for the stand-in registries

Error *bodies* are each vendor's own and stay in the emulators: a fault here only says what to
do (status, Retry-After, reset), the emulator says how its vendor words it.
"""

from relay.sandbox.common.faults import (
    FAULT_KINDS,
    Decision,
    Fault,
    FaultHit,
    FaultInjector,
    RandomFaults,
)
from relay.sandbox.common.front import HttpFront, Reply, Request, ResetConnection
from relay.sandbox.common.recording import Call, Recorder

__all__ = [
    "FAULT_KINDS",
    "Call",
    "Decision",
    "Fault",
    "FaultHit",
    "FaultInjector",
    "HttpFront",
    "RandomFaults",
    "Recorder",
    "Reply",
    "Request",
    "ResetConnection",
]
