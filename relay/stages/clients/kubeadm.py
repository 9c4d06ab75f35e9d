"""kubeadm's ClusterConfiguration `imageRepository`, and crictl pull lines for every image.

kubeadm builds every control-plane image name as `<imageRepository>/<name>:<tag>`
(cmd/kubeadm/app/images/images.go: GetGenericImage, GetKubernetesImage, GetEtcdImage,
GetPauseImage). CoreDNS is the one twist: under the default registry.k8s.io it asks for
`registry.k8s.io/coredns/coredns`, but under any other repository for `<imageRepository>/coredns`
(GetDNSImage adds the `coredns/` path only when the repository is the default one). So
`imageRepository: <harbor>/<project>` works only when each of the seven images lands in Harbor
under its last path component.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relay import reference
from relay.config.mirrors import Entry
from relay.stages.clients.model import Clients, Image, yaml_documents

K8S_REGISTRY = "registry.k8s.io"
# upstream path under registry.k8s.io → the name kubeadm asks for under a custom repository
CONTROL_PLANE: dict[str, str] = {
    "kube-apiserver": "kube-apiserver",
    "kube-controller-manager": "kube-controller-manager",
    "kube-scheduler": "kube-scheduler",
    "kube-proxy": "kube-proxy",
    "pause": "pause",
    "etcd": "etcd",
    "coredns/coredns": "coredns",
}
VERSIONED = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
# kubeadm.k8s.io/v1beta4 arrived in Kubernetes 1.31; v1beta3 (1.22 on) is what 1.30 reads.
# (kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/)
V1BETA4_FROM = (1, 31)


@dataclass(frozen=True)
class KubeadmPlan:
    """Whether `imageRepository` works, and why not when it does not."""

    relevant: bool  # the list has at least one of the seven images
    repository: str | None = None  # `<harbor>/<project>` when every image fits
    kubernetes_version: str | None = None
    blockers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan(c: Clients) -> KubeadmPlan:
    by_source = {e.source.name: (e, imgs) for e, imgs in c.by_entry()}
    present = [p for p in CONTROL_PLANE if f"{K8S_REGISTRY}/{p}" in by_source]
    if not present:
        return KubeadmPlan(relevant=False)
    blockers: list[str] = []
    for path, wanted in CONTROL_PLANE.items():
        source = f"{K8S_REGISTRY}/{path}"
        if source not in by_source:
            blockers.append(
                f"{source} is not in {c.list_path}: kubeadm pulls all seven control-plane "
                f"images from imageRepository; add it"
            )
            continue
        entry, _ = by_source[source]
        if entry.target != wanted:
            blockers.append(_rename_hint(c, entry, wanted))
    versions = _common_tag(
        [
            by_source[f"{K8S_REGISTRY}/{p}"][1]
            for p in VERSIONED
            if f"{K8S_REGISTRY}/{p}" in by_source
        ]
    )
    notes = []
    if versions is None:
        notes.append(
            "the kube-* images do not share exactly one tag, so kubernetesVersion is left out; "
            "set it to the version you install"
        )
    if blockers:
        return KubeadmPlan(True, None, versions, blockers, notes)
    return KubeadmPlan(True, c.harbor.repository, versions, [], notes)


def _rename_hint(c: Clients, entry: Entry, wanted: str) -> str:
    where = f"{c.list_path}:{entry.line}"
    if entry.explicit_name:
        fix = f"change its `name:` to `name: {wanted}`"
    elif wanted == entry.source.path:
        fix = (
            f'set `naming.prefixes: {{{K8S_REGISTRY}: ""}}` in mirrors/relay.yaml '
            f"(or add `name: {wanted}` to the entry)"
        )
    else:
        # coredns/coredns: a prefix alone still gives coredns_coredns.
        fix = f"add `name: {wanted}` to the entry"
    return (
        f"{entry.source.name} ({where}) lands in Harbor as {entry.target}, but kubeadm asks "
        f"for <imageRepository>/{wanted}: {fix}"
    )


def _common_tag(groups: list[list[Image]]) -> str | None:
    if len(groups) != len(VERSIONED):
        return None
    common = set.intersection(*({i.tag for i in group} for group in groups))
    if len(common) != 1:
        return None
    tag = next(iter(common))
    return tag if _version(tag) else None


def _version(tag: str) -> tuple[int, int] | None:
    parts = tag.removeprefix("v").split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])


def cluster_configuration(c: Clients, p: KubeadmPlan) -> str:
    assert p.repository is not None
    version = _version(p.kubernetes_version) if p.kubernetes_version else None
    api = "v1beta4" if version is None or version >= V1BETA4_FROM else "v1beta3"
    doc: dict[str, str] = {"apiVersion": f"kubeadm.k8s.io/{api}", "kind": "ClusterConfiguration"}
    if p.kubernetes_version:
        doc["kubernetesVersion"] = p.kubernetes_version
    doc["imageRepository"] = p.repository
    pause = [i for i in c.images if i.source.name == f"{K8S_REGISTRY}/pause"]
    lines = [
        "# Generated by `relay clients` from mirrors/images.yaml, the lock and mirrors/relay.yaml.",
        "# kubeadm pulls every control-plane image from imageRepository. Merge these keys into",
        "# your ClusterConfiguration, then on each control-plane node:",
        "#   kubeadm config images list --config kubeadm-config.yaml   # what it will pull",
        "#   kubeadm config images pull --config kubeadm-config.yaml",
        "# (or: kubeadm init --image-repository " + p.repository + ")",
    ]
    if pause:
        lines += [
            "# The container runtime pulls its own sandbox (pause) image; point it at Harbor too:",
            f"#   containerd 2.x: [plugins.'io.containerd.cri.v1.images'.pinned_images] "
            f'sandbox = "{pause[-1].harbor_ref}"',
            f'#   containerd 1.x: [plugins."io.containerd.grpc.v1.cri"] '
            f'sandbox_image = "{pause[-1].harbor_ref}"',
        ]
    if not c.harbor.public:
        lines += [
            f"# Project {c.harbor.project} is private: static pods cannot use imagePullSecrets,",
            "# so give the nodes' container runtime credentials for Harbor (or make it public).",
        ]
    return "\n".join(lines) + "\n" + yaml_documents(doc)


def crictl(c: Clients) -> str:
    lines = [
        "#!/bin/sh",
        "# Generated by `relay clients`: pull every image relay mirrors from Harbor on a node",
        "# (crictl talks to the node's CRI runtime: containerd or CRI-O).",
    ]
    if not c.harbor.public:
        lines.append(
            f"# Project {c.harbor.project} is private: add --creds USER:PASSWORD "
            "(a Harbor robot account with pull permission) to each line."
        )
    lines.append("set -eu")
    for image in c.images:
        # Parsed back once more: this text goes to a shell.
        ref = reference.parse(image.harbor_ref)
        lines.append(f"crictl pull {ref}")
    return "\n".join(lines) + "\n"
