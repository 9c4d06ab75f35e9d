"""`relay verify`: for every pinned tag, do upstream (the lock), the delivery target and Harbor
hold the same image?

What must agree, per transport:

* copy (`relay publish`): the copy keeps the digest and every platform, so the target's
  manifest digest must equal the pinned digest, and so must Harbor's. One HEAD per tag per side.
* build (ACR builds a FROM-only Dockerfile): the rebuilt image keeps upstream's image config for
  the platform ACR builds (`relay.stages.acr.plan.compared_platform`), and equal config digests
  mean equal `rootfs.diff_ids` (the config holds them), so the target's config digest for that
  platform must equal the one `relay lock` recorded. One manifest GET per tag (an index costs a
  second one for the platform's manifest); diff_ids are read only to explain a mismatch.
* Harbor pulls a digest-exact copy of the target: its manifest digest must equal the target's
  (one HEAD). When the target itself is wrong, Harbor is judged against upstream instead, so a
  bad target does not make a good Harbor look bad.

Upstream is the lock: no upstream request is made when the lock has what is needed (the pinned
digest; with the build transport the config digest too). An inline pin under the build
transport costs one upstream read, and explaining a build mismatch costs a few.

A side that does not agree is *missing* (no such tag, or not the platform), *stale* (it holds
what the lock held before: the lock moved on and the side has not caught up; Harbor holding an
earlier build of the target's image is stale too) or *mismatched* (anything else: a different
image under the same tag). "Before" comes from the lock's git history; without it (no git, a
shallow clone) a stale side shows as mismatched. *error* means the side could not be read.

The JSON document of `relay verify --output json` (format 1; keys are always present, `null`
when they do not apply):

    {"relayVerify": 1, "ok": bool, "transport": "build" | "copy",
     "compared": "config" | "manifest",
     "target": {"kind": "acr" | "copy", "registry": str, "namespace": str},
     "harbor": {"registry": str, "project": str} | null,
     "history": bool,               # the lock's git history was read (stale vs mismatch)
     "counts": {"tags", "ok", "missing", "stale", "mismatch", "error": int},
     "requests": {"total", "upstream", "target", "harbor", "manifest": int,
                  "perTag", "manifestPerTag": float},   # registry requests, all sides
     "seconds": float,
     "results": [{"image": "name:tag", "source": str, "tag": str,
                  "platform": str | null,  # the compared platform (build); null: all (copy)
                  "platforms": [str],      # the lock's platforms, [] when unknown
                  "result": "ok" | "missing" | "stale" | "mismatch" | "error",
                  "where": ["target" | "harbor"],
                  "upstream": {"digest": str, "config": str | null},
                  "target": SIDE, "harbor": SIDE | null}]}
    SIDE = {"reference": str, "state": <result>, "digest": str | null,
            "config": str | null, "detail": str}
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from relay import reference, safety
from relay.config.lockfile import LOCK_FILE, Lock
from relay.config.mirrors import Entry
from relay.config.pins import Pin
from relay.errors import RelayError
from relay.ops.inspectimage import PlatformImage, inspect_image
from relay.output.tables import Column, Table
from relay.registry.client import RegistryClient
from relay.registry.errors import NotFoundError
from relay.registry.mirrors import ImageSource
from relay.registry.models import Manifest
from relay.stages.acr.upstream import from_lock, from_registry
from relay.untrusted import load_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
State = Literal["ok", "missing", "stale", "mismatch", "error"]
STATES: tuple[State, ...] = ("ok", "missing", "stale", "mismatch", "error")
# A row's result is its worst side's state.
_SEVERITY: dict[State, int] = {"ok": 0, "stale": 1, "missing": 2, "mismatch": 3, "error": 4}
Transport = Literal["build", "copy"]
SideName = Literal["target", "harbor"]
HISTORY_COMMITS = 500  # how far back `git log` looks for digests the lock held before
_HISTORY_TIMEOUT = 30.0


# --- what is checked ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A registry and the namespace relay's repositories live under there: the ACR namespace,
    `copy.namespace`, or the Harbor project."""

    registry: str
    namespace: str
    kind: Literal["acr", "copy", "harbor"]

    def repository(self, name: str) -> str:
        return f"{self.namespace}/{name}"

    def reference(self, name: str, tag: str) -> str:
        return f"{self.registry}/{self.namespace}/{name}:{tag}"


@dataclass(frozen=True)
class Item:
    """One pinned tag to check, with what the lock says about upstream."""

    pin: Pin
    platform: str | None  # build: the platform ACR builds and whose config is compared
    platforms: tuple[str, ...]  # the lock's platforms; () when unknown (an inline pin)
    config: str | None  # upstream's config digest for `platform`, from the lock

    @property
    def image(self) -> str:
        return f"{self.pin.entry.target}:{self.pin.tag}"


def items(
    selected: Sequence[Pin], lock: Lock, platform_of: Callable[[Entry], str] | None
) -> list[Item]:
    """What to check, from the pins and the lock. ``platform_of`` gives the compared platform
    per entry for the build transport; None for the copy transport (the whole image)."""
    out: list[Item] = []
    # Upstream's config as the lock records it for the pinned digest, as the ACR stage reads
    # it; reading upstream for what it lacks (an inline pin) is the observer's, when needed.
    locked_config = from_lock(lock)
    for pin in selected:
        locked = lock.get(pin.entry.source.name, pin.tag)
        current = locked if locked is not None and locked.digest == pin.digest else None
        platform = platform_of(pin.entry) if platform_of is not None else None
        platforms = current.platforms if current is not None else ()
        config = (
            locked_config(pin.entry.source, pin.tag, pin.digest, platform) if platform else None
        )
        out.append(Item(pin, platform, tuple(platforms), config))
    return out


# --- what the lock held before ------------------------------------------------------------------


@dataclass(frozen=True)
class LockHistory:
    """Digests and configs the lock recorded in earlier commits, per source and tag: a side
    holding one of them is stale, not a stranger."""

    digests: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    # (source, tag, platform) -> config digests
    configs: Mapping[tuple[str, str, str], frozenset[str]] = field(default_factory=dict)
    available: bool = False
    shallow: bool = False  # a shallow clone: only the newest commits are known

    def had_digest(self, source: str, tag: str, digest: str) -> bool:
        return digest in self.digests.get((source, tag), frozenset())

    def had_config(self, source: str, tag: str, platform: str, config: str) -> bool:
        return config in self.configs.get((source, tag, platform), frozenset())


def parse_history(text: str) -> LockHistory:
    """The lock records found in `git log -p` output of the lock (added or removed lines).
    Lines are untrusted text: anything that is not a record with valid names and digests is
    skipped."""
    digests: dict[tuple[str, str], set[str]] = {}
    configs: dict[tuple[str, str, str], set[str]] = {}
    for line in text.splitlines():
        if not line.startswith(("+{", "-{")):
            continue
        try:
            record = load_json(line[1:])
        except ValueError:  # deep nesting too: relay.untrusted
            continue
        if not isinstance(record, dict):
            continue
        source, tag, digest = record.get("source"), record.get("tag"), record.get("digest")
        if not (
            isinstance(source, str)
            and reference.is_valid_tag(tag)
            and reference.is_valid_digest(digest)
        ):
            continue
        assert isinstance(tag, str) and isinstance(digest, str)
        digests.setdefault((source, tag), set()).add(digest)
        recorded = record.get("configs")
        if isinstance(recorded, dict):
            for platform, config in recorded.items():
                if isinstance(platform, str) and reference.is_valid_digest(config):
                    configs.setdefault((source, tag, platform), set()).add(str(config))
    return LockHistory(
        {k: frozenset(v) for k, v in digests.items()},
        {k: frozenset(v) for k, v in configs.items()},
        available=True,
    )


def read_history(repo: Path, *, commits: int = HISTORY_COMMITS) -> LockHistory:
    """The lock's last ``commits`` commits, read with git; an empty history (stale then shows as
    mismatch) when the repository is not a git work tree or git is missing."""
    text = _git(
        repo,
        "log",
        f"--max-count={commits}",
        "--patch",
        "--format=",
        "--no-color",
        # The repository's own attributes must not run anything: no external diff driver, no
        # textconv filter (git log runs textconv by default).
        "--no-ext-diff",
        "--no-textconv",
        "--",
        LOCK_FILE,
    )
    if text is None:
        return LockHistory()
    history = parse_history(text)
    if _git(repo, "rev-parse", "--is-shallow-repository") == "true\n":
        history = LockHistory(history.digests, history.configs, available=True, shallow=True)
    return history


def _git(repo: Path, *args: str) -> str | None:
    """A read-only git command's output, or None (not a work tree, no git, too slow)."""
    try:
        proc = subprocess.run(  # noqa: S603 - fixed arguments, git from PATH
            ["git", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_HISTORY_TIMEOUT,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("no lock history: git %s: %s", args[0], exc)
        return None
    if proc.returncode != 0:
        log.debug("no lock history: git %s: %s", args[0], proc.stderr.strip()[:200])
        return None
    return proc.stdout


# --- what each side holds -----------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """What one registry holds for one tag, judged."""

    reference: str
    state: State
    digest: str | None = None  # the tag's manifest digest
    config: str | None = None  # its config digest for the compared platform (build)
    detail: str = ""

    def json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "state": self.state,
            "digest": self.digest,
            "config": self.config,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Check:
    item: Item
    upstream_config: str | None  # as used: the lock's, or read from upstream for inline pins
    target: Side
    harbor: Side | None

    @property
    def result(self) -> State:
        sides = [self.target] + ([self.harbor] if self.harbor is not None else [])
        return max((s.state for s in sides), key=_SEVERITY.__getitem__)

    @property
    def where(self) -> list[SideName]:
        out: list[SideName] = []
        if self.target.state != "ok":
            out.append("target")
        if self.harbor is not None and self.harbor.state != "ok":
            out.append("harbor")
        return out

    def json(self) -> dict[str, Any]:
        pin = self.item.pin
        return {
            "image": self.item.image,
            "source": pin.entry.source.name,
            "tag": pin.tag,
            "platform": self.item.platform,
            "platforms": list(self.item.platforms),
            "result": self.result,
            "where": self.where,
            "upstream": {"digest": pin.digest, "config": self.upstream_config},
            "target": self.target.json(),
            "harbor": self.harbor.json() if self.harbor is not None else None,
        }


def layer_difference(have: Sequence[str], want: Sequence[str]) -> str:
    """Why two images with different configs differ, from their diff_ids (uncompressed layer
    digests): the first layer that differs, a different layer count, or the config alone."""
    for number, (a, b) in enumerate(zip(have, want, strict=False), start=1):
        if a != b:
            return f"layer {number} of {len(have)} differs"
    if len(have) != len(want):
        return f"{len(have)} layers where upstream has {len(want)}"
    return "same layers, different config (environment, labels, entrypoint or history)"


def _short(digest: str | None) -> str:
    if not digest:
        return ""
    return digest.split(":", 1)[-1][:12]


@dataclass
class Observer:
    """Reads the target and Harbor for each item and judges what it finds. Thread-safe: one
    instance serves the whole pool of workers."""

    transport: Transport
    target: Location
    target_client: RegistryClient
    harbor: Location | None
    harbor_client: RegistryClient | None
    # where upstream images are read from, per registry host: its client, or the registry
    # behind its mirrors (registries.mirrors)
    upstream: Callable[[str], ImageSource]
    history: LockHistory
    # A side whose registry did not answer its ping: every tag reports this, no more requests.
    down: dict[SideName, str] = field(default_factory=dict)
    pinged: bool = False
    _upstream_config: Callable[[reference.Reference, str, str, str], str | None] = field(
        init=False, repr=False
    )

    def __post_init__(self) -> None:
        self._upstream_config = from_registry(self.upstream)

    def ping(self) -> None:
        """Reach each side once (the `/v2/` request every first read makes anyway): a registry
        that is down is reported once per tag, not retried once per tag. Once per observer."""
        if self.pinged:
            return
        self.pinged = True
        both: list[tuple[SideName, RegistryClient | None]] = [
            ("target", self.target_client),
            ("harbor", self.harbor_client),
        ]
        sides = [(name, client) for name, client in both if client is not None]

        def ping(side: tuple[SideName, RegistryClient]) -> None:
            name, client = side
            try:
                client.ping()
            except (RelayError, ValueError) as exc:
                self.down[name] = safety.first_line(exc)

        # Side by side: a side out of reach costs its timeouts once, alongside the other's.
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(ping, sides))

    @property
    def label(self) -> str:
        return "ACR" if self.target.kind == "acr" else "the target"

    def check(self, item: Item) -> Check:
        pin = item.pin
        copy = self.transport == "copy"
        config, why = (None, "") if copy else self._wanted_config(item)
        target_down = self.down.get("target")
        if target_down is not None:
            ref = self.target.reference(pin.entry.target, pin.tag)
            target = Side(ref, "error", detail=target_down)
        elif copy:
            target = self._copy_side(item, self.target, self.target_client)
        else:
            target = self._build_target(item, config, why)
        harbor = None
        if self.harbor is not None and self.harbor_client is not None:
            harbor_down = self.down.get("harbor")
            if harbor_down is not None:
                ref = self.harbor.reference(pin.entry.target, pin.tag)
                harbor = Side(ref, "error", detail=harbor_down)
            elif copy:
                harbor = self._copy_side(item, self.harbor, self.harbor_client, target)
            else:
                harbor = self._build_harbor(item, config, target)
        return Check(item, config, target, harbor)

    # -- copy transport: manifest digests -------------------------------------------------------

    def _copy_side(
        self, item: Item, where: Location, client: RegistryClient, target: Side | None = None
    ) -> Side:
        pin = item.pin
        ref = where.reference(pin.entry.target, pin.tag)
        repo = where.repository(pin.entry.target)
        try:
            found = client.head_manifest(repo, pin.tag)
            if found is None:
                return Side(ref, "missing", detail=f"no tag {pin.tag}")
            if found.digest == pin.digest:
                return Side(ref, "ok", found.digest)
            if target is not None and target.state != "ok" and found.digest == target.digest:
                return Side(ref, target.state, found.digest, detail=f"same as {self.label}")
            if self.history.had_digest(pin.entry.source.name, pin.tag, found.digest):
                return Side(ref, "stale", found.digest, detail="the image the lock had before")
            why = self._platforms_differ(item, client, repo, found.digest)
            return Side(ref, "mismatch", found.digest, detail=why)
        except (RelayError, ValueError) as exc:
            return Side(ref, "error", detail=safety.first_line(exc))

    def _platforms_differ(self, item: Item, client: RegistryClient, repo: str, digest: str) -> str:
        """A different image: say whether it lacks platforms upstream has (a copy narrowed with
        --platform, say). Costs a manifest GET, only on a mismatch."""
        if not item.platforms:
            return "a different image under this tag"
        try:
            found = inspect_image(client, repo, client.get_manifest(repo, digest))
        except (RelayError, ValueError) as exc:
            return f"a different image under this tag (not explained: {safety.first_line(exc)})"
        have = sorted(found.platforms)
        if have and have != sorted(item.platforms):
            return (
                f"a different image: {', '.join(have)}; upstream has "
                f"{', '.join(sorted(item.platforms))}"
            )
        return "a different image under this tag"

    # -- build transport: config digests for the compared platform ------------------------------

    def _wanted_config(self, item: Item) -> tuple[str | None, str]:
        """Upstream's config for the platform: the lock's, else (an inline pin) read upstream."""
        if item.config is not None:
            return item.config, ""
        assert item.platform is not None
        pin = item.pin
        try:
            found = self._upstream_config(pin.entry.source, pin.tag, pin.digest, item.platform)
        except (RelayError, ValueError) as exc:
            return None, f"upstream's config is unknown: {safety.first_line(exc)}"
        if found is None:
            return None, f"upstream has no {item.platform} image"
        return found, ""

    def _read_platform(
        self,
        client: RegistryClient,
        repo: str,
        tag: str,
        ref: str,
        platform: str,
        wanted: str | None,
    ) -> tuple[Manifest, PlatformImage] | Side:
        """The tag's manifest and its image for ``platform``, or a `missing` Side."""
        try:
            manifest = client.get_manifest(repo, tag)
        except NotFoundError:
            return Side(ref, "missing", detail=f"no tag {tag}")
        known = {platform: wanted} if wanted else None
        found = inspect_image(client, repo, manifest, [platform], known_configs=known)
        image = found.images.get(platform)
        if image is None:
            has = ", ".join(found.platforms) or "unknown platforms"
            return Side(ref, "missing", manifest.digest, detail=f"no {platform} image (has {has})")
        return manifest, image

    def _judge_config(
        self,
        item: Item,
        client: RegistryClient,
        repo: str,
        ref: str,
        manifest: Manifest,
        image: PlatformImage,
        wanted: str,
    ) -> Side:
        """A config that is not upstream's: one the lock had before, or a different image."""
        pin = item.pin
        assert item.platform is not None
        if self.history.had_config(
            pin.entry.source.name, pin.tag, item.platform, image.config_digest
        ):
            return Side(
                ref,
                "stale",
                manifest.digest,
                image.config_digest,
                "a build of the image the lock had before",
            )
        return Side(
            ref,
            "mismatch",
            manifest.digest,
            image.config_digest,
            "config differs: " + self._explain(item, client, repo, manifest),
        )

    def _explain(self, item: Item, client: RegistryClient, repo: str, manifest: Manifest) -> str:
        """Which layer differs, from both sides' diff_ids: read only for a mismatch."""
        assert item.platform is not None
        pin = item.pin
        try:
            # Upstream first: where it is not read (relay harbor replicate --missing judges
            # against the lock alone) this side's config blob is not read for nothing.
            up = self.upstream(pin.entry.source.domain)
            have = inspect_image(client, repo, manifest, [item.platform], read_config=True)
            path = pin.entry.source.path
            want = inspect_image(
                up, path, up.get_manifest(path, pin.digest), [item.platform], read_config=True
            )
            mine, theirs = have.images.get(item.platform), want.images.get(item.platform)
            if mine is None or theirs is None or mine.diff_ids is None or theirs.diff_ids is None:
                return "a different image"
            return layer_difference(mine.diff_ids, theirs.diff_ids)
        except (RelayError, ValueError) as exc:
            return f"a different image (not explained: {safety.first_line(exc)})"

    def _build_target(self, item: Item, wanted: str | None, why: str) -> Side:
        pin = item.pin
        assert item.platform is not None
        ref = self.target.reference(pin.entry.target, pin.tag)
        repo = self.target.repository(pin.entry.target)
        if wanted is None:
            return Side(ref, "error", detail=why)
        try:
            read = self._read_platform(
                self.target_client, repo, pin.tag, ref, item.platform, wanted
            )
            if isinstance(read, Side):
                return read
            manifest, image = read
            if image.config_digest == wanted:
                return Side(ref, "ok", manifest.digest, image.config_digest)
            return self._judge_config(item, self.target_client, repo, ref, manifest, image, wanted)
        except (RelayError, ValueError) as exc:
            return Side(ref, "error", detail=safety.first_line(exc))

    def _build_harbor(self, item: Item, wanted: str | None, target: Side) -> Side:
        """Harbor must hold the target's very manifest. When the target is wrong, Harbor is
        judged against upstream on its own."""
        assert self.harbor is not None and self.harbor_client is not None
        assert item.platform is not None
        pin = item.pin
        client = self.harbor_client
        ref = self.harbor.reference(pin.entry.target, pin.tag)
        repo = self.harbor.repository(pin.entry.target)
        try:
            found = client.head_manifest(repo, pin.tag)
            if found is None:
                return Side(ref, "missing", detail=f"no tag {pin.tag}")
            if target.digest is not None and found.digest == target.digest:
                if target.state == "ok":
                    return Side(ref, "ok", found.digest, target.config)
                detail = f"same as {self.label}"
                return Side(ref, target.state, found.digest, target.config, detail)
            if wanted is None:
                return Side(ref, "error", found.digest, detail="upstream's config is unknown")
            read = self._read_platform(client, repo, pin.tag, ref, item.platform, wanted)
            if isinstance(read, Side):
                return read
            manifest, image = read
            if image.config_digest == wanted:
                if target.state == "ok":
                    return Side(
                        ref,
                        "stale",
                        manifest.digest,
                        image.config_digest,
                        f"an earlier build of this image, not {self.label}'s current one",
                    )
                return Side(ref, "ok", manifest.digest, image.config_digest)
            return self._judge_config(item, client, repo, ref, manifest, image, wanted)
        except (RelayError, ValueError) as exc:
            return Side(ref, "error", detail=safety.first_line(exc))


def observe(work: Sequence[Item], observer: Observer, *, concurrency: int) -> list[Check]:
    """Every item, ``concurrency`` at once, in the given order."""
    observer.ping()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(observer.check, work))


# --- the report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requests:
    upstream: int = 0
    target: int = 0
    harbor: int = 0
    manifest: int = 0  # manifest requests (HEAD or GET) of all sides

    @property
    def total(self) -> int:
        return self.upstream + self.target + self.harbor


@dataclass
class Report:
    transport: Transport
    target: Location
    harbor: Location | None
    checks: list[Check]
    requests: Requests = field(default_factory=Requests)
    seconds: float = 0.0
    history: bool = False
    shallow: bool = False

    @property
    def ok(self) -> bool:
        return all(c.result == "ok" for c in self.checks)

    def counts(self) -> dict[str, int]:
        out = {"tags": len(self.checks)}
        out.update({s: sum(1 for c in self.checks if c.result == s) for s in STATES})
        return out

    @property
    def per_tag(self) -> float:
        return self.requests.total / len(self.checks) if self.checks else 0.0

    @property
    def target_label(self) -> str:
        return "ACR" if self.target.kind == "acr" else "target"

    def problems(self) -> list[str]:
        """One line per tag that does not agree, naming where: the CheckFailed details."""
        out = []
        for check in self.checks:
            if check.result == "ok":
                continue
            parts = []
            for name, side in (("target", check.target), ("harbor", check.harbor)):
                if side is None or side.state == "ok":
                    continue
                label = self.target_label if name == "target" else "Harbor"
                parts.append(f"{label} {side.state} ({side.reference}: {side.detail})")
            platform = f" [{check.item.platform}]" if check.item.platform else ""
            out.append(f"{check.item.image}{platform}: {'; '.join(parts)}")
        return out

    def summary(self) -> str:
        """The verdict and its cost: in a run where everything agrees this is the unchanged
        case's price, requests per tag included."""
        counts = self.counts()
        r = self.requests
        if not self.checks:
            return f"nothing to verify: no pinned tags; {r.total} registry requests"
        verdict = (
            f"all {counts['tags']} agree"
            if self.ok
            else ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])
        )
        tags = max(1, counts["tags"])
        sides = f"upstream {r.upstream}, {self.target_label} {r.target}"
        if self.harbor is not None:
            sides += f", Harbor {r.harbor}"
        return (
            f"{counts['tags']} tags: {verdict}; {r.total} registry requests, "
            f"{self.per_tag:.2f} per tag ({r.manifest / tags:.2f} manifest reads per tag, "
            f"the rest pings and tokens; {sides}) in {self.seconds:.1f}s"
        )

    def table(self) -> Table:
        notes = []
        if self.transport == "build":
            notes.append(
                "compared: image config digests for the platform ACR builds (equal configs "
                "mean equal layers); Harbor's manifest against ACR's"
            )
        else:
            notes.append("compared: manifest digests (the copy keeps them, every platform)")
        if not self.history:
            notes.append(
                "the lock's git history could not be read: an older image shows as mismatch, "
                "not stale"
            )
        elif self.shallow:
            notes.append(
                "a shallow clone: digests the lock held before its oldest fetched commit show "
                "as mismatch, not stale (actions/checkout: fetch-depth: 0)"
            )
        columns = [
            Column("Image", code=True),
            Column("Platform"),
            Column("Upstream", code=True),
            Column("ACR" if self.target.kind == "acr" else "Target", code=True),
        ]
        if self.harbor is not None:
            columns.append(Column("Harbor", code=True))
        columns.append(Column("Result"))
        where = self.target.reference("…", "…").rsplit("/", 1)[0]
        if self.harbor is not None:
            where += " → " + self.harbor.reference("…", "…").rsplit("/", 1)[0]
        table = Table(
            "relay verify",
            columns,
            summary=self.summary(),
            notes=notes,
            status="ok" if self.ok else "failed",
            where=where,
        )
        for check in self.checks:
            build = self.transport == "build"
            upstream = check.upstream_config if build else check.item.pin.digest
            cells = [
                check.item.image,
                check.item.platform or (", ".join(check.item.platforms) or "all"),
                _short(upstream),
                _cell(check.target, build),
            ]
            if self.harbor is not None:
                cells.append(_cell(check.harbor, build))
            cells.append(self._result_cell(check))
            table.add(*cells, flag=check.result != "ok")
        return table

    def _result_cell(self, check: Check) -> str:
        if check.result == "ok":
            return "ok"
        parts = []
        for name, side in (("target", check.target), ("harbor", check.harbor)):
            if side is None or side.state == "ok":
                continue
            label = self.target_label if name == "target" else "Harbor"
            parts.append(f"{label} {side.state}: {side.detail}" if side.detail else label)
        return f"{check.result} ({'; '.join(parts)})"

    def json(self) -> dict[str, Any]:
        r = self.requests
        return {
            "relayVerify": FORMAT_VERSION,
            "ok": self.ok,
            "transport": self.transport,
            "compared": "config" if self.transport == "build" else "manifest",
            "target": {
                "kind": self.target.kind,
                "registry": self.target.registry,
                "namespace": self.target.namespace,
            },
            "harbor": (
                {"registry": self.harbor.registry, "project": self.harbor.namespace}
                if self.harbor is not None
                else None
            ),
            "history": self.history,
            "counts": self.counts(),
            "requests": {
                "total": r.total,
                "perTag": round(self.per_tag, 3),
                "manifestPerTag": round(r.manifest / len(self.checks), 3) if self.checks else 0.0,
                "upstream": r.upstream,
                "target": r.target,
                "harbor": r.harbor,
                "manifest": r.manifest,
            },
            "seconds": round(self.seconds, 3),
            "results": [c.json() for c in self.checks],
        }


def _cell(side: Side | None, build: bool) -> str:
    if side is None:
        return ""
    if side.state in ("missing", "error") and not side.digest:
        return side.state
    shown = _short(side.config if build and side.config else side.digest)
    return shown if side.state == "ok" else f"{shown} ({side.state})"


def run(
    work: Sequence[Item],
    observer: Observer,
    *,
    concurrency: int,
    clock: Callable[[], float] = time.monotonic,
) -> Report:
    """Observe and judge every item; the caller adds the request counts."""
    started = clock()
    checks = observe(work, observer, concurrency=concurrency)
    return Report(
        observer.transport,
        observer.target,
        observer.harbor,
        checks,
        seconds=clock() - started,
        history=observer.history.available,
        shallow=observer.history.shallow,
    )
