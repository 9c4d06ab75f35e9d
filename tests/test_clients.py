"""`relay clients`: every output parsed with its tool's own format, on realistic data.

The data: the shipped starter list (the kubeadm v1.30.14 control plane, ingress-nginx,
metrics-server, cert-manager), plus Docker Hub's official nginx and bitnami/redis, locked the
way `relay lock` writes them. The Kyverno policy is validated against Kyverno's published CRD
(tests/data/kyverno/, v1.19.0) and its rewrite rules are run over pods written in every
spelling docker treats as the same image.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from relay import cli, reference
from relay.config import lockfile
from relay.config.lockfile import Lock, LockedTag
from relay.sandbox.registries import generate_pki
from relay.stages import clients as stage
from relay.stages.clients import kyverno

from .helpers import DIGEST_A, DIGEST_B, DIGEST_C, write_repo

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - relay supports 3.10; the test extra brings tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
CRD = Path(__file__).parent / "data" / "kyverno" / "kyverno.io_clusterpolicies.yaml"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
HARBOR = "harbor.example.com/mirrors"

EXTRA = """
  # Docker Hub: an official image (two tags, by the lock) and a namespaced one
  - source: nginx
    tags: ["1.27.3", "latest"]
    platforms: [linux/amd64, linux/arm64]
  - source: bitnami/redis
    tags: ["7.4.2"]
"""

SETTINGS = """\
acr:
  namespace: relay-mirrors
harbor:
  url: https://harbor.example.com
  project: mirrors
  ca_bundle: certs/harbor-ca.pem
"""

KUBEADM_NAMES = {
    "registry.k8s.io/kube-apiserver": "kube-apiserver",
    "registry.k8s.io/kube-controller-manager": "kube-controller-manager",
    "registry.k8s.io/kube-scheduler": "kube-scheduler",
    "registry.k8s.io/kube-proxy": "kube-proxy",
    "registry.k8s.io/pause": "pause",
    "registry.k8s.io/etcd": "etcd",
    "registry.k8s.io/coredns/coredns": "coredns",
}


def shipped_list(kubeadm_names: bool = False) -> str:
    text = (ROOT / "mirrors" / "images.yaml").read_text(encoding="utf-8")
    if kubeadm_names:
        # What naming.prefixes {registry.k8s.io: ""} plus `name: coredns` give.
        for source, name in KUBEADM_NAMES.items():
            if f"  - source: {source}\n    name:" in text:
                continue  # the shipped list names it already (coredns)
            text = text.replace(
                f"  - source: {source}\n", f"  - source: {source}\n    name: {name}\n"
            )
    return text + EXTRA


def the_lock() -> str:
    lk = Lock()
    platforms = ("linux/amd64", "linux/arm64")
    lk.put("docker.io/library/nginx", "1.27.3", LockedTag(DIGEST_A, OCI_INDEX, platforms))
    lk.put("docker.io/library/nginx", "latest", LockedTag(DIGEST_A, OCI_INDEX, platforms))
    lk.put("docker.io/bitnami/redis", "7.4.2", LockedTag(DIGEST_B, OCI_INDEX, ("linux/amd64",)))
    return lockfile.dumps(lk)


@functools.lru_cache(maxsize=1)
def _ca() -> tuple[str, str]:
    """A CA certificate and a private key, PEM; made once (RSA key generation is slow)."""
    with tempfile.TemporaryDirectory() as tmp:
        pki = generate_pki(Path(tmp))
        return Path(pki.ca_file).read_text(), Path(pki.key_file).read_text()


def make_repo(
    root: Path,
    *,
    settings: str = SETTINGS,
    kubeadm_names: bool = False,
    ca: str | None = None,
) -> Path:
    write_repo(root, shipped_list(kubeadm_names), settings, the_lock())
    (root / "certs").mkdir(exist_ok=True)
    (root / "certs" / "harbor-ca.pem").write_text(ca or _ca()[0])
    return root


def relay(*args: str) -> int:
    return cli.main(list(args))


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="relay")
    LOGS["caplog"] = caplog


LOGS: dict[str, pytest.LogCaptureFixture] = {}


def run(repo: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout, and stderr with the log records (pytest holds the log handlers)."""
    caplog = LOGS["caplog"]
    caplog.clear()
    code = relay("clients", "--repo", str(repo), "--format", fmt)
    out, err = capsys.readouterr()
    return code, out, err + caplog.text


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


# --- the mapping ---------------------------------------------------------------------------------


def test_mapping_csv_and_json_name_every_tag(repo: Path, capsys) -> None:
    code, out, _ = run(repo, "mapping-csv", capsys)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 16  # 13 shipped tags + nginx 1.27.3, latest + redis 7.4.2
    by_ref = {f"{r['source']}:{r['tag']}": r for r in rows}
    nginx = by_ref["docker.io/library/nginx:1.27.3"]
    assert nginx["harbor"] == f"{HARBOR}/nginx:1.27.3"
    assert nginx["acr"] == "registry.cn-hangzhou.aliyuncs.com/relay-mirrors/nginx:1.27.3"
    assert nginx["upstream_digest"] == DIGEST_A
    # ACR Personal Edition builds linux/amd64 alone: that is what Harbor holds.
    assert nginx["platforms"] == "linux/amd64"
    assert by_ref["registry.k8s.io/ingress-nginx/controller:v1.12.1"]["harbor"] == (
        f"{HARBOR}/k8s_ingress-nginx_controller:v1.12.1"
    )
    for row in rows:  # every address is a reference docker reads as written
        assert str(reference.parse(row["harbor"])) == row["harbor"]

    code, out, _ = run(repo, "mapping-json", capsys)
    doc = json.loads(out)
    assert doc["harbor"] == HARBOR and doc["transport"] == "build" and not doc["digestsKept"]
    assert [(i["source"], i["tag"]) for i in doc["images"]] == [
        (r["source"], r["tag"]) for r in rows
    ]


def test_mapping_markdown_is_one_table(repo: Path, capsys) -> None:
    code, out, _ = run(repo, "mapping-md", capsys)
    assert code == 0
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert table[0] == "| Upstream | Harbor | ACR |" and len(table) == 2 + 16
    assert (
        "| `docker.io/bitnami/redis:7.4.2` | `harbor.example.com/mirrors/bitnami_redis:7.4.2` |"
        in out
    )
    assert table[1] == "|---|---|---|"
    assert all(line.count(" | ") == 2 for line in table[2:])


# --- kustomize -----------------------------------------------------------------------------------


def test_kustomize_component_lists_every_spelling(repo: Path, capsys) -> None:
    code, out, _ = run(repo, "kustomize", capsys)
    doc = yaml.safe_load(out)
    assert code == 0
    assert doc["apiVersion"] == "kustomize.config.k8s.io/v1alpha1" and doc["kind"] == "Component"
    by_name = {i["name"]: i for i in doc["images"]}
    assert len(by_name) == len(doc["images"])
    # nginx has two tags: the name changes, the manifest keeps its tag
    nginx_names = [n for n, i in by_name.items() if i["newName"] == f"{HARBOR}/nginx"]
    assert sorted(nginx_names) == sorted(
        [
            "nginx",
            "library/nginx",
            "docker.io/nginx",
            "docker.io/library/nginx",
            "index.docker.io/nginx",
            "index.docker.io/library/nginx",
        ]
    )
    assert all("newTag" not in by_name[n] for n in nginx_names)
    # one tag mirrored: that is the tag Harbor has; no digest with the build transport
    redis = by_name["bitnami/redis"]
    assert redis == {
        "name": "bitnami/redis",
        "newName": f"{HARBOR}/bitnami_redis",
        "newTag": "7.4.2",
    }
    assert by_name["docker.io/bitnami/redis"]["newName"] == f"{HARBOR}/bitnami_redis"
    assert by_name["registry.k8s.io/pause"]["newTag"] == "3.9"  # a string, not the number 3.9
    for name in by_name:
        assert reference.parse(name).tag is None


# --- Kyverno -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def crd_validator() -> Any:
    crd = yaml.load(
        CRD.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )
    assert crd["spec"]["names"]["kind"] == "ClusterPolicy"
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    assert v1["served"] is True
    return jsonschema.Draft4Validator(structural(v1["schema"]["openAPIV3Schema"]))


def structural(node: Any) -> Any:
    """The CRD schema as the API server applies it: an object with `properties` keeps no
    other field (it is pruned, or refused with kubectl's default --validate=strict) unless it
    says x-kubernetes-preserve-unknown-fields."""
    if isinstance(node, list):
        return [structural(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: structural(v) for k, v in node.items()}
    if (
        out.get("type") == "object"
        and isinstance(out.get("properties"), dict)
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_errors(doc: dict[str, Any]) -> list[str]:
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in crd_validator().iter_errors(doc)
    )


def policy_docs(repo: Path, capsys) -> list[dict[str, Any]]:
    code, out, _ = run(repo, "kyverno", capsys)
    assert code == 0
    return list(yaml.safe_load_all(out))


def test_kyverno_policy_fits_kyverno_crd(repo: Path, capsys) -> None:
    (doc,) = policy_docs(repo, capsys)
    assert doc["apiVersion"] == "kyverno.io/v1" and doc["kind"] == "ClusterPolicy"
    assert crd_errors(doc) == []
    rules = doc["spec"]["rules"]
    assert len(rules) == 15 and len({r["name"] for r in rules}) == 15
    assert all(len(r["name"]) <= 63 for r in rules)
    assert doc["metadata"]["annotations"]["pod-policies.kyverno.io/autogen-controllers"] == "none"


def test_the_crd_check_can_fail(repo: Path, capsys) -> None:
    (doc,) = policy_docs(repo, capsys)
    rule = doc["spec"]["rules"][0]
    rule["mutate"]["foreach"][0]["preconditons"] = rule["mutate"]["foreach"][0].pop("preconditions")
    rule["mutate"]["foreach"][1]["preconditions"]["all"][0]["operator"] = "Matches"
    rule["match"]["any"][0]["resources"]["operations"] = ["CREATE", "PATCH"]
    doc["spec"]["rules"][1]["name"] = "r" * 64
    errors = crd_errors(doc)
    assert len(errors) == 4, errors
    assert any("preconditons" in e for e in errors)
    assert any("'Matches' is not one of" in e for e in errors)
    assert any("'PATCH' is not one of" in e for e in errors)
    assert any("is too long" in e for e in errors)


def apply_policy(docs: list[dict[str, Any]], pod: dict[str, Any]) -> dict[str, Any]:
    """Run the rules the way Kyverno's mutate.foreach does for this shape of rule: for each
    element of the list, the precondition's regex_match, then the patch's regex_replace_all
    (Go's $1 is Python's \\g<1>; both engines read these patterns alike)."""
    pod = json.loads(json.dumps(pod))
    match_re = re.compile(r"\{\{ regex_match\('([^']*)', element\.image\) \}\}")
    patch_re = re.compile(r"\{\{ regex_replace_all\('([^']*)', element\.image, '([^']*)'\) \}\}")
    for doc in docs:
        for rule in doc["spec"]["rules"]:
            for each in rule["mutate"]["foreach"]:
                field = re.fullmatch(r"request\.object\.spec\.(\w+) \|\| `\[\]`", each["list"])
                assert field, each["list"]
                name = field.group(1)
                (cond,) = each["preconditions"]["all"]
                assert cond["operator"] == "Equals" and cond["value"] is True
                m = match_re.fullmatch(cond["key"])
                (patch,) = each["patchStrategicMerge"]["spec"][name]
                assert patch["name"] == "{{ element.name }}"
                p = patch_re.fullmatch(patch["image"])
                assert m and p and m.group(1) == p.group(1)
                for forbidden in "\\'{}\"":
                    assert forbidden not in m.group(1)
                for container in pod["spec"].get(name) or []:
                    if re.search(m.group(1), container["image"]):
                        container["image"] = re.sub(
                            p.group(1), p.group(2).replace("$1", r"\g<1>"), container["image"]
                        )
    return pod


def pod_with(images: list[str], field: str = "containers") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": {field: [{"name": f"c{n}", "image": image} for n, image in enumerate(images)]},
    }


NGINX_SPELLINGS = [
    "nginx",
    "library/nginx",
    "docker.io/nginx",
    "docker.io/library/nginx",
    "index.docker.io/nginx",
    "index.docker.io/library/nginx",
]


@pytest.mark.parametrize("field", ["containers", "initContainers", "ephemeralContainers"])
def test_kyverno_rewrites_every_spelling_of_a_mirrored_tag(repo: Path, capsys, field) -> None:
    docs = policy_docs(repo, capsys)
    images = [f"{s}:1.27.3" for s in NGINX_SPELLINGS] + NGINX_SPELLINGS  # bare = latest
    images += [
        "bitnami/redis:7.4.2",
        "index.docker.io/bitnami/redis:7.4.2",
        "registry.k8s.io/ingress-nginx/controller:v1.12.1",
        "registry.k8s.io/coredns/coredns:v1.11.3",
        "quay.io/jetstack/cert-manager-webhook:v1.21.1",
    ]
    got = [c["image"] for c in apply_policy(docs, pod_with(images, field))["spec"][field]]
    assert got == [f"{HARBOR}/nginx:1.27.3"] * 6 + [f"{HARBOR}/nginx"] * 6 + [
        f"{HARBOR}/bitnami_redis:7.4.2",
        f"{HARBOR}/bitnami_redis:7.4.2",
        f"{HARBOR}/k8s_ingress-nginx_controller:v1.12.1",
        f"{HARBOR}/coredns:v1.11.3",  # the shipped list names it for kubeadm
        f"{HARBOR}/cert-manager-webhook:v1.21.1",
    ]


def test_kyverno_leaves_other_images_alone(repo: Path, capsys) -> None:
    docs = policy_docs(repo, capsys)
    untouched = [
        "nginx:1.25.0",  # a tag Harbor does not have: never redirect a pull to a miss
        "nginx-ingress:1.27.3",  # another repository that starts alike
        "mynginx:1.27.3",
        "library/nginx-unprivileged:1.27.3",
        "ghcr.io/library/nginx:1.27.3",  # another registry, same path
        "registry-1.docker.io/library/nginx:1.27.3",  # docker does not normalise this host
        "redis:7.4.2",  # docker.io/library/redis is not bitnami/redis
        f"nginx:1.27.3@{DIGEST_A}",  # build transport: Harbor's digest differs
        f"nginx@{DIGEST_A}",
        "registry.k8s.io/ingress-nginx/controller:v1.12.1x",
        "registry.k8s.io/ingress-nginx/controller2:v1.12.1",
        f"{HARBOR}/nginx:1.27.3",  # already rewritten: a second pass changes nothing
        "registry.k8s.io/pause",  # no tag means latest, which is not mirrored
    ]
    pod = pod_with(untouched)
    assert apply_policy(docs, pod) == pod
    # and the rewrite is idempotent
    once = apply_policy(docs, pod_with(["nginx:1.27.3"]))
    assert apply_policy(docs, once) == once


def test_kyverno_with_the_copy_transport_keeps_digests(tmp_path: Path, capsys) -> None:
    settings = textwrap.dedent(
        """\
        transport: copy
        copy: {registry: registry.cn-hangzhou.aliyuncs.com, namespace: relay-copy}
        harbor: {url: "https://harbor.example.com", project: mirrors}
        """
    )
    repo = make_repo(tmp_path / "repo", settings=settings)
    docs = policy_docs(repo, capsys)
    assert crd_errors(docs[0]) == []
    pod = pod_with(
        [f"nginx:1.27.3@{DIGEST_A}", f"docker.io/library/nginx@{DIGEST_A}", f"nginx@{DIGEST_B}"]
    )
    got = [c["image"] for c in apply_policy(docs, pod)["spec"]["containers"]]
    assert got == [
        f"{HARBOR}/nginx:1.27.3@{DIGEST_A}",
        f"{HARBOR}/nginx@{DIGEST_A}",
        f"nginx@{DIGEST_B}",
    ]
    _, out, _ = run(repo, "kustomize", capsys)
    redis = next(i for i in yaml.safe_load(out)["images"] if i["name"] == "bitnami/redis")
    assert redis["digest"] == DIGEST_B and redis["newTag"] == "7.4.2"
    _, out, _ = run(repo, "mapping-json", capsys)
    assert json.loads(out)["acr"] == "registry.cn-hangzhou.aliyuncs.com/relay-copy"


def test_kyverno_splits_large_lists_into_several_policies(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kyverno, "RULES_PER_POLICY", 10)
    lines = ["images:"]
    for n in range(25):
        lines += [f"  - source: ghcr.io/example/app{n}", f"    tags: ['1.0@{DIGEST_A}']"]
    write_repo(
        tmp_path,
        "\n".join(lines) + "\n",
        SETTINGS.replace("  ca_bundle: certs/harbor-ca.pem\n", ""),
    )
    docs = policy_docs(tmp_path, capsys)
    assert [len(d["spec"]["rules"]) for d in docs] == [10, 10, 5]
    assert [d["metadata"]["name"] for d in docs] == [
        "relay-harbor-images",
        "relay-harbor-images-2",
        "relay-harbor-images-3",
    ]
    assert all(crd_errors(d) == [] for d in docs)


# --- kubeadm and crictl --------------------------------------------------------------------------


def test_kubeadm_says_which_names_prevent_it(repo: Path, capsys) -> None:
    code, out, err = run(repo, "kubeadm", capsys)
    assert code == 1 and out == ""
    assert "mirrors/images.yaml:24) lands in Harbor as k8s_kube-apiserver" in err
    assert 'naming.prefixes: {registry.k8s.io: ""}' in err
    # coredns is named for kubeadm in the shipped list; the six others still need the prefix.
    assert "coredns/coredns" not in err
    assert err.count("kubeadm asks for") == 6


def test_kubeadm_image_repository_when_the_names_fit(tmp_path: Path, capsys) -> None:
    repo = make_repo(tmp_path / "repo", kubeadm_names=True)
    code, out, _ = run(repo, "kubeadm", capsys)
    assert code == 0
    doc = yaml.safe_load(out)
    assert doc == {
        "apiVersion": "kubeadm.k8s.io/v1beta3",  # v1.30 reads v1beta3; v1beta4 is 1.31+
        "kind": "ClusterConfiguration",
        "kubernetesVersion": "v1.30.14",
        "imageRepository": HARBOR,
    }
    assert 'sandbox_image = "harbor.example.com/mirrors/pause:3.9"' in out
    # what kubeadm will ask for (images.go: <imageRepository>/<name>:<tag>) is all in Harbor
    _, csv_out, _ = run(repo, "mapping-csv", capsys)
    harbor = {r["harbor"] for r in csv.DictReader(io.StringIO(csv_out))}
    for name, tag in [
        ("kube-apiserver", "v1.30.14"),
        ("pause", "3.9"),
        ("etcd", "3.5.15-0"),
        ("coredns", "v1.11.3"),
    ]:
        assert f"{doc['imageRepository']}/{name}:{tag}" in harbor


def test_kubeadm_names_a_missing_image(tmp_path: Path, capsys) -> None:
    repo = make_repo(tmp_path / "repo", kubeadm_names=True)
    path = repo / "mirrors" / "images.yaml"
    text = path.read_text()
    start = text.index("  - source: registry.k8s.io/etcd\n")
    end = text.index("  - source: registry.k8s.io/coredns/coredns\n")
    path.write_text(text[:start] + text[end:])
    code, _, err = run(repo, "kubeadm", capsys)
    assert code == 1 and "registry.k8s.io/etcd is not in mirrors/images.yaml" in err


def test_crictl_script_pulls_every_image(repo: Path, capsys, tmp_path: Path) -> None:
    code, out, _ = run(repo, "crictl", capsys)
    assert code == 0 and out.startswith("#!/bin/sh\n")
    subprocess.run(["sh", "-n"], input=out, text=True, check=True)
    # Run it against a stand-in crictl that records its arguments.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "pulls"
    fake = bin_dir / "crictl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["sh"], input=out, text=True, check=True, env=env)
    pulls = log.read_text().splitlines()
    assert len(pulls) == 16 and all(p.startswith("pull harbor.example.com/mirrors/") for p in pulls)
    assert "pull harbor.example.com/mirrors/nginx:latest" in pulls


# --- containerd and docker -----------------------------------------------------------------------

# containerd docs/hosts.md (and hostFileConfig in core/remotes/docker/config/hosts.go): the
# keys a hosts.toml may hold, at the top and under [host."…"].
CONTAINERD_TOP = {
    "server",
    "capabilities",
    "ca",
    "client",
    "skip_verify",
    "header",
    "override_path",
    "dial_timeout",
    "host",
}
CONTAINERD_HOST = CONTAINERD_TOP - {"server", "host"}
CAPABILITIES = {"pull", "resolve", "push"}


def check_hosts_toml(text: str) -> dict[str, Any]:
    doc = tomllib.loads(text)
    assert set(doc) <= CONTAINERD_TOP
    assert doc["server"].startswith(("https://", "http://"))
    for url, host in doc.get("host", {}).items():
        assert url.startswith(("https://", "http://"))
        assert set(host) <= CONTAINERD_HOST
        assert set(host.get("capabilities", [])) <= CAPABILITIES
        assert "skip_verify" not in host  # relay never turns verification off
    return doc


def test_containerd_hosts_toml_for_a_private_ca(repo: Path, capsys) -> None:
    code, out, _ = run(repo, "containerd", capsys)
    assert code == 0
    doc = check_hosts_toml(out)
    assert doc == {
        "server": "https://harbor.example.com",
        "host": {
            "https://harbor.example.com": {
                "capabilities": ["pull", "resolve"],
                "ca": "/etc/containerd/certs.d/harbor.example.com/ca.crt",
            }
        },
    }


PLAIN_HTTP = """\
acr: {namespace: relay-mirrors}
registries:
  insecure: ["harbor.lan:5000"]
harbor:
  url: http://harbor.lan:5000
  project: mirrors
  project_public: true
"""


def test_plain_http_harbor(tmp_path: Path, capsys) -> None:
    repo = make_repo(tmp_path / "repo", settings=PLAIN_HTTP)
    code, out, _ = run(repo, "containerd", capsys)
    assert code == 0
    assert check_hosts_toml(out) == {
        "server": "http://harbor.lan:5000",
        "host": {"http://harbor.lan:5000": {"capabilities": ["pull", "resolve"]}},
    }
    assert "/etc/containerd/certs.d/harbor.lan:5000/hosts.toml" in out
    code, out, err = run(repo, "docker", capsys)
    assert code == 0 and json.loads(out) == {"insecure-registries": ["harbor.lan:5000"]}
    assert "restart dockerd" in err
    code, out, _ = run(repo, "crictl", capsys)
    assert "--creds" not in out  # a public project needs none
    assert "crictl pull harbor.lan:5000/mirrors/nginx:1.27.3" in out


def test_docker_with_a_private_ca(repo: Path, capsys) -> None:
    code, out, err = run(repo, "docker", capsys)
    assert code == 0 and json.loads(out) == {}  # HTTPS: daemon.json needs nothing
    assert "/etc/docker/certs.d/harbor.example.com/ca.crt" in err


def test_harbor_registry_setting_names_the_host(tmp_path: Path, capsys) -> None:
    settings = SETTINGS + "  registry: registry.harbor.example.com:8443\n"
    repo = make_repo(tmp_path / "repo", settings=settings)
    _, out, _ = run(repo, "containerd", capsys)
    assert check_hosts_toml(out)["server"] == "https://registry.harbor.example.com:8443"
    _, out, _ = run(repo, "crictl", capsys)
    assert "crictl pull registry.harbor.example.com:8443/mirrors/nginx:latest" in out


# --- --out ---------------------------------------------------------------------------------------


def listing(out: Path) -> dict[str, float]:
    return {
        str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.rglob("*")) if p.is_file()
    }


def test_out_writes_every_output_once(repo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "clients"
    assert relay("clients", "--repo", str(repo), "--out", str(out)) == 0
    stdout, _ = capsys.readouterr()
    err = LOGS["caplog"].text
    files = listing(out)
    assert sorted(files) == sorted(
        [
            ".relay-clients",
            "README.md",
            "containerd/certs.d/harbor.example.com/ca.crt",
            "containerd/certs.d/harbor.example.com/hosts.toml",
            "crictl-pull.sh",
            "docker/certs.d/harbor.example.com/ca.crt",
            "kustomize/kustomization.yaml",
            "kyverno/clusterpolicy.yaml",
            "mapping.csv",
            "mapping.json",
            "mapping.md",
        ]
    )
    assert "no kubeadm-config.yaml: registry.k8s.io/kube-apiserver" in err
    assert stdout.endswith(
        "10 files in " + str(out) + ": 10 created, 0 updated, 0 deleted, 0 unchanged\n"
    )
    # every file parses with its tool's format, and is what --format prints
    check_hosts_toml((out / "containerd/certs.d/harbor.example.com/hosts.toml").read_text())
    json.loads((out / "mapping.json").read_text())
    assert yaml.safe_load((out / "kustomize/kustomization.yaml").read_text())["kind"] == "Component"
    assert crd_errors(yaml.safe_load((out / "kyverno/clusterpolicy.yaml").read_text())) == []
    ca = (out / "docker/certs.d/harbor.example.com/ca.crt").read_text()
    assert ca.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE" not in ca
    assert os.access(out / "crictl-pull.sh", os.X_OK)
    _, printed, _ = run(repo, "kyverno", capsys)
    assert (out / "kyverno/clusterpolicy.yaml").read_text() == printed

    # a second run writes nothing
    assert relay("clients", "--repo", str(repo), "--out", str(out)) == 0
    stdout, _ = capsys.readouterr()
    assert stdout.endswith("0 created, 0 updated, 0 deleted, 10 unchanged\n")
    assert listing(out) == files


def test_out_follows_the_settings(tmp_path: Path, capsys) -> None:
    repo = make_repo(tmp_path / "repo")
    out = tmp_path / "clients"
    (out).mkdir()
    (out / "notes.txt").write_text("mine\n")
    assert relay("clients", "--repo", str(repo), "--out", str(out)) == 0
    # Harbor moves to plain HTTP, and the names now fit kubeadm
    make_repo(repo, settings=PLAIN_HTTP, kubeadm_names=True)
    before = listing(out)
    assert relay("clients", "--repo", str(repo), "--out", str(out)) == 0
    stdout, _ = capsys.readouterr()
    after = listing(out)
    assert "delete containerd/certs.d/harbor.example.com/ca.crt" in stdout
    assert "create docker/daemon.json" in stdout and "create kubeadm/kubeadm-config.yaml" in stdout
    assert not (out / "containerd/certs.d/harbor.example.com").exists()
    assert not (out / "docker/certs.d").exists()
    assert json.loads((out / "docker/daemon.json").read_text()) == {
        "insecure-registries": ["harbor.lan:5000"]
    }
    assert yaml.safe_load((out / "kubeadm/kubeadm-config.yaml").read_text())["imageRepository"] == (
        "harbor.lan:5000/mirrors"
    )
    assert (out / "notes.txt").read_text() == "mine\n"  # not relay's: left alone
    assert before["notes.txt"] == after["notes.txt"]


def test_out_refuses_a_symlinked_directory(repo: Path, tmp_path: Path, capsys) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert relay("clients", "--repo", str(repo), "--out", str(link)) == 2
    assert list(real.iterdir()) == []


# --- input errors --------------------------------------------------------------------------------


def test_needs_a_harbor_section(tmp_path: Path, capsys) -> None:
    repo = make_repo(tmp_path / "repo", settings="acr: {namespace: relay-mirrors}\n")
    code, out, err = run(repo, "mapping-md", capsys)
    assert code == 2 and out == ""
    assert "mirrors/relay.yaml: relay clients needs the harbor: section" in err


def test_credentials_in_the_harbor_url_are_refused_unprinted(tmp_path: Path, capsys) -> None:
    settings = SETTINGS.replace(
        "https://harbor.example.com", "https://robot:s3cr3t-pw@harbor.example.com"
    )
    repo = make_repo(tmp_path / "repo", settings=settings)
    code, out, err = run(repo, "mapping-md", capsys)
    assert code == 2 and out == "" and "must not carry credentials" in err
    assert "s3cr3t-pw" not in err


def test_a_ca_bundle_with_a_private_key_is_refused(tmp_path: Path, capsys) -> None:
    cert, key = _ca()
    repo = make_repo(tmp_path / "repo", ca=cert + key)
    out = tmp_path / "clients"
    assert relay("clients", "--repo", str(repo), "--out", str(out)) == 2
    _, err = capsys.readouterr()
    assert "certs/harbor-ca.pem: holds a 'PRIVATE KEY' block" in err or "PRIVATE KEY" in err
    assert not out.exists()
    assert key.split("\n")[1] not in err  # the key itself is never printed


def test_an_unlocked_tag_says_run_relay_lock(tmp_path: Path, capsys) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "mirrors" / "images.lock").unlink()
    code, _, err = run(repo, "mapping-csv", capsys)
    assert code == 2 and "docker.io/library/nginx:1.27.3 has no digest yet; run `relay lock`" in err


def test_cli_formats_are_the_stage_formats() -> None:
    assert cli.CLIENT_FORMATS == stage.FORMATS


def test_spellings_follow_the_grammar() -> None:
    from relay.stages.clients.model import spellings

    assert spellings(reference.parse("registry.k8s.io/pause")) == ["registry.k8s.io/pause"]
    assert spellings(reference.parse("bitnami/redis")) == [
        "bitnami/redis",
        "docker.io/bitnami/redis",
        "index.docker.io/bitnami/redis",
    ]
    for form in spellings(reference.parse("nginx")):
        assert reference.parse(form).name == "docker.io/library/nginx"


def test_a_bare_host_ca_bundle_covers_harbor_on_any_port(tmp_path: Path, capsys) -> None:
    """registries.ca_bundles keys are looked up as everywhere else in relay (TLSConfig): a bare
    host covers every port, so the sandbox's own `"127.0.0.1": ca` reaches Harbor's ca.crt."""
    settings = SETTINGS.replace("  ca_bundle: certs/harbor-ca.pem\n", "") + (
        '  registry: "harbor.example.com:8443"\n'
        'registries:\n  ca_bundles: {"harbor.example.com": certs/harbor-ca.pem}\n'
    )
    repo = make_repo(tmp_path / "repo", settings=settings)
    code, out, _ = run(repo, "containerd", capsys)
    assert code == 0
    [host] = check_hosts_toml(out)["host"].values()
    assert host["ca"] == "/etc/containerd/certs.d/harbor.example.com:8443/ca.crt"


@pytest.mark.parametrize("kind", ["directory", "symlink out", "device"])
def test_a_ca_bundle_is_read_as_an_untrusted_repository_file(
    tmp_path: Path, capsys, kind: str
) -> None:
    """A pull request may set the bundle's path: it is read only as a regular file inside the
    repository (or an absolute regular file), capped, and refused with a message otherwise."""
    settings = SETTINGS.replace("  ca_bundle: certs/harbor-ca.pem\n", "")
    repo = make_repo(tmp_path / "repo", settings=settings)
    bundle = repo / "certs" / "harbor-ca.pem"
    bundle.unlink()
    named = "certs/harbor-ca.pem"
    if kind == "directory":
        bundle.mkdir()
        expected = "certs/harbor-ca.pem: is a directory"
    elif kind == "symlink out":
        outside = tmp_path / "outside.pem"
        outside.write_text(_ca()[0])
        bundle.symlink_to(outside)
        expected = "leads out of the repository"
    else:
        named = "/dev/zero"  # read without end before
        expected = "/dev/zero: is not a regular file"
    (repo / "mirrors" / "relay.yaml").write_text(
        settings + f'registries:\n  ca_bundles: {{"harbor.example.com": "{named}"}}\n'
    )
    code, out, err = run(repo, "containerd", capsys)
    assert code == 2 and out == ""
    assert expected in err and "Traceback" not in err


@pytest.mark.parametrize("where", ["delete", "chmod", "read", "index"])
def test_out_on_a_directory_relay_cannot_change_is_one_line_exit_1(
    repo: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A read-only (or otherwise unusable) output directory: the error names the file, and
    the exit code is 1 (an operation failed), with no traceback."""
    out = tmp_path / "clients"
    assert relay("clients", "--repo", str(repo), "--out", str(out)) == 0
    capsys.readouterr()
    denied = PermissionError(13, "Permission denied")
    if where == "delete":
        # An indexed file relay no longer writes, which it cannot remove.
        index = json.loads((out / ".relay-clients").read_text())
        (out / ".relay-clients").write_text(json.dumps([*index, "gone.txt"]))
        (out / "gone.txt").write_text("old\n")
        real_unlink = Path.unlink

        def unlink(self: Path, missing_ok: bool = False) -> None:
            if self.name == "gone.txt":
                raise denied
            real_unlink(self, missing_ok=missing_ok)

        monkeypatch.setattr(Path, "unlink", unlink)
        expected = f"cannot delete {out / 'gone.txt'}: Permission denied"
    elif where == "chmod":
        (out / "crictl-pull.sh").unlink()

        def chmod(*args: object, **kwargs: object) -> None:
            raise denied

        monkeypatch.setattr(os, "chmod", chmod)
        expected = "cannot make executable " + str(out / "crictl-pull.sh")
    else:
        name = "mapping.csv" if where == "read" else ".relay-clients"
        read = Path.read_bytes if where == "read" else Path.read_text
        real_read = read

        def refused(self: Path, *args: object, **kwargs: object) -> object:
            if self.name == name:
                raise denied
            return real_read(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Path, "read_bytes" if where == "read" else "read_text", refused)
        expected = f"cannot read {out / name}: Permission denied"
    code = relay("clients", "--repo", str(repo), "--out", str(out))
    _, err = capsys.readouterr()
    assert code == 1 and expected in err and "Traceback" not in err


def test_the_copy_target_is_where_relay_publish_copies(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RELAY_COPY_REGISTRY / RELAY_COPY_NAMESPACE override copy: for relay publish, so for the
    mapping too."""
    settings = textwrap.dedent(
        """\
        transport: copy
        copy: {registry: registry.cn-hangzhou.aliyuncs.com, namespace: relay-copy}
        harbor: {url: "https://harbor.example.com", project: mirrors}
        """
    )
    repo = make_repo(tmp_path / "repo", settings=settings)
    monkeypatch.setenv("RELAY_COPY_REGISTRY", "registry.cn-shanghai.aliyuncs.com")
    monkeypatch.setenv("RELAY_COPY_NAMESPACE", "from-env")
    _, out, _ = run(repo, "mapping-json", capsys)
    doc = json.loads(out)
    assert doc["acr"] == "registry.cn-shanghai.aliyuncs.com/from-env"
    nginx = next(i for i in doc["images"] if i["target"] == "nginx" and i["tag"] == "1.27.3")
    assert nginx["acr"] == "registry.cn-shanghai.aliyuncs.com/from-env/nginx:1.27.3"


def test_the_build_targets_registry_is_what_harbor_pulls_from(tmp_path: Path, capsys) -> None:
    """Under the build transport the registry between upstream and Harbor is the one the
    Harbor stage pulls from (relay.commands.harbor.source_for): harbor.source_url first."""
    settings = SETTINGS + "  source_url: https://relay-registry.cn-hangzhou.cr.aliyuncs.com\n"
    repo = make_repo(tmp_path / "repo", settings=settings)
    _, out, _ = run(repo, "mapping-json", capsys)
    assert json.loads(out)["acr"] == "relay-registry.cn-hangzhou.cr.aliyuncs.com/relay-mirrors"


def test_platforms_are_what_harbor_holds(tmp_path: Path, capsys) -> None:
    """The build transport: the platforms ACR builds (Enterprise: the listed ones it can
    build), not upstream's; the copy transport: upstream's, from the lock only while the lock
    records the pinned digest (an inline pin to another digest says nothing of them)."""
    enterprise = SETTINGS.replace(
        "acr:\n  namespace: relay-mirrors\n",
        "acr:\n  namespace: relay-mirrors\n  edition: enterprise\n  instance_id: cri-x\n"
        "  registry_domain: relay-registry.cn-hangzhou.cr.aliyuncs.com\n",
    )
    repo = make_repo(tmp_path / "enterprise", settings=enterprise)
    listed = (repo / "mirrors/images.yaml").read_text()
    (repo / "mirrors/images.yaml").write_text(
        listed.replace(
            "platforms: [linux/amd64, linux/arm64]",
            "platforms: [linux/amd64, linux/arm64, linux/s390x]",  # s390x: ACR cannot
        )
    )
    _, out, _ = run(repo, "mapping-json", capsys)
    by_tag = {(i["target"], i["tag"]): i["platforms"] for i in json.loads(out)["images"]}
    assert by_tag[("nginx", "1.27.3")] == ["linux/amd64", "linux/arm64"]  # listed, buildable
    assert by_tag[("bitnami_redis", "7.4.2")] == ["linux/amd64"]  # none listed: the default

    copy = textwrap.dedent(
        """\
        transport: copy
        copy: {registry: registry.cn-hangzhou.aliyuncs.com, namespace: relay-copy}
        harbor: {url: "https://harbor.example.com", project: mirrors}
        """
    )
    repo = make_repo(tmp_path / "copy", settings=copy)
    listed = (repo / "mirrors/images.yaml").read_text()
    (repo / "mirrors/images.yaml").write_text(
        listed.replace('tags: ["7.4.2"]', f'tags: ["7.4.2@{DIGEST_C}"]')
    )
    _, out, _ = run(repo, "mapping-json", capsys)
    by_tag = {(i["target"], i["tag"]): i for i in json.loads(out)["images"]}
    assert by_tag[("nginx", "1.27.3")]["platforms"] == ["linux/amd64", "linux/arm64"]
    redis = by_tag[("bitnami_redis", "7.4.2")]
    assert redis["upstreamDigest"] == DIGEST_C and redis["platforms"] == []  # not the lock's


def test_the_readmes_kustomize_example_is_what_the_command_prints(tmp_path: Path, capsys) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```yaml\n", readme.index("**kustomize** (`kustomize`)")) + len(
        "```yaml\n"
    )
    shown = readme[start : readme.index("```", start)]
    lk = Lock()
    for source, tag, digest in (
        ("registry.k8s.io/ingress-nginx/controller", "v1.12.1", DIGEST_A),
        ("docker.io/library/nginx", "1.27.3", DIGEST_B),
    ):
        lk.put(source, tag, LockedTag(digest, OCI_INDEX, ("linux/amd64",)))
    repo = write_repo(
        tmp_path,
        "images:\n  - source: registry.k8s.io/ingress-nginx/controller\n    tags: ['v1.12.1']\n"
        "  - source: nginx\n    tags: ['1.27.3']\n",
        SETTINGS.replace("  ca_bundle: certs/harbor-ca.pem\n", "")
        + 'naming:\n  prefixes: {registry.k8s.io: ""}\n',  # as the shipped settings
        lockfile.dumps(lk),
    )
    code, out, _ = run(repo, "kustomize", capsys)
    assert code == 0 and out == shown
