"""Sizes as people read them: the one formatter for tables, summaries and error messages.

Stdlib only, so every layer (relay.net's size caps, relay.output's tables) may import it."""

from __future__ import annotations


def human_size(n: int) -> str:
    """Bytes in binary units: ``512 B``, ``1.5 KiB``, ``210.0 MiB``."""
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
