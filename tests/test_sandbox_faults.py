"""Random faults (relay.sandbox.common.faults.RandomFaults), the fault front before a real
registry (relay.sandbox.common.proxy), and how `relay sandbox up` is asked for them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from relay.registry.client import RegistryClient
from relay.sandbox.common.faults import FAULT_KINDS, Decision, Fault, FaultInjector, RandomFaults
from relay.sandbox.common.proxy import FaultyFront, operation
from relay.sandbox.stack import faults_from_env

ROOT = Path(__file__).resolve().parent.parent


def decisions(injector: FaultInjector, n: int, client: str | None = None) -> list[Decision]:
    return [injector.decide("GetRepo", client) for _ in range(n)]


def test_one_seed_one_sequence_and_another_seed_another() -> None:
    a, b, c = FaultInjector(), FaultInjector(), FaultInjector()
    a.set_random(RandomFaults(0.3, seed=7))
    b.set_random(RandomFaults(0.3, seed=7))
    c.set_random(RandomFaults(0.3, seed=8))
    assert decisions(a, 300) == decisions(b, 300) != decisions(c, 300)
    assert a.injected() == b.injected()


def test_the_rate_and_every_kind_are_met_and_counted() -> None:
    injector = FaultInjector()
    injector.set_random(RandomFaults(0.2, seed=1))
    made = decisions(injector, 5000)
    counts = injector.injected()
    assert set(counts) == set(FAULT_KINDS)
    assert 0.17 * 5000 < sum(counts.values()) < 0.23 * 5000
    resets = sum(1 for d in made if d.reset)
    afters = sum(1 for d in made if d.after is not None)
    assert (resets, afters) == (counts["reset"], counts["5xx-after"])
    # Off again: nothing more.
    injector.set_random(None)
    assert all(d == decisions(FaultInjector(), 1)[0] for d in decisions(injector, 100))
    assert injector.injected() == counts


def test_one_kind_at_rate_one_and_its_statuses() -> None:
    injector = FaultInjector()
    injector.set_random(RandomFaults(1.0, seed=3, kinds=("5xx-after",), statuses=(502, 504)))
    made = decisions(injector, 50)
    assert all(d.after is not None and d.before is None for d in made)
    assert {d.after.status for d in made} == {502, 504}
    injector.set_random(RandomFaults(1.0, seed=3, kinds=("latency",), max_latency=0.2))
    delays = [d.delay for d in decisions(injector, 50)]
    assert all(0 <= s <= 0.2 for s in delays) and len(set(delays)) > 1


def test_only_the_named_clients_meet_random_faults() -> None:
    injector = FaultInjector()
    injector.set_random(RandomFaults(1.0, kinds=("5xx",), clients=frozenset({"relay-key"})))
    assert all(d.before is None for d in decisions(injector, 20, "harbor-key"))
    assert all(d.before is None for d in decisions(injector, 20, None))
    assert all(d.before is not None for d in decisions(injector, 20, "relay-key"))


def test_a_scripted_fault_comes_first_and_is_counted_too() -> None:
    injector = FaultInjector()
    injector.set_random(RandomFaults(1.0, kinds=("reset",)))
    injector.add(Fault("throttling", 1, action="GetRepo", retry_after=2))
    first = injector.decide("GetRepo")
    assert first.before is not None and first.before.kind == "throttling" and not first.reset
    assert injector.decide("GetRepo").reset
    assert injector.injected() == {"throttling": 1, "reset": 1}


@pytest.mark.parametrize(
    "bad",
    [
        {"rate": 1.5},
        {"rate": -0.1},
        {"rate": 0.2, "kinds": ("bogus",)},
        {"rate": 0.2, "kinds": ()},
        {"rate": 0.2, "max_latency": -1.0},
    ],
)
def test_random_faults_refuse_what_makes_no_sense(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RandomFaults(**bad)


def test_the_sandbox_reads_its_faults_from_the_environment() -> None:
    assert faults_from_env({}) is None
    assert faults_from_env({"RELAY_SANDBOX_FAULTS": " "}) is None
    found = faults_from_env({"RELAY_SANDBOX_FAULTS": "0.2", "RELAY_SANDBOX_SEED": "7"})
    assert found == RandomFaults(0.2, 7, FAULT_KINDS)
    kinds = faults_from_env(
        {"RELAY_SANDBOX_FAULTS": "1", "RELAY_SANDBOX_FAULT_KINDS": "throttling, reset"}
    )
    assert kinds is not None and kinds.kinds == ("throttling", "reset")
    for env, word in [
        ({"RELAY_SANDBOX_FAULTS": "lots"}, "RELAY_SANDBOX_FAULTS"),
        ({"RELAY_SANDBOX_FAULTS": "3"}, "between 0 and 1"),
        ({"RELAY_SANDBOX_FAULTS": "0.2", "RELAY_SANDBOX_SEED": "x"}, "RELAY_SANDBOX_SEED"),
        ({"RELAY_SANDBOX_FAULTS": "0.2", "RELAY_SANDBOX_FAULT_KINDS": "boom"}, "boom"),
    ]:
        with pytest.raises(ValueError, match=word):
            faults_from_env(env)


def test_operations_of_registry_requests() -> None:
    assert operation("GET", "/v2/") == "GET ping"
    assert operation("HEAD", "/v2/docker.io/library/nginx/manifests/1.27") == "HEAD manifest"
    assert operation("GET", "/v2/a/b/blobs/sha256:00") == "GET blob"
    assert operation("GET", "/v2/a/tags/list") == "GET tag"
    assert operation("GET", "/metrics") == "GET other"


@pytest.fixture
def front(plain_registry):  # noqa: ANN001, ANN201
    started = FaultyFront(plain_registry.url).start()
    yield started
    started.stop()


def test_the_front_passes_a_registry_through_exactly(front, plain_registry, image_factory) -> None:  # noqa: ANN001
    pushed = image_factory.push(plain_registry, "org/app", "1.0", "oci-index", seed="front")
    session = requests.Session()
    session.trust_env = False
    url = f"{front.url}/v2/org/app/manifests/1.0"
    accept = {"Accept": pushed.media_type}
    head = session.head(url, headers=accept, timeout=10)
    get = session.get(url, headers=accept, timeout=10)
    assert head.status_code == get.status_code == 200
    assert head.headers["Docker-Content-Digest"] == pushed.digest
    assert int(head.headers["Content-Length"]) == len(get.content) > 0
    # relay's own client reads the same digest through the front as without it.
    with RegistryClient(front.host) as through, RegistryClient(plain_registry.host) as direct:
        assert through.get_manifest("org/app", "1.0").digest == pushed.digest
        assert direct.head_manifest("org/app", "1.0") == through.head_manifest("org/app", "1.0")
    assert {c.action for c in front.calls} >= {"HEAD manifest", "GET manifest", "GET ping"}


def test_the_front_answers_faults_as_distribution_does(
    front, plain_registry, image_factory
) -> None:  # noqa: ANN001
    image_factory.push(plain_registry, "org/tool", "2.0", "docker", seed="front-faults")
    session = requests.Session()
    session.trust_env = False
    url = f"{front.url}/v2/org/tool/manifests/2.0"
    front.faults.add(Fault("throttling", 1, retry_after=1))
    front.faults.add(Fault("5xx", 1, status=502))
    throttled = session.get(url, timeout=10)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert json.loads(throttled.content)["errors"][0]["code"] == "TOOMANYREQUESTS"
    failed = session.get(url, timeout=10)
    assert failed.status_code == 502
    assert json.loads(failed.content)["errors"][0]["code"] == "UNAVAILABLE"
    front.faults.add(Fault("reset", 1))
    with pytest.raises(requests.ConnectionError):
        session.get(url, timeout=10)
    assert front.faults.injected() == {"throttling": 1, "5xx": 1, "reset": 1}
    # At a high rate relay's client still reads the image: its retries absorb the faults.
    front.faults.set_random(RandomFaults(0.5, seed=5))
    with RegistryClient(front.host) as client:
        for _ in range(5):
            assert client.get_manifest("org/tool", "2.0").digest
    assert sum(front.faults.injected().values()) > 3


def _sandbox(*args: str, base: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay", "sandbox", *args, "--dir", str(base)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=180,
    )


def test_sandbox_up_refuses_a_fault_rate_it_cannot_read(tmp_path: Path) -> None:
    base = tmp_path / "sandbox"
    up = _sandbox("up", base=base, env={"RELAY_SANDBOX_FAULTS": "lots"})
    assert up.returncode == 2 and "RELAY_SANDBOX_FAULTS='lots'" in up.stderr, up.stderr
    assert not base.exists()


@pytest.mark.slow
def test_sandbox_up_with_faults_injects_and_counts_them(tmp_path: Path) -> None:
    base = tmp_path / "sandbox"
    env = {
        "RELAY_SANDBOX_FAULTS": "1",
        "RELAY_SANDBOX_SEED": "4",
        "RELAY_SANDBOX_FAULT_KINDS": "throttling",
    }
    up = _sandbox("up", base=base, env=env)
    try:
        assert up.returncode == 0, up.stderr
        state = json.loads((base / "state.json").read_text())
        assert state["faults"] == {"rate": 1.0, "seed": 4, "kinds": ["throttling"]}
        session = requests.Session()
        session.trust_env = False
        answers = [session.get(state["upstream"] + "/v2/", timeout=10) for _ in range(3)]
        assert [a.status_code for a in answers] == [429, 429, 429]
        deadline = time.monotonic() + 10
        shown = ""
        while "upstream 3" not in shown and time.monotonic() < deadline:
            time.sleep(0.2)
            shown = _sandbox("status", base=base, env={}).stdout
        assert "rate 1.0, seed 4; injected: acr 0, harbor 0, upstream 3" in shown, shown
    finally:
        assert _sandbox("down", base=base, env={}).returncode == 0
