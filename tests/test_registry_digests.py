"""Digest parsing and streaming verification (relay.registry.digests)."""

from __future__ import annotations

import hashlib

import pytest

from relay.reference import SUPPORTED_DIGEST_ALGORITHMS, InvalidReference, is_valid_digest
from relay.registry.digests import DigestVerifier, compute_digest


def test_compute_digest() -> None:
    assert compute_digest(b"x") == "sha256:" + hashlib.sha256(b"x").hexdigest()
    assert compute_digest(b"x", "sha512") == "sha512:" + hashlib.sha512(b"x").hexdigest()


@pytest.mark.parametrize("algorithm", sorted(SUPPORTED_DIGEST_ALGORITHMS))
def test_every_algorithm_the_grammar_accepts_can_be_computed_and_verified(algorithm: str) -> None:
    digest = compute_digest(b"content", algorithm)
    assert is_valid_digest(digest)
    verifier = DigestVerifier(digest)
    verifier.update(b"content")
    assert verifier.matches()


def test_verifier_refuses_what_the_grammar_refuses() -> None:
    for bad in ("sha256:abc", "md5:" + "0" * 32, "sha256:" + "0" * 64 + "\n"):
        with pytest.raises(InvalidReference):
            DigestVerifier(bad)


def test_verifier_streams() -> None:
    verifier = DigestVerifier(compute_digest(b"hello world"))
    for chunk in (b"hello", b" ", b"world"):
        verifier.update(chunk)
    assert verifier.matches() and verifier.size == 11
    verifier.update(b"!")
    assert not verifier.matches()
    assert verifier.actual == compute_digest(b"hello world!")
