"""`relay verify`: upstream (the lock), the delivery target and Harbor agree on every pinned tag.

Real registries throughout: upstream is a docker-registry, the copy target and ACR are the ACR
emulator's stand-in registry, Harbor is the Harbor emulator replicating from it into its own
docker-registry. skopeo is the oracle where a digest is asserted.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay import cli
from relay.config import mirrors
from relay.config.lockfile import Lock
from relay.config.pins import pins
from relay.registry.auth import realm_host_allowed
from relay.registry.client import RegistryClient
from relay.registry.credentials import EnvCredentials
from relay.sandbox.stack import git_env
from relay.stages import verify as stage
from relay.stages.verify import layer_difference, parse_history, read_history
from tests.fakes.registry import FakeRegistry
from tests.fixtures.harbor import HarborEmulator
from tests.fixtures.registries import Registry, free_port, http_session
from tests.fixtures.skopeo import docker_ref
from tests.helpers import write_repo
from tests.test_harbor_stage import use
from tests.test_inspect import _image, _index

NS = "myns"
PROJECT = "mirror"
D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
C1, C2 = ("sha256:" + c * 64 for c in "ab")

# The keys `relay verify --output json` documents (docs/json.md); always present.
TOP_KEYS = {
    "relay",
    "command",
    "relayVerify",
    "ok",
    "transport",
    "compared",
    "target",
    "harbor",
    "history",
    "counts",
    "requests",
    "seconds",
    "results",
}
RESULT_KEYS = {
    "image",
    "source",
    "tag",
    "platform",
    "platforms",
    "result",
    "where",
    "upstream",
    "target",
    "harbor",
}
SIDE_KEYS = {"reference", "state", "digest", "config", "detail"}


def relay(*args: str) -> int:
    return cli.main(list(args))


def verify_json(repo: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = relay("verify", "--output", "json", "--repo", str(repo), *extra)
    out, _ = capsys.readouterr()
    doc = json.loads(out)  # the whole of stdout is one JSON document
    assert set(doc) == TOP_KEYS
    assert set(doc["counts"]) == {"tags", "ok", "missing", "stale", "mismatch", "error"}
    assert set(doc["requests"]) == {
        "total",
        "perTag",
        "manifestPerTag",
        "upstream",
        "target",
        "harbor",
        "manifest",
    }
    for result in doc["results"]:
        assert set(result) == RESULT_KEYS
        assert set(result["upstream"]) == {"digest", "config"}
        assert set(result["target"]) == SIDE_KEYS
        assert result["harbor"] is None or set(result["harbor"]) == SIDE_KEYS
    return code, doc


def by_image(doc: dict) -> dict[str, dict]:
    return {r["image"]: r for r in doc["results"]}


def git(repo: Path, *args: str) -> None:
    env = git_env(repo.parent)  # its home outside the work tree
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def commit_all(repo: Path, message: str) -> None:
    if not (repo / ".git").exists():
        git(repo, "init", "--quiet")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", message)


def delete_tag(registry: Registry, repo: str, tag: str) -> None:
    """Remove a tag from a docker-registry (its manifest, by digest)."""
    s = http_session()
    head = s.head(
        f"{registry.url}/v2/{repo}/manifests/{tag}",
        auth=registry.credentials,
        verify=registry.verify,
        headers={
            "Accept": "application/vnd.oci.image.index.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.manifest.v1+json"
        },
    )
    head.raise_for_status()
    digest = head.headers["Docker-Content-Digest"]
    gone = s.delete(
        f"{registry.url}/v2/{repo}/manifests/{digest}",
        auth=registry.credentials,
        verify=registry.verify,
    )
    assert gone.status_code == 202, gone.text


# --- the pieces that need no registry -----------------------------------------------------------


def test_the_lock_history_comes_from_added_and_removed_lines_only() -> None:
    text = "\n".join(
        [
            '-{"digest": "%s", "source": "docker.io/library/nginx", "tag": "1.27"}' % D1,
            '+{"configs": {"linux/amd64": "%s"}, "digest": "%s", "mediaType": "x", '
            '"source": "docker.io/library/nginx", "tag": "1.27"}' % (C1, D2),
            ' {"digest": "%s", "source": "docker.io/library/nginx", "tag": "1.27"}' % D3,
            '+{"digest": "not-a-digest", "source": "docker.io/library/nginx", "tag": "1.27"}',
            '+{"digest": "%s", "source": "docker.io/library/nginx", "tag": "bad tag"}' % D3,
            "+{not json",
            "+[1, 2]",
        ]
    )
    history = parse_history(text)
    assert history.available
    assert history.digests == {("docker.io/library/nginx", "1.27"): frozenset({D1, D2})}
    assert history.had_config("docker.io/library/nginx", "1.27", "linux/amd64", C1)
    assert not history.had_config("docker.io/library/nginx", "1.27", "linux/arm64", C1)
    assert not history.had_digest("docker.io/library/nginx", "1.27", D3)  # context, not a change


def test_the_lock_history_is_read_with_git_and_absent_without_it(tmp_path: Path) -> None:
    assert not read_history(tmp_path).available  # not a git work tree
    (tmp_path / "mirrors").mkdir()
    lock = tmp_path / "mirrors/images.lock"
    header = '{"note": "generated by `relay lock`; do not edit by hand", "relayLock": 1}\n'
    record = '{"digest": "%s", "mediaType": "x", "source": "quay.io/a/b", "tag": "v1"}\n'
    lock.write_text(header + record % D1)
    commit_all(tmp_path, "lock")
    lock.write_text(header + record % D2)
    commit_all(tmp_path, "lock moved")
    history = read_history(tmp_path)
    assert history.digests[("quay.io/a/b", "v1")] == frozenset({D1, D2})
    assert not history.shallow
    # A shallow clone (CI's default checkout) knows only the newest lock, and says so.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", "--depth", "1", f"file://{tmp_path}", str(clone))
    shallow = read_history(clone)
    assert shallow.shallow and shallow.digests[("quay.io/a/b", "v1")] == frozenset({D2})
    # A textconv driver set up in the repository never runs.
    (tmp_path / ".gitattributes").write_text("*.lock diff=evil\n")
    git(tmp_path, "config", "diff.evil.textconv", f"touch {tmp_path}/ran; cat")
    assert read_history(tmp_path).had_digest("quay.io/a/b", "v1", D1)
    assert not (tmp_path / "ran").exists()


def test_a_mismatch_names_the_layer_that_differs() -> None:
    assert layer_difference([D1, D2], [D1, D3]) == "layer 2 of 2 differs"
    assert layer_difference([D1], [D1, D2]) == "1 layers where upstream has 2"
    assert layer_difference([D1], [D1]).startswith("same layers, different config")


def test_the_harbor_login_goes_to_harbors_own_token_service_only() -> None:
    hosts = frozenset({"harbor.example.com"})
    assert realm_host_allowed("https://harbor.example.com/service/token", hosts)
    assert realm_host_allowed("https://HARBOR.example.com:8443/service/token", hosts)
    assert realm_host_allowed(None, hosts)  # Basic auth: the registry itself
    assert not realm_host_allowed("https://auth.elsewhere.example/token", hosts)
    assert not realm_host_allowed("https://harbor.example.com.evil.example/token", hosts)
    assert not realm_host_allowed("ftp://harbor.example.com/token", hosts)
    assert realm_host_allowed("https://anywhere.example/token", None)  # unbound


def test_verify_names_unknown_only_names_and_needs_a_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text(
        f"images:\n  - source: quay.io/org/app\n    name: app\n    tags: ['1.0@{D1}']\n"
    )
    (tmp_path / "mirrors/relay.yaml").write_text("transport: build\n")
    assert relay("verify", "--repo", str(tmp_path)) == 2
    assert "set acr.namespace" in capsys.readouterr().err
    (tmp_path / "mirrors/relay.yaml").write_text("acr: {namespace: ns}\n")
    assert relay("verify", "--only", "nope", "--repo", str(tmp_path)) == 2
    assert "--only nope: no image in the list has that target name" in capsys.readouterr().err


def test_build_transport_on_an_index_and_an_inline_pin(fake: FakeRegistry) -> None:
    """An Enterprise-style multi-platform build: ACR's index costs two manifest GETs (index,
    then the platform's manifest) and no blob; an inline pin has no config in the lock, so
    upstream is read once the same way. A build without the platform is missing it."""
    arm_platform = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    for repo in ("up/app", "ns/app"):
        amd = _image(fake, repo, "linux", "amd64")
        arm = _image(fake, repo, "linux", "arm64", "v8")
        top = _index(
            fake,
            repo,
            "1.0",
            [(amd, {"os": "linux", "architecture": "amd64"}), (arm, arm_platform)],
        )
    listed = mirrors.parse(
        f"images:\n  - source: {fake.host}/up/app\n    name: app\n    tags: ['1.0@{top}']\n",
        "mirrors/images.yaml",
    )
    work = stage.items(pins(listed, Lock()), Lock(), lambda entry: "linux/amd64")
    upstream, target = RegistryClient(fake.host), RegistryClient(fake.host)
    observer = stage.Observer(
        transport="build",
        target=stage.Location(fake.host, "ns", "acr"),
        target_client=target,
        harbor=None,
        harbor_client=None,
        upstream=lambda host: upstream,
        history=stage.LockHistory(),
    )
    [check] = stage.observe(work, observer, concurrency=2)
    assert check.result == "ok" and check.target.digest == top
    assert check.upstream_config == check.target.config
    assert target.stats.count(kind="manifest") == 2 and target.stats.count(kind="blob") == 0
    assert upstream.stats.count(kind="manifest") == 2 and upstream.stats.count(kind="blob") == 0

    fake.put_manifest("ns/app", "1.0", fake.manifests[("ns/app", "arm64v8")].content)
    [check] = stage.observe(work, observer, concurrency=1)
    assert check.result == "missing"
    assert check.target.detail == "no linux/amd64 image (has linux/arm64/v8)"


# --- the copy transport: relay publish into a registry, Harbor replicating from it -------------


@dataclass
class CopyFlow:
    repo: Path
    h: HarborEmulator
    upstream: Registry
    digests: dict[str, str]  # "app:1.0" -> upstream digest

    @property
    def target(self) -> Registry:
        return self.h.acr.registry


def _copy_repo(flow: CopyFlow, tags: dict[str, list[str]]) -> None:
    repo, h = flow.repo, flow.h
    (repo / "mirrors").mkdir(parents=True, exist_ok=True)
    lines = ["images:"]
    for name, names in tags.items():
        lines += [
            f"  - source: {flow.upstream.host}/org/{name}",
            f"    name: {name}",
            f"    tags: [{', '.join(repr(t) for t in names)}]",
        ]
    (repo / "mirrors/images.yaml").write_text("\n".join(lines) + "\n")
    (repo / "mirrors/relay.yaml").write_text(
        textwrap.dedent(
            f"""\
            transport: copy
            copy: {{registry: "{h.acr.registry.host}", namespace: {NS}}}
            registries:
              ca_bundles: {{"127.0.0.1": "{h.pki.ca_file}"}}
            harbor:
              url: {h.url}
              project: {PROJECT}
              # Harbor pulls with its ali-acr adapter; the emulator maps this name to the
              # registry relay publishes to.
              source_url: https://registry.cn-hangzhou.aliyuncs.com
              registry: "{h.registry.host}"
              poll: {{interval: 0.05, max_interval: 0.3, timeout: 90, settle: 0.3}}
            """
        )
    )


def _use_harbor_registry_login(h: HarborEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real Harbor's registry takes the same login as its API. The emulator's registry is a
    docker-registry with its own htpasswd user: verify reads it with that one."""
    assert h.registry.username and h.registry.password
    monkeypatch.setenv("HARBOR_USERNAME", h.registry.username)
    monkeypatch.setenv("HARBOR_PASSWORD", h.registry.password)


@pytest.fixture
def copy_flow(
    harbor_emulator: HarborEmulator,
    registry_factory,
    image_factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CopyFlow]:
    """Two images published by `relay publish` and replicated into Harbor: everything agrees."""
    h = harbor_emulator
    upstream = registry_factory("plain")
    app = image_factory.push(upstream, "org/app", "1.0", "oci-index", seed=f"{tmp_path}app")
    tool = image_factory.push(upstream, "org/tool", "2.0", "docker", seed=f"{tmp_path}tool")
    for name in ("app", "tool"):
        h.seed_acr_repo(NS, name, tags=())  # the namespace and repositories Harbor lists
    acr = h.acr.registry
    for name, value in EnvCredentials.environment(
        {acr.host: f"{acr.username}:{acr.password}"}
    ).items():
        monkeypatch.setenv(name, value)
    use(h, monkeypatch)  # Harbor's admin login and ACR's AccessKey, for harbor apply
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    flow = CopyFlow(
        tmp_path / "relay", h, upstream, {"app:1.0": app.digest, "tool:2.0": tool.digest}
    )
    _copy_repo(flow, {"app": ["1.0"], "tool": ["2.0"]})
    repo = str(flow.repo)
    assert relay("lock", "--repo", repo) == 0
    assert relay("publish", "--repo", repo) == 0
    assert relay("harbor", "apply", "--repo", repo) == 0
    assert relay("harbor", "replicate", "--wait", "--repo", repo) == 0
    _use_harbor_registry_login(h, monkeypatch)
    yield flow


@pytest.mark.slow
def test_copy_all_agree_costs_one_head_per_tag_per_side(
    copy_flow: CopyFlow,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    skopeo,
) -> None:
    flow = copy_flow
    summary = flow.repo / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    capsys.readouterr()
    assert relay("verify", "--repo", str(flow.repo)) == 0
    out = capsys.readouterr().out
    assert "2 tags: all 2 agree; 8 registry requests, 4.00 per tag (2.00 manifest reads" in out
    assert "app:1.0" in out and "linux/amd64, linux/arm64/v8" in out
    assert out.count(" ok") >= 2
    assert "| `app:1.0` |" in summary.read_text()

    code, doc = verify_json(flow.repo, capsys)
    assert code == 0 and doc["ok"] and doc["transport"] == "copy"
    assert doc["compared"] == "manifest"
    assert doc["target"] == {"kind": "copy", "registry": flow.target.host, "namespace": NS}
    assert doc["harbor"] == {"registry": flow.h.registry.host, "project": PROJECT}
    assert doc["counts"] == {
        "tags": 2,
        "ok": 2,
        "missing": 0,
        "stale": 0,
        "mismatch": 0,
        "error": 0,
    }
    # The unchanged case: one manifest HEAD per tag on each side, none upstream; the rest is
    # one ping per registry and one token per repository on the token-auth target.
    requests_ = doc["requests"]
    assert requests_["upstream"] == 0
    assert requests_["manifest"] == 2 * 2
    assert requests_["target"] == 1 + 2 + 2 and requests_["harbor"] == 1 + 2
    assert requests_["perTag"] == 4.0 and requests_["manifestPerTag"] == 2.0
    app = by_image(doc)["app:1.0"]
    assert app["result"] == "ok" and app["where"] == [] and app["platform"] is None
    assert app["upstream"]["digest"] == flow.digests["app:1.0"]
    assert app["target"]["digest"] == skopeo.digest(f"{NS}/app:1.0", flow.target)
    assert app["harbor"]["digest"] == skopeo.digest(f"{PROJECT}/app:1.0", flow.h.registry)
    assert app["harbor"]["reference"] == f"{flow.h.registry.host}/{PROJECT}/app:1.0"
    # Harbor's login went to Harbor's registry only, never to the target's token service.
    log = flow.target.token_server.log if flow.target.token_server else []
    assert log and all(r.account != flow.h.registry.username for r in log)


@pytest.mark.slow
def test_copy_a_tag_missing_in_harbor_is_named(
    copy_flow: CopyFlow, image_factory, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = copy_flow
    image_factory.push(flow.upstream, "org/tool", "3.0", "docker", seed=f"{flow.repo}t3")
    _copy_repo(flow, {"app": ["1.0"], "tool": ["2.0", "3.0"]})
    assert relay("lock", "--repo", str(flow.repo)) == 0
    assert relay("publish", "--repo", str(flow.repo)) == 0  # published, not yet replicated
    capsys.readouterr()
    assert relay("verify", "--repo", str(flow.repo)) == 1
    out, err = capsys.readouterr()
    assert "1 of 3 tags do not agree across upstream, the target and Harbor" in err
    assert (
        f"tool:3.0: Harbor missing ({flow.h.registry.host}/{PROJECT}/tool:3.0: no tag 3.0)" in out
    )
    code, doc = verify_json(flow.repo, capsys)
    assert code == 1 and not doc["ok"]
    tool3 = by_image(doc)["tool:3.0"]
    assert tool3["result"] == "missing" and tool3["where"] == ["harbor"]
    assert tool3["target"]["state"] == "ok" and tool3["harbor"]["digest"] is None
    # --only narrows the check to the named repositories.
    code, doc = verify_json(flow.repo, capsys, "--only", "a*")
    assert code == 0 and [r["image"] for r in doc["results"]] == ["app:1.0"]


@pytest.mark.slow
def test_copy_a_different_image_under_the_same_tag_is_a_mismatch(
    copy_flow: CopyFlow, image_factory, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = copy_flow
    # Someone pushes over the target's tool:2.0, and over Harbor's app:1.0 with one platform.
    image_factory.push(flow.target, f"{NS}/tool", "2.0", "docker", seed="intruder-tool")
    image_factory.push(flow.h.registry, f"{PROJECT}/app", "1.0", "docker", seed="intruder-app")
    code, doc = verify_json(flow.repo, capsys)
    assert code == 1
    assert doc["counts"]["mismatch"] == 2
    tool, app = by_image(doc)["tool:2.0"], by_image(doc)["app:1.0"]
    assert tool["result"] == "mismatch" and tool["where"] == ["target"]
    assert tool["target"]["detail"] == "a different image under this tag"
    # Harbor still holds upstream's image: the bad target does not make it look bad.
    assert tool["harbor"]["state"] == "ok"
    assert app["where"] == ["harbor"] and app["harbor"]["state"] == "mismatch"
    assert app["harbor"]["detail"] == (
        "a different image: linux/amd64; upstream has linux/amd64, linux/arm64/v8"
    )
    capsys.readouterr()
    assert relay("verify", "--repo", str(flow.repo)) == 1
    out = capsys.readouterr().out
    assert "tool:2.0: target mismatch" in out and "app:1.0: Harbor mismatch" in out


@pytest.mark.slow
def test_copy_a_tag_the_lock_moved_on_from_is_stale(
    copy_flow: CopyFlow,
    image_factory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flow = copy_flow
    commit_all(flow.repo, "published")
    moved = image_factory.push(flow.upstream, "org/app", "1.0", "oci-index", seed="app-moved")
    assert relay("lock", "--update", "--repo", str(flow.repo)) == 0
    code, doc = verify_json(flow.repo, capsys)
    assert code == 1 and doc["history"] is True
    app = by_image(doc)["app:1.0"]
    assert app["upstream"]["digest"] == moved.digest
    assert app["result"] == "stale" and app["where"] == ["target", "harbor"]
    assert app["target"]["digest"] == flow.digests["app:1.0"]
    assert app["target"]["detail"] == "the image the lock had before"
    assert app["harbor"]["state"] == "stale"
    assert by_image(doc)["tool:2.0"]["result"] == "ok"
    # Without the lock's history an older image cannot be told from a stranger.
    subprocess.run(["rm", "-rf", str(flow.repo / ".git")], check=True)
    code, doc = verify_json(flow.repo, capsys)
    assert code == 1 and doc["history"] is False
    assert by_image(doc)["app:1.0"]["result"] == "mismatch"
    # Publishing and replicating again brings everything back in line.
    assert relay("publish", "--repo", str(flow.repo)) == 0
    use(flow.h, monkeypatch)
    assert relay("harbor", "replicate", "--wait", "--repo", str(flow.repo)) == 0
    _use_harbor_registry_login(flow.h, monkeypatch)
    code, doc = verify_json(flow.repo, capsys)
    assert code == 0, doc


@pytest.mark.slow
def test_harbor_unreadable_is_an_error_and_the_password_is_not_shown(
    copy_flow: CopyFlow, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = copy_flow
    monkeypatch.setenv("HARBOR_PASSWORD", "wrong-password-xyz")
    capsys.readouterr()
    assert relay("verify", "--repo", str(flow.repo)) == 1
    out, err = capsys.readouterr()
    assert "error" in out and "HARBOR_USERNAME/HARBOR_PASSWORD" in out
    assert "wrong-password-xyz" not in out + err
    monkeypatch.delenv("HARBOR_PASSWORD")
    assert relay("verify", "--repo", str(flow.repo)) == 2
    assert "HARBOR_USERNAME and HARBOR_PASSWORD" in capsys.readouterr().err

    # Harbor down: one ping (with its retries) says so for every tag; the target is still read.
    _use_harbor_registry_login(flow.h, monkeypatch)
    settings = flow.repo / "mirrors/relay.yaml"
    closed = f"127.0.0.1:{free_port()}"
    settings.write_text(settings.read_text().replace(flow.h.registry.host, closed))
    code, doc = verify_json(flow.repo, capsys)
    assert code == 1 and doc["counts"]["error"] == 2
    for result in doc["results"]:
        assert result["target"]["state"] == "ok" and result["harbor"]["state"] == "error"
        assert closed in result["harbor"]["detail"]
    assert doc["requests"]["manifest"] == 2  # the target's HEADs; none tried on Harbor


# --- the build transport: upstream → ACR build → Harbor -----------------------------------------


def _config_of(skopeo, ref: str, registry: Registry) -> tuple[str, list[str]]:
    """(config digest, diff_ids) of an image, read with skopeo, the independent oracle."""
    raw = skopeo.run(
        [
            "inspect",
            "--raw",
            "--config",
            *skopeo.registry_flags(registry),
            docker_ref(ref, registry),
        ]
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest(), json.loads(raw)["rootfs"]["diff_ids"]


@pytest.mark.slow
@pytest.mark.buildah
def test_build_transport_acr_builds_then_missing_mismatch_and_stale(
    harbor_emulator: HarborEmulator,
    registry_factory,
    image_factory,
    skopeo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    h = harbor_emulator
    acr = h.acr
    upstream = registry_factory("plain")
    acr.map_upstream(upstream.host, upstream)
    for tag in ("1.0", "2.0"):
        image_factory.push(upstream, "org/app", tag, "docker", seed=f"{tmp_path}{tag}")
    repo = write_repo(
        tmp_path / "relay",
        f"images:\n  - source: {upstream.host}/org/app\n    name: app\n    tags: ['1.0', '2.0']\n",
        f"""\
        acr:
          namespace: {NS}
          registry_domain: "{acr.registry.host}"   # the stand-in for registry.<region>...
          source: {{github: octo/verify}}
          poll: {{interval: 0.05, max_interval: 0.2, timeout: 120}}
          retry: {{backoff: 0.01, max_backoff: 0.05}}
        registries:
          ca_bundles: {{"127.0.0.1": "{h.pki.ca_file}"}}
        harbor:
          url: {h.url}
          project: {PROJECT}
          source_url: https://registry.cn-hangzhou.aliyuncs.com
          registry: "{h.registry.host}"
          poll: {{interval: 0.05, max_interval: 0.3, timeout: 90, settle: 0.3}}
        """,
    )
    monkeypatch.setenv("RELAY_ACR_ENDPOINT", acr.endpoint)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", acr.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", acr.access_key_secret)
    reg = acr.registry
    for name, value in EnvCredentials.environment(
        {reg.host: f"{reg.username}:{reg.password}"}
    ).items():
        monkeypatch.setenv(name, value)

    def as_admin() -> None:
        use(h, monkeypatch)

    as_admin()
    assert relay("lock", "--repo", str(repo)) == 0
    assert relay("generate", "--repo", str(repo)) == 0
    files = {
        str(p.relative_to(repo)): p.read_text()
        for p in (repo / "mirrors").rglob("*")
        if p.is_file()
    }
    acr.create_git_remote("octo/verify", files)
    assert relay("acr", "apply", "--wait", "--repo", str(repo)) == 0
    assert relay("harbor", "apply", "--repo", str(repo)) == 0
    assert relay("harbor", "replicate", "--wait", "--only", "app", "--repo", str(repo)) == 0
    commit_all(repo, "built")
    _use_harbor_registry_login(h, monkeypatch)

    # All agree: ACR's build keeps upstream's config; Harbor holds ACR's manifest.
    code, doc = verify_json(repo, capsys)
    assert code == 0, doc
    assert doc["compared"] == "config" and doc["target"]["kind"] == "acr"
    one = by_image(doc)["app:1.0"]
    want_config, _ = _config_of(skopeo, "org/app:1.0", upstream)
    assert one["platform"] == "linux/amd64"
    assert one["upstream"]["config"] == want_config == one["target"]["config"]
    assert one["target"]["config"] == _config_of(skopeo, f"{NS}/app:1.0", acr.registry)[0]
    assert one["harbor"]["digest"] == one["target"]["digest"]
    assert one["harbor"]["digest"] == skopeo.digest(f"{PROJECT}/app:1.0", h.registry)
    # One manifest GET per tag on ACR (its config is the lock's: no config read), one HEAD on
    # Harbor, nothing upstream; plus a ping each and ACR's token for the repository.
    assert doc["requests"]["upstream"] == 0
    assert doc["requests"]["manifest"] == 2 * 2
    assert doc["requests"]["target"] == 1 + 1 + 2 and doc["requests"]["harbor"] == 1 + 2

    # Missing in Harbor.
    delete_tag(h.registry, f"{PROJECT}/app", "2.0")
    code, doc = verify_json(repo, capsys)
    two = by_image(doc)["app:2.0"]
    assert code == 1 and two["result"] == "missing" and two["where"] == ["harbor"]
    as_admin()
    assert relay("harbor", "replicate", "--wait", "--only", "app", "--repo", str(repo)) == 0
    _use_harbor_registry_login(h, monkeypatch)
    assert verify_json(repo, capsys)[0] == 0

    # A different image under ACR's app:2.0: named by the layer that differs; Harbor still
    # holds upstream's image and is judged against upstream, not against the bad build.
    image_factory.push(acr.registry, f"{NS}/app", "2.0", "docker", seed="intruder")
    code, doc = verify_json(repo, capsys)
    two = by_image(doc)["app:2.0"]
    assert code == 1 and two["result"] == "mismatch" and two["where"] == ["target"]
    assert two["target"]["detail"] == "config differs: layer 1 of 2 differs"
    assert two["harbor"]["state"] == "ok"
    capsys.readouterr()
    assert relay("verify", "--repo", str(repo)) == 1
    out = capsys.readouterr().out
    assert "app:2.0 [linux/amd64]: ACR mismatch" in out and "layer 1 of 2 differs" in out

    # Upstream moves 1.0 and the lock takes it: ACR and Harbor hold the build the lock had.
    image_factory.push(upstream, "org/app", "1.0", "docker", seed=f"{tmp_path}moved")
    as_admin()
    assert relay("lock", "--update", "--repo", str(repo)) == 0
    _use_harbor_registry_login(h, monkeypatch)
    code, doc = verify_json(repo, capsys)
    one = by_image(doc)["app:1.0"]
    assert code == 1 and one["result"] == "stale" and one["where"] == ["target", "harbor"]
    assert one["target"]["detail"] == "a build of the image the lock had before"
    assert one["harbor"]["detail"] == "same as ACR"
    assert one["upstream"]["config"] == _config_of(skopeo, "org/app:1.0", upstream)[0]


def test_registries_limits_apply_to_harbors_registry(tmp_path: Path) -> None:
    """registries.limits (here read_timeout) bound the Harbor pool as they bound the others:
    a token service that takes 4 s is given up on after 1 s."""
    from relay.commands.common import load
    from relay.commands.verify import harbor_behind

    harbor = FakeRegistry(auth="token", users={"robot$relay": "harbor-pw"})
    digest = harbor.put_manifest(f"{PROJECT}/app", "1.0", b'{"schemaVersion":2}')
    harbor.token_delay = 4.0
    repo = write_repo(
        tmp_path,
        f"images:\n  - source: docker.io/library/app\n    name: app\n    tags: ['1.0@{digest}']\n",
        f"""\
        transport: copy
        copy: {{registry: registry.example.com, namespace: ns}}
        registries:
          limits: {{read_timeout: 1}}
        harbor:
          url: {harbor.url}
          project: {PROJECT}
          registry: "{harbor.host}"
        """,
    )
    env = {"HARBOR_USERNAME": "robot$relay", "HARBOR_PASSWORD": "harbor-pw"}
    try:
        cfg, listed = load(repo)
        behind, _ = harbor_behind(repo, cfg, Lock(), pins(listed, Lock()), env)
        assert behind == ["app"]  # the token never came in time
        harbor.token_delay = 0.0
        behind, _ = harbor_behind(repo, cfg, Lock(), pins(listed, Lock()), env)
        assert behind == []
    finally:
        harbor.stop()


def test_an_error_detail_is_one_safe_line(fake: FakeRegistry) -> None:
    """What a registry says reaches the terminal, the JSON document and the job summary: its
    first line only, with secrets redacted and control characters escaped (relay.safety)."""
    from relay import safety
    from relay.errors import OperationFailed

    secret = "verify-detail-secret-9c1e"
    safety.add_secret(secret)

    class Refusing(RegistryClient):
        def head_manifest(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
            raise OperationFailed(f"denied for {secret} \x1b[31mred\nsecond line")

    listed = mirrors.parse(
        f"images:\n  - source: {fake.host}/up/app\n    name: app\n    tags: ['1.0@{D1}']\n",
        "mirrors/images.yaml",
    )
    [item] = stage.items(pins(listed, Lock()), Lock(), None)
    observer = stage.Observer(
        transport="copy",
        target=stage.Location(fake.host, "ns", "copy"),
        target_client=Refusing(fake.host),
        harbor=None,
        harbor_client=None,
        upstream=lambda host: RegistryClient(host),
        history=stage.LockHistory(),
    )
    [check] = stage.observe([item], observer, concurrency=1)
    detail = check.target.detail
    assert check.target.state == "error" and detail.startswith("denied for ")
    assert secret not in detail and "\x1b" not in detail and "second line" not in detail


def test_harbor_behind_reads_no_config_blob_it_cannot_compare(tmp_path: Path) -> None:
    """The build transport, judged against the lock alone (relay harbor replicate
    --missing): a config that is not upstream's makes the tag behind, and that is all; the
    mismatch is not explained (that reads upstream, which is not read here), so Harbor's
    config blob is not read either."""
    from relay.commands.common import load
    from relay.commands.verify import harbor_behind
    from relay.config import lockfile
    from relay.config.lockfile import LockedTag
    from relay.registry.mediatypes import OCI_MANIFEST

    harbor = FakeRegistry(auth="none")
    built = _image(harbor, f"{PROJECT}/app", "linux", "amd64")
    harbor.put_manifest(
        f"{PROJECT}/app", "1.0", harbor.manifests[(f"{PROJECT}/app", built)].content
    )
    lock = Lock()
    lock.put(
        "docker.io/library/app",
        "1.0",
        LockedTag(D1, OCI_MANIFEST, ("linux/amd64",), configs=(("linux/amd64", C1),)),
    )
    repo = write_repo(
        tmp_path,
        "images:\n  - source: docker.io/library/app\n    name: app\n    tags: ['1.0']\n",
        f"""\
        acr: {{namespace: {NS}, region: cn-hangzhou}}
        harbor:
          url: {harbor.url}
          project: {PROJECT}
          registry: "{harbor.host}"
        """,
        lockfile.dumps(lock),
    )
    try:
        cfg, listed = load(repo)
        behind, _ = harbor_behind(repo, cfg, lock, pins(listed, lock), {})
        assert behind == ["app"]
        assert harbor.count("GET", "/manifests/") == 1
        # A single-platform image states its platform only in its config: read once, not again.
        assert harbor.count("GET", "/blobs/") == 1
    finally:
        harbor.stop()
