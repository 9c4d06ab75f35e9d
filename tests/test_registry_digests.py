"""Digest parsing and streaming verification (relay.registry.digests)."""

from __future__ import annotations

import hashlib

import pytest

from relay.registry.digests import DigestVerifier, check_digest, compute_digest, is_digest


def test_is_digest() -> None:
    assert is_digest("sha256:" + "0" * 64)
    assert is_digest("sha512:" + "f" * 128)
    assert not is_digest("sha256:" + "0" * 63)
    assert not is_digest("sha256:" + "A" * 64)  # upper case is not canonical
    assert not is_digest("md5:" + "0" * 32)
    assert not is_digest("latest")
    with pytest.raises(ValueError):
        check_digest("sha256:abc")


def test_compute_digest() -> None:
    assert compute_digest(b"x") == "sha256:" + hashlib.sha256(b"x").hexdigest()
    assert compute_digest(b"x", "sha512") == "sha512:" + hashlib.sha512(b"x").hexdigest()


def test_verifier_streams() -> None:
    verifier = DigestVerifier(compute_digest(b"hello world"))
    for chunk in (b"hello", b" ", b"world"):
        verifier.update(chunk)
    assert verifier.matches() and verifier.size == 11
    verifier.update(b"!")
    assert not verifier.matches()
    assert verifier.actual == compute_digest(b"hello world!")
