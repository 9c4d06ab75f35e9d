"""What the settings want of Harbor, what Harbor holds, and the difference. Pure.

Desired state:
* an `ali-acr` registry endpoint named `harbor.registry_name` pointing at the ACR registry,
  holding the AccessKey Harbor lists ACR with;
* the destination project (created if missing; relay never changes or deletes a project);
* the pull policy `harbor.policy_name`: source = that endpoint, name filter `<namespace>/**`,
  destination = the project with one level flattened (`ns/name` lands as `project/name`), a
  cron trigger;
* the fast-path policy `<policy_name>-now`: the same, manual, for `relay harbor replicate
  --only`, which points its filters at just the repositories and tags that changed.

Everything relay creates carries `managed-by: relay (owner: <namespace> -> <project>)` in its
description: the owner is the configuration, named by the two things its settings define that
another configuration sharing the Harbor would not (its ACR namespace and its Harbor project).
relay changes, adopts and prunes only objects with its own owner; an object of the same name
without the mark, or with another owner, is refused, never taken over. An object with the old
bare mark (no owner) is taken as relay's only when its name is one the settings define.

Comparisons normalise what Harbor rewrites (omitted zero values, speed -1 stored as 0, a
missing replace count meaning -1), so a second apply makes no write. Fields newer than the
Harbor at hand are not sent (docs/vendors/harbor.md#versions).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from relay.safety import one_line
from relay.stages.harbor.settings import HarborSettings

MARKER = "managed-by: relay"
# Harbor keeps a policy's filters, JSON-encoded, in `replication_policy.filters varchar(1024)`
# (make/migrations/postgresql/0001_initial_schema.up.sql); longer ones make it answer 500. The
# fast path keeps each batch's filters under this many characters.
FILTERS_LIMIT = 1000
# The mark with its owner; an older relay wrote the bare mark (group 1 then None).
_MARK_RE = re.compile(re.escape(MARKER) + r"(?: \(owner: ([^()]+)\))?")
FAST_SUFFIX = "-now"

Version = tuple[int, int, int]
OLDEST: Version = (2, 3, 0)  # dest_namespace_replace_count and `q` filters arrived in v2.3.0
ENTERPRISE_SINCE: Version = (2, 12, 0)  # ali-acr Enterprise Edition URLs (goharbor/harbor#19658)
ROBOT_SYSTEM_SINCE: Version = (2, 10, 0)  # system robots with registry/replication permissions
# Policy fields and the first version whose API takes them (docs/vendors/harbor.md#versions).
SINCE: dict[str, Version] = {
    "speed": (2, 4, 0),
    "copy_by_chunk": (2, 7, 0),
    "single_active_replication": (2, 14, 0),
}
_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")

Edition = Literal["personal", "enterprise"]
_EE_HOST = re.compile(r"[a-z0-9-]+-registry(?:-vpc)?\.[a-z0-9-]+\.cr\.aliyuncs\.com")


def parse_version(text: str) -> Version | None:
    """``v2.10.2-1a741cb7`` → (2, 10, 2)."""
    found = _VERSION_RE.match(text.strip())
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)


def show(version: Version) -> str:
    return "v" + ".".join(str(n) for n in version)


@dataclass(frozen=True)
class Source:
    """Where Harbor pulls from: a registry URL and the ACR namespace in it."""

    url: str
    namespace: str
    edition: Edition

    @staticmethod
    def edition_of(url: str) -> Edition:
        host = url.split("://", 1)[-1].split("/", 1)[0].lower()
        return "enterprise" if _EE_HOST.fullmatch(host) else "personal"


@dataclass(frozen=True)
class Desired:
    settings: HarborSettings
    source: Source
    access_key_id: str
    version: Version

    @property
    def policy_name(self) -> str:
        return self.settings.policy_for(self.source.namespace)

    @property
    def fast_policy_name(self) -> str:
        return self.policy_name + FAST_SUFFIX

    @property
    def project(self) -> str:
        assert self.settings.project is not None  # required by the section
        return self.settings.project

    @property
    def owner(self) -> str:
        """Which configuration relay's objects belong to (see the module docstring)."""
        return f"{self.source.namespace} -> {self.project}"

    @property
    def mark(self) -> str:
        return f"{MARKER} (owner: {self.owner})"

    def claims(self, obj: dict[str, Any] | None, *, named_by_settings: bool) -> bool:
        """Whether ``obj`` is this configuration's: its mark names this owner, or it carries
        the old bare mark and its name is one the settings define."""
        owner = owner_of(obj)
        return owner == self.owner or (owner == "" and named_by_settings)

    def supports(self, name: str) -> bool:
        return self.version >= SINCE.get(name, OLDEST)

    # --- the bodies relay sends (swagger: Registry, RegistryUpdate, ProjectReq, Policy) ----------

    def registry_description(self) -> str:
        return f"{self.mark}: ACR namespace {self.source.namespace}, for {self.policy_name}"

    def registry_body(self, secret: str) -> dict[str, Any]:
        return {
            "name": self.settings.registry_name,
            "type": "ali-acr",
            "url": self.source.url,
            # Always a credential object: the ali-acr adapter dereferences it unchecked
            # (src/pkg/reg/adapter/aliacr/adapter.go).
            "credential": {
                "type": "basic",
                "access_key": self.access_key_id,
                "access_secret": secret,
            },
            "insecure": False,
            "description": self.registry_description(),
        }

    def registry_update(self, secret: str | None, *, url: bool) -> dict[str, Any]:
        """The flat RegistryUpdate; only the fields sent are changed (handler/registry.go).
        `url` goes only when the URL changed, and then always with the secret: after v2.15.2
        Harbor clears the stored secret when a PUT's `url` differs from the stored one and no
        secret comes with it (goharbor/harbor#23671), and the stored URL may be Harbor's
        rewrite of the one relay sent (cr. -> registry.), which would look changed."""
        body: dict[str, Any] = {
            "name": self.settings.registry_name,
            "description": self.registry_description(),
            "credential_type": "basic",
            "access_key": self.access_key_id,
            "insecure": False,
        }
        if url:
            assert secret is not None, "a URL change re-sends the secret"
            body["url"] = self.source.url
        if secret is not None:
            body["access_secret"] = secret
        return body

    def project_body(self) -> dict[str, Any]:
        # metadata.public is a string, "true" or "false" (src/server/v2.0/handler/project.go).
        return {
            "project_name": self.project,
            "metadata": {"public": "true" if self.settings.project_public else "false"},
        }

    def filters(
        self, repositories: Sequence[str] = (), tags: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """The name filter (`<namespace>/**`, or the named repositories) and the tag filter."""
        ns = self.source.namespace
        if repositories:
            names = (
                repositories[0] if len(repositories) == 1 else "{" + ",".join(repositories) + "}"
            )
            filters: list[dict[str, Any]] = [{"type": "name", "value": f"{ns}/{names}"}]
        else:
            filters = [{"type": "name", "value": f"{ns}/**"}]
        if tags:
            value = tags[0] if len(tags) == 1 else "{" + ",".join(tags) + "}"
            filters.append({"type": "tag", "value": value, "decoration": "matches"})
        return filters

    def fast_batches(
        self, names: Sequence[str], tags_by_name: Mapping[str, Sequence[str]]
    ) -> list[Batch]:
        """The named repositories in batches whose filters Harbor can store (FILTERS_LIMIT),
        in order; each batch's tag filter is the union of its repositories' tags. A repository
        whose tags alone do not fit goes alone, without a tag filter (every tag ACR holds)."""
        out: list[Batch] = []
        current: list[str] = []

        def tags_of(batch: Sequence[str]) -> tuple[str, ...]:
            return tuple(sorted({t for n in batch for t in tags_by_name.get(n, ())}))

        for name in names:
            trial = [*current, name]
            if filters_size(self.filters(trial, tags_of(trial))) <= FILTERS_LIMIT:
                current = trial
                continue
            if current:
                out.append(Batch(tuple(current), tags_of(current)))
            if filters_size(self.filters([name], tags_of([name]))) <= FILTERS_LIMIT:
                current = [name]
            else:
                out.append(Batch((name,), ()))
                current = []
        if current:
            out.append(Batch(tuple(current), tags_of(current)))
        return out

    def policy_body(
        self,
        registry_id: int,
        *,
        fast: bool = False,
        repositories: tuple[str, ...] = (),
        tags: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """The whole policy (PUT replaces everything, so every field is sent every time)."""
        ns = self.source.namespace
        filters = self.filters(repositories, tags)
        what = "the changed repositories, now" if fast else f"on schedule {self.settings.schedule}"
        body: dict[str, Any] = {
            "name": self.fast_policy_name if fast else self.policy_name,
            "description": (
                f"{self.mark}: pulls {ns}/** from {self.source.url} into {self.project} ({what}); "
                "change mirrors/relay.yaml, not this policy"
            ),
            "src_registry": {"id": registry_id},
            "dest_namespace": self.project,
            # Explicit: left out it means -1, "flatten everything" (docs/vendors/harbor.md).
            "dest_namespace_replace_count": 1,
            "filters": filters,
            "trigger": (
                {"type": "manual"}
                if fast
                else {"type": "scheduled", "trigger_settings": {"cron": self.settings.schedule}}
            ),
            "override": True,
            "enabled": True,
            # The handler reads `deletion`; `replicate_deletion` is ignored on input but kept
            # equal (src/server/v2.0/handler/replication.go; mittwald/goharbor-client#182).
            "deletion": False,
            "replicate_deletion": False,
        }
        if self.supports("speed"):
            body["speed"] = self.settings.speed_kbps
        if self.supports("copy_by_chunk"):
            body["copy_by_chunk"] = False
        if self.supports("single_active_replication"):
            body["single_active_replication"] = True
        return body


@dataclass(frozen=True)
class Batch:
    """Repositories the fast-path policy is pointed at in one run, and the tags it copies
    (none: every tag)."""

    repositories: tuple[str, ...]
    tags: tuple[str, ...]


def filters_size(filters: Sequence[dict[str, Any]]) -> int:
    """Characters the filters take in Harbor's column: Go's json.Marshal, no spaces, an empty
    `decoration` omitted (src/controller/replication/model/model.go To)."""
    items = [
        {k: f[k] for k in ("type", "value", "decoration") if k in f and (k != "decoration" or f[k])}
        for f in filters
    ]
    return len(json.dumps(items, separators=(",", ":"), ensure_ascii=False))


# --- what Harbor holds ----------------------------------------------------------------------------


@dataclass
class Observed:
    version: Version
    registry: dict[str, Any] | None = None
    project: dict[str, Any] | None = None
    policy: dict[str, Any] | None = None
    fast_policy: dict[str, Any] | None = None
    # With prune: relay's other registries and policies (name → object)
    other_registries: dict[str, dict[str, Any]] = field(default_factory=dict)
    other_policies: dict[str, dict[str, Any]] = field(default_factory=dict)


def is_managed(obj: dict[str, Any] | None) -> bool:
    return owner_of(obj) is not None


def owner_of(obj: dict[str, Any] | None) -> str | None:
    """The owner in relay's mark: None without the mark, "" for the old bare mark."""
    if obj is None:
        return None
    found = _MARK_RE.search(str(obj.get("description") or ""))
    if found is None:
        return None
    return found.group(1) or ""


def foreign(desired: Desired, obj: dict[str, Any], noun: str, name: str, key: str) -> str | None:
    """Why relay will not touch ``obj``, which holds a name the settings define; None if it
    may."""
    if not is_managed(obj):
        return (
            f"{noun} {name} exists in Harbor without '{MARKER}' in its description: relay does "
            f"not take it over; set harbor.{key} to another name (or delete the {noun.split()[-1]})"
        )
    if not desired.claims(obj, named_by_settings=True):
        return (
            f"{noun} {name} belongs to another relay configuration (owner: {owner_of(obj)}; "
            f"this one is {desired.owner}): relay does not take it over; set harbor.{key} to "
            "another name"
        )
    return None


# --- the plan ---------------------------------------------------------------------------------

ActionKind = Literal[
    "create-registry",
    "update-registry",
    "create-project",
    "create-policy",
    "update-policy",
    "delete-policy",
    "delete-registry",
]


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    name: str
    detail: str = ""
    object_id: int | None = None
    resend_secret: bool = False
    send_url: bool = False  # the endpoint's URL changed (and the secret goes with it)
    fast: bool = False  # the fast-path policy

    def __str__(self) -> str:
        noun = {
            "create-registry": "create endpoint",
            "update-registry": "update endpoint",
            "create-project": "create project",
            "create-policy": "create policy",
            "update-policy": "update policy",
            "delete-policy": "delete policy",
            "delete-registry": "delete endpoint",
        }[self.kind]
        text = f"{noun} {self.name}"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # conflicts relay will not resolve
    notes: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.actions)


def plan(desired: Desired, observed: Observed, *, prune: bool = False) -> Plan:
    out = Plan()
    settings = desired.settings
    registry = observed.registry
    if registry is None:
        out.actions.append(
            Action("create-registry", settings.registry_name, f"ali-acr, {desired.source.url}")
        )
    elif refusal := foreign(
        desired, registry, "registry endpoint", settings.registry_name, "registry_name"
    ):
        out.refusals.append(refusal)
    elif str(registry.get("type") or "") != "ali-acr":
        # RegistryUpdate has no `type` (swagger): a PUT cannot change it, so an update would
        # never converge.
        out.refusals.append(
            f"registry endpoint {settings.registry_name} is of type "
            f"{one_line(str(registry.get('type') or '-'), 40)}, not ali-acr, and Harbor cannot "
            "change an endpoint's type: delete the endpoint in Harbor, or set "
            "harbor.registry_name to another name"
        )
    else:
        changes, resend, new_url = registry_changes(desired, registry)
        if changes:
            out.actions.append(
                Action(
                    "update-registry",
                    settings.registry_name,
                    "; ".join(changes),
                    object_id=_id(registry),
                    resend_secret=resend,
                    send_url=new_url,
                )
            )
    project = observed.project
    if project is None:
        visibility = "public" if settings.project_public else "private"
        out.actions.append(Action("create-project", desired.project, visibility))
    else:
        public = str((project.get("metadata") or {}).get("public", "false")).lower() == "true"
        if public != settings.project_public:
            out.notes.append(
                f"project {desired.project} is {'public' if public else 'private'} but "
                f"harbor.project_public is {str(settings.project_public).lower()}; relay leaves "
                "existing projects as they are"
            )
    for fast, current in ((False, observed.policy), (True, observed.fast_policy)):
        name = desired.fast_policy_name if fast else desired.policy_name
        if current is None:
            what = "manual, for replicate --only" if fast else f"schedule {settings.schedule}"
            pull = f"pull {desired.source.namespace}/** into {desired.project}"
            out.actions.append(Action("create-policy", name, f"{pull}, {what}", fast=fast))
        elif refusal := foreign(desired, current, "replication policy", name, "policy_name"):
            out.refusals.append(refusal)
        else:
            registry_id = _id(registry) if registry is not None else -1
            changes = policy_changes(desired, current, registry_id, fast=fast)
            if changes:
                out.actions.append(
                    Action(
                        "update-policy", name, "; ".join(changes), object_id=_id(current), fast=fast
                    )
                )
    if prune:
        # Only this configuration's own objects: another fork's or team's carry another owner,
        # and an old bare mark on a name the settings do not define says nothing about whose.
        others: tuple[tuple[ActionKind, str, dict[str, dict[str, Any]]], ...] = (
            ("delete-policy", "policy", observed.other_policies),
            ("delete-registry", "endpoint", observed.other_registries),
        )
        for kind, noun, objects in others:
            for name, obj in sorted(objects.items()):
                if desired.claims(obj, named_by_settings=False):
                    out.actions.append(Action(kind, name, "no longer wanted", object_id=_id(obj)))
                elif owner_of(obj) == "":
                    out.notes.append(
                        f"{noun} {name} carries relay's old mark without an owner; --prune "
                        "leaves it (delete it by hand if this configuration made it)"
                    )
    return out


def registry_changes(desired: Desired, current: dict[str, Any]) -> tuple[list[str], bool, bool]:
    """What differs, as "field old -> new"; whether the secret must be sent again; whether the
    URL changed."""
    changes: list[str] = []
    resend = new_url = False
    url_now = _url(str(current.get("url") or ""))
    if url_now != _url(desired.source.url) and not _rewritten(url_now, desired.source.url):
        changes.append(f"url {url_now or '-'} -> {desired.source.url}")
        resend = new_url = True
    if bool(current.get("insecure")) is not False:
        changes.append("insecure true -> false")
    if str(current.get("description") or "") != desired.registry_description():
        changes.append("description")
    credential = current.get("credential") or {}
    if str(credential.get("access_key") or "") != desired.access_key_id:
        changes.append("AccessKey id")
        resend = True
    if resend:
        changes.append("AccessKey re-sent")
    return changes, resend, new_url


def policy_changes(
    desired: Desired, current: dict[str, Any], registry_id: int, *, fast: bool
) -> list[str]:
    want = normalise_policy(desired.policy_body(registry_id, fast=fast), desired, fast=fast)
    have = normalise_policy(current, desired, fast=fast)
    changes = []
    for key in want:
        if want[key] != have.get(key):
            changes.append(
                f"{_LABELS.get(key, key)} {_brief(have.get(key))} -> {_brief(want[key])}"
            )
    return changes


_LABELS = {
    "trigger": "schedule",
    "src_registry": "source endpoint",
    "dest_namespace": "destination project",
    "dest_namespace_replace_count": "flattening",
    "filters": "filters",
}


def normalise_policy(policy: dict[str, Any], desired: Desired, *, fast: bool) -> dict[str, Any]:
    """The fields relay manages, in the form Harbor keeps them: a GET answer and the body relay
    would send compare equal exactly when a PUT would change nothing that matters."""
    src = policy.get("src_registry") or {}
    trigger = policy.get("trigger") or {}
    trigger_type = str(trigger.get("type") or "manual")
    cron = str((trigger.get("trigger_settings") or {}).get("cron") or "")
    count = policy.get("dest_namespace_replace_count")
    out: dict[str, Any] = {
        "description": str(policy.get("description") or ""),
        "src_registry": int(src.get("id") or 0) if isinstance(src, dict) else 0,
        "dest_registry": int((policy.get("dest_registry") or {}).get("id") or 0),
        "dest_namespace": str(policy.get("dest_namespace") or ""),
        # Left out, Harbor stores -1 ("flatten everything").
        "dest_namespace_replace_count": -1 if count is None else int(count),
        "trigger": f"{trigger_type} {cron}".strip()
        if trigger_type == "scheduled"
        else trigger_type,
        "override": bool(policy.get("override")),
        "enabled": bool(policy.get("enabled")),
        "deletion": bool(policy.get("deletion") or policy.get("replicate_deletion")),
    }
    if not fast:
        # The fast-path policy's filters belong to `replicate --only`, which points them at
        # what changed; apply leaves them alone.
        out["filters"] = sorted(
            (
                str(f.get("type") or ""),
                str(f.get("value") or ""),
                str(f.get("decoration") or ("matches" if f.get("type") == "tag" else "")),
            )
            for f in policy.get("filters") or []
            if isinstance(f, dict)
        )
    if desired.supports("speed"):
        # Harbor stores a negative speed as 0; both mean unlimited.
        out["speed"] = max(0, int(policy.get("speed") or 0))
    if desired.supports("copy_by_chunk"):
        out["copy_by_chunk"] = bool(policy.get("copy_by_chunk"))
    if desired.supports("single_active_replication"):
        out["single_active_replication"] = bool(policy.get("single_active_replication"))
    return out


def _brief(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(":".join(p for p in item if p) for item in value) or "-"
    if value in (None, ""):
        return "-"
    return str(value)


def _url(url: str) -> str:
    return url.strip().rstrip("/").lower()


def _rewritten(stored: str, wanted: str) -> bool:
    """Harbor rewrites https://cr.<region>.aliyuncs.com to https://registry.<region>…
    (src/pkg/reg/adapter/aliacr/adapter.go): not a change."""
    want = _url(wanted)
    return want.startswith("https://cr.") and stored == want.replace(
        "https://cr.", "https://registry.", 1
    )


def _id(obj: dict[str, Any]) -> int:
    value = obj.get("id")
    return int(value) if isinstance(value, int) else int(str(value or "0") or 0)
