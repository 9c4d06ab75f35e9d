"""Insecure-registry matching and CA lookup (relay.registry.tls)."""

from __future__ import annotations

import pytest

from relay.net.tls import TLSConfig, normalise_netloc, split_netloc


def test_split_and_normalise() -> None:
    assert split_netloc("Harbor.Example:8443") == ("harbor.example", 8443)
    assert split_netloc("[::1]:5000") == ("::1", 5000)
    assert split_netloc("ghcr.io") == ("ghcr.io", None)
    assert normalise_netloc("[::1]:5000") == "[::1]:5000"
    assert normalise_netloc("GHCR.io") == "ghcr.io"


@pytest.mark.parametrize(
    "netloc", ["127.0.0.1:5000", "127.8.9.10", "localhost:5000", "[::1]:5000", "localhost"]
)
def test_loopback_is_insecure_by_default(netloc: str) -> None:
    assert TLSConfig().is_insecure(netloc)
    assert not TLSConfig(insecure_loopback=False).is_insecure(netloc)


def test_declared_insecure_registries() -> None:
    tls = TLSConfig(insecure_registries=["10.0.0.0/8", "Reg.Local:5000", "fd00::/8", " "])
    assert tls.is_insecure("10.1.2.3:5000")
    assert tls.is_insecure("10.1.2.3")
    assert not tls.is_insecure("11.0.0.1")
    assert tls.is_insecure("reg.local:5000")
    # Docker semantics: host:port entries match exactly.
    assert not tls.is_insecure("reg.local")
    assert not tls.is_insecure("reg.local:5001")
    assert tls.is_insecure("[fd00::5]:443")
    # Host names are not resolved for CIDR matching.
    assert not tls.is_insecure("ten.example")
    assert not tls.is_insecure("ghcr.io")


def test_bad_cidr_is_rejected() -> None:
    with pytest.raises(ValueError, match="CIDR"):
        TLSConfig(insecure_registries=["10.0.0.0/33"])


def test_ca_bundles_by_netloc_then_host() -> None:
    tls = TLSConfig(ca_bundles={"harbor.corp:8443": "/a.pem", "other.corp": "/b.pem"})
    assert tls.verify_for("HARBOR.corp:8443") == "/a.pem"
    assert tls.verify_for("harbor.corp") is True
    assert tls.verify_for("other.corp:5000") == "/b.pem"
    assert tls.verify_for("ghcr.io") is True
    more = tls.with_ca("ghcr.io", "/c.pem").with_insecure("x:1")
    assert more.verify_for("ghcr.io") == "/c.pem" and more.is_insecure("x:1")
    assert tls.verify_for("ghcr.io") is True  # the original is unchanged
