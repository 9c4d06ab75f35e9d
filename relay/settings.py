"""Settings from `mirrors/relay.yaml`. Secrets never live here: they come from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from relay import naming, yamlnodes
from relay.errors import InputError, Problem

SETTINGS_FILE = "mirrors/relay.yaml"


@dataclass(frozen=True)
class NamingSettings:
    # ACR's repository name limit is UNCONFIRMED (acr-api.md §3): 30 is the safe reading.
    max_length: int = naming.DEFAULT_MAX_LENGTH


@dataclass(frozen=True)
class Settings:
    naming: NamingSettings = field(default_factory=NamingSettings)


def load(repo: Path) -> Settings:
    """Read the settings file; a missing file means every default."""
    path = repo / SETTINGS_FILE
    if not path.exists():
        return Settings()
    text = path.read_text(encoding="utf-8")
    return parse(text, SETTINGS_FILE)


def parse(text: str, path: str) -> Settings:
    doc = yamlnodes.Doc(path)
    root = yamlnodes.compose(text, path)
    if root is None:
        return Settings()
    problems: list[Problem] = []
    top = yamlnodes.mapping_items(doc, root, "settings", {"naming"}, problems)
    naming_settings = NamingSettings()
    if "naming" in top:
        items = yamlnodes.mapping_items(doc, top["naming"][1], "naming", {"max_length"}, problems)
        if "max_length" in items:
            node = items["max_length"][1]
            value = yamlnodes.integer(doc, node, "naming.max_length", problems)
            if value is not None:
                if not naming.MIN_LENGTH <= value <= 255:
                    problems.append(doc.problem(node, "naming.max_length must be from 2 to 255"))
                else:
                    naming_settings = NamingSettings(max_length=value)
    if problems:
        raise InputError(problems)
    return Settings(naming=naming_settings)
