"""`relay sync --images FILE [--auth FILE]`: image-syncer's files, copied by relay."""

from __future__ import annotations

from pathlib import Path

from relay.commands.common import optional_settings
from relay.errors import OperationFailed
from relay.sync import run


def sync(*, repo: Path, images: str, auth: str | None, proc: int, retries: int) -> int:
    cfg = optional_settings(repo)
    report = run(
        images,
        auth,
        proc=proc,
        retries=retries,
        settings=cfg.registries if cfg else None,
        repo=repo,
    )
    if not report.ok:
        raise OperationFailed(
            "\n".join(
                [f"{len(report.failed)} image(s) failed after the retries", *report.unreachable]
            )
        )
    return 0
