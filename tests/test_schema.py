"""The published JSON Schema and relay's validator must agree on everything the schema can say."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from relay.config import mirrors
from relay.errors import InputError

from .helpers import DIGEST_A

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "mirrors/images.schema.json").read_text())


def schema_ok(text: str) -> bool:
    try:
        jsonschema.validate(yaml.safe_load(text), SCHEMA)
    except jsonschema.ValidationError:
        return False
    return True


def relay_ok(text: str) -> bool:
    try:
        mirrors.parse(text, "mirrors/images.yaml")
    except InputError:
        return False
    return True


def doc(entry: str) -> str:
    return "images:\n  - " + entry.replace("\n", "\n    ") + "\n"


AGREE = [
    (doc("source: nginx\ntags: [a]"), True),
    (doc(f"source: nginx\ntags: ['1.27@{DIGEST_A}']"), True),
    (
        doc(
            "source: registry.k8s.io/ingress-nginx/controller\ntags: [v1]\nplatforms: [linux/arm/v7]"
        ),
        True,
    ),
    (doc("source: nginx\nname: web_1\nselect: {semver: '^1', latest: 2}"), True),
    (doc("source: nginx\ntags: [1.20]"), True),
    (doc("source: localhost:5000/a\ntags: [x]"), True),
    ("images: []\n", True),
    (doc("source: nginx\ntag: [a]"), False),
    (doc("source: nginx"), False),
    (doc("tags: [a]"), False),
    (doc("source: nginx\ntags: []"), False),
    (doc("source: nginx\ntags: [a, a]"), False),
    (doc("source: nginx\ntags: [.a]"), False),
    (doc("source: nginx\ntags: ['a b']"), False),
    (doc("source: nginx\ntags: ['a@sha256:123']"), False),
    (doc("source: nginx\ntags: ['" + "x" * 129 + "']"), False),
    (doc("source: nginx\ntags: [a]\nname: Web"), False),
    (doc("source: nginx\ntags: [a]\nname: w"), False),
    (doc("source: nginx\ntags: [a]\nplatforms: [amd64]"), False),
    (doc("source: nginx\ntags: [a]\nplatforms: [linux/amd46]"), False),
    (doc("source: nginx\ntags: [a]\nplatforms: [linx/amd64]"), False),
    (doc("source: nginx\ntags: [a]\nplatforms: [Linux/amd64]"), False),
    (doc("source: nginx\ntags: [a]\nplatforms: [linux/aarch64, linux/arm64/v8.2]"), True),
    (doc("source: nginx\ntags: [a]\nplatforms: [linux/arm/v7, windows/amd64]"), True),
    (doc("source: nginx\ntags: [a]\nname: web.1"), True),
    (doc("source: nginx\ntags: [a]\nname: web."), False),
    (doc("source: nginx\ntags: [a]\nname: " + "w" * 64), True),
    (doc("source: nginx\ntags: [a]\nname: " + "w" * 65), False),
    (doc("source: nginx\nselect: {all: true}"), True),
    (doc("source: nginx\nselect: {all: true, exclude: sig$}"), True),
    (doc("source: nginx\nselect: {all: false}"), False),
    (doc("source: nginx\nselect: {exclude: rc}"), False),
    (doc("source: nginx\nselect: {latest: 2, exclude: rc}"), True),
    (doc("source: nginx\nselect: {all: 1}"), False),
    (doc("source: nginx\nselect: {semver: '^1.27'}"), True),
    (doc("source: nginx\ntags: [a]\nplatforms: [linux/amd64, linux/amd64]"), False),
    (doc("source: nginx\nselect: {}"), False),
    (doc("source: nginx\nselect: {latest: 0}"), False),
    (doc("source: nginx\nselect: {oldest: 1}"), False),
    (doc("source: nginx/X\ntags: [a]"), False),
    # Upper case makes it a host, as in docker; hosts are case-insensitive, so relay wants
    # them lower-case (one registry, one spelling, one target name).
    (doc("source: Registry/x\ntags: [a]"), False),
    (doc("source: REGISTRY.K8S.IO/pause\ntags: [a]"), False),
    (doc("source: registry.k8s.io/pause\ntags: [a]"), True),
    (doc("source: nginx:1.2\ntags: [a]"), False),
    (doc("source: nginx@sha256:" + "a" * 64 + "\ntags: [a]"), False),
    (doc("source: nginx/\ntags: [a]"), False),
    (doc("source: nginx\ntags: [a]\nextra: 1"), False),
    ("image: []\n", False),
    ("images: {}\n", False),
    ("images:\n  - nginx\n", False),
]

# Things only relay can see; the schema accepts them and the validator must not.
RELAY_STRICTER = [
    doc("source: nginx\ntags: [a]") + "  - source: docker.io/library/nginx\n    tags: [b]\n",
    doc("source: ghcr.io/foo\ntags: [a]") + "  - source: docker.io/ghcr/foo\n    tags: [a]\n",
    doc(
        "source: quay.io/jetstack/cert-manager-controller-and-more-words-than-acr-allows\ntags: [a]"
    ),
    doc("source: nginx\ntags: [a]\nplatforms: [linux/arm64, linux/arm64/v8]"),
    doc("source: nginx\nselect: {all: true, latest: 2}"),
    doc("source: nginx\nselect: {semver: 'not a range'}"),
    doc("source: nginx\nselect: {include: '('}"),
    doc("source: " + "a" * 64 + "\ntags: [a]"),
]


@pytest.mark.parametrize(("text", "valid"), AGREE)
def test_schema_and_validator_agree(text: str, valid: bool) -> None:
    assert schema_ok(text) is valid
    assert relay_ok(text) is valid


@pytest.mark.parametrize("text", RELAY_STRICTER)
def test_validator_is_stricter_where_the_schema_cannot_see(text: str) -> None:
    assert schema_ok(text)
    assert not relay_ok(text)


def test_shipped_list_passes_both() -> None:
    text = (ROOT / "mirrors/images.yaml").read_text()
    assert schema_ok(text)
    assert relay_ok(text)
    assert text.startswith("# yaml-language-server: $schema=./images.schema.json")


def test_schema_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_shipped_list_fits_kubeadm() -> None:
    """kubeadm with `imageRepository: harbor.example.com/mirrors` pulls mirrors/kube-apiserver,
    mirrors/pause, mirrors/coredns…: the starter list's names must be exactly those."""
    from relay.commands.common import load

    _, shipped = load(ROOT)
    names = {e.source.name: e.target for e in shipped.entries}
    # `kubeadm config images list --kubernetes-version v1.30.14 --image-repository X`
    assert {names[f"registry.k8s.io/{p}"] for p in KUBEADM} == {
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
        "pause",
        "etcd",
        "coredns",
    }


KUBEADM = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
    "pause",
    "etcd",
    "coredns/coredns",
]
