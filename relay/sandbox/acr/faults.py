"""ACR's words for the shared faults (:mod:`relay.sandbox.common.faults`).

Throttling is the gateway's ``Throttling.User`` (HTTP 400 unless the fault names a status, e.g.
429); "5xx" and "5xx-after" are the gateway's ``ServiceUnavailable`` (503 unless overridden).
"""

from __future__ import annotations

from relay.sandbox.acr import errors
from relay.sandbox.common.faults import FAULT_KINDS, Fault, FaultHit, FaultInjector

__all__ = ["FAULT_KINDS", "Fault", "FaultInjector", "gateway_error"]


def gateway_error(hit: FaultHit) -> errors.GatewayError:
    if hit.kind == "throttling":
        exc = errors.throttling(hit.status or errors.THROTTLING_STATUS)
        if hit.retry_after is not None:
            exc.headers["Retry-After"] = f"{hit.retry_after:g}"
        return exc
    exc = errors.service_unavailable()
    if hit.status is not None:
        exc.status = hit.status
    return exc
