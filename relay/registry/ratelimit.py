"""Docker Hub's pull rate-limit headers (``ratelimit-limit: 100;w=21600``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """Quota as last reported by the registry; ``window`` is in seconds."""

    limit: int | None
    remaining: int | None
    window: int | None = None
    source: str | None = None

    def __str__(self) -> str:
        window = f" per {self.window}s" if self.window else ""
        return f"{self.remaining}/{self.limit}{window}"


def _parse_quota(value: str | None) -> tuple[int | None, int | None]:
    """``"100;w=21600"`` → (100, 21600). Tolerates the ``200=21600`` typo seen in the wild."""
    if not value:
        return None, None
    head, _, rest = value.partition(";")
    head = head.strip()
    window: int | None = None
    if "=" in head and not rest:
        head, _, w = head.partition("=")
        rest = f"w={w}"
    try:
        amount: int | None = int(head)
    except ValueError:
        amount = None
    for param in rest.split(";"):
        key, _, val = param.strip().partition("=")
        if key.strip().lower() == "w":
            try:
                window = int(val.strip())
            except ValueError:
                window = None
    return amount, window


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """Read the rate-limit headers; None when the registry sent none (most registries)."""
    limit_raw = headers.get("ratelimit-limit")
    remaining_raw = headers.get("ratelimit-remaining")
    if limit_raw is None and remaining_raw is None:
        return None
    limit, window = _parse_quota(limit_raw)
    remaining, window2 = _parse_quota(remaining_raw)
    return RateLimit(
        limit=limit,
        remaining=remaining,
        window=window or window2,
        source=headers.get("docker-ratelimit-source"),
    )
