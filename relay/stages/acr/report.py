"""What `relay acr apply` did: a row per tag, rendered by relay.output.tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from relay.output.tables import Column, Table, duration
from relay.stages.acr.api import CallStats
from relay.stages.acr.state import FAILURES

# Row statuses relay sets itself, beside ACR's own build statuses.
ERROR = "ERROR"  # relay could not start or follow the build
TIMEOUT = "TIMEOUT"  # still running at the deadline
SKIPPED = "SKIPPED"  # cannot be done (e.g. the repository is not relay's)
STARTED = "STARTED"  # started and not waited for
QUEUED = "QUEUED"  # not started: not waiting, and the cap or its rule was busy
# ACR said SUCCESS, yet the tag's image still differs from what the list wants (a build of an
# older commit, say), after one fresh build: not delivered.
STALE = "STALE"
_BAD = FAILURES | {ERROR, TIMEOUT, SKIPPED, STALE}


@dataclass
class Row:
    repo: str
    tag: str
    action: Literal["build", "wait", "skip"]
    build_id: str = ""
    status: str = ""
    duration: float | None = None
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status.upper() in _BAD

    def json(self) -> dict[str, object]:
        return {
            "repo": self.repo,
            "tag": self.tag,
            "action": self.action,
            "buildId": self.build_id or None,
            "status": self.status or None,
            "failed": self.failed,
            "seconds": round(self.duration, 3) if self.duration is not None else None,
            "note": self.note,
        }


@dataclass
class ApplyReport:
    rows: list[Row] = field(default_factory=list)
    done: list[str] = field(default_factory=list)  # setup actions carried out
    errors: list[str] = field(default_factory=list)  # setup actions that failed
    up_to_date: int = 0
    stats: CallStats = field(default_factory=CallStats)
    elapsed: float = 0.0
    registry: str = ""
    namespace: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors and not any(r.failed for r in self.rows)

    def counts(self) -> dict[str, int]:
        built = sum(1 for r in self.rows if r.status.upper() == "SUCCESS")
        failed = sum(1 for r in self.rows if r.failed)
        return {
            "built": built,
            "failed": failed,
            "pending": len(self.rows) - built - failed,
            "up to date": self.up_to_date,
        }

    def summary_line(self) -> str:
        counts = ", ".join(f"{n} {what}" for what, n in self.counts().items())
        return f"{counts} in {self.elapsed:.1f}s; {self.stats.summary()}"

    def table(self) -> Table:
        table = Table(
            "relay acr apply",
            [
                Column("Tag", code=True),
                Column("Action"),
                Column("Build"),
                Column("Status"),
                Column("Duration", "right"),
                Column("Note"),
            ],
            summary=self.summary_line(),
            notes=[*self.done, *(f"error: {e}" for e in self.errors)],
            status="ok" if self.ok else "failed",
            where=f"{self.registry}/{self.namespace}" if self.registry else "",
        )
        for r in self.rows:
            table.add(
                f"{r.repo}:{r.tag}",
                r.action,
                r.build_id or "-",
                r.status or "-",
                duration(r.duration),
                r.note,
                flag=r.failed,
            )
        return table

    def text(self) -> str:
        return self.table().text() + "\n"

    def json(self) -> dict[str, object]:
        counts = self.counts()
        return {
            "registry": self.registry,
            "namespace": self.namespace,
            "done": list(self.done),
            "errors": list(self.errors),
            "builds": [r.json() for r in self.rows],
            "counts": {
                "built": counts["built"],
                "failed": counts["failed"],
                "pending": counts["pending"],
                "upToDate": counts["up to date"],
            },
            "seconds": round(self.elapsed, 3),
            "calls": self.stats.total,
        }
