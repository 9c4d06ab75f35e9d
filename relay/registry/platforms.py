"""Platform strings (`os/arch[/variant]`) and how they match an image index's entries."""

from __future__ import annotations

from typing import Any


def platform_string(platform: dict[str, Any]) -> str:
    """`linux/arm/v7` from an OCI platform object (or an image config, which has the same keys)."""
    parts = [str(platform.get("os", "")), str(platform.get("architecture", ""))]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def matches(wanted: str, platform: dict[str, Any]) -> bool:
    """`linux/arm64` matches an arm64 entry with or without variant v8; a wanted variant must
    match exactly."""
    parts = wanted.split("/")
    if platform.get("os") != parts[0] or platform.get("architecture") != parts[1]:
        return False
    if len(parts) == 3:
        variant = platform.get("variant") or ("v8" if parts[1] == "arm64" else "")
        return variant == parts[2]
    return True


def find(wanted: str, manifests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The index entry for `wanted`, if any."""
    return next((m for m in manifests if matches(wanted, m.get("platform") or {})), None)
