"""Where registry credentials come from.

Providers answer ``get(registry, repository)``. Supported sources:

* Docker ``config.json`` (and the containers ``auth.json``, same format): ``auths`` entries with a
  base64 ``auth`` or ``username``/``password``/``identitytoken``; ``credHelpers`` and
  ``credsStore``, which run ``docker-credential-<helper> get`` only when that binary is on PATH.
* image-syncer auth files (JSON or YAML): ``{"registry[/namespace]": {"username", "password",
  "insecure"}}`` with the longest matching prefix winning; ``"$VAR"``/``"${VAR}"`` values read
  the environment, as image-syncer does.
* The environment: ``RELAY_REGISTRY_AUTH``, one JSON object mapping ``registry[/namespace]``
  exactly to ``"username:password"`` (``{"registry.cn-hangzhou.aliyuncs.com": "u:p",
  "harbor.lan:5000": "u:p"}``); and, for hosts made only of letters, digits and dots,
  ``RELAY_REGISTRY_AUTH_<HOST>=username:password`` where ``<HOST>`` is the host upper-cased
  with ``.`` as ``_`` (``ghcr.io`` → ``RELAY_REGISTRY_AUTH_GHCR_IO``). The password is
  everything after the first colon.

A credential must reach only the host it was configured for. The per-host variable folds
every character other than A-Z/0-9 to ``_``, so on its own it cannot tell
``registry.cn-hangzhou.aliyuncs.com`` from the look-alike ``registry-cn-hangzhou-aliyuncs.com``
or ``harbor.lan:5000`` from ``harbor-lan-5000``: a pull request adding the look-alike would
have received the secret. The folding is injective on hosts of letters, digits and dots only
(``.`` is then the one character that becomes ``_``), so the per-host form is read for those
hosts alone; a host with ``-``, ``:`` or brackets whose folded variable is set is an error
that names the exact form to use instead. ``RELAY_REGISTRY_AUTH`` keys are compared exactly.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import yaml

from relay import safety, untrusted
from relay.errors import InputError, Problem

log = logging.getLogger(__name__)

DOCKER_HUB = "docker.io"
# The key `docker login` writes for Docker Hub, and what credential helpers expect for it.
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_ALIASES = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
ENV_PREFIX = "RELAY_REGISTRY_AUTH_"
ENV_MAP = "RELAY_REGISTRY_AUTH"
# Hosts the per-host variable names unambiguously: lower-case letters, digits and dots only.
_LEGACY_HOST = re.compile(r"[a-z0-9]+(?:\.[a-z0-9]+)*")


@dataclass(frozen=True)
class Credential:
    """A username and secret. ``repr`` never shows the secret."""

    username: str
    password: str = field(repr=False)
    identity_token: str | None = field(default=None, repr=False)
    source: str = ""

    def __post_init__(self) -> None:
        # Whatever provider made it, its secrets are known to relay.safety from now on, in
        # every form (raw, base64 of user:password as a Basic header carries it, URL-encoded).
        safety.add_credential(self.username, self.password)
        safety.add_secret(self.identity_token)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.identity_token) if s)


@runtime_checkable
class CredentialProvider(Protocol):
    def get(self, registry: str, repository: str | None = None) -> Credential | None:
        """Credentials for ``registry`` (``host[:port]``) and optionally one repository in it."""
        ...


def normalise_registry(name: str) -> str:
    """Canonical registry key: no scheme, no ``/v1/``/``/v2/`` suffix, Docker Hub as docker.io.

    ``"https://index.docker.io/v1/"`` → ``"docker.io"``;
    ``"Quay.io/coreos"`` → ``"quay.io/coreos"``.
    """
    value = name.strip()
    value = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", value)
    value = value.rstrip("/")
    value = re.sub(r"/v[12]$", "", value)
    host, sep, path = value.partition("/")
    host = host.lower()
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    return f"{host}{sep}{path}" if path else host


def _prefix_match(keys: Iterable[str], registry: str, repository: str | None) -> str | None:
    """Longest ``registry[/namespace]`` key that covers ``registry/repository``.

    Namespaces match on whole path segments, so ``quay.io/core`` does not cover ``coreos/etcd``.
    """
    target = normalise_registry(registry)
    full = f"{target}/{repository.strip('/')}" if repository else target
    best: str | None = None
    for key in keys:
        if full == key or full.startswith(key + "/"):
            if best is None or len(key) > len(best):
                best = key
    return best


def _from_pair(username: str | None, password: str | None, source: str) -> Credential | None:
    if not username and not password:
        return None
    return Credential(username=username or "", password=password or "", source=source)


class StaticCredentials:
    """Credentials given in code: ``{"registry[/namespace]": Credential}``, longest prefix wins."""

    def __init__(self, entries: Mapping[str, Credential] | None = None) -> None:
        self._entries = {normalise_registry(k): v for k, v in (entries or {}).items()}

    def get(self, registry: str, repository: str | None = None) -> Credential | None:
        key = _prefix_match(self._entries, registry, repository)
        return self._entries[key] if key else None


class AmbiguousCredentials(InputError):
    """A per-host credential variable that could name more than one host (exit 2)."""


class EnvCredentials:
    """``RELAY_REGISTRY_AUTH`` (an exact host → ``user:password`` map) and, for hosts of
    letters, digits and dots, ``RELAY_REGISTRY_AUTH_<HOST>`` (see the module docstring)."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        prefix: str = ENV_PREFIX,
        map_variable: str = ENV_MAP,
    ) -> None:
        self._environ = environ if environ is not None else os.environ
        self._prefix = prefix
        self._map_variable = map_variable
        self._map = _parse_map(self._environ.get(map_variable), map_variable)

    @staticmethod
    def variable_name(registry: str, prefix: str = ENV_PREFIX) -> str:
        """The per-host variable for ``registry`` (only read when `unambiguous` is true)."""
        return prefix + re.sub(r"[^A-Z0-9]", "_", _host(registry).upper())

    @staticmethod
    def unambiguous(registry: str) -> bool:
        """True when no other host folds to the same per-host variable."""
        return _LEGACY_HOST.fullmatch(_host(registry)) is not None

    @staticmethod
    def with_entry(
        environ: Mapping[str, str], registry: str, value: str, map_variable: str = ENV_MAP
    ) -> dict[str, str]:
        """``environ`` with ``registry`` → ``value`` (``user:password``) added to its
        ``RELAY_REGISTRY_AUTH`` map (replacing an entry for that registry)."""
        env = dict(environ)
        try:
            entries = untrusted.load_json(env.get(map_variable) or "{}")
        except ValueError:
            entries = None
        if not isinstance(entries, dict):
            _parse_map(env.get(map_variable), map_variable)  # raises the InputError that says why
            entries = {}
        entries = {
            k: v for k, v in entries.items() if normalise_registry(str(k)) != _host(registry)
        }
        entries[registry] = value
        env.update(EnvCredentials.environment(entries, map_variable))
        return env

    @staticmethod
    def environment(entries: Mapping[str, str], map_variable: str = ENV_MAP) -> dict[str, str]:
        """The environment that gives each ``registry`` its ``user:password``: one
        ``RELAY_REGISTRY_AUTH`` map (what the sandbox and the tests export)."""
        return {map_variable: json.dumps(dict(entries), sort_keys=True)}

    def get(self, registry: str, repository: str | None = None) -> Credential | None:
        key = _prefix_match(self._map, registry, repository)
        if key is not None:
            return self._map[key]
        name = self.variable_name(registry, self._prefix)
        value = self._environ.get(name)
        if not value:
            return None
        host = _host(registry)
        if not self.unambiguous(host):
            example = json.dumps({host: "user:password"})
            raise AmbiguousCredentials(
                Problem(
                    name,
                    None,
                    f"is set, but it cannot say which registry it is for: {host} and other "
                    "hosts (with '-', ':' or '.' in other places) fold to the same name, so "
                    f"relay does not send it to {host}. If it is meant for {host}, set "
                    f"{self._map_variable}='{example}' instead; otherwise unset it",
                )
            )
        username, sep, password = value.partition(":")
        if not sep:
            log.warning("%s is set but not in the form username:password; ignoring it", name)
            return None
        return _from_pair(username, password, f"environment variable {name}")


def _host(registry: str) -> str:
    return normalise_registry(registry).split("/", 1)[0]


def _parse_map(value: str | None, name: str) -> dict[str, Credential]:
    """``{"registry[/namespace]": "user:password"}``; an InputError that never shows a value."""
    if not value or not value.strip():
        return {}
    try:
        doc = untrusted.load_json(value)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise InputError(
            Problem(
                name,
                None,
                'must be a JSON object mapping registries to "user:password", e.g. '
                '{"harbor.lan:5000": "user:password"}',
            )
        )
    out: dict[str, Credential] = {}
    for raw_key, item in doc.items():
        key = normalise_registry(str(raw_key))
        username, sep, password = item.partition(":") if isinstance(item, str) else ("", "", "")
        if not key or not sep:
            raise InputError(
                Problem(
                    name,
                    None,
                    f'the entry for {safety.show(raw_key)} must be a string "username:password"',
                )
            )
        if key in out:
            raise InputError(Problem(name, None, f"{key} is given twice"))
        cred = _from_pair(username, password, f"environment variable {name} ({key})")
        if cred is not None:
            out[key] = cred
    return out


# The whole-value "$NAME" / "${NAME}" form an image-syncer auth file's values may take
# (relay.sync.files reads the same form).
ENV_REF = re.compile(r"^\$(?:\{(\w+)\}|(\w+))$")


def _expand_env(value: object, environ: Mapping[str, str], where: str) -> str | None:
    if value is None:
        return None
    text = str(value)
    match = ENV_REF.match(text.strip())
    if not match:
        return text
    name = match.group(1) or match.group(2)
    if name not in environ:
        log.warning("%s refers to unset environment variable %s", where, name)
        return None
    return environ[name]


@dataclass(frozen=True)
class _SyncerEntry:
    credential: Credential | None
    insecure: bool


class ImageSyncerAuth:
    """image-syncer's auth file: ``{"registry[/namespace]": {"username","password","insecure"}}``.

    Also answers :meth:`insecure` so the client can treat those registries like Docker's
    insecure-registries (image-syncer uses the flag to mean "plain HTTP").
    """

    def __init__(
        self,
        data: Mapping[str, object],
        *,
        source: str = "image-syncer auth",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = environ if environ is not None else os.environ
        self._entries: dict[str, _SyncerEntry] = {}
        for raw_key, raw in data.items():
            key = normalise_registry(str(raw_key))
            if not isinstance(raw, Mapping):
                raise ValueError(f"{source}: entry {raw_key!r} must be a mapping")
            where = f"{source} entry {raw_key!r}"
            cred = _from_pair(
                _expand_env(raw.get("username"), env, where),
                _expand_env(raw.get("password"), env, where),
                f"{source} ({raw_key})",
            )
            self._entries[key] = _SyncerEntry(cred, _truthy(raw.get("insecure")))

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
    ) -> ImageSyncerAuth:
        text = untrusted.read_text(path)
        # YAML is a superset of JSON, so one loader serves both of image-syncer's formats.
        try:
            data = yaml.safe_load(text) or {}
        except (yaml.YAMLError, RecursionError) as exc:
            raise ValueError(f"{path}: not YAML or JSON: {type(exc).__name__}") from None
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: auth file must be a mapping of registry to credentials")
        return cls(data, source=str(path), environ=environ)

    def get(self, registry: str, repository: str | None = None) -> Credential | None:
        key = _prefix_match(self._entries, registry, repository)
        return self._entries[key].credential if key else None

    def insecure(self, registry: str) -> bool:
        host = normalise_registry(registry).split("/", 1)[0]
        return any(
            entry.insecure and key.split("/", 1)[0] == host for key, entry in self._entries.items()
        )

    @property
    def insecure_registries(self) -> list[str]:
        return sorted({k.split("/", 1)[0] for k, v in self._entries.items() if v.insecure})


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


HelperRunner = Callable[[str, str], "dict[str, str] | None"]


def run_credential_helper(helper: str, server_url: str) -> dict[str, str] | None:
    """Run ``docker-credential-<helper> get``; None if absent or it has nothing for the server.

    The protocol: server URL on stdin, ``{"ServerURL", "Username", "Secret"}`` on stdout.
    """
    exe = shutil.which(f"docker-credential-{helper}")
    if exe is None:
        log.debug("credential helper docker-credential-%s is not installed", helper)
        return None
    try:
        proc = subprocess.run(  # noqa: S603 - the executable comes from PATH lookup, by design
            [exe, "get"],
            input=server_url,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("credential helper %s failed for %s: %s", helper, server_url, exc)
        return None
    if proc.returncode != 0:
        # "credentials not found in native keychain" is the normal miss; log nothing secret.
        log.debug("credential helper %s has no entry for %s", helper, server_url)
        return None
    try:
        data = untrusted.load_json(proc.stdout)
    except ValueError:
        log.warning("credential helper %s returned malformed output for %s", helper, server_url)
        return None
    return data if isinstance(data, dict) else None


class DockerConfig:
    """Docker's ``config.json`` / containers' ``auth.json``.

    Lookup order follows Docker: ``credHelpers[registry]``, then ``credsStore``, then the inline
    ``auths`` entry. A helper that is not installed or has no entry falls through to ``auths``.
    ``auths`` keys may carry a namespace (podman writes those); the longest match wins.
    """

    def __init__(
        self,
        data: Mapping[str, object],
        *,
        source: str = "docker config",
        helper_runner: HelperRunner | None = None,
    ) -> None:
        self._source = source
        self._run_helper: HelperRunner = helper_runner or run_credential_helper
        self._auths: dict[str, Mapping[str, object]] = {}
        auths = data.get("auths") or {}
        if isinstance(auths, Mapping):
            for key, value in auths.items():
                if isinstance(value, Mapping):
                    self._auths[normalise_registry(str(key))] = value
        helpers = data.get("credHelpers") or {}
        self._cred_helpers: dict[str, str] = {}
        if isinstance(helpers, Mapping):
            self._cred_helpers = {normalise_registry(str(k)): str(v) for k, v in helpers.items()}
        store = data.get("credsStore")
        self._creds_store = str(store) if store else None
        self._helper_cache: dict[tuple[str, str], Credential | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], helper_runner: HelperRunner | None = None
    ) -> DockerConfig:
        text = untrusted.read_text(path)  # a regular file, capped, UTF-8: else InputError
        try:
            data = untrusted.load_json(text or "{}")
        except ValueError as exc:
            line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
            raise InputError(
                Problem(str(path), line, "not a JSON object (docker's config.json)")
            ) from None
        if not isinstance(data, Mapping):
            raise InputError(Problem(str(path), 1, "must be a JSON object (docker's config.json)"))
        return cls(data, source=str(path), helper_runner=helper_runner)

    @staticmethod
    def default_path(environ: Mapping[str, str] | None = None) -> Path:
        env = environ if environ is not None else os.environ
        base = env.get("DOCKER_CONFIG")
        return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"

    def get(self, registry: str, repository: str | None = None) -> Credential | None:
        host = normalise_registry(registry).split("/", 1)[0]
        helper = self._cred_helpers.get(host) or self._creds_store
        if helper:
            cred = self._from_helper(helper, host)
            if cred is not None:
                return cred
        key = _prefix_match(self._auths, registry, repository)
        if key is None:
            return None
        return self._from_entry(key, self._auths[key])

    def _from_helper(self, helper: str, host: str) -> Credential | None:
        server = DOCKER_HUB_CONFIG_KEY if host == DOCKER_HUB else host
        cache_key = (helper, server)
        # Cached because helpers are processes and every request asks for credentials.
        with self._lock:
            if cache_key in self._helper_cache:
                return self._helper_cache[cache_key]
        data = self._run_helper(helper, server)
        cred: Credential | None = None
        if data:
            username = str(data.get("Username") or "")
            secret = str(data.get("Secret") or "")
            source = f"docker-credential-{helper}"
            if username == "<token>":
                cred = Credential("", "", identity_token=secret, source=source)
            else:
                cred = _from_pair(username, secret, source)
        with self._lock:
            self._helper_cache[cache_key] = cred
        return cred

    def _from_entry(self, key: str, entry: Mapping[str, object]) -> Credential | None:
        source = f"{self._source} ({key})"
        username = str(entry.get("username") or "")
        password = str(entry.get("password") or "")
        encoded = entry.get("auth")
        if encoded:
            try:
                decoded = base64.b64decode(str(encoded), validate=False).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                log.warning("%s: the auth field is not valid base64 of user:password", source)
                decoded = ""
            user, sep, pw = decoded.partition(":")
            if sep:
                username, password = user, pw
            elif decoded:
                log.warning("%s: the auth field has no ':' separator", source)
        identity = entry.get("identitytoken")
        if identity:
            return Credential(username, password, identity_token=str(identity), source=source)
        return _from_pair(username, password, source)


class CredentialChain:
    """Ask each provider in turn; the first answer wins."""

    def __init__(self, providers: Sequence[CredentialProvider]) -> None:
        self.providers = list(providers)

    def get(self, registry: str, repository: str | None = None) -> Credential | None:
        for provider in self.providers:
            cred = provider.get(registry, repository)
            if cred is not None:
                return cred
        return None

    def insecure(self, registry: str) -> bool:
        # Only some providers (image-syncer's auth file) know of insecure registries.
        checks = (getattr(p, "insecure", None) for p in self.providers)
        return any(callable(check) and check(registry) for check in checks)


def default_credentials(environ: Mapping[str, str] | None = None) -> CredentialChain:
    """Environment variables, then ``$REGISTRY_AUTH_FILE``, then Docker's config.json."""
    env = environ if environ is not None else os.environ
    providers: list[CredentialProvider] = [EnvCredentials(env)]
    auth_file = env.get("REGISTRY_AUTH_FILE")
    if auth_file and os.path.lexists(auth_file):
        # Named on purpose: anything wrong with it is an error naming it and its line.
        providers.append(DockerConfig.from_file(auth_file))
    docker_path = DockerConfig.default_path(env)
    if docker_path.is_file():
        try:
            providers.append(DockerConfig.from_file(docker_path))
        except (OSError, ValueError, InputError) as exc:
            log.warning("ignoring unreadable docker config %s: %s", docker_path, exc)
    return CredentialChain(providers)
