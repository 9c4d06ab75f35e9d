"""GitHub Actions output: error annotations and the job summary. Inert outside Actions.

The only writer of workflow commands: relay.safety.Console neutralises every other line that
would start one, so annotations are only ever relay's own. Text goes through relay.safety
(secrets redacted, unsafe characters escaped) before it is escaped for a command.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from relay import safety
from relay.errors import Problem
from relay.output.tables import SUMMARY_LIMIT, Table


def active() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _escape_data(text: str) -> str:
    # The workflow-command escaping GitHub documents; a raw newline would end the command.
    text = safety.escape_controls(safety.redact(text), keep="\r\n")
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
    line = f"::{level} {','.join(props)}::{_escape_data(problem.message)}"
    safety.write_command(line, stream or sys.stderr)


def error(message: str, stream: TextIO | None = None) -> None:
    """An error annotation without a file (a failed operation)."""
    if active():
        safety.write_command(f"::error::{_escape_data(message)}", stream or sys.stderr)


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
        # The summary is rendered Markdown, not a log: no workflow command runs from it, but a
        # secret or a control character must not reach it either (table cells are clean).
        text = safety.clean_block(content)
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
