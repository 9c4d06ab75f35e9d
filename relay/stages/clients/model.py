"""What `relay clients` works from: every pinned tag with its Harbor (and ACR) address.

Built once from the list, the lock and the settings; every output (the mapping, kustomize,
Kyverno, kubeadm, crictl, containerd, docker) is a pure function of it. Every address is parsed
back with the one reference grammar before anything is rendered, so no output can carry a name
that `docker pull` would read differently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import yaml

from relay import reference
from relay.config.lockfile import Lock
from relay.config.mirrors import Entry, MirrorList
from relay.config.pins import pins
from relay.config.settings import Transport
from relay.errors import InputError, Problem

Scheme = Literal["https", "http"]

try:  # libyaml writes the same text as PyYAML's Python emitter, four times as fast
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Dumper = yaml.SafeDumper


def yaml_documents(*docs: object) -> str:
    """YAML documents in the order given, keys in insertion order, long strings unfolded (a
    Kyverno pattern stays on one line)."""
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, width=1 << 16)


@dataclass(frozen=True)
class Harbor:
    """Where nodes pull from: ``<host>/<project>/<target>:<tag>``."""

    host: str  # host[:port], harbor.registry_host
    project: str
    scheme: Scheme  # "http": a plain-HTTP registry (docker's insecure-registries)
    public: bool  # harbor.project_public: private projects need pull credentials on nodes
    ca_file: str | None = None  # the CA bundle as the settings name it (for messages)
    ca_pem: str | None = None  # its certificates, PEM, nothing else

    @property
    def repository(self) -> str:
        return f"{self.host}/{self.project}"


@dataclass(frozen=True)
class Via:
    """The registry between upstream and Harbor: ACR's namespace, or the copy target."""

    registry: str
    namespace: str

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.namespace}"


@dataclass(frozen=True)
class Image:
    """One pinned tag and where it can be pulled."""

    entry: Entry
    tag: str
    digest: str  # upstream's digest (the copy transport keeps it; a build does not)
    platforms: tuple[str, ...]
    harbor: str  # host/project/target, no tag
    via: str | None  # registry/namespace/target, no tag

    @property
    def source(self) -> reference.Reference:
        return self.entry.source

    @property
    def target(self) -> str:
        return self.entry.target

    @property
    def upstream(self) -> str:
        return f"{self.entry.source.name}:{self.tag}"

    @property
    def harbor_ref(self) -> str:
        return f"{self.harbor}:{self.tag}"

    @property
    def via_ref(self) -> str | None:
        return f"{self.via}:{self.tag}" if self.via else None


@dataclass(frozen=True)
class Clients:
    harbor: Harbor
    via: Via | None
    transport: Transport
    images: tuple[Image, ...]  # list order, tags in list order
    entries: tuple[Entry, ...]
    list_path: str

    @property
    def keeps_digests(self) -> bool:
        """Whether an image in Harbor has upstream's digest: the copy transport copies
        manifests byte for byte; an ACR build makes a new manifest (same config and layers)."""
        return self.transport == "copy"

    def by_entry(self) -> list[tuple[Entry, list[Image]]]:
        grouped: dict[str, list[Image]] = {}
        for image in self.images:
            grouped.setdefault(image.source.name, []).append(image)
        return [(e, grouped[e.source.name]) for e in self.entries if e.source.name in grouped]


def build(
    mirrors: MirrorList,
    lock: Lock,
    harbor: Harbor,
    via: Via | None,
    transport: Transport,
    built: Callable[[Entry], tuple[str, ...]] | None = None,
) -> Clients:
    """Every pinned tag with its addresses; a tag with no digest yet is an InputError (run
    `relay lock`), and so is an address the reference grammar refuses. ``built`` gives the
    platforms the build transport produces for an entry (relay.stages.acr.plan's
    built_platforms): what Harbor holds then, whatever upstream has."""
    problems: list[Problem] = []
    images: list[Image] = []
    for pin in pins(mirrors, lock):
        entry = pin.entry
        locked = lock.get(entry.source.name, pin.tag)
        # The lock speaks of the pinned image only while it records the pinned digest (an
        # inline pin may name another one), as relay verify's items do.
        current = locked if locked is not None and locked.digest == pin.digest else None
        if transport == "build" and built is not None:
            platforms = built(entry)
        else:
            platforms = entry.platforms or (current.platforms if current is not None else ())
        harbor_repo = f"{harbor.repository}/{entry.target}"
        via_repo = f"{via.repository}/{entry.target}" if via else None
        bad = _check_address(harbor_repo, pin.tag, harbor.host) or (
            _check_address(via_repo, pin.tag, via.registry) if via and via_repo else None
        )
        if bad:
            problems.append(Problem(mirrors.path, entry.line, bad))
            continue
        images.append(Image(entry, pin.tag, pin.digest, platforms, harbor_repo, via_repo))
    if problems:
        raise InputError(problems)
    return Clients(harbor, via, transport, tuple(images), mirrors.entries, mirrors.path)


def _check_address(repository: str, tag: str, host: str) -> str | None:
    """Why ``repository:tag`` is not a reference that names ``host``, or None."""
    try:
        ref = reference.parse(f"{repository}:{tag}")
    except reference.InvalidReference as exc:
        return f"{repository}:{tag} is not a valid image reference: {exc}"
    if ref.domain != host or ref.name != repository:
        return f"{repository}:{tag} would be read as {ref.name} (registry {ref.domain})"
    return None


def check_host(host: str, what: str) -> str:
    """``host`` if it is a registry host[:port] as the reference grammar reads one."""
    if "@" in host:
        # user:password@host in a URL: say so without echoing the password.
        raise InputError(
            f"{what} must not carry credentials (user@host); they come from the environment"
        )
    try:
        ref = reference.parse(f"{host}/x/y")
    except reference.InvalidReference as exc:
        raise InputError(f"{what} {host!r} is not a registry host[:port]: {exc}") from None
    if ref.domain != host:
        raise InputError(f"{what} {host!r} is not a registry host[:port]")
    return host


PEM_CERT = "CERTIFICATE"
_BASE64_LINE = re.compile(r"[A-Za-z0-9+/=]*")


def certificates(text: str, path: str) -> str:
    """Only the certificates of a PEM bundle, re-joined; a bundle with a private key (or any
    other block) is refused: relay copies this file into node configuration."""
    blocks: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    current: list[str] | None = None
    kind = ""
    for line in lines:
        stripped = line.strip()
        if current is None:
            if stripped.startswith("-----BEGIN ") and stripped.endswith("-----"):
                kind = stripped[len("-----BEGIN ") : -len("-----")]
                if kind != PEM_CERT:
                    raise InputError(
                        Problem(
                            path,
                            None,
                            f"holds a {kind!r} block; the CA bundle must hold certificates only "
                            "(relay copies it onto nodes)",
                        )
                    )
                current = [stripped]
            continue
        if stripped == f"-----END {kind}-----":
            current.append(stripped)
            blocks.append("\n".join(current))
            current = None
        elif _BASE64_LINE.fullmatch(stripped):
            current.append(stripped)
        else:
            raise InputError(
                Problem(path, None, "a PEM certificate holds a line that is not base64")
            )
    if current is not None:
        raise InputError(Problem(path, None, "a PEM certificate block is not closed"))
    if not blocks:
        raise InputError(Problem(path, None, "holds no PEM certificate (-----BEGIN CERTIFICATE)"))
    return "\n".join(blocks) + "\n"


def spellings(source: reference.Reference) -> list[str]:
    """Every way a manifest can write ``source`` that docker reads as the same repository
    (reference.parse is docker's ParseNormalizedNamed): Docker Hub's short forms, with and
    without `library/`, under docker.io and its legacy host index.docker.io. Other registries
    have one spelling. Each is checked against the grammar, so the list cannot drift from it.
    """
    if source.domain != reference.DEFAULT_DOMAIN:
        forms = [source.name]
    else:
        paths = [source.path]
        rest = source.path.removeprefix(reference.OFFICIAL_PREFIX)
        if rest != source.path and "/" not in rest:
            paths.insert(0, rest)
        hosts = ["", f"{reference.DEFAULT_DOMAIN}/", f"{reference.LEGACY_DEFAULT_DOMAIN}/"]
        forms = [host + path for host in hosts for path in paths]
    return [f for f in forms if _reads_as(f, source)]


def _reads_as(text: str, source: reference.Reference) -> bool:
    try:
        return reference.parse(text).name == source.name
    except reference.InvalidReference:
        return False
