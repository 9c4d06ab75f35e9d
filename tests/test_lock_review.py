"""Review fixes for lock, plan and copy, on the in-process fake registry
(tests/fakes/registry.py): tag lists from upstream only, bounded config reads, platform checks,
whole-record diffs."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from relay import cli, files
from relay.config import lockfile
from relay.config import mirrors as mirrors_config
from relay.config.lockfile import Lock, LockedTag
from relay.ops.inspectimage import inspect_image
from relay.registry.errors import RegistryError
from relay.registry.mirrors import Mirror, MirroredSource
from relay.registry.models import Manifest
from relay.registry.pool import ClientPool
from relay.stages import lock as lock_stage
from tests.fakes.registry import OCI_INDEX, OCI_MANIFEST, FakeRegistry, sha256


def relay(*args: str) -> int:
    return cli.main(list(args))


def push_image(
    reg: FakeRegistry, repo: str, tag: str, *, os: str = "linux", arch: str = "amd64"
) -> str:
    """A single-platform image of one small layer; returns its manifest digest."""
    config = json.dumps(
        {"os": os, "architecture": arch, "rootfs": {"type": "layers", "diff_ids": []}, "t": tag}
    ).encode()
    layer = f"layer {repo}:{tag}:{arch}".encode()
    config_digest = reg.add_blob(repo, config)
    layer_digest = reg.add_blob(repo, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": len(layer),
            }
        ],
    }
    return reg.put_manifest(repo, tag, json.dumps(manifest).encode())


def write_repo(tmp_path: Path, images: str, settings: str = "") -> Path:
    (tmp_path / "mirrors").mkdir(exist_ok=True)
    (tmp_path / "mirrors/images.yaml").write_text(textwrap.dedent(images))
    (tmp_path / "mirrors/relay.yaml").write_text(textwrap.dedent(settings))
    return tmp_path


@pytest.fixture
def mirror() -> Iterator[FakeRegistry]:
    reg = FakeRegistry()
    yield reg
    reg.stop()


# --- 1. tag lists come from upstream, never from a pull-through mirror ------------------------


def test_select_lists_tags_upstream_not_on_a_partial_mirror(
    fake: FakeRegistry, mirror: FakeRegistry, tmp_path: Path
) -> None:
    for tag in ("1.0.0", "1.1.0", "1.2.0"):
        push_image(fake, "team/app", tag)
    # A pull-through cache has only what was pulled through it: the oldest tag.
    push_image(mirror, "team/app", "1.0.0")
    repo = write_repo(
        tmp_path,
        f"""\
        images:
          - source: {fake.host}/team/app
            select: {{latest: 2}}
        """,
        f'registries:\n  mirrors:\n    "{fake.host}": ["{mirror.url}"]\n',
    )
    assert relay("lock", "--repo", str(repo)) == 0
    lock = lockfile.read(repo)
    assert sorted(lock.images[f"{fake.host}/team/app"]) == ["1.1.0", "1.2.0"]
    assert mirror.count("GET", "tags/list") == 0


def test_select_fails_when_only_the_mirror_answers(
    mirror: FakeRegistry, tmp_path: Path, capsys
) -> None:
    from relay.sandbox.registries import free_port

    dead = f"127.0.0.1:{free_port()}"
    push_image(mirror, "team/app", "1.0.0")
    repo = write_repo(
        tmp_path,
        f"""\
        images:
          - source: {dead}/team/app
            select: {{latest: 2}}
        """,
        f'registries:\n  mirrors:\n    "{dead}": ["{mirror.url}"]\n',
    )
    assert relay("lock", "--repo", str(repo)) == 1
    err = capsys.readouterr().err
    assert "pull-through" in err and mirror.url in err
    assert not (repo / "mirrors/images.lock").exists()


# --- 2. an image config is read bounded, not whole -------------------------------------------


def _manifest_with_config(reg: FakeRegistry, repo: str, config: bytes, claimed: int) -> Manifest:
    digest = reg.add_blob(repo, config)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest,
            "size": claimed,
        },
        "layers": [],
    }
    content = json.dumps(doc).encode()
    reg.put_manifest(repo, "big", content)
    return Manifest(content, OCI_MANIFEST, sha256(content))


@pytest.mark.parametrize("through_mirror", [False, True])
@pytest.mark.parametrize("claimed", ["small", "huge"])
def test_a_config_larger_than_its_descriptor_or_the_limit_is_not_read_whole(
    fake: FakeRegistry, claimed: str, through_mirror: bool
) -> None:
    # Valid JSON, padded to 6 MiB: read whole, it would pass every later check.
    config = b'{"os": "linux", "architecture": "amd64"' + b" " * (6 << 20) + b"}"
    size = 50 if claimed == "small" else 5 << 30  # the descriptor's word
    manifest = _manifest_with_config(fake, "team/big", config, size)
    with ClientPool() as pool:
        client = pool.get(fake.host)
        source = (
            MirroredSource(client, [Mirror(pool.get(fake.host), "", fake.url)])
            if through_mirror
            else client
        )
        with pytest.raises(RegistryError, match="larger than"):
            inspect_image(source, "team/big", manifest, ["linux/amd64"])
        assert client.stats.bytes_received < (4 << 20) + (1 << 20)


# --- 3. copy --platform checks a single-platform image's own platform --------------------------


def test_copy_platform_refuses_a_single_platform_image_of_another_platform(
    fake: FakeRegistry, tmp_path: Path, capsys
) -> None:
    push_image(fake, "team/one", "1", arch="amd64")
    repo = write_repo(tmp_path, "images: []\n")
    src, dst = f"{fake.host}/team/one:1", f"{fake.host}/copy/one:1"
    assert relay("copy", src, dst, "--platform", "linux/arm64", "--repo", str(repo)) == 1
    err = capsys.readouterr().err
    assert "linux/amd64" in err and "linux/arm64" in err
    assert ("copy/one", "1") not in fake.manifests
    assert fake.count("POST", "/v2/copy/one/blobs/uploads") == 0  # decided before uploading
    # The platform it has is copied (linux/amd64 as asked, or by its name).
    assert relay("copy", src, dst, "--platform", "linux/amd64", "--repo", str(repo)) == 0
    assert ("copy/one", "1") in fake.manifests


# --- 4. plan keeps what it could not check, instead of reporting it removed --------------------


def test_plan_does_not_report_tags_of_an_unanswered_registry_as_removed(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    up = FakeRegistry()
    other = FakeRegistry()
    try:
        for tag in ("1.0.0", "1.1.0"):
            push_image(up, "team/app", tag)
        push_image(other, "team/web", "2.0")
        repo = write_repo(
            tmp_path,
            f"""\
            images:
              - source: {up.host}/team/app
                select: {{latest: 2}}
              - source: {other.host}/team/web
                select: {{latest: 1}}
            """,
        )
        assert relay("lock", "--repo", str(repo)) == 0
        push_image(other, "team/web", "3.0")  # a real change on the registry that answers
    finally:
        up.stop()
    try:
        capsys.readouterr()
        assert relay("plan", "--repo", str(repo), "--output", "json") == 1
        out = json.loads(capsys.readouterr().out)
    finally:
        other.stop()
    changes = out["lock"]["changes"]
    assert sorted(c["kind"] for c in changes) == ["add", "remove"]  # team/web: 3.0 in, 2.0 out
    assert all("team/web" in c["source"] for c in changes)
    assert out["lock"]["notChecked"] == [f"{up.host}/team/app"]
    assert out["lock"]["complete"] is False


# --- 5. a change of metadata under the same digest is a change ---------------------------------


@pytest.mark.parametrize(
    "edit",
    [
        {"platforms": ("linux/arm64",)},
        {"selected_by": "rule"},
        {"media_type": "application/vnd.docker.distribution.manifest.v2+json"},
        {"configs": ()},
    ],
)
def test_diff_compares_whole_records(edit: dict[str, object]) -> None:
    digest = "sha256:" + "a" * 64
    base = LockedTag(digest, OCI_MANIFEST, ("linux/amd64",), "tag", (("linux/amd64", digest),))
    old, new = Lock(), Lock()
    old.put("r.example/app", "1", replace(base, **edit))  # type: ignore[arg-type]
    new.put("r.example/app", "1", base)
    (change,) = lock_stage.diff(old, new)
    assert change.kind == "change" and change.old == change.new == digest
    assert str(change).startswith("changed ")
    assert lock_stage.diff(new, new) == []
    # The line a tag sits on is not part of its record.
    assert lock_stage.diff(new, Lock({"r.example/app": {"1": replace(base, line=7)}})) == []


def test_lock_check_sees_a_metadata_change(fake: FakeRegistry, tmp_path: Path, capsys) -> None:
    push_image(fake, "team/app", "1.0")
    images = f"""\
        images:
          - source: {fake.host}/team/app
            tags: ["1.0"]
        """
    repo = write_repo(tmp_path, images)
    assert relay("lock", "--repo", str(repo)) == 0
    # The same tag, now chosen by a rule: same digest, other selectedBy, which relay lock
    # would write; --check must say so rather than "the lock matches upstream".
    write_repo(tmp_path, images.replace('tags: ["1.0"]', "select: {latest: 1}"))
    capsys.readouterr()
    assert relay("lock", "--check", "--repo", str(repo)) == 1
    assert f"changed {fake.host}/team/app:1.0" in capsys.readouterr().out
    assert relay("lock", "--repo", str(repo)) == 0
    assert lockfile.read(repo).images[f"{fake.host}/team/app"]["1.0"].selected_by == "rule"
    assert relay("lock", "--check", "--repo", str(repo)) == 0


# --- 6. a narrowed digest-only copy is pushed by its new digest --------------------------------


def push_index(reg: FakeRegistry, repo: str, tag: str, arches: tuple[str, ...]) -> str:
    children = []
    for arch in arches:
        digest = push_image(reg, repo, f"{tag}-{arch}", arch=arch)
        content = reg.manifests[(repo, digest)].content
        children.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(content),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
    return reg.put_manifest(repo, tag, json.dumps(doc).encode(), OCI_INDEX)


@pytest.mark.parametrize("platforms", [("linux/amd64",), ("linux/amd64", "linux/arm64")])
def test_copy_by_digest_with_platform_and_no_destination_tag_pushes_the_new_digest(
    fake: FakeRegistry, tmp_path: Path, capsys, platforms: tuple[str, ...]
) -> None:
    digest = push_index(fake, "team/multi", "1", ("amd64", "arm64", "s390x"))
    repo = write_repo(tmp_path, "images: []\n")
    flags = [f for p in platforms for f in ("--platform", p)]
    src, dst = f"{fake.host}/team/multi@{digest}", f"{fake.host}/copy/multi"
    capsys.readouterr()
    assert relay("copy", src, dst, *flags, "--repo", str(repo)) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    narrowed = [r for (repo_, r) in fake.manifests if repo_ == "copy/multi" and r != digest]
    assert narrowed and f"{dst}@" in out
    assert ("copy/multi", digest) not in fake.manifests


# --- 7. a child manifest missing upstream is named; nested indexes are copied whole -------------


def test_lock_names_the_platform_and_digest_of_a_missing_child(fake: FakeRegistry) -> None:
    push_index(fake, "team/multi", "1", ("amd64", "arm64"))
    gone = sha256(fake.manifests[("team/multi", "1-arm64")].content)
    del fake.manifests[("team/multi", gone)]
    listed = mirrors_config.parse(
        f"images:\n  - source: {fake.host}/team/multi\n    tags: ['1']\n", "mirrors/images.yaml"
    )
    with ClientPool() as pool:
        result = lock_stage.resolve(
            listed, Lock(), pool, recheck=False, config_platforms=lambda e: ("linux/arm64",)
        )
    (problem,) = result.problems
    assert "not found upstream" not in problem.message
    assert "linux/arm64" in problem.message and gone in problem.message
    assert not result.unanswered


def test_copy_names_a_missing_child_and_suggests_platform(
    fake: FakeRegistry, tmp_path: Path, capsys
) -> None:
    push_index(fake, "team/multi", "1", ("amd64", "arm64"))
    gone = sha256(fake.manifests[("team/multi", "1-arm64")].content)
    del fake.manifests[("team/multi", gone)]
    repo = write_repo(tmp_path, "images: []\n")
    capsys.readouterr()
    src, dst = f"{fake.host}/team/multi:1", f"{fake.host}/copy/multi:1"
    assert relay("copy", src, dst, "--repo", str(repo)) == 1
    err = capsys.readouterr().err
    assert "linux/arm64" in err and gone in err and "--platform linux/amd64" in err
    assert relay("copy", src, dst, "--platform", "linux/amd64", "--repo", str(repo)) == 0


def test_copy_pushes_a_nested_index_with_its_children(
    fake: FakeRegistry, tmp_path: Path, capsys
) -> None:
    inner = push_index(fake, "team/nest", "inner", ("amd64", "arm64"))
    content = fake.manifests[("team/nest", inner)].content
    outer = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": inner, "size": len(content)}],
    }
    top = fake.put_manifest("team/nest", "1", json.dumps(outer).encode(), OCI_INDEX)
    other = FakeRegistry()
    try:
        repo = write_repo(tmp_path, "images: []\n")
        src, dst = f"{fake.host}/team/nest:1", f"{other.host}/copy/nest:1"
        assert relay("copy", src, dst, "--repo", str(repo)) == 0, capsys.readouterr().err
        for ref in (top, inner, "1"):
            assert ("copy/nest", ref) in other.manifests
        inner_doc = json.loads(content)
        for child in inner_doc["manifests"]:
            assert ("copy/nest", child["digest"]) in other.manifests
        assert len(other.blobs) == 4  # two configs, two layers
    finally:
        other.stop()


# --- 8. a tag repeated across pages is listed once ----------------------------------------------


def test_tags_repeated_across_pages_are_listed_once(fake: FakeRegistry, tmp_path: Path) -> None:
    for tag in ("1.0.0", "1.1.0", "1.2.0"):
        push_image(fake, "team/app", tag)
    # A registry whose pages overlap (a tag pushed while paging, or a sloppy `last`).
    fake.add_fault(
        "GET",
        "/tags/list",
        status=200,
        body=json.dumps({"name": "team/app", "tags": ["1.0.0", "1.1.0"]}).encode(),
        headers={
            "Content-Type": "application/json",
            "Link": '</v2/team/app/tags/list?n=2&last=1.0.0>; rel="next"',
        },
    )
    fake.add_fault(
        "GET",
        "/tags/list",
        status=200,
        body=json.dumps({"name": "team/app", "tags": ["1.1.0", "1.2.0"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with ClientPool() as pool:
        assert pool.get(fake.host).list_tags("team/app") == ["1.0.0", "1.1.0", "1.2.0"]


# --- 9. an entry that asks for platforms fails when upstream states none ----------------------


@pytest.mark.parametrize("kind", ["config", "index"])
def test_platform_unknown_upstream_is_a_problem_for_an_entry_with_platforms(
    fake: FakeRegistry, tmp_path: Path, capsys, kind: str
) -> None:
    if kind == "config":
        push_image(fake, "team/app", "1", os="")  # a config without `os`
    else:
        child = push_image(fake, "team/app", "child")
        content = fake.manifests[("team/app", child)].content
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": len(content)}],
        }
        fake.put_manifest("team/app", "1", json.dumps(doc).encode(), OCI_INDEX)
    repo = write_repo(
        tmp_path,
        f"""\
        images:
          - source: {fake.host}/team/app
            tags: ["1"]
            platforms: [linux/amd64]
        """,
    )
    assert relay("lock", "--repo", str(repo)) == 1
    assert "platform unknown" in capsys.readouterr().err


# --- 10. a replaced file is on disk before it is renamed, and the rename is too ----------------


def test_write_if_changed_fsyncs_the_file_before_the_rename_and_the_directory_after(
    tmp_path: Path, monkeypatch
) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace_(src: str | Path, dst: str | Path) -> None:
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace_)
    target = tmp_path / "mirrors" / "images.lock"
    assert files.write_if_changed(target, "x\n")
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"], events
    assert events[0][1].startswith(str(target.parent) + "/.images.lock.relay-")  # the temp file
    assert events[2][1] == str(target.parent)  # the directory holding the new name
    assert target.read_text() == "x\n"
