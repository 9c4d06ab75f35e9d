"""`--shard I/N`: which part of the list one of N parallel jobs handles.

The one sharding rule, used by every command that takes `--shard` (lock, publish, acr apply,
harbor replicate): an entry belongs to shard ``sha256(target name) mod N``, counted from 1. It
depends only on the entry's own target name, never on its position in the list, so adding or
removing one image moves no other image to another job (a matrix job's log and its ACR or
registry state stay where they were), and every job computes the same split without talking
to the others.
"""

from __future__ import annotations

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


def select(items: Iterable[T], name: Callable[[T], str], shard: Shard | None) -> list[T]:
    """The items whose target name (``name(item)``) this shard owns; all of them without one."""
    return [item for item in items if shard is None or shard.owns(name(item))]


def mirrors(mirror_list: MirrorList, shard: Shard | None) -> MirrorList:
    """The list narrowed to this shard's entries (the file's path and lines kept)."""
    if shard is None:
        return mirror_list
    return replace(mirror_list, entries=tuple(select(mirror_list.entries, _target, shard)))


def _target(entry: Entry) -> str:
    return entry.target


__all__ = ["MAX_SHARDS", "Shard", "mirrors", "parse", "select", "shard_of"]
