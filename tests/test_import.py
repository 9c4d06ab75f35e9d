"""`relay import FORMAT FILE`: the lists people already keep, in their real shapes, merged into
mirrors/images.yaml with its comments and order kept, never duplicating."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay import cli
from relay.config import mirrors

from .helpers import DIGEST_A

# A list as people keep it: comments, block and flow lists, a pin, a rule.
LIST = f"""\
# yaml-language-server: $schema=./images.schema.json
# Our mirrors. Keep this sorted by team.
images:
  # --- platform team
  - source: registry.k8s.io/pause
    tags: ["3.9@{DIGEST_A}"]   # pinned
    platforms: [linux/amd64, linux/arm64]
  - source: nginx
    tags:
      - "1.26"
    platforms:
      - linux/amd64
  # --- data team
  - source: bitnami/redis
    select: {{semver: "^7"}}
"""

# docker_image_pusher's images.txt as users write it (Windows line endings included).
IMAGES_TXT = (
    "# 一行一个镜像 / one image a line\r\n"
    "\r\n"
    "--platform=linux/arm64 nginx:1.27\r\n"
    "--platform=linux/amd64 nginx:1.27\r\n"
    "--platform=linux/amd64 xiaoyaliu/alist:v3.38.0\r\n"
    "--platform=linux/arm64 xiaoyaliu/alist:v3.38.0\r\n"
    "registry.k8s.io/pause:3.10   # newer pause\r\n"
    "registry.k8s.io/pause:3.9\r\n"
    "  \r\n"
    "mysql\r\n"
    f"quay.io/prometheus/node-exporter@{DIGEST_A}\r\n"
    "docker.elastic.co/elasticsearch/elasticsearch:8.15.0\r\n"
    f"redis:7.4@{DIGEST_A}\r\n"
)


def repo_with(tmp_path: Path, text: str = LIST, settings: str | None = None) -> Path:
    (tmp_path / "mirrors").mkdir(parents=True)
    (tmp_path / "mirrors/images.yaml").write_bytes(text.encode())
    if settings is not None:
        (tmp_path / "mirrors/relay.yaml").write_text(settings)
    return tmp_path


def relay(*args: str) -> int:
    return cli.main(list(args))


def kept_in_order(old: str, new: str) -> bool:
    """Every comment and entry of ``old`` is in ``new``, in the same order, and every line of
    ``old`` starts a line of ``new`` (a merged tag is appended to its line, or on a new one)."""
    lines = iter(new.splitlines())
    ok = all(any(n.startswith(line.split("]")[0]) for n in lines) for line in old.splitlines())
    marks = [line for line in old.splitlines() if line.lstrip().startswith(("#", "- source"))]
    found = [line for line in new.splitlines() if line in marks]
    return ok and found == marks


def entries(repo: Path) -> dict[str, mirrors.Entry]:
    return mirrors.load(repo).by_source()


def test_images_txt_round_trip(tmp_path: Path, capsys) -> None:
    repo = repo_with(tmp_path / "r")
    (tmp_path / "images.txt").write_bytes(IMAGES_TXT.encode())
    assert relay("import", "images-txt", str(tmp_path / "images.txt"), "--repo", str(repo)) == 0
    out, err = capsys.readouterr()
    text = (repo / "mirrors/images.yaml").read_text()
    assert kept_in_order(LIST, text), text
    got = entries(repo)
    # Merged into the entries the list has: no second nginx or pause entry.
    assert [t.tag for t in got["docker.io/library/nginx"].tags] == ["1.26", "1.27"]
    assert got["docker.io/library/nginx"].platforms == ("linux/amd64", "linux/arm64")
    assert [t.tag for t in got["registry.k8s.io/pause"].tags] == ["3.9", "3.10"]
    # One entry per image, its platforms gathered from the --platform lines.
    alist = got["docker.io/xiaoyaliu/alist"]
    assert [t.tag for t in alist.tags] == ["v3.38.0"]
    assert alist.platforms == ("linux/amd64", "linux/arm64")
    assert [t.tag for t in got["docker.io/library/mysql"].tags] == ["latest"]
    assert "docker.elastic.co/elasticsearch/elasticsearch" in got
    (pin,) = got["docker.io/library/redis"].tags
    assert (pin.tag, pin.digest) == ("7.4", DIGEST_A)
    assert "docker.io/library/mysql" in out and "merged  docker.io/library/nginx" in out
    # What the list cannot say is reported with the file's line.
    assert "images.txt:11: quay.io/prometheus/node-exporter@" in err
    assert "a digest without a tag cannot be pinned" in err
    # Never duplicating: a second import changes nothing.
    before = (repo / "mirrors/images.yaml").read_bytes()
    assert relay("import", "images-txt", str(tmp_path / "images.txt"), "--repo", str(repo)) == 0
    assert "mirrors/images.yaml unchanged" in capsys.readouterr().out
    assert (repo / "mirrors/images.yaml").read_bytes() == before


def test_image_syncer_every_form(tmp_path: Path, capsys) -> None:
    repo = repo_with(tmp_path / "r")
    # image-syncer's README forms, as its users' images.yaml files have them.
    (tmp_path / "images.yaml").write_text(
        f"""\
# synced nightly
quay.io/coreos/kube-rbac-proxy: $REGISTRY/ns/kube-rbac-proxy
quay.io/coreos/kube-rbac-proxy:v1.0,v2.0: registry.cn-hangzhou.aliyuncs.com/ns/krp
quay.io/coreos/etcd@{DIGEST_A}: registry.cn-hangzhou.aliyuncs.com/ns/etcd
quay.io/prometheus/prometheus:/^v2\\.5[0-9]\\./:
  - registry.cn-hangzhou.aliyuncs.com/ns/prometheus
  - harbor.lan/ns/prometheus
nginx:1.27: registry.cn-hangzhou.aliyuncs.com/ns/nginx:stable
bitnami/redis:7.4: harbor.lan/ns/redis
"""
    )
    assert relay("import", "image-syncer", str(tmp_path / "images.yaml"), "--repo", str(repo)) == 0
    out, err = capsys.readouterr()
    got = entries(repo)
    rbac = got["quay.io/coreos/kube-rbac-proxy"]
    assert rbac.select is not None and rbac.select.all and not rbac.tags
    prom = got["quay.io/prometheus/prometheus"].select
    assert prom is not None and prom.include is not None
    assert prom.include.pattern == "^v2\\.5[0-9]\\."
    assert [t.tag for t in got["docker.io/library/nginx"].tags] == ["1.26", "1.27"]
    # redis has a rule already: the explicit tag joins it.
    redis = got["docker.io/bitnami/redis"]
    assert [t.tag for t in redis.tags] == ["7.4"] and redis.select is not None
    assert "quay.io/coreos/etcd" not in got
    assert "images.yaml:4: quay.io/coreos/etcd@" in err
    assert "renamed tags (stable) dropped" in err
    assert "destination(s) dropped" in err
    assert kept_in_order(LIST, (repo / "mirrors/images.yaml").read_text())


def test_image_syncer_json(tmp_path: Path, capsys) -> None:
    repo = repo_with(tmp_path / "r", "images: []\n")
    (tmp_path / "images.json").write_text(
        json.dumps({"gcr.io/distroless/static:nonroot": "harbor.lan/x/static"}, indent=2)
    )
    assert relay("import", "image-syncer", str(tmp_path / "images.json"), "--repo", str(repo)) == 0
    text = (repo / "mirrors/images.yaml").read_text()
    assert text.startswith("images:\n  # imported with")
    assert [t.tag for t in entries(repo)["gcr.io/distroless/static"].tags] == ["nonroot"]


def test_refs_from_kubeadm_and_helm(tmp_path: Path, capsys) -> None:
    # CRLF list: the edit keeps its line endings.
    repo = repo_with(tmp_path / "r", LIST.replace("\n", "\r\n"))
    (tmp_path / "refs.txt").write_text(
        # `kubeadm config images list --kubernetes-version v1.30.14`
        "registry.k8s.io/kube-apiserver:v1.30.14\n"
        "registry.k8s.io/pause:3.9\n"
        "registry.k8s.io/coredns/coredns:v1.11.3\n"
        "\n"
        # `helm template ... | grep image:`
        '          image: "docker.io/bitnami/redis:7.2.5-debian-12-r4"\n'
        "        - image: quay.io/jetstack/cert-manager-controller:v1.15.1\n"
        "          image: 'registry.k8s.io/ingress-nginx/controller:v1.11.1'\n"
    )
    assert relay("import", "refs", str(tmp_path / "refs.txt"), "--repo", str(repo)) == 0
    data = (repo / "mirrors/images.yaml").read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")  # every line ends \r\n
    got = entries(repo)
    assert [t.tag for t in got["docker.io/bitnami/redis"].tags] == ["7.2.5-debian-12-r4"]
    assert [t.tag for t in got["registry.k8s.io/coredns/coredns"].tags] == ["v1.11.3"]
    assert len(got["registry.k8s.io/pause"].tags) == 1  # 3.9 was there (pinned)


def test_names_that_would_collide_get_a_name(tmp_path: Path, capsys) -> None:
    repo = repo_with(
        tmp_path / "r",
        "images:\n  - source: elasticsearch\n    tags: ['8']\n"
        "  - source: bitnami/elasticsearch\n    name: elasticsearch_elasticsearch\n"
        "    tags: ['8']\n",
    )
    (tmp_path / "refs").write_text(
        "docker.elastic.co/elasticsearch/elasticsearch:8.15.0\n"  # derives a taken name
        "quay.io/elasticsearch/elasticsearch:8.15.0\n"  # derives a name over 30
    )
    settings = "naming:\n  max_length: 30\n  prefixes: {docker.elastic.co: ''}\n"
    (repo / "mirrors/relay.yaml").write_text(settings)
    assert relay("import", "refs", str(tmp_path / "refs"), "--repo", str(repo)) == 0
    got = entries_with(repo, max_length=30, prefixes={"docker.elastic.co": ""})
    targets = sorted(e.target for e in got.values())
    assert len(set(targets)) == 4
    out = capsys.readouterr().out
    assert "(the derived elasticsearch_elasticsearch is taken)" in out
    assert "(the derived quay_elasticsearch_elasticsearch is not a valid name)" in out


def entries_with(repo: Path, *, max_length: int, prefixes: dict[str, str]) -> dict:
    return mirrors.load(repo, max_name_length=max_length, prefixes=prefixes).by_source()


@pytest.mark.parametrize(
    ("fmt", "content", "message"),
    [
        ("images-txt", "nginx:1.27\nnot a/valid:ref:x y\n", "images.txt:2: expected one image"),
        ("images-txt", "--platform=linux/amd46 nginx:1\n", "did you mean 'amd64'?"),
        ("refs", "nginx:1.27\nNginx:UPPER\n", "images.txt:2: 'Nginx:UPPER' is not an image"),
    ],
)
def test_bad_lines_name_file_and_line_and_write_nothing(
    tmp_path: Path, capsys, fmt: str, content: str, message: str
) -> None:
    repo = repo_with(tmp_path / "r")
    (tmp_path / "images.txt").write_text(content)
    assert relay("import", fmt, str(tmp_path / "images.txt"), "--repo", str(repo)) == 2
    assert message in capsys.readouterr().err
    assert (repo / "mirrors/images.yaml").read_text() == LIST


def test_dry_run_prints_a_diff_and_writes_nothing(tmp_path: Path, capsys) -> None:
    repo = repo_with(tmp_path / "r")
    (tmp_path / "images.txt").write_text("nginx:1.27\n")
    assert (
        relay(
            "import", "images-txt", str(tmp_path / "images.txt"), "--dry-run", "--repo", str(repo)
        )
        == 0
    )
    out = capsys.readouterr().out
    assert '+      - "1.27"' in out and "dry run" in out
    assert (repo / "mirrors/images.yaml").read_text() == LIST


def test_a_list_with_a_byte_order_mark_keeps_it(tmp_path: Path, capsys) -> None:
    repo = repo_with(tmp_path / "r", "\ufeff" + LIST)
    (tmp_path / "images.txt").write_text("nginx:1.27\nquay.io/a/b:1\n")
    assert relay("import", "images-txt", str(tmp_path / "images.txt"), "--repo", str(repo)) == 0
    data = (repo / "mirrors/images.yaml").read_bytes()
    assert (
        data.startswith(b"\xef\xbb\xbf# yaml-language-server") and data.count(b"\xef\xbb\xbf") == 1
    )
    assert kept_in_order(LIST, data.decode("utf-8-sig"))
    got = entries(repo)
    assert [t.tag for t in got["docker.io/library/nginx"].tags] == ["1.26", "1.27"]
    assert "quay.io/a/b" in got


@pytest.mark.parametrize("kind", ["latin-1", "symlink-out"])
def test_an_unreadable_list_is_one_line_and_exit_2(tmp_path: Path, capsys, kind: str) -> None:
    repo = repo_with(tmp_path / "r")
    target = repo / "mirrors/images.yaml"
    if kind == "latin-1":
        target.write_bytes(LIST.replace("data team", "équipe").encode("latin-1"))
    else:
        (tmp_path / "outside.yaml").write_text(LIST)
        target.unlink()
        target.symlink_to(tmp_path / "outside.yaml")
    (tmp_path / "images.txt").write_text("nginx:1.27\n")
    assert relay("import", "images-txt", str(tmp_path / "images.txt"), "--repo", str(repo)) == 2
    err = capsys.readouterr().err
    assert "mirrors/images.yaml" in err and "Traceback" not in err
    assert ("not UTF-8" if kind == "latin-1" else "leads out of the repository") in err
    assert (tmp_path / "outside.yaml").exists() is (kind != "latin-1")
    if kind != "latin-1":
        assert (tmp_path / "outside.yaml").read_text() == LIST
