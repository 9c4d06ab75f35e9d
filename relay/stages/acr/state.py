"""What ACR holds, in edition-neutral terms: the client returns these, the planner reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

PUSH_TYPE = "GIT_BRANCH"
DOCKERFILE_NAME = "Dockerfile"

# docs/vendors/acr.md#build-status-values: SUCCESS, FAILED, PENDING and BUILDING are seen; CANCELED
# is UNCONFIRMED and the Enterprise docs spell success both ways, so statuses compare upper-cased.
SUCCESS = "SUCCESS"
FAILURES = frozenset({"FAILED", "FAILURE", "CANCELED", "CANCELLED", "ERROR", "TIMEOUT"})

_HEX64 = re.compile(r"[a-f0-9]{64}")


Outcome = Literal["success", "failed", "running"]


def outcome(status: str | None) -> Outcome:
    """ "success", "failed" or "running" (anything unknown keeps being polled)."""
    value = (status or "").strip().upper()
    if value == SUCCESS:
        return "success"
    if value in FAILURES:
        return "failed"
    return "running"


def normalise_digest(value: object) -> str | None:
    """ACR's imageId may come without its algorithm; give every digest the sha256: form."""
    if not isinstance(value, str) or not value:
        return None
    value = value.strip().lower()
    if _HEX64.fullmatch(value):
        return "sha256:" + value
    return value


def normalise_location(location: str) -> str:
    """`/a/b/` whatever ACR hands back (`a/b`, `/a/b`), so locations compare as equal."""
    return "/" + location.strip("/") + "/" if location.strip("/") else "/"


@dataclass(frozen=True)
class Binding:
    """The source-code binding every relay repository gets."""

    owner: str
    name: str
    overseas: bool = True
    no_cache: bool = True
    auto_build: bool = False

    def fingerprint(self) -> str:
        flags = f"oversea={int(self.overseas)},nocache={int(self.no_cache)}"
        return f"github/{self.owner}/{self.name};{flags};auto={int(self.auto_build)}"


@dataclass(frozen=True)
class RuleSpec:
    """A build rule as relay wants it: build `tag` from `location` on `branch`."""

    tag: str
    location: str
    branch: str
    platforms: tuple[str, ...] = ()  # enterprise only; empty means ACR's default
    dockerfile_name: str = DOCKERFILE_NAME
    push_type: str = PUSH_TYPE


@dataclass(frozen=True)
class Rule:
    rule_id: str
    push_type: str
    push_name: str
    location: str
    dockerfile_name: str
    image_tag: str
    platforms: tuple[str, ...] = ()

    def matches(self, spec: RuleSpec, *, check_platforms: bool) -> bool:
        same = (
            self.push_type.upper() == spec.push_type
            and self.push_name == spec.branch
            and normalise_location(self.location) == spec.location
            and self.dockerfile_name == spec.dockerfile_name
            and self.image_tag == spec.tag
        )
        if same and check_platforms and spec.platforms:
            return sorted(self.platforms) == sorted(spec.platforms)
        return same


@dataclass(frozen=True)
class Build:
    build_id: str
    status: str
    tag: str | None


@dataclass(frozen=True)
class Image:
    tag: str
    image_id: str | None  # the config digest, sha256:…
    digest: str | None  # the manifest digest


@dataclass(frozen=True)
class RepoInfo:
    """A repository as the list pages show it."""

    namespace: str
    name: str
    repo_id: str | None = None  # enterprise: crr-…
    summary: str = ""
    detail: str = ""


@dataclass
class RepoState:
    info: RepoInfo
    images: dict[str, Image] | None = None  # None: not read
    rules: list[Rule] | None = None  # None: not read
    builds: list[Build] | None = None  # None: not read


@dataclass
class Observed:
    namespace: str
    namespace_exists: bool
    namespace_count: int  # namespaces in the account (or instance)
    repos: dict[str, RepoState] = field(default_factory=dict)  # in our namespace, by name
    # Repositories in the account outside our namespace; None when not counted (no repo to
    # create, so the quota cannot be crossed).
    other_repo_count: int | None = None
    # (source name, tag) -> upstream config digest for the compared platform, when known.
    upstream: dict[tuple[str, str], str | None] = field(default_factory=dict)
