"""The proxy rule, once: which proxy (if any) a request to a URL goes through, from the
environment's HTTP(S)_PROXY, ALL_PROXY and NO_PROXY, read as requests reads them (lower-case
names win; NO_PROXY by requests' own rule: `*`, host suffixes, CIDRs, ports). Used by the
registry transport, the ACR SDK client (whose SDK would otherwise ignore NO_PROXY and ALL_PROXY)
and `relay doctor`."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

import requests


def environ_proxies(
    url: str, env: Mapping[str, str], *, loopback_direct: bool = False
) -> dict[str, str]:
    """The proxies for ``url`` by scheme ("http", "https", "all"), as requests'
    ``get_environ_proxies`` gives them, from ``env`` rather than the process environment;
    empty when NO_PROXY names the host (or nothing is set), and with ``loopback_direct`` for a
    loopback host (an emulator on this machine)."""
    if loopback_direct and is_loopback(urlsplit(url).hostname or ""):
        return {}
    found: dict[str, str] = {}
    for name, value in env.items():
        lower = name.lower()
        if lower.endswith("_proxy") and value and (name == lower or lower not in found):
            found[lower] = value
    no_proxy = found.pop("no_proxy", "")
    if requests.utils.should_bypass_proxies(url, no_proxy=no_proxy):
        return {}
    return {name.removesuffix("_proxy"): value for name, value in found.items()}


def proxy_for(url: str, env: Mapping[str, str], *, loopback_direct: bool = False) -> str | None:
    """The one proxy a request to ``url`` goes through (its scheme's, else ALL_PROXY), or None
    for direct."""
    found = environ_proxies(url, env, loopback_direct=loopback_direct)
    return requests.utils.select_proxy(url, found)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
