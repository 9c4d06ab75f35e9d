"""skopeo's and crane's habits for `relay copy` and `relay sync`: `docker://` references,
`--src-creds` / `--dest-creds USER[:PASS]`, `--authfile FILE`, `--src-tls-verify=false` /
`--dest-tls-verify=false` and `--insecure`.

The flags become what the registry layer already takes: logins become a
`relay.registry.credentials.StaticCredentials` asked before relay's usual sources (the
environment, `$REGISTRY_AUTH_FILE`, docker's config.json), the auth file a `DockerConfig`
after it, and a side without TLS verification joins `registries.insecure` for this run
(Docker's rule: HTTPS without verification, then plain HTTP).
"""

from __future__ import annotations

import getpass
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relay import reference
from relay.config.settings import RegistryLimits, RegistrySettings
from relay.errors import InputError
from relay.registry.credentials import (
    Credential,
    CredentialChain,
    CredentialProvider,
    DockerConfig,
    StaticCredentials,
    default_credentials,
)

log = logging.getLogger(__name__)

# skopeo's transports other than docker:// (containers-transports(5)): relay speaks only to
# registries, so these are refused with that reason rather than read as a host name.
OTHER_TRANSPORTS = (
    "oci:",
    "oci-archive:",
    "dir:",
    "docker-archive:",
    "docker-daemon:",
    "containers-storage:",
    "sif:",
)


@dataclass(frozen=True)
class Access:
    """The login and TLS flags of one `copy` or `sync` run."""

    src_creds: str | None = None
    dest_creds: str | None = None
    authfile: Path | None = None
    src_tls_verify: bool = True
    dest_tls_verify: bool = True


@dataclass(frozen=True)
class RegistryOptions:
    """`registries:` for this run: the settings' own, plus the hosts whose TLS is not
    verified (relay.registry.pool.RegistryOptions' shape)."""

    insecure: Sequence[str] = ()
    ca_bundles: Mapping[str, str] = field(default_factory=dict)
    mirrors: Mapping[str, Sequence[str]] = field(default_factory=dict)
    limits: RegistryLimits = field(default_factory=RegistryLimits)  # registries.limits


def image_reference(text: str, what: str) -> reference.Reference:
    """A registry reference as skopeo and crane take it: `docker://` allowed, and a reference
    with neither tag nor digest means `:latest`, which is said (docker's default, easy to
    get by accident)."""
    raw = text
    if raw.startswith("docker://"):
        raw = raw[len("docker://") :]
    elif raw.startswith(OTHER_TRANSPORTS):
        transport = raw.split(":", 1)[0]
        raise InputError(
            f"{what} {text!r}: relay copies between registries only; {transport}: is a skopeo "
            "transport for local storage (use a registry reference, optionally with docker://)"
        )
    try:
        ref = reference.parse(raw)
    except ValueError as exc:
        raise InputError(f"bad image reference: {exc}") from None
    return ref


def note_latest(ref: reference.Reference, what: str) -> None:
    if ref.tag is None and ref.digest is None:
        log.info("%s %s has no tag or digest: it means %s:latest", what, ref.name, ref.name)


def login(flag: str, value: str, ask: Callable[[str], str] | None = None) -> Credential:
    """`USER[:PASS]` as skopeo reads it; without `:PASS` the password is asked for on the
    terminal (never echoed), and refused when there is no terminal to ask on."""
    user, sep, password = value.partition(":")
    if not user:
        raise InputError(f"{flag}: the user name is missing (USER[:PASS])")
    if not sep:
        if ask is None:
            if not sys.stdin.isatty():
                raise InputError(
                    f"{flag} {user}: no password given and no terminal to ask on; "
                    f"use {flag} {user}:PASSWORD, or --authfile"
                )
            ask = getpass.getpass
        password = ask(f"password for {user} ({flag}): ")
    return Credential(user, password, source=flag)


def credentials(
    access: Access,
    sources: Iterable[str],
    destinations: Iterable[str],
    env: Mapping[str, str],
    *,
    extra: Sequence[CredentialProvider] = (),
    ask: Callable[[str], str] | None = None,
) -> CredentialChain:
    """The flags' logins for the given keys (`registry` or `registry/repository`; the longest
    match wins, so one registry may hold a different login per side), then `extra` (an
    image-syncer auth file), the auth file, then relay's usual sources."""
    entries: dict[str, Credential] = {}
    for flag, value, keys in (
        ("--src-creds", access.src_creds, list(sources)),
        ("--dest-creds", access.dest_creds, list(destinations)),
    ):
        if not value:
            continue
        # One login for one registry: given to every source (destination) registry of an
        # images file, a pull request adding `evil.example/x` to the file would receive it.
        hosts = sorted({key.split("/", 1)[0] for key in keys})
        if len(hosts) > 1:
            side = "source" if flag == "--src-creds" else "destination"
            raise InputError(
                f"{flag} gives one login to one registry, but the images name "
                f"{len(hosts)} {side} registries ({', '.join(hosts)}); give each registry "
                'its own login: RELAY_REGISTRY_AUTH=\'{"HOST": "USER:PASSWORD"}\', '
                "--auth or --authfile"
            )
        cred = login(flag, value, ask)
        for key in keys:
            other = entries.get(key)
            if other is not None and other != cred:
                raise InputError(
                    f"{key} is both a source and a destination with different logins "
                    "(--src-creds and --dest-creds); give one of them, or use --authfile"
                )
            entries[key] = cred
    providers: list[CredentialProvider] = []
    if entries:
        providers.append(StaticCredentials(entries))
    providers.extend(extra)
    if access.authfile is not None:
        try:
            providers.append(DockerConfig.from_file(access.authfile))
        except (OSError, ValueError) as exc:
            raise InputError(f"--authfile {access.authfile}: {exc}") from None
    providers.extend(default_credentials(env).providers)
    return CredentialChain(providers)


def registry_options(
    settings: RegistrySettings | None,
    access: Access,
    sources: Iterable[str],
    destinations: Iterable[str],
) -> RegistryOptions:
    """The settings' `registries:`, plus the sides whose TLS is not verified."""
    insecure = list(settings.insecure) if settings is not None else []
    for verify, hosts in (
        (access.src_tls_verify, sources),
        (access.dest_tls_verify, destinations),
    ):
        if not verify:
            insecure.extend(h for h in hosts if h not in insecure)
    if settings is None:
        return RegistryOptions(tuple(insecure))
    return RegistryOptions(
        tuple(insecure), dict(settings.ca_bundles), dict(settings.mirrors), settings.limits
    )
