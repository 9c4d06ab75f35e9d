"""The result of a sync: a row per image, as a table and as markdown for the job summary."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

COPIED = "copied"
UNCHANGED = "unchanged"
FAILED = "failed"
SKIPPED = "skipped"  # a tag listing or regex that selected nothing: reported, not a failure

# Rows in the GitHub job summary, which must stay under 1 MiB (the log has them all).
MAX_SUMMARY_ROWS = 1000


@dataclass
class ImageResult:
    """One row of the report."""

    source: str
    destination: str
    result: str  # COPIED, UNCHANGED, FAILED or SKIPPED
    digest: str = ""
    bytes: int = 0
    attempts: int = 0
    error: str = ""
    line: int | None = None


@dataclass
class SyncReport:
    """Every image's outcome, in the order of the images file; `ok` decides the exit code."""

    results: list[ImageResult] = field(default_factory=list)
    requests: int = 0
    passes: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[ImageResult]:
        return [r for r in self.results if r.result == FAILED]

    def count(self, result: str) -> int:
        return sum(1 for r in self.results if r.result == result)

    def summary_line(self) -> str:
        parts = [f"{self.count(COPIED)} copied", f"{self.count(UNCHANGED)} unchanged"]
        parts.append(f"{self.count(FAILED)} failed")
        if self.count(SKIPPED):
            parts.append(f"{self.count(SKIPPED)} skipped")
        moved = human_size(sum(r.bytes for r in self.results))
        return (
            f"{len(self.results)} images: {', '.join(parts)}; {moved} of blobs sent "
            f"in {self.passes} pass(es), {self.requests} registry requests"
        )

    def table(self) -> str:
        header = ("SOURCE", "DESTINATION", "RESULT", "DIGEST", "BYTES", "ATTEMPTS", "ERROR")
        rows = [header] + [_cells(r) for r in self.results]
        # The error column is last and unpadded: it is the long one.
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        lines = [
            "  ".join(
                [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
                + [row[-1]]
            ).rstrip()
            for row in rows
        ]
        return "\n".join(lines + ["", self.summary_line()])

    def markdown(self) -> str:
        lines = [
            "### relay sync",
            "",
            self.summary_line(),
            "",
            "| Source | Destination | Result | Digest | Bytes | Attempts | Error |",
            "|---|---|---|---|---|---:|---|",
        ]
        shown = self.results
        if len(shown) > MAX_SUMMARY_ROWS:
            # GitHub refuses a job summary over 1 MiB; failures matter most, so they stay.
            room = max(0, MAX_SUMMARY_ROWS - len(self.failed))
            ok_rows = [r for r in shown if r.result != FAILED]
            keep = {id(r) for r in ok_rows[:room]}
            shown = [r for r in shown if r.result == FAILED or id(r) in keep]
        for r in shown:
            cells = list(_cells(r))
            cells[3] = f"`{cells[3]}`" if cells[3] else ""
            cells[2] = f"**{cells[2]}**" if r.result == FAILED else cells[2]
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
        if len(shown) < len(self.results):
            lines += [
                "",
                f"_{len(self.results) - len(shown)} successful rows left out; "
                "the job log has the whole table._",
            ]
        return "\n".join(lines)


def _cells(r: ImageResult) -> tuple[str, ...]:
    return (
        r.source,
        r.destination,
        r.result,
        r.digest,
        human_size(r.bytes) if r.result == COPIED else "",
        str(r.attempts),
        r.error,
    )


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    return f"{size:.1f} {unit}"
