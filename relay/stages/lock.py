"""`relay lock`: resolve every wanted tag to a digest, media type and platforms.

Plan, then apply: `wanted()` works out which tags each entry needs (explicit tags, plus what the
selection rules pick from upstream's tag list); `resolve()` asks the registries, concurrently
and with as few requests as possible; `diff()` compares old and new locks (pure). The CLI
writes the new lock, or with --check only reports.

Request budget per tag: a tag the lock does not know yet costs one manifest GET (digest, media
type and platforms in one answer); a tag being re-checked costs one HEAD (on Docker Hub a HEAD
is not a pull), plus a GET only when its digest moved. A single-platform image also needs its
config blob to learn the platform.

Upstream out of reach: the registries the list names are pinged side by side first
(ClientPool.probe), so an unreachable one costs its timeouts once, alongside the others; its
tags then fail at once, and are reported as one problem per registry that says what to do
(relay.output.outages).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal

from relay import platforms as platform_rules
from relay import safety
from relay.config.lockfile import Lock, LockedTag, SelectedBy
from relay.config.mirrors import Entry, MirrorList, TagSpec
from relay.errors import Problem
from relay.ops.inspectimage import MissingChild, inspect_image
from relay.output import outages
from relay.output.progress import NULL, Progress
from relay.registry.credentials import normalise_registry
from relay.registry.errors import NotFoundError, RegistryError
from relay.registry.mediatypes import MANIFEST_TYPES
from relay.registry.mirrors import ImageSource
from relay.registry.models import Manifest
from relay.registry.pool import ClientPool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wanted:
    entry: Entry
    tag: str
    selected_by: SelectedBy
    line: int


@dataclass
class Resolution:
    lock: Lock
    problems: list[Problem] = field(default_factory=list)
    # Worth saying, not failing for: a pinned tag that moved upstream, a rule taking many tags.
    warnings: list[Problem] = field(default_factory=list)
    # Sources whose registry could not be asked (not answered, refused; not "no such tag"):
    # for these the new lock says nothing, and a report must not say it is complete.
    unanswered: set[str] = field(default_factory=set)
    # Sources with any lookup that failed (unanswered ones included): the new lock may lack
    # tags of theirs that are still upstream, so a comparison must not read them as removed.
    failed: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class LockChange:
    # "change": the same digest, other recorded facts (fields names them).
    kind: Literal["add", "move", "remove", "change"]
    source: str
    tag: str
    old: str | None = None
    new: str | None = None
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.kind == "move":
            return f"moved   {self.source}:{self.tag} {self.old} -> {self.new}"
        if self.kind == "change":
            return f"changed {self.source}:{self.tag} {self.new} ({', '.join(self.fields)})"
        if self.kind == "add":
            return f"added   {self.source}:{self.tag} {self.new}"
        return f"removed {self.source}:{self.tag} {self.old}"


def wanted(
    mirrors: MirrorList,
    pool: ClientPool,
    concurrency: int,
    warn_tags: int | None = None,
    unanswered: set[str] | None = None,
    failed: set[str] | None = None,
) -> tuple[list[Wanted], list[Problem], list[Problem]]:
    """Every (entry, tag) the lock must hold, the problems and the warnings. Lists upstream tags
    for entries with rules. A rule that matches nothing is a problem (the entry would lose its
    locked tags); one that takes more than ``warn_tags`` tags is a warning. Sources whose tags
    could not be listed are added to ``failed``."""
    out: list[Wanted] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    with_rules = [e for e in mirrors.entries if e.select is not None]

    def list_tags(entry: Entry) -> list[str] | Problem:
        # From upstream itself, never from a mirror: a pull-through cache lists only what it
        # has cached (distribution's proxy falls back to its cached tags when upstream fails;
        # Harbor's proxy cache lists only images pulled through it), so `latest: 3` would
        # silently miss the newest tags. Manifests and blobs still come through mirrors
        # (digest-verified).
        domain = entry.source.domain
        try:
            return pool.get(domain).list_tags(entry.source.path)
        except RegistryError as exc:
            if unanswered is not None and not isinstance(exc, NotFoundError):
                unanswered.add(entry.source.name)
            message = f"{entry.source.name}: cannot list tags: {exc}"
            urls = pool.mirror_urls.get(normalise_registry(domain))
            if urls and not isinstance(exc, NotFoundError):
                # Not grouped as an outage: its advice (list a mirror) does not help here.
                return Problem(
                    mirrors.path,
                    entry.line,
                    f"{message}. select needs upstream's own tag list; the one of the "
                    f"mirror ({', '.join(urls)}) is not used, since a pull-through cache lists "
                    "only the tags it has cached and newer ones would be missed. Run where "
                    f"{domain} answers, or list the tags explicitly under tags:",
                )
            return outages.problem(mirrors.path, entry.line, message, exc)

    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        listed = dict(zip(with_rules, executor.map(list_tags, with_rules), strict=True))
    for entry in mirrors.entries:
        explicit = set()
        for spec in entry.tags:
            explicit.add(spec.tag)
            if spec.digest is None:  # inline pins need no lock entry
                out.append(Wanted(entry, spec.tag, "tag", spec.line))
        if entry.select is None:
            continue
        tags = listed[entry]
        if isinstance(tags, Problem):
            problems.append(tags)
            if failed is not None:
                failed.add(entry.source.name)
            continue
        # The registry's word was checked by the client (RegistryClient.iter_tags): only tags
        # relay's grammar accepts, each once.
        selected = entry.select.select(tags)
        if not selected:
            problems.append(_matched_nothing(mirrors.path, entry, tags))
            continue
        if warn_tags is not None and len(selected) > warn_tags:
            warnings.append(
                Problem(
                    mirrors.path,
                    entry.line,
                    f"{entry.source.name}: select takes {len(selected)} tags, more than "
                    f"lock.warn_tags ({warn_tags}); each is built and stored. Narrow it with "
                    "exclude, semver or latest, or raise lock.warn_tags",
                )
            )
        chosen = [t for t in selected if t not in explicit]
        out.extend(Wanted(entry, t, "rule", entry.line) for t in chosen)
    return out, problems, warnings


def _matched_nothing(path: str, entry: Entry, tags: list[str]) -> Problem:
    assert entry.select is not None
    if not tags:
        why = "upstream lists no tags"
    else:
        nearest = "; ".join(entry.select.explain(tags))
        why = f"upstream has {len(tags)} tag(s), none taken. Nearest: {nearest}"
    return Problem(
        path,
        entry.line,
        f"{entry.source.name}: select matches no upstream tag, so the entry would lose every "
        f"tag it has; nothing written. {why}",
    )


def check_pins(
    mirrors: MirrorList, pool: ClientPool, concurrency: int, unanswered: set[str] | None = None
) -> tuple[list[Problem], list[Problem]]:
    """Every inline pin (`TAG@sha256:…`) checked upstream: the digest must exist in that
    repository (a HEAD by digest: not a Docker Hub pull), else a problem on the pin's line; a
    tag that now points elsewhere, or no longer exists, is a warning (the pin still works).
    Two HEADs per pin."""
    pinned = [(e, t) for e in mirrors.entries for t in e.tags if t.digest is not None]

    def one(item: tuple[Entry, TagSpec]) -> Problem | tuple[Problem] | None:
        entry, spec = item
        assert spec.digest is not None
        source, client = entry.source, pool.source(entry.source.domain)
        where = f"{source.name}:{spec.tag}@{spec.digest}"
        try:
            if client.head_manifest(source.path, spec.digest) is None:
                return Problem(
                    mirrors.path,
                    spec.line,
                    f"{where}: the pinned digest does not exist in {source.name} upstream; "
                    "copy the pin again from the image's page or `docker buildx imagetools "
                    "inspect`",
                )
            now = client.head_manifest(source.path, spec.tag)
        except RegistryError as exc:
            if unanswered is not None and not isinstance(exc, NotFoundError):
                unanswered.add(source.name)
            return outages.problem(
                mirrors.path, spec.line, f"{where}: cannot check the pin: {exc}", exc
            )
        if now is None:
            return (
                Problem(
                    mirrors.path,
                    spec.line,
                    f"{source.name}:{spec.tag} no longer exists upstream; the pinned digest "
                    "still does, so the pin keeps working",
                ),
            )
        if now.digest != spec.digest:
            return (
                Problem(
                    mirrors.path,
                    spec.line,
                    f"{source.name}:{spec.tag} now points to {now.digest}, not the pinned "
                    f"{spec.digest}; the pin keeps working: update it to take the new image",
                ),
            )
        return None

    problems: list[Problem] = []
    warnings: list[Problem] = []
    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        for result in executor.map(one, pinned):
            if isinstance(result, Problem):
                problems.append(result)
            elif result is not None:
                warnings.extend(result)
    return problems, warnings


def resolve(
    mirrors: MirrorList,
    old: Lock,
    pool: ClientPool,
    *,
    recheck: bool,
    concurrency: int = 8,
    config_platforms: Callable[[Entry], tuple[str, ...]] | None = None,
    verify_pins: bool = False,
    warn_tags: int | None = None,
    progress: Progress = NULL,
    command: str = "relay lock",
) -> Resolution:
    """The new lock. With `recheck` false, tags already locked are kept without a request.
    With `verify_pins`, every inline pin is checked upstream too (`check_pins`).

    `config_platforms(entry)` names the platforms whose image config digest the lock should
    record (what a build stage compares); they are fetched once per digest and kept after.
    Problems from unreachable registries come one per registry, with advice for ``command``.
    ``progress`` counts the tags as they are resolved (a bar on a terminal).
    """
    # Only the registries this run will ask: every entry with rules (tag lists), with pins to
    # check, or with a tag the lock lacks (or re-checks).
    pool.probe(
        (
            e.source.domain
            for e in mirrors.entries
            if e.select is not None
            or (verify_pins and any(t.digest for t in e.tags))
            or any(
                t.digest is None and (recheck or old.get(e.source.name, t.tag) is None)
                for t in e.tags
            )
        ),
        # Tag lists are read from upstream itself, even where mirrors are configured.
        upstream=(e.source.domain for e in mirrors.entries if e.select is not None),
    )
    unanswered: set[str] = set()
    failed: set[str] = set()
    items, problems, warnings = wanted(mirrors, pool, concurrency, warn_tags, unanswered, failed)
    if verify_pins:
        pin_problems, pin_warnings = check_pins(mirrors, pool, concurrency, unanswered)
        problems += pin_problems
        warnings += pin_warnings

    def one(w: Wanted) -> LockedTag | Problem:
        source = w.entry.source
        previous = old.get(source.name, w.tag)
        need = config_platforms(w.entry) if config_platforms else ()
        locked: LockedTag | None
        if previous is not None and not recheck and _has_configs(previous, need):
            locked = replace(previous, selected_by=w.selected_by, line=None)
        else:
            try:
                locked = _fetch(
                    pool.source(source.domain), source.path, w.tag, previous, w.selected_by, need
                )
            except MissingChild as exc:
                # The tag is there; one of its platforms is not (upstream's index is broken).
                return Problem(
                    mirrors.path,
                    w.line,
                    f"{source.name}:{w.tag}: {exc.reason}; upstream's index is incomplete, so "
                    "this tag cannot be locked until it is fixed (or pin a tag whose index is "
                    "whole)",
                )
            except NotFoundError:
                return Problem(mirrors.path, w.line, f"{source.name}:{w.tag} not found upstream")
            except RegistryError as exc:
                unanswered.add(source.name)
                return outages.problem(mirrors.path, w.line, f"{source.name}:{w.tag}: {exc}", exc)
            if locked is None:
                return Problem(mirrors.path, w.line, f"{source.name}:{w.tag} not found upstream")
            if locked.media_type not in MANIFEST_TYPES:
                return Problem(
                    mirrors.path,
                    w.line,
                    f"{source.name}:{w.tag} is a {safety.show(locked.media_type)} manifest, "
                    "not an image or an image index; relay does not lock it",
                )
        if w.entry.platforms and not locked.platforms:
            # Upstream states no platform (index entries without `platform`, a config without
            # `os`): what the entry asks for cannot be checked, so it is not assumed.
            return Problem(
                mirrors.path,
                w.entry.line,
                f"{source.name}:{w.tag}: platform unknown: upstream states no platform "
                "(index entries without platform, or an image config without os), so "
                f"{', '.join(w.entry.platforms)} cannot be checked; drop platforms: for this "
                "entry, or choose another tag",
            )
        missing = [p for p in w.entry.platforms if not platform_rules.contains(locked.platforms, p)]
        if missing:
            return Problem(
                mirrors.path,
                w.entry.line,
                f"{source.name}:{w.tag} has no {', '.join(missing)} upstream "
                f"(it has {', '.join(locked.platforms)})",
            )
        return locked

    new = Lock()
    bar = progress.task("tags", len(items))

    def counted(w: Wanted) -> LockedTag | Problem:
        try:
            return one(w)
        finally:
            bar.advance()  # as each finishes, not in list order

    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        for w, result in zip(items, executor.map(counted, items), strict=True):
            if isinstance(result, Problem):
                problems.append(result)
                failed.add(w.entry.source.name)
            else:
                new.put(w.entry.source.name, w.tag, result)
    bar.finish()
    problems = outages.group_problems(problems, command=command)
    warnings.sort(key=lambda p: (p.line or 0, p.message))
    return Resolution(new, problems, warnings, unanswered, failed | unanswered)


def keep_unchecked(old: Lock, new: Lock, sources: set[str]) -> Lock:
    """``new``, plus the tags ``old`` holds for ``sources`` that ``new`` lacks: what to compare
    against when those sources could not be (fully) checked, so that a registry out of reach
    does not read as every one of its tags removed. Pure."""
    kept = Lock({source: dict(tags) for source, tags in new.images.items()})
    for source in sources:
        for tag, locked in old.images.get(source, {}).items():
            if kept.get(source, tag) is None:
                kept.put(source, tag, locked)
    return kept


def _has_configs(locked: LockedTag, platforms: tuple[str, ...]) -> bool:
    have = dict(locked.configs)
    # A platform the image lacks cannot have a config; the platform check reports it.
    return all(
        p in have or (locked.platforms and not platform_rules.contains(locked.platforms, p))
        for p in platforms
    )


def _fetch(
    client: ImageSource,
    path: str,
    tag: str,
    previous: LockedTag | None,
    selected_by: SelectedBy,
    config_platforms: tuple[str, ...],
) -> LockedTag | None:
    if previous is not None:
        head = client.head_manifest(path, tag)
        if head is None:
            return None
        if head.digest == previous.digest and _has_configs(previous, config_platforms):
            return replace(previous, selected_by=selected_by, line=None)
        manifest = client.get_manifest(path, head.digest)
    else:
        try:
            manifest = client.get_manifest(path, tag)
        except NotFoundError:
            return None
    found, configs = describe(client, path, manifest, config_platforms)
    return LockedTag(manifest.digest, manifest.media_type, found, selected_by, configs)


def describe(
    client: ImageSource, path: str, manifest: Manifest, config_platforms: tuple[str, ...] = ()
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The image's platforms, and the config digests of `config_platforms` it has."""
    found = inspect_image(client, path, manifest, config_platforms)
    configs = sorted((p, image.config_digest) for p, image in found.images.items())
    return found.platforms, tuple(configs)


# The lock file's names of the LockedTag fields a "change" can name (relay.config.lockfile).
_FIELDS = {
    "media_type": "mediaType",
    "platforms": "platforms",
    "selected_by": "selectedBy",
    "configs": "configs",
}


def diff(old: Lock, new: Lock) -> list[LockChange]:
    """What changed between two locks, sorted: whole records are compared (not only digests),
    so that whatever `relay lock` would rewrite, `lock --check` and `plan --exit-code` see.
    Pure."""
    changes: list[LockChange] = []
    keys = {(s, t) for s, tags in old.images.items() for t in tags}
    keys |= {(s, t) for s, tags in new.images.items() for t in tags}
    for source, tag in sorted(keys):
        a, b = old.get(source, tag), new.get(source, tag)
        if a is None and b is not None:
            changes.append(LockChange("add", source, tag, None, b.digest))
        elif b is None and a is not None:
            changes.append(LockChange("remove", source, tag, a.digest, None))
        elif a is not None and b is not None and a.digest != b.digest:
            changes.append(LockChange("move", source, tag, a.digest, b.digest))
        elif a is not None and b is not None and a != b:
            fields = tuple(
                name for attr, name in _FIELDS.items() if getattr(a, attr) != getattr(b, attr)
            )
            changes.append(LockChange("change", source, tag, a.digest, b.digest, fields))
    return changes
