"""Per-registry TLS settings: CA bundles and Docker-style insecure registries.

``verify`` is handed to every request individually. A value set on ``Session.verify`` is silently
overridden by ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` while ``trust_env`` is on (psf/requests
#3829, and #4726 for a CA path); a per-request value wins. The transport turns ``trust_env`` off
and applies the proxy and CA-bundle variables itself, with the same precedence.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Docker treats loopback as insecure out of the box (127.0.0.0/8; ::1 likewise).
LOOPBACK_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def split_netloc(netloc: str) -> tuple[str, int | None]:
    """``"Host:5000"`` → ``("host", 5000)``; ``"[::1]:5000"`` → ``("::1", 5000)``."""
    parts = urlsplit(f"//{netloc}")
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or netloc).lower(), port


def normalise_netloc(netloc: str) -> str:
    host, port = split_netloc(netloc)
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True)
class TLSConfig:
    """TLS trust settings for all registries a process talks to.

    ``ca_bundles`` maps ``host[:port]`` (or a bare host, meaning any port) to a CA file or a
    c_rehash'd directory. ``insecure_registries`` follows Docker's daemon.json
    ``insecure-registries``: ``host:port`` entries match exactly (a bare host matches only the
    default port, as in Docker) and CIDR entries match IP literals. Insecure means: try verified
    HTTPS, then HTTPS without verification, then plain HTTP.
    """

    ca_bundles: Mapping[str, str] = field(default_factory=dict)
    insecure_registries: Sequence[str] = ()
    insecure_loopback: bool = True
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    _names: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())
    _bundles: dict[str, str] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        names: set[str] = set()
        for entry in self.insecure_registries:
            entry = entry.strip()
            if not entry:
                continue
            if "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                    continue
                except ValueError as exc:
                    raise ValueError(f"bad insecure registry CIDR {entry!r}: {exc}") from None
            names.add(normalise_netloc(entry))
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_names", frozenset(names))
        bundles = {normalise_netloc(k): v for k, v in self.ca_bundles.items()}
        object.__setattr__(self, "_bundles", bundles)

    def with_ca(self, netloc: str, ca_file: str) -> TLSConfig:
        bundles = dict(self.ca_bundles)
        bundles[netloc] = ca_file
        return TLSConfig(bundles, self.insecure_registries, self.insecure_loopback)

    def with_insecure(self, netloc: str) -> TLSConfig:
        return TLSConfig(
            self.ca_bundles, [*self.insecure_registries, netloc], self.insecure_loopback
        )

    def ca_bundle_for(self, netloc: str) -> str | None:
        bundles = self._bundles
        key = normalise_netloc(netloc)
        if key in bundles:
            return bundles[key]
        host, _ = split_netloc(netloc)
        shown = f"[{host}]" if ":" in host else host
        return bundles.get(shown)

    def verify_for(self, netloc: str) -> bool | str:
        """What to pass as ``verify=``: a CA path, or True for the system/env bundle."""
        return self.ca_bundle_for(netloc) or True

    def is_insecure(self, netloc: str) -> bool:
        key = normalise_netloc(netloc)
        if key in self._names:
            return True
        host, _ = split_netloc(netloc)
        if self.insecure_loopback and host == "localhost":
            return True
        ip = _ip(host)
        if ip is None:
            # Docker would resolve the name and test the CIDRs; we do not resolve, to keep
            # lookups cheap and deterministic. Declare such registries by name instead.
            return False
        if self.insecure_loopback and any(ip in net for net in LOOPBACK_NETWORKS):
            return True
        return any(ip.version == net.version and ip in net for net in self._networks)
