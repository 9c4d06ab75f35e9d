"""`relay clients`: what nodes and manifests need to use the images relay brings to Harbor.

Generated from the list, the lock and the settings, like the Dockerfiles of `relay generate`,
and in the same shape: `build()` and the renderers are pure; `desired()` is every file of an
output directory, `plan()` compares it with the directory and `apply()` writes only what
changed (relay.files: atomic, mtimes of unchanged files kept) and removes the files a previous
run wrote that are no longer wanted, recorded in the directory's `.relay-clients` index.

Each output is a module: mapping (Markdown, CSV, JSON), kustomize, kyverno, kubeadm (with the
crictl pull lines), nodes (containerd, docker).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from relay import files
from relay.errors import InputError, Problem
from relay.files import Change
from relay.output.tables import escape
from relay.stages.clients import kubeadm, kustomize, kyverno, mapping, nodes
from relay.stages.clients.model import (
    Clients,
    Harbor,
    Image,
    Scheme,
    Via,
    build,
    certificates,
    check_host,
)

__all__ = [
    "FORMATS",
    "Change",
    "Clients",
    "Format",
    "Harbor",
    "Image",
    "Output",
    "Scheme",
    "Unavailable",
    "Via",
    "apply",
    "build",
    "certificates",
    "check_host",
    "desired",
    "plan",
    "render",
    "scan",
]

Format = Literal[
    "mapping-md",
    "mapping-csv",
    "mapping-json",
    "kustomize",
    "kyverno",
    "kubeadm",
    "crictl",
    "containerd",
    "docker",
]
FORMATS: tuple[Format, ...] = get_args(Format)
INDEX = ".relay-clients"


class Unavailable(Exception):
    """This output cannot be made from this list (kubeadm with names that do not fit)."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


@dataclass(frozen=True)
class Output:
    text: str  # what `--format` prints
    notes: list[str] = field(default_factory=list)  # what the person must do; logged


def _kyverno(c: Clients) -> Output:
    if not c.images:
        raise Unavailable(["the list has no pinned tags: nothing to rewrite"])
    return Output(kyverno.clusterpolicy(c))


def _kubeadm(c: Clients) -> Output:
    p = kubeadm.plan(c)
    if not p.relevant:
        raise Unavailable(
            [
                "the list has none of kubeadm's control-plane images (registry.k8s.io/kube-*, "
                "pause, etcd, coredns/coredns)"
            ]
        )
    if p.repository is None:
        raise Unavailable(p.blockers)
    return Output(kubeadm.cluster_configuration(c, p), p.notes)


def _containerd(c: Clients) -> Output:
    return Output(nodes.hosts_toml(c), nodes.containerd_notes(c))


def _docker(c: Clients) -> Output:
    return Output(nodes.daemon_json(c) or "{}\n", nodes.docker_notes(c))


RENDERERS: dict[Format, Callable[[Clients], Output]] = {
    "mapping-md": lambda c: Output(mapping.markdown(c)),
    "mapping-csv": lambda c: Output(mapping.to_csv(c)),
    "mapping-json": lambda c: Output(mapping.to_json(c)),
    "kustomize": lambda c: Output(kustomize.component(c)),
    "kyverno": _kyverno,
    "kubeadm": _kubeadm,
    "crictl": lambda c: Output(kubeadm.crictl(c)),
    "containerd": _containerd,
    "docker": _docker,
}


def render(c: Clients, fmt: Format) -> Output:
    """One output; Unavailable when this list cannot have it."""
    return RENDERERS[fmt](c)


# --- an output directory -----------------------------------------------------------------------


def desired(c: Clients) -> tuple[dict[str, str], list[str]]:
    """Every file of an output directory (relative path → content), and the notes: what a
    person does with them, including why an output is missing."""
    out: dict[str, str] = {
        "mapping.md": mapping.markdown(c),
        "mapping.csv": mapping.to_csv(c),
        "mapping.json": mapping.to_json(c),
        "kustomize/kustomization.yaml": kustomize.component(c),
        "crictl-pull.sh": kubeadm.crictl(c),
        f"containerd/certs.d/{c.harbor.host}/hosts.toml": nodes.hosts_toml(c),
    }
    notes: list[str] = []
    try:
        out["kyverno/clusterpolicy.yaml"] = _kyverno(c).text
    except Unavailable as exc:
        notes += [f"no Kyverno policy: {r}" for r in exc.reasons]
    try:
        kube = _kubeadm(c)
        out["kubeadm/kubeadm-config.yaml"] = kube.text
        notes += [f"kubeadm: {n}" for n in kube.notes]
    except Unavailable as exc:
        notes += [f"no kubeadm-config.yaml: {r}" for r in exc.reasons]
    if c.harbor.ca_pem:
        out[f"containerd/certs.d/{c.harbor.host}/ca.crt"] = c.harbor.ca_pem
        out[f"docker/certs.d/{c.harbor.host}/ca.crt"] = c.harbor.ca_pem
    daemon = nodes.daemon_json(c)
    if daemon:
        out["docker/daemon.json"] = daemon
    notes += [f"containerd: {n}" for n in nodes.containerd_notes(c)]
    notes += [f"docker: {n}" for n in nodes.docker_notes(c)]
    out["README.md"] = _readme(c, sorted(out), notes)
    return out, notes


def _readme(c: Clients, paths: list[str], notes: list[str]) -> str:
    lines = [
        "# Using relay's images from your nodes",
        "",
        f"Generated by `relay clients --out` for {c.harbor.repository}; do not edit: re-run it.",
        "",
        "| file | what it is |",
        "|---|---|",
    ]
    what = {
        "mapping.md": "upstream image → Harbor (and ACR) address, a Markdown table",
        "mapping.csv": "the mapping, CSV",
        "mapping.json": "the mapping, JSON",
        "kustomize/kustomization.yaml": "a kustomize Component with an `images:` entry per "
        "spelling of each image",
        "kyverno/clusterpolicy.yaml": "a Kyverno ClusterPolicy pointing pods' images at Harbor",
        "kubeadm/kubeadm-config.yaml": "kubeadm's ClusterConfiguration `imageRepository`",
        "crictl-pull.sh": "`crictl pull` for every image, to pre-pull on a node",
        "docker/daemon.json": "the keys to merge into /etc/docker/daemon.json",
    }
    for path in paths:
        if path.endswith("hosts.toml"):
            text = "copy to /etc/containerd/certs.d/ on every node"
        elif path.endswith("ca.crt"):
            text = "Harbor's CA, where the runtime looks for it (copy the tree to /etc/)"
        else:
            text = what.get(path, "")
        lines.append(f"| `{path}` | {text} |")
    lines += ["", "## To do on the nodes", ""]
    lines += [f"- {escape(note)}" for note in notes]
    return "\n".join(lines) + "\n"


def scan(out: Path) -> tuple[dict[str, bytes], set[str]]:
    """What the directory holds of relay's files: the content of every path a run may write
    or has written (its index), and that index."""
    if out.is_symlink():
        raise InputError(Problem(str(out), None, "is a symlink; relay does not write through it"))
    if out.exists() and not out.is_dir():
        raise InputError(Problem(str(out), None, "is not a directory"))
    index: set[str] = set()
    index_path = out / INDEX
    if index_path.is_file():
        try:
            with files.io_errors("read", index_path):
                loaded = json.loads(index_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise InputError(Problem(str(index_path), None, "is not relay's index")) from None
        if not isinstance(loaded, list) or not all(isinstance(p, str) for p in loaded):
            raise InputError(Problem(str(index_path), None, "is not relay's index"))
        index = {p for p in loaded if _safe_relative(p)}
    return {p: data for p in index if (data := _read(out, p)) is not None}, index


def _read(out: Path, rel: str) -> bytes | None:
    path = out / rel
    if path.is_symlink() or not path.is_file():
        return None
    with files.io_errors("read", path):
        return path.read_bytes()


def _safe_relative(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def plan(want: dict[str, str], have: dict[str, bytes], out: Path) -> list[Change]:
    """Creates and updates for files whose content differs (a file not in the index is read
    from the directory, so an identical one is left alone), deletes for indexed files no
    longer wanted. Sorted by path."""
    changes: list[Change] = []
    for path in sorted(want.keys() | have.keys()):
        content = want.get(path)
        if content is None:
            changes.append(Change("delete", path))
            continue
        current = have.get(path, _read(out, path))
        if current is None:
            changes.append(Change("create", path, content))
        elif current != content.encode("utf-8"):
            changes.append(Change("update", path, content))
    return changes


def apply(out: Path, changes: list[Change], want: dict[str, str]) -> None:
    """Write the changes; the index lists exactly the wanted files afterwards."""
    root = out.resolve()
    for change in changes:
        target = out / change.path
        if not target.resolve().is_relative_to(root) or target.is_symlink():
            raise InputError(Problem(str(target), None, "outside the output directory; refused"))
        if change.action == "delete":
            with files.io_errors("delete", target):
                target.unlink(missing_ok=True)
            files.remove_empty_parents(target.parent, root)
        else:
            assert change.content is not None
            files.write_if_changed(target, change.content)
            if change.path.endswith(".sh"):
                with files.io_errors("make executable", target):
                    os.chmod(target, 0o755)
    files.write_if_changed(out / INDEX, json.dumps(sorted(want), indent=1) + "\n")
