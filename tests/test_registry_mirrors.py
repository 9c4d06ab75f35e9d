"""Registry mirrors for reads (registries.mirrors): try the mirror, fall back to upstream,
digest-verified either way, with real registries."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

from relay import cli
from relay.config import lockfile
from relay.registry.errors import RegistryConnectionError
from relay.registry.mirrors import Mirror, MirroredSource
from relay.registry.pool import ClientPool
from relay.sandbox.registries import free_port
from tests.fakes.registry import OCI_MANIFEST, FakeRegistry


def relay(*args: str) -> int:
    return cli.main(list(args))


def repo_with(tmp_path: Path, source: str, tag: str, mirrors: str) -> Path:
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text(
        f"images:\n  - source: {source}\n    name: app\n    tags: ['{tag}']\n"
    )
    (tmp_path / "mirrors/relay.yaml").write_text(
        textwrap.dedent(
            f"""\
            registries:
              mirrors:
            {textwrap.indent(mirrors, "    ")}
            """
        )
    )
    return tmp_path


def test_lock_reads_through_a_prefix_mirror_when_upstream_is_out_of_reach(
    plain_registry, image_factory, tmp_path: Path, capsys
) -> None:
    ns = f"mirror-{uuid.uuid4().hex[:8]}"
    # The mirror serves upstream's repositories under a prefix, as m.daocloud.io does.
    pushed = image_factory.push(plain_registry, f"quay.io/{ns}/app", "1.0", "oci-index")
    dead = f"127.0.0.1:{free_port()}"  # "upstream": nothing listens there
    repo = repo_with(
        tmp_path,
        f"{dead}/{ns}/app",
        "1.0",
        f'"{dead}": ["{plain_registry.url}/quay.io"]',
    )
    assert relay("lock", "--repo", str(repo)) == 0
    locked = lockfile.read(repo).get(f"{dead}/{ns}/app", "1.0")
    assert locked is not None and locked.digest == pushed.digest
    assert set(locked.platforms) == {"linux/amd64", "linux/arm64/v8"}


def test_a_mirror_without_the_image_hands_over_to_upstream(
    plain_registry, registry_factory, image_factory, tmp_path: Path
) -> None:
    ns = f"mirror-{uuid.uuid4().hex[:8]}"
    empty_mirror = registry_factory("plain")
    pushed = image_factory.push(plain_registry, f"{ns}/app", "2.0", "docker")
    repo = repo_with(
        tmp_path,
        f"{plain_registry.host}/{ns}/app",
        "2.0",
        f'"{plain_registry.host}": ["{empty_mirror.url}"]',
    )
    assert relay("lock", "--repo", str(repo)) == 0
    assert lockfile.read(repo).get(f"{plain_registry.host}/{ns}/app", "2.0").digest == pushed.digest


def test_an_unreachable_mirror_is_asked_once_per_run_and_writes_skip_mirrors(
    plain_registry, image_factory
) -> None:
    ns = f"mirror-{uuid.uuid4().hex[:8]}"
    image_factory.push(plain_registry, f"{ns}/a", "1", "docker")
    image_factory.push(plain_registry, f"{ns}/b", "1", "docker")

    class Settings:
        insecure: tuple[str, ...] = ()
        ca_bundles: dict[str, str] = {}
        mirrors = {plain_registry.host: (f"http://127.0.0.1:{free_port()}",)}

    with ClientPool(Settings()) as pool:
        source = pool.source(plain_registry.host)
        assert isinstance(source, MirroredSource)
        assert source.head_manifest(f"{ns}/a", "1") is not None
        mirror_client = source.mirrors[0].client
        pings_before = mirror_client.stats.count(kind="ping")
        assert source.head_manifest(f"{ns}/b", "1") is not None
        assert mirror_client.stats.count(kind="ping") == pings_before  # not asked again
        assert pool.get(plain_registry.host) is source.upstream  # writes never go to mirrors


def test_a_lying_mirror_is_caught_by_the_digest(fake: FakeRegistry, caplog) -> None:
    """A manifest asked for by digest is hashed: a mirror serving other bytes is refused and
    the read goes to upstream."""
    honest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode()
    digest = fake.put_manifest("team/app", "1", honest)
    liar = FakeRegistry()
    try:
        other = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "x": 1}).encode()
        liar.put_manifest("team/app", "1", other, digest_header=digest)
        liar.manifests[("team/app", digest)] = liar.manifests[("team/app", "1")]
        with ClientPool() as pool:
            source = MirroredSource(
                pool.get(fake.host), [Mirror(pool.get(liar.host), "", liar.url)]
            )
            got = source.get_manifest("team/app", digest)
            assert got.content == honest
            assert "hash to" in caplog.text  # the mirror's bytes were refused, and said so
            upstream_down = MirroredSource(
                pool.get(f"127.0.0.1:{free_port()}"), [Mirror(pool.get(liar.host), "", liar.url)]
            )
            with pytest.raises(RegistryConnectionError, match="digest mismatch"):
                upstream_down.get_manifest("team/app", digest)
    finally:
        liar.stop()


@pytest.mark.parametrize(
    "mirrors",
    ['docker.io: ["ftp://m.example.cn"]', 'docker.io: ["https://m.example.cn/?x=1"]'],
)
def test_validate_refuses_bad_mirror_urls(tmp_path: Path, capsys, mirrors: str) -> None:
    repo = repo_with(tmp_path, "nginx", "1.27", mirrors)
    assert relay("validate", "--repo", str(repo)) == 2
    err = capsys.readouterr().err
    assert "mirrors/relay.yaml:3: registries.mirrors.docker.io entry must be an http(s) URL" in err
