"""The in-process fake registry itself (tests/fakes/registry.py)."""

from __future__ import annotations

import requests

from tests.fakes.registry import FakeRegistry


def test_fake_serves_v2_and_blobs(fake: FakeRegistry) -> None:
    digest = fake.add_blob("a/b", b"hello")
    session = requests.Session()
    session.trust_env = False
    assert session.get(fake.url + "/v2/", timeout=5).status_code == 200
    resp = session.get(f"{fake.url}/v2/a/b/blobs/{digest}", timeout=5)
    assert resp.content == b"hello"
    session.close()


def test_fake_fault_injection(fake: FakeRegistry) -> None:
    fake.add_fault("GET", r"^/v2/$", status=503, times=2)
    session = requests.Session()
    session.trust_env = False
    statuses = [session.get(fake.url + "/v2/", timeout=5).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    session.close()
