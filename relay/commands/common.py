"""What several commands load: the settings and the mirrors list of a repository."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from relay.config import mirrors, settings
from relay.errors import InputError


def load(repo: Path) -> tuple[settings.Settings, mirrors.MirrorList]:
    """The settings and the mirrors list; every problem in either is an InputError."""
    if not repo.is_dir():
        raise InputError(f"--repo {repo}: not a directory")
    cfg = settings.load(repo)
    return cfg, mirrors.load(repo, cfg)


def optional_settings(repo: Path) -> settings.Settings | None:
    """The settings when the repository has a settings file: `copy` and `sync` also run
    outside a relay repository."""
    return settings.load(repo) if (repo / settings.SETTINGS_FILE).exists() else None


def config_platforms(
    cfg: settings.Settings,
) -> Callable[[mirrors.Entry], tuple[str, ...]] | None:
    """With an ACR stage, the platform whose config the lock records for each entry: the ACR
    stage compares it, and recording it once saves an upstream request per tag per apply."""
    if not cfg.acr.namespace:
        return None
    from relay.stages.acr.plan import compared_platform

    def platforms(entry: mirrors.Entry) -> tuple[str, ...]:
        return (compared_platform(entry, cfg.acr),)

    return platforms
