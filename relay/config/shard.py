"""`--shard I/N` and `--only NAME…`: which part of the list one run handles.

The one sharding rule, used by every command that takes `--shard` (lock, publish, acr apply,
harbor replicate): an entry belongs to shard ``sha256(target name) mod N``, counted from 1. It
depends only on the entry's own target name, never on its position in the list, so adding or
removing one image moves no other image to another job (a matrix job's log and its ACR or
registry state stay where they were), and every job computes the same split without talking
to the others.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

from relay.config.mirrors import Entry, MirrorList
from relay.errors import InputError

T = TypeVar("T")

# GitHub's matrix allows 256 jobs per workflow run; more shards than that cannot all run at once.
MAX_SHARDS = 256
_SHARD_RE = re.compile(r"([0-9]{1,3})/([0-9]{1,3})")


@dataclass(frozen=True)
class Shard:
    index: int  # 1..count
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, name: str) -> bool:
        """Whether the entry with this target name belongs to this shard."""
        return shard_of(name, self.count) == self.index


def shard_of(name: str, count: int) -> int:
    """The shard (1..count) a target name belongs to."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def parse(text: str) -> Shard:
    """`I/N` with 1 <= I <= N <= 256; anything else is a usage error."""
    match = _SHARD_RE.fullmatch(text.strip())
    if match:
        index, count = int(match.group(1)), int(match.group(2))
        if 1 <= index <= count <= MAX_SHARDS:
            return Shard(index, count)
    raise InputError(f"--shard {text!r}: expected I/N with 1 <= I <= N <= {MAX_SHARDS}, e.g. 2/4")


def wanted(name: str, shard: Shard | None, only: tuple[str, ...] = ()) -> bool:
    """Whether this run handles the target `name`: in the shard (if any) and matching one of
    `only` (target names or shell-style patterns such as `k8s_*`; empty: every name)."""
    if shard is not None and not shard.owns(name):
        return False
    return not only or any(fnmatch.fnmatchcase(name, pattern) for pattern in only)


def select(
    items: Iterable[T],
    name: Callable[[T], str],
    shard: Shard | None,
    only: tuple[str, ...] = (),
) -> list[T]:
    """The items whose target name (``name(item)``) this run handles (see `wanted`)."""
    return [item for item in items if wanted(name(item), shard, only)]


def mirrors(mirror_list: MirrorList, shard: Shard | None, only: tuple[str, ...] = ()) -> MirrorList:
    """The list narrowed to what this run handles (the file's path and lines kept)."""
    if shard is None and not only:
        return mirror_list
    return replace(mirror_list, entries=tuple(select(mirror_list.entries, _target, shard, only)))


def check_only(only: tuple[str, ...], mirror_list: MirrorList) -> None:
    """`--only` that names nothing in the list is a usage error, not a silent no-op."""
    names = [e.target for e in mirror_list.entries]
    unmatched = [p for p in only if not any(fnmatch.fnmatchcase(n, p) for n in names)]
    if unmatched:
        raise InputError(f"--only {' '.join(unmatched)}: no image in the list has that target name")


def _target(entry: Entry) -> str:
    return entry.target


__all__ = ["MAX_SHARDS", "Shard", "check_only", "mirrors", "parse", "select", "shard_of", "wanted"]
