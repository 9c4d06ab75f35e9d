"""GitHub Actions output: error annotations and the job summary. Inert outside Actions.

The only writer of workflow commands: relay.safety.Console neutralises every other line that
would start one, so annotations are only ever relay's own. Text goes through relay.safety
(secrets redacted, unsafe characters escaped) before it is escaped for a command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

from relay import safety
from relay.errors import Problem
from relay.output.tables import SUMMARY_LIMIT, Table, escape


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


def warning(message: str, stream: TextIO | None = None) -> None:
    """`::warning::…`: shown on the run's page (and the pull request's checks) as a warning."""
    if active():
        safety.write_command(f"::warning::{_escape_data(message)}", stream or sys.stderr)


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


# GitHub shows at most 10 error and 10 warning annotations per step ("Workflow commands for
# GitHub Actions": "a maximum of 10 error annotations and 10 warning annotations per step").
ANNOTATION_LIMIT = 10

# What a problem is about, for grouping a long report: the first pattern found in the message
# names the kind. Problems come from many readers (the list, the settings, the lock, upstream),
# and their wording is what users see, so the grouping reads the same words.
_KINDS: tuple[tuple[str, str], ...] = (
    ("pinned digest", "pins"),
    ("cannot check the pin", "pins"),
    ("pin '", "pins"),
    ("now points to", "pins"),
    ("duplicate entry", "duplicate entries"),
    ("collides with", "name collisions"),
    ("target name", "names"),
    ("name:", "names"),
    ("platform", "platforms"),
    ("select", "selection rules"),
    ("not found upstream", "tags missing upstream"),
    ("cannot list tags", "registry errors"),
    ("duplicate tag", "tags"),
    ("tag '", "tags"),
    ("source", "sources"),
    ("unknown key", "unknown keys"),
)


def kind_of(problem: Problem) -> str:
    """The group a problem is reported under when there are many."""
    text = problem.message
    return next((kind for words, kind in _KINDS if words in text), "other")


def grouped(problems: Sequence[Problem]) -> list[tuple[str, list[Problem]]]:
    """Problems by kind, the largest group first, each in line order."""
    groups: dict[str, list[Problem]] = {}
    for problem in problems:
        groups.setdefault(kind_of(problem), []).append(problem)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def annotate_all(
    problems: Sequence[Problem], level: str = "error", stream: TextIO | None = None
) -> None:
    """Annotations for ``problems`` within GitHub's limit: the first ones, then one that says
    how many more the log has."""
    if not active() or not problems:
        return
    if len(problems) <= ANNOTATION_LIMIT:
        for problem in problems:
            annotate(problem, level, stream)
        return
    shown = ANNOTATION_LIMIT - 1
    for problem in problems[:shown]:
        annotate(problem, level, stream)
    rest = len(problems) - shown
    kinds = ", ".join(f"{len(ps)} {kind}" for kind, ps in grouped(problems[shown:]))
    annotate(
        Problem(problems[0].path, None, f"and {rest} more ({kinds}); see the log"),
        level,
        stream,
    )


def report(problems: Sequence[Problem], level: str = "error", stream: TextIO | None = None) -> None:
    """Problems to the log (stderr): in line order when few, grouped by kind when more than
    GitHub would annotate; then annotations and, for a long report, the job summary."""
    out = stream or sys.stderr
    if len(problems) <= ANNOTATION_LIMIT:
        for problem in problems:
            print(_prefixed(problem, level), file=out)
    else:
        for kind, group in grouped(problems):
            print(f"relay: {len(group)} {kind}:", file=out)
            for problem in group:
                print(f"  {_prefixed(problem, level)}", file=out)
    annotate_all(problems, level, out)
    if len(problems) > ANNOTATION_LIMIT:
        summary(_summary_markdown(problems, level))


def warn(warnings: Sequence[Problem], stream: TextIO | None = None) -> None:
    """Warnings (a pin that moved upstream, a rule that takes many tags): the log, annotations."""
    report(warnings, "warning", stream)


def _prefixed(problem: Problem, level: str) -> str:
    return str(problem) if level == "error" else f"relay: warning: {problem}"


def _summary_markdown(problems: Sequence[Problem], level: str) -> str:
    title = "problems" if level == "error" else "warnings"
    lines = [f"### relay: {len(problems)} {title}", ""]
    for kind, group in grouped(problems):
        lines.append(f"<details><summary>{len(group)} {escape(kind)}</summary>")
        lines.append("")
        lines.extend(f"- {escape(str(p))}" for p in group)
        lines.append("")
        lines.append("</details>")
        lines.append("")
    return "\n".join(lines)


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
