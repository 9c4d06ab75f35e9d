"""Builders shared by the `relay sync` tests (tests/test_sync_*.py): images and auth files
written to a temporary directory, and the problems an InputError carries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relay import sync
from relay.errors import InputError

DIGEST = "sha256:" + "ab" * 32


def write(path: Path, content: Any) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return path


def rules(tmp_path: Path, content: Any, name: str = "images.json", **env: str) -> list[sync.Rule]:
    return sync.load_rules(write(tmp_path / name, content), environ=env)


def problems(exc: pytest.ExceptionInfo[InputError]) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in exc.value.problems]
