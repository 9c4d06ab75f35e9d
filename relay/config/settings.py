"""Settings from `mirrors/relay.yaml`. Secrets never live here: they come from the environment.

This module reads the core sections (naming, registries, lock, transport, copy). The stages'
sections (`acr:`, `harbor:`) are declared by the stages themselves and handed in by the caller
that composes the whole file (relay.commands.common), so nothing here imports a stage.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from relay import reference, safety, untrusted
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
class RegistryLimits:
    """How much relay reads from a registry and for how long (relay.registry.limits says
    why each bound exists); the defaults are relay.registry.limits.Limits'."""

    deadline: float = 300.0  # seconds for a whole answer; a streamed blob: each MiB of it
    manifest_bytes: int = 4 << 20  # docker and containerd refuse larger manifests
    token_bytes: int = 1 << 20
    answer_bytes: int = 16 << 20  # other answers read into memory: tag pages, errors
    tag_pages: int = 1000
    connect_timeout: float = 5.0  # seconds for a connection: TCP, TLS handshake, proxy CONNECT
    read_timeout: float = 30.0  # seconds for any byte of an answer once connected


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
    limits: RegistryLimits = field(default_factory=RegistryLimits)


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


def _insecure_entry(value: str) -> str | None:
    """Docker's insecure-registries entries: a CIDR, or a host[:port]."""
    if "/" in value:
        try:
            ipaddress.ip_network(value.strip(), strict=False)
        except ValueError as exc:
            return f"{safety.show(value)} is not a network: {exc}"
        return None
    return _registry_problem(value)


def _registry_problem(host: str) -> str | None:
    """A registry host as the list's sources spell it (a `naming.prefixes` key, an insecure
    registry, copy.registry): no scheme, path, whitespace or control character."""
    try:
        ref = reference.parse_repository(f"{host}/x")
    except ValueError:
        return "is not a registry host such as registry.k8s.io"
    if ref.domain != host:
        return f"is spelled {ref.domain} in sources"
    if naming.host_case_problem(host) is not None:
        return (
            f"'{host}' has upper case (hosts are case-insensitive); did you mean '{host.lower()}'?"
        )
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
    return _registry_problem(value)


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
            schema.Key("insecure", schema.list_of(schema.where(schema.text(), _insecure_entry))),
            schema.Key("ca_bundles", schema.map_of(schema.text())),
            schema.Key(
                "mirrors", schema.map_of(schema.list_of(schema.where(schema.text(), _mirror_url)))
            ),
            schema.Key(
                "limits",
                schema.Section(
                    RegistryLimits,
                    [
                        schema.Key("deadline", schema.number(1, 86400)),
                        schema.Key("manifest_bytes", schema.integer(1024, 1 << 30)),
                        schema.Key("token_bytes", schema.integer(1024, 1 << 30)),
                        schema.Key("answer_bytes", schema.integer(1024, 1 << 30)),
                        schema.Key("tag_pages", schema.integer(1, 1_000_000)),
                        schema.Key("connect_timeout", schema.number(0.5, 300)),
                        schema.Key("read_timeout", schema.number(1, 3600)),
                    ],
                ),
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
    text = untrusted.read_repo_text(repo, SETTINGS_FILE)  # a regular file inside repo, capped
    if text is None:
        return into(**schema.defaults(stages or {}))
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
    yamlnodes.refuse_aliases(doc, root)  # billion laughs, self-reference: as the mirrors list
    problems: list[Problem] = []
    top = yamlnodes.mapping_items(doc, root, "settings", set(readers), problems)
    for name, (_, node) in top.items():
        value = readers[name](doc, node, name, problems)
        if value is not None:
            values[name] = value
    if problems:
        raise InputError(problems)
    return into(**values)
