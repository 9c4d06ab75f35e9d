"""Chaos across the pipeline, small (benchmarks/chaos.py runs the large one): 20 % of relay's
requests to the upstream stand-in, ACR and Harbor meet a fault (429, 5xx, 5xx after the work
was done, resets before and after it, latency), and relay's own processes are SIGKILLed at
seeded points of lock, generate, acr apply, harbor apply and harbor replicate; each run starts
again from `relay lock` until one passes every step; then a tag moves upstream and it all
happens again with `relay lock --update`. Then the world is read directly: nothing lost,
nothing made twice, and `relay verify --output json` says exactly what is there.

The second half turns the checks on a world known to be wrong, so a check that cannot fail
does not pass for a safeguard."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from relay.sandbox.chaos import FAST_POLICY, Chaos, ChaosConfig, table

pytestmark = [pytest.mark.buildah, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
# Seed 3: its kills land in acr apply and harbor apply (and where the draws fall in the second
# phase), the places where a lost hand-off or a repeated create would show.
CONFIG = ChaosConfig(images=3, seed=3, rate=0.2, max_kills=2, max_runs=6, moves=1)


def test_the_pipeline_converges_under_faults_and_kills_with_an_exact_account(
    tmp_path: Path,
) -> None:
    chaos = Chaos(tmp_path / "chaos", ROOT, CONFIG)
    try:
        result = chaos.run(keep=True)
        story = result.story() + "\n" + table([result]).text()
        assert result.converged, story
        assert [c for c in result.checks if not c.ok] == [], story
        assert result.kills >= CONFIG.max_kills, story
        assert {"acr", "harbor-apply", "harbor-replicate"} & set(result.kills_by_step()), story
        assert result.faults_injected >= 10 and result.retries >= 5, story
        assert set(result.faults) == {"upstream", "acr", "harbor"}
        assert all(sum(kinds.values()) for kinds in result.faults.values()), result.faults
        # Each tag built once, and the moved one once more, whatever the kills and retries.
        assert result.builds == CONFIG.images + CONFIG.moves, story

        # --- the checks fail when the world is wrong ------------------------------------
        sandbox = chaos.sandbox
        assert sandbox.acr is not None and sandbox.harbor is not None
        state = sandbox.harbor.state
        policy = next(p for p in state.policies.values() if p.name == FAST_POLICY)
        state.policies[999] = _copied(policy, 999)
        build = next(iter(sandbox.acr.state.builds.values()))
        sandbox.acr.state.builds["again"] = _copied(build, "again")
        target = next(iter(chaos.targets.values()))
        _delete_tag(chaos, f"mirrors/{target}", "1.0.0")
        failed = {c.name: c.detail for c in chaos.check() if not c.ok}
        assert f"{FAST_POLICY}" in failed["harbor objects"], failed
        assert "justified" in failed["acr builds"], failed
        assert f"Harbor lacks {target}:1.0.0" in failed["images"], failed
        assert "report" in failed  # the last report no longer matches the world
    finally:
        chaos.stop()


def _copied(obj: object, new_id: object) -> object:
    clone = copy.copy(obj)
    for name in ("id", "build_id"):
        if hasattr(clone, name):
            setattr(clone, name, new_id)
    return clone


def _delete_tag(chaos: Chaos, repository: str, tag: str) -> None:
    """Take a tag out of Harbor's registry, as a person cleaning up by hand might."""
    from relay.sandbox.images import MANIFEST_ACCEPT, OracleClient

    registry = chaos.sandbox.harbor_registry
    assert registry is not None
    with OracleClient(registry) as client:
        scope = f"repository:{repository}:pull,push,delete"
        head = client.request(
            "HEAD",
            f"/v2/{repository}/manifests/{tag}",
            scope=scope,
            headers={"Accept": MANIFEST_ACCEPT},
        )
        digest = head.headers["Docker-Content-Digest"]
        gone = client.request("DELETE", f"/v2/{repository}/manifests/{digest}", scope=scope)
        assert gone.status_code == 202, gone.text
