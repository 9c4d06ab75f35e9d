from __future__ import annotations

import pytest

from relay import reference
from relay.config import naming


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("nginx", "nginx"),
        ("docker.io/library/nginx", "nginx"),
        ("bitnami/redis", "bitnami_redis"),
        ("registry.k8s.io/ingress-nginx/controller", "k8s_ingress-nginx_controller"),
        ("registry.k8s.io/kube-apiserver", "k8s_kube-apiserver"),
        ("registry.k8s.io/coredns/coredns", "k8s_coredns_coredns"),
        ("gcr.io/distroless/static", "gcr_distroless_static"),
        ("ghcr.io/fluxcd/source-controller", "ghcr_fluxcd_source-controller"),
        ("quay.io/prometheus/node-exporter", "quay_prometheus_node-exporter"),
        ("k8s.gcr.io/pause", "k8s-gcr_pause"),
        ("mcr.microsoft.com/oss/nginx", "mcr-microsoft-com_oss_nginx"),
        ("localhost:5000/a.b/c", "localhost-5000_a-b_c"),
        ("Example.COM/x", "example-com_x"),
    ],
)
def test_derive(source: str, name: str) -> None:
    assert naming.derive(reference.parse_repository(source)) == name
    assert naming.check(name, 64) is None


def test_derive_is_pure_and_ignores_tag_and_digest() -> None:
    a = reference.parse("registry.k8s.io/pause:3.9")
    b = reference.parse("registry.k8s.io/pause@sha256:" + "1" * 64)
    assert naming.derive(a) == naming.derive(b) == "k8s_pause"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a", "shorter than 2"),
        ("x" * 31, "longer than naming.max_length 30"),
        ("Upper", "not a valid ACR repository name"),
        ("-lead", "not a valid ACR repository name"),
        ("_lead", "not a valid ACR repository name"),
        ("has/slash", "not a valid ACR repository name"),
        ("has.dot", "not a valid ACR repository name"),
        ("..", "not a valid ACR repository name"),
        ("new\nline", "not a valid ACR repository name"),
    ],
)
def test_check_rejects(name: str, problem: str) -> None:
    why = naming.check(name, 30)
    assert why is not None and problem in why


def test_check_accepts_limit_exactly() -> None:
    assert naming.check("x" * 30, 30) is None


def test_suggest_is_valid_and_unused() -> None:
    ref = reference.parse_repository("quay.io/jetstack/cert-manager-controller")
    hint = naming.suggest(ref, 30, {"cert-manager-controller"})
    assert naming.check(hint, 30) is None
    assert hint != "cert-manager-controller"
