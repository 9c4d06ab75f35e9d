"""The emulator's in-memory world: namespaces, repositories, build rules, builds, calls, limits.

Everything is plain dataclasses so tests can inspect it (``acr_emulator.state.repos`` ...). All
mutation goes through :class:`State` under its lock, because the HTTP server answers from many
threads and builds finish in background threads.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from relay.sandbox.common import recording as common

Edition = Literal["personal", "enterprise"]
PERSONAL: Edition = "personal"
ENTERPRISE: Edition = "enterprise"

# Build states. PENDING/BUILDING/SUCCESS/FAILED are observed values (Alibaba doc 142770;
# nanoric/docker-mirror-creator); the spelling of the cancelled state is UNCONFIRMED: the
# emulator keeps CANCELED inside and answers Quirks.canceled_status.
PENDING = "PENDING"
BUILDING = "BUILDING"
SUCCESS = "SUCCESS"
FAILED = "FAILED"
CANCELED = "CANCELED"
ACTIVE_STATES = frozenset({PENDING, BUILDING})
FINAL_STATES = frozenset({SUCCESS, FAILED, CANCELED})

# --- Name rules -------------------------------------------------------------------------------

# Personal namespace: 2-30 chars (docs 142765/72396), terraform's
# validateContainerRegistryNamespaceName.
NAMESPACE_RE = re.compile(r"^[a-z0-9]+[_\-a-z0-9]*$")
NAMESPACE_LEN = (2, 30)
# Personal repository: the sources disagree (1-64, 2-30, 2-64), so this is UNCONFIRMED; the
# emulator uses the safe rule (Alibaba docs 72396/142765; terraform-provider-alicloud) with a
# configurable maximum (Limits.repo_name_max), and ROS doc 135727's `.` under
# Quirks.repo_name_dots.
REPO_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
REPO_DOT_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
REPO_NAME_MIN = 2
# Enterprise names: 2-120 chars of lower-case letters, digits, "_", "-", "." (doc 145483). The
# exact pattern and the repo length are UNCONFIRMED.
EE_NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
EE_NAMESPACE_LEN = (2, 120)
EE_REPO_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
EE_REPO_LEN = (2, 64)
# Image tags: ACR's own rule is UNCONFIRMED; this is the distribution tag grammar.
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DOCKERFILE_LOCATION_LEN = (1, 128)  # doc 142765
DOCKERFILE_NAME_LEN = (4, 64)  # doc 142765
SUMMARY_LEN = (1, 100)  # doc 72396
DETAIL_MAX = 2000  # doc 72396

SOURCE_REPO_TYPES = frozenset({"GITHUB", "CODE", "BITBUCKET", "GITLAB"})  # lizebang constants
EE_CODE_REPO_TYPES = frozenset({"GITHUB", "GITLAB", "GITEE", "CODE", "CODEUP"})  # doc 206667
PUSH_TYPES = frozenset({"GIT_BRANCH", "GIT_TAG"})
REPO_TYPES = frozenset({"PUBLIC", "PRIVATE"})
REPO_BUILD_TYPES = frozenset({"AUTO_BUILD", "MANUAL"})


def now_ms() -> int:
    return int(time.time() * 1000)


def _rand(n: int = 16) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


# --- Records ----------------------------------------------------------------------------------


@dataclass
class Limits:
    """Quotas. All vendor numbers here are UNCONFIRMED (no vendor document states them)."""

    namespaces: int = 3  # per edition (the brief's default; a 2020 blog said 5)
    repos: int = 300  # per edition, account-wide
    rules_per_repo: int = 5  # only evidence: nanoric's hard-coded limit = 5
    concurrent_builds: int = 2  # PENDING + BUILDING builds at once, account-wide
    repo_name_max: int = 30  # personal repo name length; sources say 30 or 64


@dataclass
class Namespace:
    edition: Edition
    name: str
    namespace_id: str = ""  # enterprise only ("crn-...")
    auto_create: bool = True
    default_visibility: str = "PRIVATE"
    created: int = field(default_factory=now_ms)


@dataclass
class SourceBinding:
    """The code source a repository builds from (personal RepoSource / EE SourceCodeRepo)."""

    repo_type: str  # "GITHUB", ...
    namespace: str  # GitHub owner
    name: str  # GitHub repository
    auto_build: bool = False
    oversea: bool = False
    disable_cache: bool = False

    @property
    def owner_repo(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class BuildRule:
    rule_id: Any  # int for personal (Long), "crbr-..." for enterprise
    push_type: str
    push_name: str
    dockerfile_location: str
    dockerfile_name: str
    image_tag: str  # the image tag the build pushes
    tag: str | None = None  # personal "Tag" as sent (create: image version; update: source tag)
    platforms: list[str] = field(default_factory=lambda: ["linux/amd64"])
    build_args: list[str] = field(default_factory=list)
    created: int = field(default_factory=now_ms)


@dataclass
class Repo:
    edition: Edition
    namespace: str
    name: str
    repo_id: Any  # int for personal, "crr-..." for enterprise
    summary: str = ""
    detail: str = ""
    repo_type: str = "PRIVATE"
    repo_build_type: str = "MANUAL"
    tag_immutability: bool = False
    source: SourceBinding | None = None
    rules: dict[str, BuildRule] = field(default_factory=dict)  # str(rule_id) -> rule
    created: int = field(default_factory=now_ms)
    modified: int = field(default_factory=now_ms)

    @property
    def key(self) -> tuple[Edition, str, str]:
        return (self.edition, self.namespace, self.name)


@dataclass
class Build:
    build_id: str
    edition: Edition
    namespace: str
    repo_name: str
    repo_id: Any
    rule: BuildRule  # a snapshot: editing the rule later does not change a running build
    source: SourceBinding | None
    status: str = PENDING
    log: list[str] = field(default_factory=list)
    created: int = field(default_factory=now_ms)
    started: int | None = None
    finished: int | None = None
    image_digest: str | None = None  # manifest digest pushed on success
    cancel_requested: bool = False

    @property
    def image_tag(self) -> str:
        return self.rule.image_tag

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATES

    def log_text(self) -> str:
        return "\n".join(self.log)


@dataclass
class Call(common.Call):
    """One API call as the emulator saw it (the AccessKey secret is never part of a request).

    ``write`` is true for every action that is not a Get*/List* read.
    """

    edition: Edition | None = None


def is_read_action(action: str | None) -> bool:
    return action is not None and action.startswith(("Get", "List"))


# --- The world --------------------------------------------------------------------------------


class State:
    """All emulator state. Use ``with state.lock:`` around multi-step reads."""

    def __init__(self, region: str, instance_id: str | None = None) -> None:
        self.lock = threading.RLock()
        self.region = region
        self.limits = Limits()
        # The enterprise edition needs an instance; the emulator has exactly one.
        self.instance_id = instance_id or f"cri-{_rand(16)}"
        self.namespaces: dict[tuple[Edition, str], Namespace] = {}
        self.repos: dict[tuple[Edition, str, str], Repo] = {}
        self.builds: dict[str, Build] = {}  # insertion order = creation order
        self.recorder: common.Recorder[Call] = common.Recorder(self.lock)
        self.calls: list[Call] = self.recorder.calls
        # (namespace, repo, tag) -> (first push ms, last push ms), filled by successful builds so
        # GetRepoTags can report imageCreate/imageUpdate for images the registry cannot date.
        self.tag_times: dict[tuple[str, str, str], tuple[int, int]] = {}
        self._next_repo_id = 100001
        self._next_rule_id = 129301

    # -- ids -------------------------------------------------------------------------------

    def new_repo_id(self, edition: Edition) -> Any:
        if edition == ENTERPRISE:
            return f"crr-{_rand(16)}"
        with self.lock:
            self._next_repo_id += 1
            return self._next_repo_id

    def new_rule_id(self, edition: Edition) -> Any:
        if edition == ENTERPRISE:
            return f"crbr-{_rand(16)}"
        with self.lock:
            self._next_rule_id += 1
            return self._next_rule_id

    @staticmethod
    def new_build_id(edition: Edition) -> str:
        # Both formats are UNCONFIRMED: personal ids are treated as opaque strings by consumers.
        return _rand(20) if edition == ENTERPRISE else secrets.token_hex(16)

    @staticmethod
    def new_namespace_id() -> str:
        return f"crn-{_rand(16)}"

    # -- queries ---------------------------------------------------------------------------

    def namespaces_of(self, edition: Edition) -> list[Namespace]:
        with self.lock:
            return [ns for (ed, _), ns in self.namespaces.items() if ed == edition]

    def repos_of(self, edition: Edition, namespace: str | None = None) -> list[Repo]:
        with self.lock:
            return [
                r
                for r in self.repos.values()
                if r.edition == edition and (namespace is None or r.namespace == namespace)
            ]

    def repo_by_id(self, repo_id: Any) -> Repo | None:
        with self.lock:
            for repo in self.repos.values():
                if str(repo.repo_id) == str(repo_id):
                    return repo
            return None

    def builds_of(self, repo: Repo) -> list[Build]:
        with self.lock:
            return [
                b for b in self.builds.values() if (b.edition, b.namespace, b.repo_name) == repo.key
            ]

    def active_builds(self) -> list[Build]:
        with self.lock:
            return [b for b in self.builds.values() if b.active]

    @property
    def rules(self) -> dict[str, BuildRule]:
        """Every build rule of every repository, by ``str(rule_id)`` (a snapshot)."""
        with self.lock:
            return {key: rule for repo in self.repos.values() for key, rule in repo.rules.items()}

    def iter_rules(self) -> Iterator[tuple[Repo, BuildRule]]:
        with self.lock:
            for repo in self.repos.values():
                for rule in repo.rules.values():
                    yield repo, rule

    def record(self, call: Call) -> None:
        self.recorder.record(call)

    def note_tag_pushed(self, namespace: str, repo: str, tag: str) -> None:
        with self.lock:
            t = now_ms()
            first, _ = self.tag_times.get((namespace, repo, tag), (t, t))
            self.tag_times[(namespace, repo, tag)] = (first, t)
