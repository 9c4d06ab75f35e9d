"""`relay validate`: check the list, the settings and the lock; say which files were checked."""

from __future__ import annotations

from pathlib import Path

from relay.commands.common import load
from relay.config import lockfile, settings
from relay.config.mirrors import LIST_FILE
from relay.errors import InputError
from relay.output import document


def validate(*, repo: Path, output: document.Format = "text") -> int:
    cfg, mirror_list = load(repo)
    lock = lockfile.read(repo)
    if cfg.acr.namespace and cfg.transport == "build":
        # What ACR would refuse mid-run, every run: caught here, before any write.
        from relay.stages.acr.plan import location_problems

        problems = location_problems(mirror_list, lock)
        if problems:
            raise InputError(problems)
    tags = sum(len(e.tags) for e in mirror_list.entries)
    rules = sum(1 for e in mirror_list.entries if e.select is not None)
    # Which files were read: a settings file or lock that is not there is not "checked".
    checked = [LIST_FILE]
    skipped: list[str] = []
    for name in (settings.SETTINGS_FILE, lockfile.LOCK_FILE):
        (checked if (repo / name).is_file() else skipped).append(name)
    locked = sum(len(t) for t in lock.images.values())
    if output == "json":
        document.emit(
            "validate",
            True,
            {
                "files": checked,
                "absent": skipped,
                "images": len(mirror_list.entries),
                "tags": tags,
                "rules": rules,
                "locked": locked,
            },
        )
        return 0
    print(
        f"{mirror_list.path}: {len(mirror_list.entries)} images, {tags} explicit tags, "
        f"{rules} with selection rules: ok"
    )
    for name in checked[1:]:
        what = f"{locked} locked tags" if name == lockfile.LOCK_FILE else "settings"
        print(f"{name}: {what}: ok")
    for name in skipped:
        print(
            f"{name}: not there (defaults)"
            if name == settings.SETTINGS_FILE
            else f"{name}: not there yet (relay lock writes it)"
        )
    return 0
