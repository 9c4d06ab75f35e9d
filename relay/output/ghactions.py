"""GitHub Actions output: error annotations and the job summary. Inert outside Actions."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from relay.errors import Problem
from relay.output.tables import SUMMARY_LIMIT, Table


def active() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _escape_data(text: str) -> str:
    # The workflow-command escaping GitHub documents; a raw newline would end the command.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotate(problem: Problem, level: str = "error", stream: TextIO | None = None) -> None:
    """Emit `::error file=…,line=…::…` so the problem shows on the pull request's diff."""
    if not active():
        return
    props = [f"file={_escape_property(problem.path)}"]
    if problem.line is not None:
        props.append(f"line={problem.line}")
    print(
        f"::{level} {','.join(props)}::{_escape_data(problem.message)}", file=stream or sys.stderr
    )


def warning(message: str, stream: TextIO | None = None) -> None:
    """`::warning::…`: shown on the run's page (and the pull request's checks) as a warning."""
    if active():
        print(f"::warning::{_escape_data(message)}", file=stream or sys.stderr)


def output(name: str, value: str) -> None:
    """Set a step output (`$GITHUB_OUTPUT`), read by later steps and jobs. Values are one line;
    a newline in one would start another output."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    if "\n" in value or "\r" in value or "=" in name or "\n" in name:
        raise ValueError(f"step output {name!r}: a name or value with a newline")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{name}={value}\n")


def summary(content: str | Table) -> None:
    """Append to the job summary when Actions provides one, within GitHub's 1 MiB per step
    (what earlier steps' relay runs wrote counts): a table leaves out rows to fit, other text
    is cut at a line, and the job log keeps everything."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        used = os.path.getsize(path)
    except OSError:
        used = 0
    room = SUMMARY_LIMIT - used - 2
    if isinstance(content, Table):
        text = content.markdown(limit=room)
    else:
        text = content
        if len(text.encode()) > room:
            cut = text.encode()[: max(0, room - 120)].decode("utf-8", "ignore")
            text = (
                cut[: cut.rfind("\n") + 1]
                + "\n_…cut to fit the job summary; the job log has it all._\n"
            )
    if len(text.encode()) > room:
        return  # no room left at all: the log has it
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text.rstrip("\n") + "\n\n")
