"""The Harbor emulator's world: registries, projects, policies, executions, tasks, calls.

Plain dataclasses under one lock, so tests can look inside (``harbor.state.policies``...).
Statuses are stored with jobservice's words (``Running``, ``Success``, ``Error``, ``Stopped``,
``Pending``, ``Scheduled``) and converted to the API's words on the way out, as Harbor's
handlers do (``convertExecution`` / ``convertTask`` in handler/replication.go).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from relay.sandbox.common import recording

JobStatus = Literal["Pending", "Scheduled", "Running", "Success", "Error", "Stopped"]
FINAL: frozenset[str] = frozenset({"Success", "Error", "Stopped"})
IN_PROGRESS: frozenset[str] = frozenset({"Pending", "Scheduled", "Running"})

# handler/replication.go: execution Running->InProgress, Success->Succeed, Error->Failed;
# task Scheduled|Running->InProgress, Success->Succeed, Error->Failed, others as they are.
EXECUTION_WORDS = {
    "Running": "InProgress",
    "Success": "Succeed",
    "Error": "Failed",
    "Stopped": "Stopped",
}
TASK_WORDS = {
    "Scheduled": "InProgress",
    "Running": "InProgress",
    "Success": "Succeed",
    "Error": "Failed",
}

Trigger = Literal["manual", "scheduled", "event_based"]


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def timestamp(when: dt.datetime | None) -> str:
    """strfmt.DateTime as Harbor prints it: ``2026-01-02T03:04:05.678Z``."""
    if when is None:
        return "0001-01-01T00:00:00.000Z"  # Go's zero time, as Harbor returns for unset times
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{when.microsecond // 1000:03d}Z"
    )


@dataclass
class Credential:
    type: str = ""
    access_key: str = ""
    access_secret: str = field(default="", repr=False)


@dataclass
class Registry:
    id: int
    name: str
    type: str
    url: str
    credential: Credential | None
    insecure: bool = False
    ca_certificate: str | None = None
    description: str = ""
    status: str = "healthy"
    creation_time: dt.datetime = field(default_factory=now)
    update_time: dt.datetime = field(default_factory=now)


@dataclass
class Project:
    id: int
    name: str
    public: bool
    owner_id: int = 1
    owner_name: str = "admin"
    registry_id: int = 0  # a proxy-cache project's upstream registry
    metadata: dict[str, str] = field(default_factory=dict)
    creation_time: dt.datetime = field(default_factory=now)
    update_time: dt.datetime = field(default_factory=now)


@dataclass
class Filter:
    type: str
    value: Any
    decoration: str = ""


@dataclass
class Policy:
    id: int
    name: str
    description: str
    creator: str
    src_registry_id: int
    dest_registry_id: int
    dest_namespace: str
    dest_namespace_replace_count: int
    filters: list[Filter]
    trigger_type: str | None  # None: no trigger object was sent
    cron: str | None
    deletion: bool
    override: bool
    enabled: bool
    speed: int
    copy_by_chunk: bool
    single_active_replication: bool
    creation_time: dt.datetime = field(default_factory=now)
    update_time: dt.datetime = field(default_factory=now)

    @property
    def scheduled(self) -> bool:
        """``Policy.IsScheduledTrigger``: a schedule exists only for enabled scheduled policies."""
        return self.enabled and self.trigger_type == "scheduled"


@dataclass
class Task:
    id: int
    execution_id: int
    status: JobStatus
    src_resource: str
    dst_resource: str
    job_id: str
    operation: str = "copy"
    resource_type: str = "image"
    references: str = ""
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    creation_time: dt.datetime = field(default_factory=now)
    run_count: int = 0
    log: list[str] = field(default_factory=list)


@dataclass
class Execution:
    id: int
    policy_id: int
    trigger: Trigger
    status: JobStatus = "Running"  # the status as stored (what the refresher computed last)
    status_text: str = ""
    start_time: dt.datetime = field(default_factory=now)
    end_time: dt.datetime | None = None
    stop_requested: bool = False
    refreshed_at: float = 0.0  # monotonic time of the last status refresh
    flow_done: bool = False  # the flow created every task it will create
    marked: bool = False  # status set directly (MarkDone/MarkError/stop): not from tasks


@dataclass
class Call(recording.Call):
    """One Harbor API request: ``action`` is the swagger operationId (``createRegistry``...)."""

    user: str | None = None  # the authenticated user name, None for anonymous


@dataclass
class Robot:
    """A system robot account, ``robot$<name>`` with its secret and permissions."""

    name: str  # without the prefix
    secret: str = field(repr=False)
    # (resource, action) pairs: ("registry", "create"), ("replication-policy", "list"), ...
    permissions: frozenset[tuple[str, str]] = frozenset()
    disabled: bool = False

    @property
    def username(self) -> str:
        return "robot$" + self.name


# Everything a system robot can be granted on these endpoints (src/common/rbac/const.go).
ALL_ROBOT_PERMISSIONS: frozenset[tuple[str, str]] = frozenset(
    [("registry", a) for a in ("read", "create", "delete", "list", "update")]
    + [("replication-policy", a) for a in ("read", "create", "delete", "list", "update")]
    + [("replication", a) for a in ("read", "create", "list")]
    + [("replication-adapter", "list")]
    + [("project", a) for a in ("read", "list", "create")]
)


class State:
    """All emulator state; mutate under ``with state.lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.registries: dict[int, Registry] = {}
        self.projects: dict[int, Project] = {}
        self.policies: dict[int, Policy] = {}
        self.executions: dict[int, Execution] = {}
        self.tasks: dict[int, Task] = {}
        self.schedules: dict[int, str] = {}  # policy id -> cron, as the scheduler holds them
        self.recorder: recording.Recorder[Call] = recording.Recorder(self.lock)
        self.calls: list[Call] = self.recorder.calls
        self._ids: dict[str, int] = {}
        # "library" exists on every fresh Harbor (make/migrations: the default public project).
        self.projects[1] = Project(1, "library", public=True)
        self._ids["project"] = 1

    def next_id(self, kind: str) -> int:
        with self.lock:
            self._ids[kind] = self._ids.get(kind, 0) + 1
            return self._ids[kind]

    def project_by_name(self, name: str) -> Project | None:
        with self.lock:
            for p in self.projects.values():
                if p.name == name:
                    return p
            return None

    def tasks_of(self, execution_id: int) -> list[Task]:
        with self.lock:
            return [t for t in self.tasks.values() if t.execution_id == execution_id]
