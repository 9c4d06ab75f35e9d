"""Platforms (`os/arch[/variant]`): the one rule for "is this the platform the list asks for?".

relay follows containerd's normalisation (github.com/containerd/platforms, `database.go`
`normalizeOS`/`normalizeArch` and `platforms.go` `Normalize`/`NewMatcher`), which Docker uses
too, so a list means what `docker pull --platform` means:

* OS and architecture are compared in lower case; `macos` is `darwin`.
* `x86_64`, `x86-64` → `amd64` (variant `v1` dropped); `i386` → `386`; `aarch64` → `arm64`.
* `arm64` ≡ `arm64/v8` (and `v8.0`, `8`); `arm64/9` ≡ `arm64/v9`.
* `arm` ≡ `arm/v7`; `armhf` → `arm/v7`; `armel` → `arm/v6`; `arm/6` → `arm/v6`.

Two platforms match when their normalised forms are equal (containerd's `NewMatcher`): no
"can also run" fallback (an `arm/v7` request does not take an `arm/v6` image), because a mirror
must hold exactly what was asked for. Docker Official Images label their arm64 images
`linux/arm64/v8`; under this rule `linux/arm64` in the list matches them.

What upstream publishes is recorded as published (`platform_string`); normalising is only for
comparing. The known OS and architecture names are containerd's (`isKnownOS`, `isKnownArch`,
from Go's `go/build/syslist.go`), so a typo such as `linux/amd46` is refused with a
did-you-mean when the list is read.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# containerd/platforms database.go isKnownOS / isKnownArch.
KNOWN_OS = frozenset(
    "aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd plan9 "
    "solaris windows zos".split()
)
KNOWN_ARCH = frozenset(
    "386 amd64 amd64p32 arm armbe arm64 arm64be ppc64 ppc64le loong64 mips mipsle mips64 "
    "mips64le mips64p32 mips64p32le ppc riscv riscv64 s390 s390x sparc sparc64 wasm".split()
)
# The spellings normalisation accepts besides the known names (database.go normalizeArch).
ARCH_ALIASES = frozenset({"i386", "x86_64", "x86-64", "aarch64", "armhf", "armel"})
OS_ALIASES = frozenset({"macos"})

# Components as containerd's osRe and specifierRe allow (OS versions in parentheses are a
# Windows matter relay does not mirror by), at most three of them.
_OS = r"[A-Za-z0-9_-]+"
_COMPONENT = r"[A-Za-z0-9_.-]+"
_SHAPE = re.compile(rf"({_OS})/({_COMPONENT})(?:/({_COMPONENT}))?")


@dataclass(frozen=True, order=True)
class Platform:
    """A normalised platform: compare these, never the strings."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def normalize(os: str, architecture: str, variant: str = "") -> Platform:
    """containerd's Normalize: the canonical form of an OS, architecture and variant."""
    os = os.lower()
    if os == "macos":
        os = "darwin"
    arch, variant = architecture.lower(), variant.lower()
    if arch == "i386":
        arch, variant = "386", ""
    elif arch in ("x86_64", "x86-64", "amd64"):
        arch = "amd64"
        if variant == "v1":
            variant = ""
    elif arch in ("aarch64", "arm64"):
        arch = "arm64"
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
    elif arch == "armhf":
        arch, variant = "arm", "v7"
    elif arch == "armel":
        arch, variant = "arm", "v6"
    elif arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
    return Platform(os, arch, variant)


def parse(text: str) -> Platform:
    """The normalised platform of an `os/arch[/variant]` string; ValueError when it has another
    shape (the names are not checked here: see `problem`)."""
    m = _SHAPE.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not os/arch[/variant]")
    return normalize(m[1], m[2], m[3] or "")


def of(platform: dict[str, Any]) -> Platform:
    """The normalised platform of an OCI platform object (or an image config: same keys)."""
    return normalize(
        str(platform.get("os") or ""),
        str(platform.get("architecture") or ""),
        str(platform.get("variant") or ""),
    )


def platform_string(platform: dict[str, Any]) -> str:
    """`linux/arm/v7` from an OCI platform object, as published (not normalised)."""
    parts = [str(platform.get("os", "")), str(platform.get("architecture", ""))]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def same(a: str, b: str) -> bool:
    """Whether two platform strings name one platform (`linux/arm64` and `linux/arm64/v8`)."""
    try:
        return parse(a) == parse(b)
    except ValueError:
        return a == b


def matches(wanted: str, platform: dict[str, Any]) -> bool:
    """Whether an index entry's (or a config's) platform is the `wanted` one."""
    try:
        return parse(wanted) == of(platform)
    except ValueError:
        return False


def contains(offered: Iterable[str], wanted: str) -> bool:
    """Whether ``wanted`` is among the platform strings ``offered`` (as a lock records them)."""
    return any(same(wanted, p) for p in offered)


def find(wanted: str, manifests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The index entry for `wanted`, if any."""
    return next((m for m in manifests if matches(wanted, m.get("platform") or {})), None)


def problem(text: str) -> str | None:
    """Why ``text`` is not a platform relay can mirror, with a did-you-mean; None if it is."""
    m = _SHAPE.fullmatch(text)
    if m is None:
        return "is not os/arch[/variant], e.g. linux/amd64 or linux/arm/v7"
    if text != text.lower():
        return f"must be lower case; did you mean '{text.lower()}'?"
    os, arch = m[1], m[2]
    if os not in KNOWN_OS and os not in OS_ALIASES:
        return f"has an unknown OS '{m[1]}'{_did_you_mean(os, KNOWN_OS)}"
    if arch not in KNOWN_ARCH and arch not in ARCH_ALIASES:
        glued = re.fullmatch(r"(arm|arm64|aarch64)(v\d+)", arch)
        if glued and m[3] is None:  # docker's own "arm32v7"-style spellings, minus the slash
            fix = f"{os}/{glued[1]}/{glued[2]}"
            return f"has an unknown architecture '{m[2]}'; did you mean '{fix}'?"
        return f"has an unknown architecture '{m[2]}'{_did_you_mean(arch, KNOWN_ARCH)}"
    return None


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    if not close:
        # Transposed digits (amd46) score low with difflib on short words; same letters wins.
        close = [k for k in sorted(known) if sorted(k) == sorted(word)][:1]
    return f"; did you mean '{close[0]}'?" if close else ""
