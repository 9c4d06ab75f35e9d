from __future__ import annotations

import pytest

from relay import reference
from relay.config import naming, settings
from relay.errors import InputError


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
        ("mcr.microsoft.com/oss/nginx", "mcr.microsoft.com_oss_nginx"),
        ("localhost:5000/a.b/c", "localhost-5000_a.b_c"),
        ("Example.COM/x", "example.com_x"),
        (
            "docker.elastic.co/elasticsearch/elasticsearch",
            "docker.elastic.co_elasticsearch_elasticsearch",
        ),
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
        ("trailing-", "not a valid ACR repository name"),
        ("a._b", "not a valid ACR repository name"),
        ("x" * 65, "longer than naming.max_length 30"),
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


def test_dots_are_allowed_as_acr_allows_them() -> None:
    # ROS doc 135727: 2-64 of lower-case letters, digits, '.', '-' and '_'.
    assert naming.check("has.dot", 64) is None
    assert naming.check("x" * 64, 64) is None
    assert naming.DEFAULT_MAX_LENGTH == 64


def test_namespaces_have_their_own_rule() -> None:
    assert naming.check_namespace("my-mirrors") is None
    assert naming.check_namespace("my.mirrors") is not None  # '.' is a repository-only char
    assert naming.check_namespace("x" * 31) is not None
    assert naming.check_namespace("x" * 30) is None


def test_prefixes_replace_the_registry_word() -> None:
    k8s = {"registry.k8s.io": ""}
    # kubeadm's imageRepository: harbor.example.com/mirrors wants mirrors/kube-apiserver.
    assert naming.derive(reference.parse_repository("registry.k8s.io/kube-apiserver"), k8s) == (
        "kube-apiserver"
    )
    assert naming.derive(reference.parse_repository("registry.k8s.io/pause"), k8s) == "pause"
    assert naming.derive(reference.parse_repository("registry.k8s.io/pause")) == "k8s_pause"
    elastic = {"docker.elastic.co": "elastic"}
    ref = reference.parse_repository("docker.elastic.co/elasticsearch/elasticsearch")
    assert naming.derive(ref, elastic) == "elastic_elasticsearch_elasticsearch"


@pytest.mark.parametrize(
    ("name", "limit", "cut"),
    [
        ("nfs-subdir-external-provisioner", 30, "nfs-subdir-external"),
        ("nfs-subdir-external-provisioner", 31, "nfs-subdir-external-provisioner"),
        ("quay_jetstack_cert-manager-controller", 30, "quay_jetstack_cert-manager"),
        ("a.b.c", 4, "a.b"),
        ("abcdefghij", 5, "abcde"),  # one word and nothing else fits: cut it
    ],
)
def test_fit_cuts_at_a_word_boundary(name: str, limit: int, cut: str) -> None:
    assert naming.fit(name, limit) == cut


def test_suggest_ends_on_a_word_and_is_unused() -> None:
    # From the real lists: kubernetes-sigs' provisioner is 31 characters as a last component.
    ref = reference.parse_repository("registry.k8s.io/sig-storage/nfs-subdir-external-provisioner")
    assert naming.suggest(ref, 30, set()) == "nfs-subdir-external"
    # docker.elastic.co's elasticsearch must not be told a name docker.io's already has.
    elastic = reference.parse_repository("docker.elastic.co/elasticsearch/elasticsearch")
    hint = naming.suggest(elastic, 30, {"elasticsearch"})
    assert hint == "elastic_elasticsearch"
    # Further qualifiers are shortened by whole words; the repository's own name stays whole.
    assert naming.suggest(elastic, 30, {"elasticsearch", "elastic_elasticsearch"}) == (
        "docker.elastic_elasticsearch"
    )
    assert naming.suggest(reference.parse_repository("nginx"), 30, {"nginx"}) == "nginx-2"


def test_suggestions_are_unique_within_a_list() -> None:
    taken = {"elasticsearch"}
    sources = [
        "docker.elastic.co/elasticsearch/elasticsearch",
        "docker.elastic.co/elasticsearch/elasticsearch-oss",
        "quay.io/elasticsearch/elasticsearch",
        "ghcr.io/elasticsearch/elasticsearch",
    ]
    got = []
    for source in sources:
        hint = naming.suggest(reference.parse_repository(source), 30, taken)
        assert naming.check(hint, 30) is None and hint not in taken
        taken.add(hint)
        got.append(hint)
    assert got == [
        "elastic_elasticsearch",
        "elasticsearch-oss",
        "quay_elasticsearch",
        "ghcr_elasticsearch",
    ]


@pytest.mark.parametrize("key", ["Registry.K8s.io", "QUAY.IO:443"])
def test_prefix_keys_with_upper_case_are_refused(key: str) -> None:
    with pytest.raises(InputError) as exc:
        settings.parse(f"naming:\n  prefixes:\n    {key}: x\n", "mirrors/relay.yaml")
    (problem,) = exc.value.problems
    assert problem.line == 3
    assert f"did you mean '{key.lower()}'?" in problem.message
