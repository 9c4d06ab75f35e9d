"""Writing files so that re-runs are no-ops and crashes leave no half-written file.

A write is a temporary file renamed over the target. An interrupted run (Ctrl-C, relay.cli)
that ends the process without waiting for its threads first waits for the writes in progress
to finish (`settle`), so it leaves no temporary file behind either.
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from relay.errors import OperationFailed

# The temporary file of a write: `.<name>.relay-<pid>.tmp`, beside the target or in the
# caller's `tmp_dir`. A process killed mid-write leaves one behind (STRAY_TMP matches them).
STRAY_TMP = re.compile(r"\A\..+\.relay-[0-9]+\.tmp\Z")


@dataclass(frozen=True)
class Change:
    """One file a stage that owns a directory (relay generate's Dockerfiles, relay clients'
    output directory) creates, updates or deletes: planned, printed, then applied."""

    action: Literal["create", "update", "delete"]
    path: str  # relative to the directory the stage writes into
    content: str | None = None

    def __str__(self) -> str:
        return f"{self.action} {self.path}"


_writes = threading.Condition()
_in_progress = 0


@contextmanager
def _writing() -> Iterator[None]:
    global _in_progress
    with _writes:
        _in_progress += 1
    try:
        yield
    finally:
        with _writes:
            _in_progress -= 1
            _writes.notify_all()


def settle(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the writes in progress to finish; True if none is
    left. For a process about to end without unwinding its threads."""
    end = time.monotonic() + timeout
    with _writes:
        while _in_progress:
            left = end - time.monotonic()
            if left <= 0:
                return False
            _writes.wait(left)
    return True


def write_if_changed(
    path: Path, content: str, *, parent_exists: bool = False, tmp_dir: Path | None = None
) -> bool:
    """Atomically replace `path` with `content` unless it already holds exactly that.

    Leaving an unchanged file alone keeps its mtime, so re-runs are visibly no-ops. The new
    content goes to a temporary file beside the target and is renamed over it, so a crash
    leaves either the old file or the new one. With ``tmp_dir`` (on the same file system) the
    temporary file is made there instead, where a caller can find what a crash left behind.
    """
    data = content.encode("utf-8")
    with io_errors("write", path):
        return _write(path, data, parent_exists, tmp_dir)


@contextmanager
def io_errors(action: str, path: Path) -> Iterator[None]:
    """An OSError inside as OperationFailed: `cannot <action> <path>: <reason>`. A read-only
    checkout, a full disk: one line naming the file, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise OperationFailed(f"cannot {action} {path}: {exc.strerror or exc}") from None


def _write(path: Path, data: bytes, parent_exists: bool, tmp_dir: Path | None) -> bool:
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        if not parent_exists:
            path.parent.mkdir(parents=True, exist_ok=True)
    # One writer per repository at a time; the pid keeps concurrent processes apart.
    name = f".{path.name}.relay-{os.getpid()}.tmp"
    tmp = tmp_dir / name if tmp_dir is not None else path.with_name(name)
    with _writing():
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                # On disk before the rename: otherwise a crash after it can leave the new name
                # with empty content (ext4 with delalloc, XFS), the very file this replaces.
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _sync_dir(path.parent)
    return True


def _sync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (fsync(2): syncing a file does not sync the
    directory entry that names it)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems cannot sync a directory (EINVAL); the file itself is on disk.
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def remove_empty_parents(directory: Path, root: Path) -> None:
    """Remove `directory` and its parents while they are empty, up to (not including) `root`,
    the resolved directory a stage owns; a delete leaves no empty directory behind."""
    while directory.resolve() != root and directory.resolve().is_relative_to(root):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def remove_strays(path: Path) -> list[Path]:
    """Remove what killed writes of `path` left beside it (`.<name>.relay-<pid>.tmp`, empty or
    half written); the removed files. One writer per repository at a time, so any such file is
    a dead process's. Only regular files are removed, never what a symlink points at."""
    prefix, removed = f".{path.name}.relay-", []
    try:
        entries = list(os.scandir(path.parent))
    except FileNotFoundError:
        return []
    for entry in entries:
        name = entry.name
        if (
            name.startswith(prefix)
            and STRAY_TMP.fullmatch(name)
            and name[len(prefix) : -len(".tmp")].isdigit()
            and entry.is_file(follow_symlinks=False)
        ):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise OperationFailed(
                    f"cannot remove {entry.path}: {exc.strerror or exc}"
                ) from None
            removed.append(Path(entry.path))
    return removed
