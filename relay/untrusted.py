"""Reading what relay does not control: files a pull request put in the repository, files named
on the command line, and JSON a server sent. The one place that decides how.

Files of the repository (the list, the settings, the lock, a CA bundle) are read only when they
are regular files inside the repository: a symlink that leaves it at any level of the path
(`mirrors/` itself, say) is refused, and so is a FIFO, a device (`/dev/zero`) or a directory.
Every read is capped, so a 10 GiB file cannot exhaust memory, and the text must be UTF-8. Each
refusal is an InputError naming the file.

JSON: Python's decoder recurses per nesting level and raises RecursionError (not ValueError)
on a deep document; `load_json` turns that, and a number with thousands of digits, into the
ValueError every caller already handles.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from relay.errors import InputError, OperationFailed, Problem

# The list of a large team is a few MiB; the lock of 100,000 tags ~30 MiB.
MAX_FILE = 64 << 20


def load_json(data: str | bytes, *, unique_keys: bool = False) -> Any:
    """``json.loads`` for untrusted text: any failure is a ValueError. With ``unique_keys`` a
    key twice in one object is one too (json keeps the last one silently; RFC 8259 §4 says
    names SHOULD be unique and leaves the rest to the reader)."""
    try:
        return json.loads(data, object_pairs_hook=_unique if unique_keys else None)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {json.dumps(key)[:60]}")
        out[key] = value
    return out


_COUNT = re.compile(r"[0-9]{1,32}")


def count(text: str | None) -> int | None:
    """A non-negative decimal number a server sent (a Content-Length, a Retry-After, an id at
    the end of a Location, an X-Total-Count), or None when it is not one. ASCII digits only:
    ``str.isdigit()`` also takes "²" (which ``int`` and ``float`` then reject with a
    ValueError) and "٣"; more than 32 digits is no count a server means."""
    if text is None:
        return None
    text = text.strip()
    return int(text) if _COUNT.fullmatch(text) else None


def repo_path(repo: Path, rel: str) -> Path:
    """``repo / rel``, refused (InputError) when a symlink on the way leads out of ``repo``.

    For files relay writes as well as reads: a symlinked `mirrors/` must not let
    `relay generate` or `relay lock` write or delete outside the repository.
    """
    try:
        root = repo.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise InputError(_problem(str(repo), f"cannot open the repository: {_why(exc)}")) from None
    path = root / rel
    try:
        real = path.resolve()  # not strict: the file may not exist yet
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise InputError(_problem(rel, _why(exc))) from None
    if real != root and not real.is_relative_to(root):
        raise InputError(
            _problem(rel, "leads out of the repository through a symlink; relay does not follow it")
        )
    return path


def read_repo_text(
    repo: Path, rel: str, *, limit: int = MAX_FILE, keep_bom: bool = False
) -> str | None:
    """A regular file of the repository as text; None if there is none. A UTF-8 byte order
    mark is dropped, unless ``keep_bom`` (for an edit that must write it back)."""
    path = repo_path(repo, rel)
    return _read(path, rel, limit, "utf-8" if keep_bom else "utf-8-sig")


def read_text(path: str | os.PathLike[str], *, limit: int = MAX_FILE, name: str = "") -> str:
    """A file named by the user (a command-line argument, an environment variable): it must
    be a regular file (a symlink to one is fine), at most ``limit`` bytes, UTF-8."""
    shown = name or str(path)
    text = _read(Path(path), shown, limit)
    if text is None:
        raise InputError(_problem(shown, "cannot read: no such file"))
    return text


def _read(path: Path, shown: str, limit: int, encoding: str = "utf-8-sig") -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return None
        raise InputError(_problem(shown, f"cannot read: {_why(exc)}")) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(_problem(shown, "is a directory, not a file"))
        if not stat.S_ISREG(info.st_mode):
            raise InputError(_problem(shown, "is not a regular file (a device or a pipe?)"))
        if info.st_size > limit:
            raise InputError(_problem(shown, f"is larger than {limit >> 20} MiB"))
        data = _read_fd(fd, limit, shown)
    except OSError as exc:
        raise InputError(_problem(shown, f"cannot read: {_why(exc)}")) from None
    finally:
        os.close(fd)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(Problem(shown, line, "not UTF-8 text")) from None


def _read_fd(fd: int, limit: int, shown: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(fd, 1 << 20):
        size += len(chunk)
        if size > limit:  # it grew while being read
            raise InputError(_problem(shown, f"is larger than {limit >> 20} MiB"))
        chunks.append(chunk)
    return b"".join(chunks)


def _problem(path: str, message: str) -> Problem:
    return Problem(path if len(path) <= 200 else path[:200] + "...", None, message)


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def write_failed(path: str, exc: OSError) -> OperationFailed:
    """A write that the file system refused (a read-only repository, a full disk)."""
    return OperationFailed(f"cannot write {path}: {_why(exc)}")
