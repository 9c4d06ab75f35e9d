"""What several commands load: the whole settings file and the mirrors list of a repository.

The settings are composed here, at the top: the core sections from relay.config.settings plus
each stage's own section, declared by the stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relay import files
from relay.config import mirrors, settings
from relay.config.schema import Section
from relay.errors import InputError
from relay.gh.settings import SECTION as GITHUB_SECTION
from relay.gh.settings import GithubSettings
from relay.stages.acr.settings import SECTION as ACR_SECTION
from relay.stages.acr.settings import AcrSettings
from relay.stages.harbor.settings import SECTION as HARBOR_SECTION
from relay.stages.harbor.settings import HarborSettings, cross_check


@dataclass(frozen=True)
class RelaySettings(settings.Settings):
    """Everything in mirrors/relay.yaml: the core sections and one field per stage section."""

    acr: AcrSettings = field(default_factory=AcrSettings)
    harbor: HarborSettings = field(default_factory=HarborSettings)
    github: GithubSettings = field(default_factory=GithubSettings)


STAGE_SECTIONS: dict[str, Section[Any]] = {
    "acr": ACR_SECTION,
    "harbor": HARBOR_SECTION,
    "github": GITHUB_SECTION,
}


def load_settings(repo: Path) -> RelaySettings:
    """The whole settings file; problems that need two sections at once (the Harbor URL against
    registries.insecure, say) are reported with the others' line numbers."""
    cfg = settings.load(repo, stages=STAGE_SECTIONS, into=RelaySettings)
    problems = cross_check(
        cfg.harbor,
        repo=repo,
        insecure=cfg.registries.insecure,
        has_source=bool(cfg.acr.namespace) or bool(cfg.copy.registry and cfg.copy.namespace),
    )
    if problems:
        raise InputError(problems)
    return cfg


def load(repo: Path) -> tuple[RelaySettings, mirrors.MirrorList]:
    """The settings and the mirrors list; every problem in either is an InputError."""
    if not repo.is_dir():
        raise InputError(f"--repo {repo}: not a directory")
    cfg = load_settings(repo)
    return cfg, mirrors.load(
        repo, max_name_length=cfg.naming.max_length, prefixes=cfg.naming.prefixes
    )


def optional_settings(repo: Path) -> RelaySettings | None:
    """The settings when the repository has a settings file: `copy` and `sync` also run
    outside a relay repository."""
    return load_settings(repo) if (repo / settings.SETTINGS_FILE).exists() else None


def config_platforms(
    cfg: RelaySettings,
) -> Callable[[mirrors.Entry], tuple[str, ...]] | None:
    """With an ACR stage, the platform whose config the lock records for each entry: the ACR
    stage compares it, and recording it once saves an upstream request per tag per apply."""
    if not cfg.acr.namespace:
        return None
    from relay.stages.acr.plan import compared_platform

    def platforms(entry: mirrors.Entry) -> tuple[str, ...]:
        return (compared_platform(entry, cfg.acr),)

    return platforms


def write_delivered(path: Path, targets: list[str]) -> None:
    """`--delivered FILE`: the target names a delivery built or copied, one per line, sorted
    and once each; the Harbor job replicates just these (`relay harbor replicate --only`)."""
    text = "".join(f"{name}\n" for name in sorted(set(targets)))
    # Atomic: a run killed while writing it leaves the old file or none, never half a list.
    files.write_if_changed(path, text)
