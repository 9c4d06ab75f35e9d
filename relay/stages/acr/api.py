"""The edition-neutral ACR interface the stage is written against, and its call counter.

`relay.stages.acr.sdk` implements the plumbing (signing, retries, proxies) once; the editions
(`personal`, `enterprise`) implement this interface on it; `connect()` picks one.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, Protocol

from relay.stages.acr.settings import AcrSettings
from relay.stages.acr.state import Binding, Build, Image, RepoInfo, Rule, RuleSpec

CallKind = Literal["list", "read", "write"]

# Writes that would happen twice if repeated after a lost answer (relay.acr.client._write_once).
ONCE_ONLY = frozenset({"CreateRepoBuildRule", "StartRepoBuildByRule", "CreateBuildRecordByRule"})

# Calls that page through a listing rather than read one repository's state.
LIST_ACTIONS = frozenset(
    {"GetNamespaceList", "GetRepoListByNamespace", "ListNamespace", "ListRepository"}
)


def kind_of(action: str, method: str = "POST") -> CallKind:
    """ "list", "read" or "write", for counting."""
    if action in LIST_ACTIONS:
        return "list"
    if action.startswith(("Get", "List")) or method == "GET":
        return "read"
    return "write"


@dataclass
class CallStats:
    """API calls made (every attempt counts: that is what the service sees)."""

    reads: int = 0
    writes: int = 0
    list_pages: int = 0
    retries: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, action: str, kind: CallKind) -> None:
        with self._lock:
            self.by_action[action] += 1
            if kind == "list":
                self.list_pages += 1
            elif kind == "read":
                self.reads += 1
            else:
                self.writes += 1

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    @property
    def total(self) -> int:
        return self.reads + self.writes + self.list_pages

    def summary(self) -> str:
        return (
            f"{self.total} ACR API calls: {self.reads} reads, {self.writes} writes, "
            f"{self.list_pages} list pages, {self.retries} retries"
        )


class AcrClient(Protocol):
    """What the ACR stage needs from either edition, in terms of relay.stages.acr.state."""

    edition: str
    settings: AcrSettings
    stats: CallStats

    def list_namespaces(self) -> list[str]: ...

    def create_namespace(self, name: str) -> None: ...

    def list_repos(self, namespace: str) -> list[RepoInfo]: ...

    def count_repos(self, namespace: str) -> int: ...

    def create_repo(
        self, namespace: str, name: str, *, summary: str, detail: str, binding: Binding
    ) -> RepoInfo: ...

    def get_repo(self, namespace: str, name: str) -> RepoInfo | None:
        """One repository as the list pages show it (summary and detail), or None."""
        ...

    def update_repo(self, repo: RepoInfo, *, summary: str, detail: str) -> None: ...

    def delete_repo(self, repo: RepoInfo) -> None: ...

    def get_binding(self, repo: RepoInfo) -> Binding | None: ...

    def bind_source(self, repo: RepoInfo, binding: Binding) -> None: ...

    def list_images(self, repo: RepoInfo) -> dict[str, Image]: ...

    def list_rules(self, repo: RepoInfo) -> list[Rule]: ...

    def create_rule(self, repo: RepoInfo, spec: RuleSpec) -> str | None: ...

    def update_rule(self, repo: RepoInfo, rule_id: str, spec: RuleSpec) -> None: ...

    def delete_rule(self, repo: RepoInfo, rule_id: str) -> None: ...

    def start_build(
        self, repo: RepoInfo, rule_id: str, tag: str, *, known: frozenset[str] | None = None
    ) -> str | None:
        """Start a build; its id when the answer names one. ``known``: the repository's build
        ids seen before the start, so that a start whose answer was lost is recognised by a
        build of the tag that is new (whatever its status) rather than by one still running."""
        ...

    def list_builds(self, repo: RepoInfo) -> list[Build]: ...

    def build_status(self, repo: RepoInfo, build_id: str) -> str: ...
