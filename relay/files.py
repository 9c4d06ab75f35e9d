"""Writing files so that re-runs are no-ops and crashes leave no half-written file."""

from __future__ import annotations

import os
from pathlib import Path


def write_if_changed(path: Path, content: str, *, parent_exists: bool = False) -> bool:
    """Atomically replace `path` with `content` unless it already holds exactly that.

    Leaving an unchanged file alone keeps its mtime, so re-runs are visibly no-ops. The new
    content goes to a temporary file beside the target and is renamed over it, so a crash
    leaves either the old file or the new one.
    """
    data = content.encode("utf-8")
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        if not parent_exists:
            path.parent.mkdir(parents=True, exist_ok=True)
    # One writer per repository at a time; the pid keeps concurrent processes apart.
    tmp = path.with_name(f".{path.name}.relay-{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True
