"""The plan, handed from the pull-request run to the run that comments.

GitHub's pattern for commenting on pull requests from forks ("Keeping your GitHub Actions and
workflows secure: Preventing pwn requests", GitHub Security Lab): the `pull_request` run, which
has no secrets and a read-only token, writes its result as an artifact; a `workflow_run` run,
which runs only the default branch's code, reads it and comments. Whatever the first run wrote
may have been written by the pull request's own code, so this reader treats the file as hostile
data: one regular file, size-capped, parsed as JSON into a fixed shape with bounded counts and
lengths, and never executed or interpolated into a shell. The comment is re-rendered from the
parsed sections by the trusted side (relay.output.prcomment escapes what is outside code
blocks); the commit and run link come from the trusted event, not from the file.
"""

from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.errors import OperationFailed
from relay.output.prcomment import Section

FILE = "relay-plan.json"
VERSION = 1
MAX_BYTES = 1024 * 1024
MAX_SECTIONS = 20
MAX_LINES = 5000
MAX_LINE = 2000
MAX_TITLE = 200
SHA_RE = re.compile(r"[0-9a-f]{40}")


class BadArtifact(OperationFailed):
    """The artifact is missing or not what relay writes."""


@dataclass(frozen=True)
class PlanArtifact:
    number: int  # the pull request
    head_sha: str  # the commit the plan is for
    ok: bool
    sections: list[Section]


def write(directory: Path, plan: PlanArtifact) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE
    doc = {
        "relayPlan": VERSION,
        "number": plan.number,
        "headSha": plan.head_sha,
        "ok": plan.ok,
        "sections": [{"title": s.title, "lines": s.lines, "empty": s.empty} for s in plan.sections],
    }
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def read(directory: Path) -> PlanArtifact:
    """Parse the artifact in `directory`; BadArtifact says what is wrong with it."""
    path = directory / FILE
    try:
        info = path.lstat()
    except OSError:
        raise BadArtifact(f"no {FILE} in the plan artifact") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadArtifact(f"{FILE} in the plan artifact is not a regular file")
    if info.st_size > MAX_BYTES:
        raise BadArtifact(f"{FILE} is {info.st_size} bytes, over the {MAX_BYTES} allowed")
    with open(path, "rb") as fh:
        raw = fh.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise BadArtifact(f"{FILE} is over the {MAX_BYTES} bytes allowed")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadArtifact(f"{FILE} is not UTF-8 JSON") from None
    return _parse(doc)


def _parse(doc: Any) -> PlanArtifact:
    if not isinstance(doc, dict) or doc.get("relayPlan") != VERSION:
        raise BadArtifact(f"{FILE} is not a relay plan (version {VERSION})")
    number, head, ok, sections = (doc.get(k) for k in ("number", "headSha", "ok", "sections"))
    if type(number) is not int or not 0 < number < 2**31:
        raise BadArtifact(f"{FILE}: number must be a pull request number")
    if not isinstance(head, str) or not SHA_RE.fullmatch(head):
        raise BadArtifact(f"{FILE}: headSha must be 40 lower-case hex digits")
    if type(ok) is not bool:
        raise BadArtifact(f"{FILE}: ok must be true or false")
    if not isinstance(sections, list) or len(sections) > MAX_SECTIONS:
        raise BadArtifact(f"{FILE}: sections must be a list of at most {MAX_SECTIONS}")
    parsed = [_section(s) for s in sections]
    return PlanArtifact(number, head, ok, parsed)


def _section(obj: Any) -> Section:
    if not isinstance(obj, dict) or set(obj) - {"title", "lines", "empty"}:
        raise BadArtifact(f"{FILE}: a section must hold only title, lines and empty")
    title, lines, empty = obj.get("title"), obj.get("lines", []), obj.get("empty", "")
    if not isinstance(title, str) or not isinstance(empty, str):
        raise BadArtifact(f"{FILE}: a section's title and empty must be strings")
    if not isinstance(lines, list) or len(lines) > MAX_LINES:
        raise BadArtifact(f"{FILE}: a section's lines must be a list of at most {MAX_LINES}")
    if not all(isinstance(line, str) for line in lines):
        raise BadArtifact(f"{FILE}: a section's lines must be strings")
    return Section(
        _text(title, MAX_TITLE),
        [_text(line, MAX_LINE) for line in lines],
        _text(empty, MAX_TITLE) or "nothing to do",
    )


def _text(text: str, limit: int) -> str:
    """One printable line, cut to `limit` characters (a newline would end a code block)."""
    return "".join(ch if ch.isprintable() else " " for ch in text)[:limit]
