"""Progress on a terminal: bytes, rate and ETA for copies, counts for tags, builds and tasks.

Shown only when stderr is a terminal (never in CI logs or when piped), never with `-q`, and
never with `TERM=dumb`. `NO_COLOR` (https://no-color.org) turns colour off. The bars are drawn
by rich, imported only when a bar is actually shown: `relay validate`, and every run in CI,
never pays for it (relay is benchmarked against skopeo; start-up counts).

Stages take a `Progress` and call `task(...)`; the no-op `NULL` costs nothing. Bars are
transient: they vanish when the command ends and its report (a table on stdout) takes over.
Log lines written while bars are shown appear above them (rich redirects stderr; the CLI's log
handler writes to whatever stderr is at the time). stdout is left alone: data never moves to
stderr because a bar was drawn.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO

from relay import safety

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

Unit = Literal["bytes", "items"]

_quiet = False


def configure(*, quiet: bool) -> None:
    """The CLI's `-q`: no progress at all."""
    global _quiet
    _quiet = quiet


def wanted(stream: TextIO | None = None) -> bool:
    """Whether bars may be drawn on ``stream`` (stderr by default)."""
    out = stream if stream is not None else sys.stderr
    if _quiet or os.environ.get("TERM") == "dumb":
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class Task(Protocol):
    def advance(self, amount: float = 1) -> None:
        """Count ``amount`` more done (bytes or items)."""

    def grow(self, amount: float) -> None:
        """Add ``amount`` to the total (a size learnt on the way)."""

    def finish(self) -> None:
        """Done: the bar leaves the screen (the report says how it went)."""


class Progress(Protocol):
    def task(self, label: str, total: float | None = None, *, unit: Unit = "items") -> Task:
        """A new bar; ``total`` None while unknown."""


class _NullTask:
    def advance(self, amount: float = 1) -> None:
        pass

    def grow(self, amount: float) -> None:
        pass

    def finish(self) -> None:
        pass


class _Null:
    _task = _NullTask()

    def task(self, label: str, total: float | None = None, *, unit: Unit = "items") -> Task:
        return self._task


NULL: Progress = _Null()
"""No progress: what every stage uses unless the CLI hands it a live one."""


class _RichTask:
    def __init__(self, bars: RichProgress, task_id: TaskID, total: float | None) -> None:
        self._bars = bars
        self._id = task_id
        self._total = total
        self._lock = threading.Lock()
        self._done = False

    def advance(self, amount: float = 1) -> None:
        self._bars.advance(self._id, amount)

    def grow(self, amount: float) -> None:
        with self._lock:
            self._total = (self._total or 0) + amount
            self._bars.update(self._id, total=self._total)

    def finish(self) -> None:
        with self._lock:
            if not self._done:
                self._done = True
                # Drawn once as finished before it goes: a copy faster than a refresh tick
                # still shows its size and rate.
                self._bars.refresh()
                self._bars.remove_task(self._id)


class _Rich:
    def __init__(self, bars: RichProgress) -> None:
        self.bars = bars

    def task(self, label: str, total: float | None = None, *, unit: Unit = "items") -> Task:
        task_id = self.bars.add_task(_short(label), total=total, unit=unit)
        return _RichTask(self.bars, task_id, total)


def _short(label: str, width: int = 48) -> str:
    # References are long; the end (name:tag) is the part that tells bars apart. A label is
    # relay's own text (a reference it built), made one safe line all the same.
    label = safety.one_line(label, None)
    return label if len(label) <= width else "…" + label[-(width - 1) :]


@contextmanager
def session(stream: TextIO | None = None) -> Iterator[Progress]:
    """Live bars on ``stream`` (stderr) for the length of the block, or NULL when not wanted."""
    if not wanted(stream):
        yield NULL
        return
    out = stream if stream is not None else sys.stderr
    # The bars are drawn on the terminal itself: relay.safety.Console (the CLI's stderr)
    # escapes control characters, which would print the bars' cursor movements as text.
    # Log lines reach the bars' proxy already cleaned by relay.safety.LogFormatter.
    bars = _rich_progress(out.raw if isinstance(out, safety.Console) else out)
    with bars:
        yield _Rich(bars)


def _rich_progress(stream: TextIO) -> RichProgress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class Amount(ProgressColumn):
        """12.3/45.6 MB for bytes, 3/13 for items."""

        _bytes = DownloadColumn()

        def render(self, task: Any) -> Any:
            if task.fields.get("unit") == "bytes":
                return self._bytes.render(task)
            total = "?" if task.total is None else str(int(task.total))
            return Text(f"{int(task.completed)}/{total}", style="progress.download")

    class Rate(ProgressColumn):
        _bytes = TransferSpeedColumn()

        def render(self, task: Any) -> Any:
            if task.fields.get("unit") == "bytes":
                return self._bytes.render(task)
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:.1f}/s", style="progress.data.speed")

    console = Console(
        file=stream,
        no_color=bool(os.environ.get("NO_COLOR")),  # present and not empty: no-color.org
        highlight=False,
    )
    from rich.progress import Progress as RichProgressClass

    return RichProgressClass(
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        Amount(),
        Rate(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        redirect_stdout=False,  # data stays on stdout
        redirect_stderr=True,  # log lines above the bars
        refresh_per_second=8,
    )
