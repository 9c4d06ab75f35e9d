"""The one table renderer: a report as aligned text for the terminal and the log, and as
Markdown for the GitHub job summary, with one escaper and one set of units.

Every command that reports rows (publish, sync, acr apply, harbor replicate, verify) builds a
`Table`; how it looks is decided here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from relay import safety
from relay.units import human_size as human_size  # re-exported: its users import it here

# GitHub refuses a step summary over 1 MiB ("$GITHUB_STEP_SUMMARY upload aborted, supports
# content up to a size of 1024k"; docs.github.com, "Adding a job summary").
SUMMARY_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Column:
    title: str  # "Source"; shown upper-case in text, as written in Markdown
    align: Literal["left", "right"] = "left"
    code: bool = False  # Markdown: `value` (digests, references)


@dataclass
class Table:
    """Rows under a title, a summary line after them, notes (errors, setup steps) before.

    ``flagged`` rows (failures) are bold in Markdown and are the last to be left out when the
    Markdown must be cut to fit the job summary.
    """

    title: str  # "relay sync"
    columns: Sequence[Column]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    flagged: set[int] = field(default_factory=set)  # row indexes
    summary: str = ""
    notes: list[str] = field(default_factory=list)
    status: str = ""  # "ok" / "failed", shown in the Markdown heading
    where: str = ""  # what the report is about, after the status: "(registry/namespace)"

    def add(self, *cells: str, flag: bool = False) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        if flag:
            self.flagged.add(len(self.rows))
        # Cells often hold what a server said (an error, a tag): one safe line each.
        self.rows.append(tuple(safety.one_line(cell, None) for cell in cells))

    def text(self) -> str:
        """Aligned columns, two spaces apart; the last column is not padded (it is the long
        one: errors, notes)."""
        lines = [safety.one_line(note, None) for note in self.notes]
        if self.rows:
            header = tuple(c.title.upper() for c in self.columns)
            table = [header, *self.rows]
            widths = [max(len(row[i]) for row in table) for i in range(len(self.columns))]
            for row in table:
                cells = []
                for i, (cell, column) in enumerate(zip(row, self.columns, strict=True)):
                    if i == len(self.columns) - 1:
                        cells.append(cell)
                    elif column.align == "right":
                        cells.append(cell.rjust(widths[i]))
                    else:
                        cells.append(cell.ljust(widths[i]))
                lines.append("  ".join(cells).rstrip())
        if self.summary:
            if self.rows:
                lines.append("")
            lines.append(safety.one_line(self.summary, None))
        return "\n".join(lines)

    def markdown(self, limit: int = SUMMARY_LIMIT) -> str:
        """The table for the job summary, at most ``limit`` bytes: when it would be longer,
        unflagged rows are left out first, and a line says how many."""
        heading = f"### {self.title}" + (f": {self.status}" if self.status else "")
        heading += f" ({escape(self.where)})" if self.where else ""
        head = [heading, ""]
        head += [f"- {escape(note)}" for note in self.notes]
        if self.notes:
            head.append("")
        if self.summary:
            head += [escape(self.summary), ""]
        if not self.rows:
            return "\n".join(head).rstrip("\n") + "\n"
        head.append("| " + " | ".join(c.title for c in self.columns) + " |")
        rules = ("---:" if c.align == "right" else "---" for c in self.columns)
        head.append("|" + "|".join(rules) + "|")
        rendered = [self._row(i) for i in range(len(self.rows))]
        keep = list(range(len(rendered)))
        budget = limit - len("\n".join(head).encode()) - 200  # room for the "left out" line
        size = sum(len(r.encode()) + 1 for r in rendered)
        if size > budget:
            # Failures matter most: leave out unflagged rows from the end, then flagged ones.
            order = [i for i in reversed(keep) if i not in self.flagged]
            order += [i for i in reversed(keep) if i in self.flagged]
            dropped: set[int] = set()
            for i in order:
                if size <= budget:
                    break
                dropped.add(i)
                size -= len(rendered[i].encode()) + 1
            keep = [i for i in keep if i not in dropped]
        lines = head + [rendered[i] for i in keep]
        if len(keep) < len(rendered):
            lines += [
                "",
                f"_{len(rendered) - len(keep)} of {len(rendered)} rows left out to fit the job "
                "summary; the job log has the whole table._",
            ]
        return "\n".join(lines) + "\n"

    def _row(self, index: int) -> str:
        cells = []
        for cell, column in zip(self.rows[index], self.columns, strict=True):
            text = escape(cell)
            if column.code and cell:
                text = code(cell)
            if index in self.flagged and cell and not column.code:
                text = f"**{text}**"
            cells.append(text)
        return "| " + " | ".join(cells) + " |"


def escape(text: str) -> str:
    """Text that stays inside one Markdown table cell: no pipe, no newline, no raw markup."""
    out = safety.one_line(text, None)
    out = out.replace("\\", "\\\\").replace("|", "\\|")
    for char in "*_[]<>`":
        out = out.replace(char, "\\" + char)
    return " ".join(out.split())


def code(text: str) -> str:
    """An inline code span that holds any text: the fence is longer than any backtick run."""
    text = safety.one_line(text, None).replace("|", "\\|")
    longest = current = 0
    for char in text:
        current = current + 1 if char == "`" else 0
        longest = max(longest, current)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
