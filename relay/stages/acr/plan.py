"""The ACR plan: what the list and the lock want, against what ACR holds. Pure.

Desired state:
* the namespace exists;
* one repository per entry (its target name), marked as relay's ("managed-by: relay" in the
  summary, with a short hash of the source binding, so a no-op run learns both from the list
  pages alone), bound to this GitHub repository with overseas build on, cache off, auto-build off;
* every tag's image in ACR, with the same config as upstream.

Build rules are a means, not an end: a rule is only looked at for a tag that needs building, and
when a repository may hold fewer rules than it has tags (`rules_per_repo`), rules are reused:
update one, build, wait, move on. Rules relay manages are recognised by their Dockerfile
location, `/mirrors/dockerfiles/<name>/…`; anything else in a repository, and any repository
without the marker, is left alone unless `prune` is asked for.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

from relay import platforms as platform_rules
from relay.config.lockfile import Lock
from relay.config.mirrors import Entry, MirrorList
from relay.config.pins import Pin, pins, rule_tags
from relay.errors import InputError, OperationFailed, Problem
from relay.reference import Reference
from relay.stages import generate
from relay.stages.acr.settings import AcrSettings
from relay.stages.acr.state import (
    Binding,
    Build,
    Observed,
    RepoInfo,
    RepoState,
    Rule,
    RuleSpec,
    normalise_location,
    outcome,
)

MARKER = "managed-by: relay"
_MARKER_RE = re.compile(r"managed-by: relay(?: bind:([0-9a-f]{8}))?")
SUMMARY_MAX = 100  # docs/vendors/acr.md#name-rules
DETAIL_MAX = 2000
# A build rule's DockerfileLocation is 1-128 characters (docs/vendors/acr.md#build-rule-fields).
LOCATION_MAX = 128
DEFAULT_PLATFORM = "linux/amd64"  # what Personal Edition builds, and Enterprise's default
# What ACR's builds can produce: Personal Edition linux/amd64 only; Enterprise a rule's
# `Platforms`, among these four (docs/vendors/acr.md#github-source-binding-and-overseas-build,
# https://www.alibabacloud.com/help/en/acr/user-guide/build-multi-schema-container-images).
ENTERPRISE_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6")


ActionKind = Literal[
    "create-namespace",
    "create-repo",
    "bind-source",
    "add-rule",
    "update-rule",
    "delete-rule",
    "delete-repo",
    "build",
    "wait",
]


@dataclass(frozen=True)
class WantedTag:
    tag: str
    digest: str  # the pinned upstream digest the Dockerfile builds FROM
    rule: RuleSpec


@dataclass(frozen=True)
class WantedRepo:
    name: str
    source: Reference
    platform: str  # the platform whose config is compared with upstream
    tags: tuple[WantedTag, ...]
    summary: str
    detail: str

    @property
    def prefix(self) -> str:
        """The Dockerfile locations relay's rules in this repository point under."""
        return f"/{generate.DOCKERFILES_DIR}/{self.name}/"


@dataclass(frozen=True)
class Action:
    """One change, printable for the plan: "create repo nginx", "build nginx:1.27 (missing)"."""

    kind: ActionKind
    target: str  # namespace or repository name
    tag: str = ""
    rule_id: str = ""
    note: str = ""

    def __str__(self) -> str:
        verb = self.kind.replace("-", " ")
        if self.kind in ("build", "wait", "add-rule"):
            text = f"{verb} {self.target}:{self.tag}"
        elif self.kind == "update-rule":
            text = f"{verb} {self.target}#{self.rule_id or 'new'} -> {self.tag}"
        elif self.kind == "delete-rule":
            text = f"{verb} {self.target}#{self.rule_id}"
        else:
            text = f"{verb} {self.target}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class Job:
    """Build one tag. `slot` names the rule it builds with: an existing rule's id, "new:<tag>"
    for a rule this job creates, or "build:<id>" when it only waits for a running build. Jobs
    sharing a slot run one after another."""

    repo: str
    tag: str
    spec: RuleSpec
    slot: str
    rule_op: Literal["", "add", "update"]
    reason: str
    running_build: str | None = None
    reused: bool = False  # the rule was another tag's; it is pointed here first

    def actions(self) -> list[Action]:
        out: list[Action] = []
        if self.running_build is not None:
            return [Action("wait", self.repo, self.tag, note=f"build {self.running_build} running")]
        if self.rule_op == "add":
            out.append(Action("add-rule", self.repo, self.tag))
        elif self.rule_op == "update":
            rule_id = "" if self.slot.startswith("new:") else self.slot
            note = "reused" if self.reused else ""
            out.append(Action("update-rule", self.repo, self.tag, rule_id=rule_id, note=note))
        out.append(Action("build", self.repo, self.tag, note=self.reason))
        return out


@dataclass(frozen=True)
class Skipped:
    repo: str
    tag: str
    reason: str


@dataclass
class Plan:
    setup: list[Action] = field(default_factory=list)  # namespace, repositories, pruning
    jobs: list[Job] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    up_to_date: int = 0

    @property
    def actions(self) -> list[Action]:
        out = list(self.setup)
        for job in self.jobs:
            out.extend(job.actions())
        return out


# --- the desired state ----------------------------------------------------------------------


def binding_for(settings: AcrSettings) -> Binding:
    return Binding(settings.source.owner, settings.source.name, overseas=settings.overseas_build)


def binding_hash(binding: Binding) -> str:
    return hashlib.sha256(binding.fingerprint().encode()).hexdigest()[:8]


def summary_for(source: Reference, binding: Binding | None) -> str:
    """The summary marking a repository as relay's; with ``binding``, also recording that relay
    bound it so (written only once the binding is in place: see `is_bound`)."""
    bound = f" bind:{binding_hash(binding)}" if binding is not None else ""
    return f"{MARKER}{bound} mirror of {source.name}"[:SUMMARY_MAX]


def detail_for(source: Reference, settings: AcrSettings) -> str:
    build = "overseas build" if settings.overseas_build else "mainland build"
    text = (
        f"Mirror of {source.name}, built by relay from github.com/{settings.source.github} "
        f"(branch {settings.source.branch}, {build}, no cache). Edit the mirrors list, not "
        f"this repository.\n{MARKER}"
    )
    return text[:DETAIL_MAX]


def is_managed(info: RepoInfo) -> bool:
    return MARKER in info.summary or MARKER in info.detail


def is_bound(info: RepoInfo, binding: Binding) -> bool:
    """Whether the marker records the binding relay wants. It is written after the binding
    took, never with the create: a run stopped between the two (a kill, retries running out)
    leaves a repository marked as relay's but not as bound, which the next plan binds."""
    found = _MARKER_RE.search(info.summary)
    return found is not None and found.group(1) == binding_hash(binding)


def compared_platform(entry: Entry, settings: AcrSettings) -> str:
    """The platform whose config decides whether a tag needs building: the first platform an
    ACR build of `entry` produces. Never a listed platform ACR cannot build (linux/s390x, say):
    no build produces it, so comparing it would ask for a rebuild on every run."""
    return built_platforms(entry, settings)[0]


def built_platforms(entry: Entry, settings: AcrSettings) -> tuple[str, ...]:
    """The platforms an ACR build of `entry` produces, in list order and in ACR's spelling:
    linux/amd64 on Personal Edition (and for an Enterprise entry that lists none, or lists
    only platforms ACR cannot build, since a rule without `Platforms` builds linux/amd64:
    docs/vendors/acr.md#enterprise-edition-operations), else the listed platforms among the
    four Enterprise can build (docs/vendors/acr.md#github-source-binding-and-overseas-build)."""
    if settings.edition == "enterprise" and entry.platforms:
        out: list[str] = []
        for listed in entry.platforms:
            for p in ENTERPRISE_PLATFORMS:
                if p not in out and platform_rules.contains((listed,), p):
                    out.append(p)
        if out:
            return tuple(out)
    return (DEFAULT_PLATFORM,)


def unbuilt_platforms(entry: Entry, settings: AcrSettings) -> tuple[str, ...]:
    """The platforms `entry` lists that an ACR build of it will not produce, as listed."""
    built = built_platforms(entry, settings)
    return tuple(p for p in entry.platforms if not platform_rules.contains(built, p))


def platform_warnings(mirrors: MirrorList, settings: AcrSettings) -> list[Problem]:
    """One warning per entry that lists a platform the build transport will not produce, on the
    entry's line. A build is not a copy: ACR builds what it can and the rest is simply absent
    (a node of that platform fails to pull), so say so before anything is built."""
    if settings.edition == "enterprise":
        can = "Enterprise Edition builds " + _and(ENTERPRISE_PLATFORMS) + " only"
    else:
        can = f"Personal Edition builds {DEFAULT_PLATFORM} only"
    out = []
    for entry in mirrors.entries:
        missing = unbuilt_platforms(entry, settings)
        if not missing:
            continue
        out.append(
            Problem(
                mirrors.path,
                entry.line,
                f"{entry.source.name} lists {_and(missing)}, which the build transport will not "
                f"produce (ACR {can}, under new digests): set `transport: copy` in "
                f"mirrors/relay.yaml to keep every platform and upstream's digests, or remove "
                f"{_and(missing)} from the entry's platforms",
            )
        )
    return out


def _and(words: tuple[str, ...]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def rule_location(target: str, tag: str) -> str:
    """The DockerfileLocation of `target:tag`'s build rule."""
    return f"/{generate.dockerfile_dir(target, tag)}/"


def location_problems(mirrors: MirrorList, lock: Lock) -> list[Problem]:
    """One problem per tag whose build rule location would be over ACR's 128 characters, on
    the line that asks for the tag (the entry's, for tags its rule selected in the lock). ACR
    refuses such a rule mid-run, on every run, so this is checked where the list is read."""
    out: list[Problem] = []
    for entry in mirrors.entries:
        tags = [(t.tag, t.line) for t in entry.tags]
        if entry.select is not None:
            explicit = {t.tag for t in entry.tags}
            tags += [
                (tag, entry.line)
                for tag in rule_tags(lock, entry.source.name)
                if tag not in explicit
            ]
        for tag, line in tags:
            location = rule_location(entry.target, tag)
            if len(location) > LOCATION_MAX:
                out.append(
                    Problem(
                        mirrors.path,
                        line,
                        f"{entry.source.name}:{tag}: the ACR build rule location {location} "
                        f"is {len(location)} characters, over ACR's {LOCATION_MAX}: give the "
                        f"entry a shorter 'name:' (at most "
                        f"{len(entry.target) - len(location) + LOCATION_MAX} characters) or "
                        "leave the tag out",
                    )
                )
    return out


def desired(mirrors: MirrorList, lock: Lock, settings: AcrSettings) -> list[WantedRepo]:
    """One WantedRepo per entry, tags in list order: every pin (the list's inline pins and the
    lock), which is exactly what `relay generate` renders Dockerfiles for (raising the same
    InputError when a digest is missing), and an InputError for a rule location ACR would
    refuse."""
    too_long = location_problems(mirrors, lock)
    if too_long:
        raise InputError(too_long)
    by_target: dict[str, list[Pin]] = {}
    for pin in pins(mirrors, lock):
        by_target.setdefault(pin.entry.target, []).append(pin)
    binding = binding_for(settings)
    out: list[WantedRepo] = []
    for entry in mirrors.entries:
        # Only what ACR can build goes into the rule: CreateRepoBuildRule refuses any other
        # platform (docs/vendors/acr.md#github-source-binding-and-overseas-build); the rest is
        # warned about (`platform_warnings`).
        platforms = (
            built_platforms(entry, settings)
            if settings.edition == "enterprise" and entry.platforms
            else ()
        )
        platform = compared_platform(entry, settings)
        tags = []
        for pin in by_target.get(entry.target, []):
            location = rule_location(entry.target, pin.tag)
            spec = RuleSpec(pin.tag, location, settings.source.branch, tuple(platforms))
            tags.append(WantedTag(pin.tag, pin.digest, spec))
        out.append(
            WantedRepo(
                name=entry.target,
                source=entry.source,
                platform=platform,
                tags=tuple(tags),
                summary=summary_for(entry.source, binding),
                detail=detail_for(entry.source, settings),
            )
        )
    return out


# --- what needs doing -------------------------------------------------------------------------


def build_reason(want: WantedRepo, wt: WantedTag, observed: Observed) -> str | None:
    """Why `wt` must be built, or None when ACR already holds it as upstream has it.

    Compared: the image config digest (ACR's imageId) against upstream's config for the
    platform. When upstream's is unknown the fallback is "build if missing".
    """
    state = observed.repos.get(want.name)
    if state is None:
        return "new repository"
    if state.images is None:
        return None  # not read: the repository is not relay's, nothing will be done
    image = state.images.get(wt.tag)
    if image is None:
        return "missing"
    upstream = observed.upstream.get((want.source.name, wt.tag))
    if upstream is not None and image.image_id != upstream:
        return f"config {_short(image.image_id)} differs from upstream {_short(upstream)}"
    return None


def needs_rules(want: WantedRepo, observed: Observed) -> bool:
    """Whether planning this (existing, managed) repository needs its rules and builds read."""
    return any(build_reason(want, wt, observed) for wt in want.tags)


def plan(
    wanted: list[WantedRepo], observed: Observed, settings: AcrSettings, *, prune: bool = False
) -> Plan:
    """The actions and build jobs that turn `observed` into `wanted`.

    Raises OperationFailed when the list would cross a configured quota, before anything is
    written. A repository with a target name that relay does not manage is skipped (reported
    per tag), never taken over.
    """
    result = Plan()
    binding = binding_for(settings)
    names = {w.name for w in wanted}
    stale = [
        s.info.name
        for s in observed.repos.values()
        if prune and is_managed(s.info) and s.info.name not in names
    ]
    _check_quotas(wanted, observed, settings, len(stale))
    if not observed.namespace_exists:
        result.setup.append(Action("create-namespace", observed.namespace))
    for name in sorted(stale):
        result.setup.append(Action("delete-repo", name, note="prune: not in the list"))

    for want in wanted:
        state = observed.repos.get(want.name)
        if state is None:
            result.setup.append(Action("create-repo", want.name, note=str(want.source.name)))
            state = RepoState(RepoInfo(observed.namespace, want.name), {}, [], [])
        elif not is_managed(state.info):
            result.skipped.extend(
                Skipped(
                    want.name,
                    wt.tag,
                    f"repository {want.name} exists but is not managed by relay: add "
                    f"'{MARKER}' to its summary to hand it over, or give the entry a 'name:'",
                )
                for wt in want.tags
            )
            continue
        elif not is_bound(state.info, binding):
            result.setup.append(
                Action("bind-source", want.name, note=f"github {binding.owner}/{binding.name}")
            )
        need = [(wt, r) for wt in want.tags if (r := build_reason(want, wt, observed))]
        result.up_to_date += len(want.tags) - len(need)
        rules = list(state.rules or [])
        if prune and state.rules is not None:
            keep = {wt.rule.location for wt in want.tags}
            for rule in rules:
                if normalise_location(rule.location) not in keep:
                    result.setup.append(
                        Action("delete-rule", want.name, rule_id=rule.rule_id, note="prune")
                    )
            rules = [r for r in rules if normalise_location(r.location) in keep]
        if need:
            jobs, skipped = _assign(want, need, rules, state, settings.rules_per_repo)
            result.jobs.extend(jobs)
            result.skipped.extend(skipped)
    return result


def _assign(
    want: WantedRepo,
    need: list[tuple[WantedTag, str]],
    rules: list[Rule],
    state: RepoState,
    limit: int,
) -> tuple[list[Job], list[Skipped]]:
    """Give each tag to build a rule slot: its own rule, a new one while the limit allows,
    else a rule reused after the builds before it (round-robin, so a repository still builds
    as many tags at a time as it has rules)."""
    ours = [r for r in rules if normalise_location(r.location).startswith(want.prefix)]
    by_location: dict[str, Rule] = {}
    for each_rule in ours:
        by_location.setdefault(normalise_location(each_rule.location), each_rule)
    running: dict[str, Build] = {}
    for each_build in state.builds or []:  # newest first, as ACR lists them
        if each_build.tag and outcome(each_build.status) == "running":
            running.setdefault(each_build.tag, each_build)
    capacity = limit - len(rules)
    jobs: list[Job] = []
    deferred: list[tuple[WantedTag, str]] = []
    for wt, reason in need:
        rule = by_location.get(wt.rule.location)
        build = running.get(wt.tag)
        if build is not None:
            # A run that crashed, or a build someone started: wait for it, never start twice.
            slot = rule.rule_id if rule else f"build:{build.build_id}"
            jobs.append(Job(want.name, wt.tag, wt.rule, slot, "", reason, build.build_id))
        elif rule is not None:
            same = rule.matches(wt.rule, check_platforms=True)
            jobs.append(
                Job(want.name, wt.tag, wt.rule, rule.rule_id, "" if same else "update", reason)
            )
        elif capacity > 0:
            capacity -= 1
            jobs.append(Job(want.name, wt.tag, wt.rule, f"new:{wt.tag}", "add", reason))
        else:
            deferred.append((wt, reason))
    if not deferred:
        return jobs, []
    needed = {wt.rule.location for wt, _ in need}
    wanted_locations = {wt.rule.location for wt in want.tags}
    spare = [
        r
        for r in ours
        if normalise_location(r.location) not in needed and r.image_tag not in running
    ]
    # Rules of tags no longer listed first: reusing them costs nothing later.
    spare.sort(key=lambda r: normalise_location(r.location) in wanted_locations)
    slots = list(dict.fromkeys([r.rule_id for r in spare] + [j.slot for j in jobs]))
    slots = [s for s in slots if not s.startswith("build:")]
    if not slots:
        others = len(rules) - len(ours)
        why = (
            f"no build rule to use: {others} rule(s) not managed by relay fill the limit of "
            f"{limit} (acr.rules_per_repo); prune removes them"
        )
        return jobs, [Skipped(want.name, wt.tag, why) for wt, _ in deferred]
    for i, (wt, reason) in enumerate(deferred):
        slot = slots[i % len(slots)]
        jobs.append(Job(want.name, wt.tag, wt.rule, slot, "update", reason, reused=True))
    return jobs, []


def _check_quotas(
    wanted: list[WantedRepo], observed: Observed, settings: AcrSettings, deleted: int
) -> None:
    problems = []
    quotas = settings.quotas
    if not observed.namespace_exists and observed.namespace_count + 1 > quotas.namespaces:
        problems.append(
            f"creating namespace {observed.namespace} would make {observed.namespace_count + 1} "
            f"namespaces, over the quota of {quotas.namespaces} (acr.quotas.namespaces)"
        )
    new = sum(1 for w in wanted if w.name not in observed.repos)
    if new and observed.other_repo_count is not None:
        total = observed.other_repo_count + len(observed.repos) + new - deleted
        if total > quotas.repos:
            problems.append(
                f"the list needs {new} new repositories, which would make {total}, over the "
                f"quota of {quotas.repos} (acr.quotas.repos); remove entries, prune, or raise "
                "the quota setting if your account allows more"
            )
    if problems:
        raise OperationFailed("ACR quota: " + "; ".join(problems))


def _short(digest: str | None) -> str:
    if not digest:
        return "none"
    return digest.split(":", 1)[-1][:12]
