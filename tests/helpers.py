"""Small builders shared by the offline-core tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
DIGEST_C = "sha256:" + "c" * 64


def write_repo(
    root: Path, images_yaml: str, relay_yaml: str | None = None, lock: str | None = None
) -> Path:
    (root / "mirrors").mkdir(parents=True, exist_ok=True)
    (root / "mirrors" / "images.yaml").write_text(textwrap.dedent(images_yaml))
    if relay_yaml is not None:
        (root / "mirrors" / "relay.yaml").write_text(textwrap.dedent(relay_yaml))
    if lock is not None:
        (root / "mirrors" / "images.lock").write_text(lock)
    return root
