"""`relay doctor [--timeout S] [-o json]`: everything a run needs, checked at once.

The checks live in relay.stages.doctor; this verb composes the settings (with every stage's
section) and prints one line per finding, then a summary. Exit 1 when something a configured
stage needs is missing or broken.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from relay.commands.common import RelaySettings, load_settings
from relay.config import mirrors
from relay.errors import CheckFailed
from relay.output import document
from relay.stages import doctor as stage


def _load_list(repo: Path, cfg: RelaySettings) -> mirrors.MirrorList:
    return mirrors.load(repo, max_name_length=cfg.naming.max_length, prefixes=cfg.naming.prefixes)


def doctor(*, repo: Path, timeout: float = 10.0, output: document.Format = "text") -> int:
    load: Any = load_settings
    report = stage.doctor(
        repo, os.environ, timeout=timeout, load_settings=load, load_list=_load_list
    )
    if output == "json":
        document.emit(
            "doctor",
            report.ok,
            {
                "findings": [f.json() for f in report.findings],
                "counts": report.counts(),
                "seconds": round(report.seconds, 3),
            },
        )
    else:
        for finding in report.findings:
            print(finding.line())
        print(report.summary())
    if not report.ok:
        blocking = [f for f in report.findings if f.level == "fail" and f.needed]
        raise CheckFailed(
            f"{len(blocking)} problem(s) block a configured stage: "
            + "; ".join(f.subject for f in blocking)
        )
    return 0
