"""GitHub Actions output: error annotations and the job summary. Inert outside Actions."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from relay.errors import Problem


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


def summary(markdown: str) -> None:
    """Append to the job summary when Actions provides one."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(markdown.rstrip("\n") + "\n\n")
