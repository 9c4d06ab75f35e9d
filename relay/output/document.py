"""`-o json`: one JSON document on stdout, whatever the command.

Every command that reports something (validate, plan, lock, copy, publish, sync, acr plan|apply,
harbor plan|apply|replicate, verify, doctor) builds its document from the same data its text
report shows and hands it to `emit`. The shapes are listed in docs/json.md; keys are camelCase
(as the lock's are) and never removed within a FORMAT version: a consumer may rely on every key
docs/json.md lists, and must ignore keys it does not know.

Every document starts with the same three keys::

    {"relay": 1, "command": "acr plan", "ok": true, ...}

While a command runs in JSON mode, `sys.stdout` *is* stderr: a stray `print()` anywhere (a
stage's own report, a library) lands in the log, never in the middle of the document. Only
`emit` writes to the real stdout, once. When a command fails before it emitted (bad input, a
registry that refused), the CLI emits the error document (`error_document`) instead, so stdout
always holds exactly one document.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TextIO

from relay import safety
from relay.errors import Problem

FORMAT = 1  # the document format; a key's meaning never changes within it
Format = Literal["text", "json"]
FORMATS: tuple[Format, ...] = ("text", "json")

ErrorKind = Literal["input", "check", "operation", "interrupted"]

_target: TextIO | None = None  # the real stdout while json_mode holds sys.stdout
_emitted = False


@contextmanager
def json_mode() -> Iterator[None]:
    """For one command: stdout is stderr for everyone but `emit`."""
    global _target, _emitted
    saved = sys.stdout
    _target, _emitted = saved, False
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = saved
        _target = None


def emitted() -> bool:
    """Whether this command has written its document (the CLI then adds no error document)."""
    return _emitted


def emit(command: str, ok: bool, body: Mapping[str, Any]) -> None:
    """Write the command's one document to stdout."""
    global _emitted
    doc: dict[str, Any] = {"relay": FORMAT, "command": command, "ok": ok}
    for key, value in body.items():
        if key in doc:
            raise ValueError(f"{key!r} is a key every document has")
        doc[key] = value
    out = _target if _target is not None else sys.stdout
    # Readable (not ASCII-escaped) text, but nothing the console would rewrite into something
    # that is not JSON (relay.safety.json_text).
    out.write(safety.json_text(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n")
    out.flush()
    _emitted = True


def problem(p: Problem) -> dict[str, Any]:
    """A problem anchored in a file: ``{"path", "line", "message"}`` (line may be null)."""
    return {"path": p.path, "line": p.line, "message": p.message}


def problems(ps: Sequence[Problem]) -> list[dict[str, Any]]:
    return [problem(p) for p in ps]


def error_document(
    command: str,
    kind: ErrorKind,
    message: str,
    found: Sequence[Problem] = (),
    details: Sequence[str] = (),
) -> None:
    """The document of a command that failed before it could report: what went wrong, with the
    problems (file and line) when there are any."""
    emit(
        command,
        False,
        {
            "error": {
                "kind": kind,
                "message": message,
                "problems": problems(found),
                "details": list(details),
            }
        },
    )
