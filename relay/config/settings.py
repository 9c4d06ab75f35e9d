"""Settings from `mirrors/relay.yaml`. Secrets never live here: they come from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from relay.config import naming, yamlnodes
from relay.errors import InputError, Problem
from relay.stages.acr import settings as acr_settings

SETTINGS_FILE = "mirrors/relay.yaml"
TRANSPORTS = ("build", "copy")


@dataclass(frozen=True)
class NamingSettings:
    # ACR's repository name limit is UNCONFIRMED (acr-api.md §3): 30 is the safe reading.
    max_length: int = naming.DEFAULT_MAX_LENGTH


@dataclass(frozen=True)
class RegistrySettings:
    """How relay talks to registries; credentials come from the environment or docker config."""

    # Docker's `insecure-registries`: host[:port] or CIDR. 127.0.0.0/8 is insecure anyway.
    insecure: tuple[str, ...] = ()
    # host[:port] -> CA bundle path, relative to the repository root or absolute.
    ca_bundles: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LockSettings:
    concurrency: int = 8


@dataclass(frozen=True)
class CopySettings:
    """The copy transport's target: `<registry>/<namespace>/<name>:<tag>`."""

    registry: str | None = None
    namespace: str | None = None
    concurrency: int = 4


@dataclass(frozen=True)
class Settings:
    naming: NamingSettings = field(default_factory=NamingSettings)
    registries: RegistrySettings = field(default_factory=RegistrySettings)
    lock: LockSettings = field(default_factory=LockSettings)
    transport: str = "build"
    copy: CopySettings = field(default_factory=CopySettings)
    acr: acr_settings.AcrSettings = field(default_factory=acr_settings.AcrSettings)


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
    top = yamlnodes.mapping_items(
        doc,
        root,
        "settings",
        {"naming", "registries", "lock", "transport", "copy", "acr"},
        problems,
    )
    values: dict[str, object] = {}
    if "naming" in top:
        items = yamlnodes.mapping_items(doc, top["naming"][1], "naming", {"max_length"}, problems)
        if "max_length" in items:
            n = yamlnodes.integer_in(
                doc, items["max_length"][1], "naming.max_length", 2, 255, problems
            )
            if n is not None:
                values["naming"] = NamingSettings(max_length=n)
    if "registries" in top:
        values["registries"] = _registries(doc, top["registries"][1], problems)
    if "lock" in top:
        items = yamlnodes.mapping_items(doc, top["lock"][1], "lock", {"concurrency"}, problems)
        if "concurrency" in items:
            n = yamlnodes.integer_in(
                doc, items["concurrency"][1], "lock.concurrency", 1, 64, problems
            )
            if n is not None:
                values["lock"] = LockSettings(concurrency=n)
    if "transport" in top:
        node = top["transport"][1]
        value = yamlnodes.string(doc, node, "transport", problems)
        if value is not None and value not in TRANSPORTS:
            problems.append(doc.problem(node, f"transport must be one of {', '.join(TRANSPORTS)}"))
        elif value is not None:
            values["transport"] = value
    if "copy" in top:
        values["copy"] = _copy(doc, top["copy"][1], problems)
    if "acr" in top:
        values["acr"] = acr_settings.parse(doc, top["acr"][1], problems)
    if problems:
        raise InputError(problems)
    return Settings(**values)  # type: ignore[arg-type]


def _registries(doc: yamlnodes.Doc, node: yaml.Node, problems: list[Problem]) -> RegistrySettings:
    items = yamlnodes.mapping_items(doc, node, "registries", {"insecure", "ca_bundles"}, problems)
    insecure: list[str] = []
    if "insecure" in items:
        for item in yamlnodes.sequence(doc, items["insecure"][1], "registries.insecure", problems):
            value = yamlnodes.string(doc, item, "registries.insecure entry", problems)
            if value is not None:
                insecure.append(value)
    bundles: dict[str, str] = {}
    if "ca_bundles" in items:
        ca = yamlnodes.mapping_items(
            doc, items["ca_bundles"][1], "registries.ca_bundles", _AnyKey(), problems
        )
        for host, (_, value_node) in ca.items():
            value = yamlnodes.string(doc, value_node, f"registries.ca_bundles.{host}", problems)
            if value is not None:
                bundles[host] = value
    return RegistrySettings(insecure=tuple(insecure), ca_bundles=bundles)


def _copy(doc: yamlnodes.Doc, node: yaml.Node, problems: list[Problem]) -> CopySettings:
    items = yamlnodes.mapping_items(
        doc, node, "copy", {"registry", "namespace", "concurrency"}, problems
    )
    values: dict[str, object] = {}
    for key in ("registry", "namespace"):
        if key in items:
            value = yamlnodes.string(doc, items[key][1], f"copy.{key}", problems)
            if value is not None:
                values[key] = value
    if "concurrency" in items:
        n = yamlnodes.integer_in(doc, items["concurrency"][1], "copy.concurrency", 1, 64, problems)
        if n is not None:
            values["concurrency"] = n
    return CopySettings(**values)  # type: ignore[arg-type]


class _AnyKey(set):
    """Accepts every key: for maps whose keys are data (hostnames), not settings."""

    def __contains__(self, item: object) -> bool:
        return True
