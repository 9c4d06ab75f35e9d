"""The `acr:` settings section and credentials from the environment."""

from __future__ import annotations

import textwrap

import pytest

from relay.config import yamlnodes
from relay.errors import InputError, Problem
from relay.stages.acr import settings as acr_settings
from relay.stages.acr.settings import AcrSettings, Credentials, credentials

PATH = "mirrors/relay.yaml"


def parse(text: str) -> tuple[AcrSettings, list[Problem]]:
    doc = yamlnodes.Doc(PATH)
    root = yamlnodes.compose(textwrap.dedent(text), PATH)
    assert root is not None
    top = yamlnodes.mapping_items(doc, root, "settings", {"acr"}, [])
    problems: list[Problem] = []
    return acr_settings.parse(doc, top["acr"][1], problems), problems


def test_defaults() -> None:
    s = AcrSettings()
    assert (s.edition, s.region, s.repo_type, s.source.branch) == (
        "personal",
        "cn-hangzhou",
        "PRIVATE",
        "main",
    )
    assert s.registry == "registry.cn-hangzhou.aliyuncs.com"
    assert (s.rules_per_repo, s.max_concurrent_builds) == (5, 2)
    assert (s.quotas.namespaces, s.quotas.repos) == (3, 300)
    assert s.overseas_build is True
    assert s.api_endpoint({}) == "https://cr.cn-hangzhou.aliyuncs.com"


def test_full_section() -> None:
    s, problems = parse(
        """
        acr:
          edition: personal
          region: cn-shanghai
          namespace: my-mirrors
          endpoint: http://127.0.0.1:8080
          registry_domain: registry.example.com:5000
          repo_type: public
          overseas_build: false
          source:
            github: my-org/relay.mirrors
            branch: release/v1
          rules_per_repo: 3
          max_concurrent_builds: 4
          quotas: {namespaces: 5, repos: 1000}
          poll: {interval: 0.5, max_interval: 5, timeout: 600}
          retry: {attempts: 3, backoff: 0.1, max_backoff: 2}
          workers: 16
        """
    )
    assert problems == []
    assert s.region == "cn-shanghai" and s.namespace == "my-mirrors"
    assert s.repo_type == "PUBLIC" and s.overseas_build is False
    assert (s.source.owner, s.source.name, s.source.branch) == (
        "my-org",
        "relay.mirrors",
        "release/v1",
    )
    assert s.registry == "registry.example.com:5000"
    assert (s.rules_per_repo, s.max_concurrent_builds, s.workers) == (3, 4, 16)
    assert (s.quotas.namespaces, s.quotas.repos) == (5, 1000)
    assert (s.poll.interval, s.poll.max_interval, s.poll.timeout) == (0.5, 5.0, 600.0)
    assert (s.retry.attempts, s.retry.backoff, s.retry.max_backoff) == (3, 0.1, 2.0)
    assert s.api_endpoint({}) == "http://127.0.0.1:8080"
    # The environment wins over the file, and a bare host gets https.
    assert s.api_endpoint({"RELAY_ACR_ENDPOINT": "cr.example.com"}) == "https://cr.example.com"
    # ... except on loopback, where a bare host:port is an emulator speaking HTTP.
    assert s.api_endpoint({"RELAY_ACR_ENDPOINT": "127.0.0.1:9"}) == "http://127.0.0.1:9"


def test_enterprise() -> None:
    s, problems = parse(
        """
        acr:
          edition: enterprise
          instance_id: cri-abc123
          namespace: mirrors
        """
    )
    assert problems == [] and s.instance_id == "cri-abc123"
    _, problems = parse("acr:\n  edition: enterprise\n  namespace: mirrors\n")
    assert [p.message for p in problems] == [
        "acr.instance_id is required for the enterprise edition"
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("acr:\n  namespaces: x\n", 2, "acr: unknown key 'namespaces'; did you mean 'namespace'?"),
        ("acr:\n  edition: pro\n", 2, "acr.edition must be one of personal, enterprise"),
        ("acr:\n  namespace: A_b\n", 2, "acr.namespace must be 2-30 of a-z"),
        ("acr:\n  namespace: -ab\n", 2, "acr.namespace must be 2-30 of a-z"),
        ("acr:\n  rules_per_repo: 0\n", 2, "acr.rules_per_repo must be from 1 to 100"),
        ("acr:\n  rules_per_repo: five\n", 2, "acr.rules_per_repo must be a whole number"),
        ("acr:\n  poll:\n    interval: soon\n", 3, "acr.poll.interval must be a number"),
        ("acr:\n  poll:\n    every: 1\n", 3, "acr.poll: unknown key 'every'"),
        ("acr:\n  source:\n    github: nope\n", 3, "acr.source.github must be owner/repo"),
        ("acr:\n  source:\n    branch: a..b\n", 3, "acr.source.branch must be a branch name"),
        ("acr:\n  endpoint: 'http://x y'\n", 2, "acr.endpoint must be host[:port]"),
        ("acr:\n  endpoint: evil.example.com\n", 2, "acr.endpoint must be an https://"),
        ("acr:\n  endpoint: 'http://cr.cn-hangzhou.aliyuncs.com'\n", 2, "acr.endpoint must be"),
        ("acr:\n  endpoint: 'https://aliyuncs.com.evil.io'\n", 2, "acr.endpoint must be"),
        ("acr:\n  repo_type: secret\n", 2, "acr.repo_type must be one of PRIVATE, PUBLIC"),
        ("acr:\n  instance_id: cri-x\n", 2, "acr.instance_id only applies to enterprise"),
        ("acr:\n  overseas_build: yes please\n", 2, "acr.overseas_build must be true or false"),
        ("acr: [1]\n", 1, "acr must be a mapping"),
    ],
)
def test_problems_have_lines(text: str, line: int, message: str) -> None:
    _, problems = parse(text)
    assert problems, text
    assert problems[0].line == line
    assert problems[0].message.startswith(message), problems[0].message


def test_every_problem_is_reported_at_once() -> None:
    _, problems = parse("acr:\n  edition: x\n  region: UPPER\n  workers: 0\n")
    assert [p.line for p in problems] == [2, 3, 4]


def test_require_names_what_is_missing() -> None:
    with pytest.raises(InputError) as info:
        AcrSettings().require()
    assert "acr.namespace" in str(info.value) and "acr.source.github" in str(info.value)
    with pytest.raises(InputError, match="instance_id"):
        AcrSettings(edition="enterprise", namespace="ns").require()


def test_credentials_from_env() -> None:
    new = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "id1", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s1"}
    old = {"ALIYUN_ACCESS_KEY_ID": "id2", "ALIYUN_ACCESS_KEY_SECRET": "s2"}
    assert credentials(new | old) == Credentials("id1", "s1")
    assert credentials(old) == Credentials("id2", "s2")
    # Half of one pair never mixes with the other pair.
    assert credentials({"ALIBABA_CLOUD_ACCESS_KEY_ID": "id1"} | old) == Credentials("id2", "s2")
    with pytest.raises(InputError, match="ALIBABA_CLOUD_ACCESS_KEY_ID"):
        credentials({"ALIBABA_CLOUD_ACCESS_KEY_ID": "id1"})


def test_credentials_never_show() -> None:
    creds = Credentials("LTAIdistinctive", "very-secret-value")
    assert "very-secret-value" not in repr(creds) and "LTAI" not in repr(creds)
    assert "very-secret-value" not in str(creds)


@pytest.mark.parametrize(
    "endpoint",
    [
        "cr.cn-nanjing.aliyuncs.com",
        "https://cr.cn-hangzhou.aliyuncs.com",
        "http://127.0.0.1:8080",
        "localhost:9",
    ],
)
def test_the_file_may_name_alibaba_over_https_or_a_loopback_emulator(endpoint: str) -> None:
    settings, problems = parse(f"acr:\n  endpoint: '{endpoint}'\n")
    assert problems == [] and settings.endpoint == endpoint
