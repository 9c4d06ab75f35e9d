"""Every selected tag with the digest it is pinned to: the list's inline pins plus the lock.

The one place that joins the mirrors list and the lock; the Dockerfile generator, the copy
transport and the ACR stage all start from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.config.lockfile import Lock
from relay.config.mirrors import Entry, MirrorList
from relay.errors import InputError, Problem


@dataclass(frozen=True)
class Pin:
    entry: Entry
    tag: str
    digest: str

    @property
    def reference(self) -> str:
        """`domain/path:tag@digest`, fully qualified."""
        return f"{self.entry.source.name}:{self.tag}@{self.digest}"


def rule_tags(lock: Lock, source: str) -> list[str]:
    return sorted(t for t, v in lock.images.get(source, {}).items() if v.selected_by == "rule")


def pins(mirrors: MirrorList, lock: Lock) -> list[Pin]:
    """All pins in list order; a tag with no digest yet is an error that says run `relay lock`."""
    out: list[Pin] = []
    problems: list[Problem] = []
    for entry in mirrors.entries:
        source = entry.source.name
        tags: list[tuple[str, str | None, int]] = [(t.tag, t.digest, t.line) for t in entry.tags]
        explicit = {t.tag for t in entry.tags}
        if entry.select is not None:
            locked = rule_tags(lock, source)
            tags += [(tag, None, entry.line) for tag in locked if tag not in explicit]
            if not locked and not entry.tags:
                problems.append(
                    Problem(
                        mirrors.path,
                        entry.line,
                        f"{source}: no tags selected in the lock yet; run `relay lock`",
                    )
                )
        for tag, digest, line in tags:
            if digest is None:
                locked_tag = lock.get(source, tag)
                if locked_tag is None:
                    problems.append(
                        Problem(
                            mirrors.path,
                            line,
                            f"{source}:{tag} has no digest yet; run `relay lock` "
                            "(or pin it inline as TAG@sha256:...)",
                        )
                    )
                    continue
                digest = locked_tag.digest
            out.append(Pin(entry, tag, digest))
    if problems:
        raise InputError(problems)
    return out
