"""Settings from `mirrors/relay.yaml`. Secrets never live here: they come from the environment.

This module reads the core sections (naming, registries, lock, transport, copy). The stages'
sections (`acr:`, `harbor:`) are declared by the stages themselves and handed in by the caller
that composes the whole file (relay.commands.common), so nothing here imports a stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from relay import reference
from relay.config import naming, schema, yamlnodes
from relay.errors import InputError, Problem

SETTINGS_FILE = "mirrors/relay.yaml"
Transport = Literal["build", "copy"]
TRANSPORTS: tuple[Transport, ...] = ("build", "copy")


@dataclass(frozen=True)
class NamingSettings:
    # 64: Alibaba's ROS doc 135727 (ALIYUN::CR::Repository); other revisions say 30, so a
    # setting (docs/vendors/acr.md#name-rules).
    max_length: int = naming.DEFAULT_MAX_LENGTH
    # registry host -> name prefix, replacing the built-in one (`registry.k8s.io: ""`).
    prefixes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistrySettings:
    """How relay talks to registries; credentials come from the environment or docker config."""

    # Docker's `insecure-registries`: host[:port] or CIDR. 127.0.0.0/8 is insecure anyway.
    insecure: tuple[str, ...] = ()
    # host[:port] -> CA bundle path, relative to the repository root or absolute.
    ca_bundles: dict[str, str] = field(default_factory=dict)
    # registry -> mirror URLs tried in turn for reads (docker's registry-mirrors, containerd's
    # hosts.toml), e.g. {"docker.io": ("https://docker.m.example.cn",)}
    mirrors: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class LockSettings:
    concurrency: int = 8
    # `relay lock` warns when one entry's rules take more tags than this (select: {all: true}
    # on a busy repository can mean thousands of builds).
    warn_tags: int = 100


@dataclass(frozen=True)
class CopySettings:
    """The copy transport's target: `<registry>/<namespace>/<name>:<tag>`."""

    registry: str | None = None
    namespace: str | None = None
    concurrency: int = 4


@dataclass(frozen=True)
class RetrySettings:
    """How hard a stage's API client tries (the ACR and Harbor sections both have one)."""

    attempts: int = 5  # tries per API call, the first included
    backoff: float = 1.0  # first delay, seconds; doubles each retry, with jitter
    max_backoff: float = 30.0


RETRY = schema.Section(
    RetrySettings,
    [
        schema.Key("attempts", schema.integer(1, 20)),
        schema.Key("backoff", schema.number(0.0, 600)),
        schema.Key("max_backoff", schema.number(0.0, 600)),
    ],
)
"""A `retry:` sub-section, for stage sections to include."""


@dataclass(frozen=True)
class Settings:
    """The core of mirrors/relay.yaml. A caller that also reads stage sections subclasses it
    with one field per stage (see relay.commands.common.RelaySettings)."""

    naming: NamingSettings = field(default_factory=NamingSettings)
    registries: RegistrySettings = field(default_factory=RegistrySettings)
    lock: LockSettings = field(default_factory=LockSettings)
    transport: Transport = "build"
    copy: CopySettings = field(default_factory=CopySettings)


def _registry_problem(host: str) -> str | None:
    """A `naming.prefixes` key must be a registry host as the list's sources spell it."""
    try:
        ref = reference.parse_repository(f"{host}/x")
    except ValueError:
        return "is not a registry host such as registry.k8s.io"
    if ref.domain != host:
        return f"is spelled {ref.domain} in sources"
    return None


def _copy_registry(value: str) -> str | None:
    """`copy.registry` is a registry host[:port] as in image references, not a URL: relay
    publish builds `<registry>/<namespace>/<name>:<tag>` from it."""
    parts = urlsplit(value) if "://" in value else None
    if parts is not None:
        host = parts.netloc or "the registry host"
        return (
            f"is a URL; write the registry host alone, as in an image reference: "
            f"registry: {host} (relay uses HTTPS; plain HTTP only for registries.insecure)"
        )
    if "/" in value:
        host, _, rest = value.partition("/")
        return f"must be the registry host alone ({host}); put {rest!r} in copy.namespace"
    return None


# Keys people write into the settings file for credentials: they come from the environment.
COPY_SECRET_HINT = (
    "secrets never go in mirrors/relay.yaml; relay publish reads the target's login from "
    "RELAY_COPY_USERNAME and RELAY_COPY_PASSWORD"
)
COPY_HINTS = {k: COPY_SECRET_HINT for k in ("username", "password", "user", "token", "auth")}


def _mirror_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        return "must be an http(s) URL of a registry mirror, e.g. https://docker.m.example.cn"
    return None


CORE: dict[str, schema.Reader] = {
    "naming": schema.Section(
        NamingSettings,
        [
            schema.Key("max_length", schema.integer(naming.MIN_LENGTH, naming.MAX_LENGTH)),
            schema.Key(
                "prefixes",
                schema.map_of(
                    schema.text(naming.PREFIX_RE, "must be empty or a name such as 'k8s'"),
                    key=schema.where(schema.text(), _registry_problem),
                ),
            ),
        ],
    ),
    "registries": schema.Section(
        RegistrySettings,
        [
            schema.Key("insecure", schema.list_of(schema.text())),
            schema.Key("ca_bundles", schema.map_of(schema.text())),
            schema.Key(
                "mirrors", schema.map_of(schema.list_of(schema.where(schema.text(), _mirror_url)))
            ),
        ],
    ),
    "lock": schema.Section(
        LockSettings,
        [
            schema.Key("concurrency", schema.integer(1, 64)),
            schema.Key("warn_tags", schema.integer(1, 1_000_000)),
        ],
    ),
    "transport": schema.choice(*TRANSPORTS),
    "copy": schema.Section(
        CopySettings,
        [
            schema.Key("registry", schema.where(schema.text(), _copy_registry)),
            schema.Key("namespace", schema.text()),
            schema.Key("concurrency", schema.integer(1, 64)),
        ],
        hints=COPY_HINTS,
    ),
}

S = TypeVar("S", bound=Settings)


def load(
    repo: Path,
    *,
    stages: Mapping[str, schema.Section[Any]] | None = None,
    into: type[S] = Settings,  # type: ignore[assignment]  # the default is an S
) -> S:
    """Read the settings file; a missing file means every default."""
    path = repo / SETTINGS_FILE
    if not path.exists():
        return into(**schema.defaults(stages or {}))
    text = path.read_text(encoding="utf-8")
    return parse(text, SETTINGS_FILE, stages=stages, into=into)


def parse(
    text: str,
    path: str,
    *,
    stages: Mapping[str, schema.Section[Any]] | None = None,
    into: type[S] = Settings,  # type: ignore[assignment]  # the default is an S
) -> S:
    """The core sections plus each of ``stages`` (section name → its declaration), into the
    dataclass ``into``, which must have a field per stage section."""
    stages = stages or {}
    readers: dict[str, schema.Reader] = {**CORE, **stages}
    doc = yamlnodes.Doc(path)
    root = yamlnodes.compose(text, path)
    values: dict[str, Any] = schema.defaults(stages)
    if root is None:
        return into(**values)
    problems: list[Problem] = []
    top = yamlnodes.mapping_items(doc, root, "settings", set(readers), problems)
    for name, (_, node) in top.items():
        value = readers[name](doc, node, name, problems)
        if value is not None:
            values[name] = value
    if problems:
        raise InputError(problems)
    return into(**values)
