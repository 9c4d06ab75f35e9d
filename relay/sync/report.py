"""The result of a sync: a row per image, rendered by relay.output.tables."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from relay import safety
from relay.output.tables import Column, Table, human_size

log = logging.getLogger(__name__)

Result = Literal["copied", "unchanged", "failed", "skipped", "would-copy"]
COPIED: Result = "copied"
UNCHANGED: Result = "unchanged"
FAILED: Result = "failed"
SKIPPED: Result = "skipped"  # a tag listing or regex that selected nothing: not a failure
WOULD_COPY: Result = "would-copy"  # --dry-run: the destination lacks it or holds another digest


@dataclass
class ImageResult:
    """One row of the report."""

    source: str
    destination: str
    result: Result
    digest: str = ""
    bytes: int = 0
    attempts: int = 0
    error: str = ""
    line: int | None = None

    def json(self) -> dict[str, object]:
        return {
            # The images file's own text when it did not parse: untrusted, made printable.
            "source": safety.one_line(self.source, None),
            "destination": safety.one_line(self.destination, None),
            "result": self.result,
            "digest": self.digest or None,
            "bytesCopied": self.bytes,
            "attempts": self.attempts,
            "error": self.error or None,
            "line": self.line,
        }


@dataclass
class SyncReport:
    """Every image's outcome, in the order of the images file; `ok` decides the exit code."""

    results: list[ImageResult] = field(default_factory=list)
    requests: int = 0
    passes: int = 0
    # One message per registry out of reach, with what to do (relay.output.outages).
    unreachable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[ImageResult]:
        return [r for r in self.results if r.result == FAILED]

    def count(self, result: Result) -> int:
        return sum(1 for r in self.results if r.result == result)

    def summary_line(self) -> str:
        parts = [f"{self.count(COPIED)} copied", f"{self.count(UNCHANGED)} unchanged"]
        parts.append(f"{self.count(FAILED)} failed")
        if self.count(WOULD_COPY):
            parts.append(f"{self.count(WOULD_COPY)} would be copied (dry run)")
        if self.count(SKIPPED):
            parts.append(f"{self.count(SKIPPED)} skipped")
        moved = human_size(sum(r.bytes for r in self.results))
        return (
            f"{len(self.results)} images: {', '.join(parts)}; {moved} of blobs sent "
            f"in {self.passes} pass(es), {self.requests} registry requests"
        )

    def table(self) -> Table:
        table = Table(
            "relay sync",
            [
                Column("Source"),
                Column("Destination"),
                Column("Result"),
                Column("Digest", code=True),
                Column("Size", "right"),
                Column("Attempts", "right"),
                Column("Error"),
            ],
            summary=self.summary_line(),
            status="ok" if self.ok else "failed",
        )
        for r in self.results:
            table.add(
                r.source,
                r.destination,
                r.result,
                r.digest,
                human_size(r.bytes) if r.result == COPIED else "",
                str(r.attempts),
                r.error,
                flag=r.result == FAILED,
            )
        return table

    def json(self) -> dict[str, object]:
        return {
            "images": [r.json() for r in self.results],
            "counts": {
                result: self.count(result)
                for result in (COPIED, UNCHANGED, WOULD_COPY, FAILED, SKIPPED)
            },
            "passes": self.passes,
            "requests": self.requests,
        }
