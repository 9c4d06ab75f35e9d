"""Credential sources (relay.registry.credentials)."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from relay.registry.credentials import (
    AmbiguousCredentials,
    Credential,
    CredentialChain,
    DockerConfig,
    EnvCredentials,
    ImageSyncerAuth,
    StaticCredentials,
    default_credentials,
    normalise_registry,
)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("http://Harbor.Corp:8443/v2/", "harbor.corp:8443"),
        ("Quay.io/coreos/", "quay.io/coreos"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
    ],
)
def test_normalise_registry(name: str, expected: str) -> None:
    assert normalise_registry(name) == expected


def test_credential_repr_hides_secrets() -> None:
    cred = Credential("alice", "hunter2-secret", identity_token="id-token-xyz", source="s")
    assert "hunter2" not in repr(cred) and "id-token" not in repr(cred)
    assert cred.secrets == ("hunter2-secret", "id-token-xyz")


# -- docker config.json -----------------------------------------------------------------------


def test_docker_config_auths(tmp_path: Path) -> None:
    config = {
        "auths": {
            "https://index.docker.io/v1/": {"auth": _b64("hubuser:hub:pass:with:colons")},
            "ghcr.io": {"username": "gh", "password": "ghp_x"},
            "harbor.corp": {"auth": _b64("robot$relay:tok"), "identitytoken": "refresh-1"},
            "bad.example": {"auth": "!!!not-base64"},
            "127.0.0.1:5000/team": {"auth": _b64("team:pw")},
        }
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    docker = DockerConfig.from_file(path)
    hub = docker.get("docker.io", "library/nginx")
    assert hub is not None and (hub.username, hub.password) == ("hubuser", "hub:pass:with:colons")
    assert docker.get("registry-1.docker.io") == hub
    gh = docker.get("ghcr.io", "org/app")
    assert gh is not None and (gh.username, gh.password) == ("gh", "ghp_x")
    assert str(path) in gh.source
    harbor = docker.get("harbor.corp")
    assert harbor is not None and harbor.identity_token == "refresh-1"
    assert docker.get("bad.example") is None
    assert docker.get("quay.io") is None
    # Namespaced keys (podman's auth.json) match on whole path segments.
    assert docker.get("127.0.0.1:5000", "team/app") is not None
    assert docker.get("127.0.0.1:5000", "teamx/app") is None


def _install_helper(directory: Path, name: str, script: str) -> None:
    exe = directory / f"docker-credential-{name}"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


def test_cred_helpers_and_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "helper.log"
    _install_helper(
        bindir,
        "fake",
        f"""read server
echo "$1 $server" >> {log}
case "$server" in
  ghcr.io) echo '{{"ServerURL":"ghcr.io","Username":"from-helper","Secret":"s1"}}' ;;
  https://index.docker.io/v1/) echo '{{"ServerURL":"x","Username":"<token>","Secret":"idt"}}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
""",
    )
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    config = DockerConfig(
        {
            "credHelpers": {"ghcr.io": "fake", "quay.io": "not-installed"},
            "credsStore": "fake",
            "auths": {"quay.io": {"auth": _b64("q:inline")}, "other.io": {"auth": _b64("o:p")}},
        }
    )
    gh = config.get("ghcr.io", "org/app")
    assert gh is not None and (gh.username, gh.password) == ("from-helper", "s1")
    assert gh.source == "docker-credential-fake"
    # Cached: the helper ran once for ghcr.io.
    config.get("ghcr.io", "org/other")
    assert log.read_text().count("get ghcr.io") == 1
    # Identity tokens come back with the "<token>" user name.
    hub = config.get("docker.io")
    assert hub is not None and hub.identity_token == "idt" and hub.username == ""
    # A helper that is not installed falls back to the inline entry.
    quay = config.get("quay.io")
    assert quay is not None and quay.password == "inline"
    # credsStore has no entry: fall back to auths.
    other = config.get("other.io")
    assert other is not None and other.username == "o"
    assert config.get("nowhere.io") is None


def test_helper_runner_is_injectable() -> None:
    calls: list[tuple[str, str]] = []

    def runner(helper: str, server: str) -> dict[str, str] | None:
        calls.append((helper, server))
        return {"Username": "u", "Secret": "p"}

    cred = DockerConfig({"credsStore": "desktop"}, helper_runner=runner).get("docker.io")
    assert cred is not None and cred.username == "u"
    assert calls == [("desktop", "https://index.docker.io/v1/")]


def test_default_path(tmp_path: Path) -> None:
    assert DockerConfig.default_path({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path / "config.json"


# -- image-syncer ------------------------------------------------------------------------------


def test_image_syncer_json_longest_prefix_and_env(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text(
        json.dumps(
            {
                "quay.io": {"username": "q-all", "password": "p1"},
                "quay.io/coreos": {"username": "q-coreos", "password": "${COREOS_PW}"},
                "registry.cn-hangzhou.aliyuncs.com": {"username": "$ACR_USER", "password": "x"},
                "127.0.0.1:5000": {"insecure": True},
            }
        )
    )
    auth = ImageSyncerAuth.from_file(path, environ={"COREOS_PW": "from-env", "ACR_USER": "acr"})
    coreos = auth.get("quay.io", "coreos/etcd")
    assert coreos is not None and (coreos.username, coreos.password) == ("q-coreos", "from-env")
    assert auth.get("quay.io", "coreos") is not None
    other = auth.get("quay.io", "coreosx/etcd")
    assert other is not None and other.username == "q-all"
    assert auth.get("quay.io") == other
    acr = auth.get("registry.cn-hangzhou.aliyuncs.com", "ns/app")
    assert acr is not None and acr.username == "acr"
    # An insecure-only entry has no credentials but marks the registry insecure.
    assert auth.get("127.0.0.1:5000", "a") is None
    assert auth.insecure("127.0.0.1:5000") and not auth.insecure("quay.io")
    assert auth.insecure_registries == ["127.0.0.1:5000"]


def test_image_syncer_yaml(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "auth.yaml"
    path.write_text(
        "harbor.corp:\n  username: admin\n  password: ${MISSING_VAR}\n  insecure: 'true'\n"
    )
    auth = ImageSyncerAuth.from_file(path, environ={})
    cred = auth.get("harbor.corp", "lib/app")
    assert cred is not None and cred.username == "admin" and cred.password == ""
    assert auth.insecure("harbor.corp")
    assert "MISSING_VAR" in caplog.text


def test_image_syncer_rejects_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ImageSyncerAuth({"quay.io": "user:pass"})
    path = tmp_path / "a.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ValueError):
        ImageSyncerAuth.from_file(path)


# -- environment and chains --------------------------------------------------------------------


def test_env_credentials(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "RELAY_REGISTRY_AUTH_GHCR_IO": "bot:ghp_abc:def",
        "RELAY_REGISTRY_AUTH_127_0_0_1_5000": "u:p",
        "RELAY_REGISTRY_AUTH_QUAY_IO": "no-colon",
        "RELAY_REGISTRY_AUTH_DOCKER_IO": "hub:pw",
    }
    creds = EnvCredentials(env)
    gh = creds.get("ghcr.io", "x/y")
    assert gh is not None and (gh.username, gh.password) == ("bot", "ghp_abc:def")
    assert "RELAY_REGISTRY_AUTH_GHCR_IO" in gh.source
    with pytest.raises(AmbiguousCredentials, match="RELAY_REGISTRY_AUTH="):
        creds.get("127.0.0.1:5000")  # '.' and ':' both fold to '_': not this form
    assert creds.get("registry-1.docker.io") is not None
    assert creds.get("quay.io") is None
    assert "no-colon" not in caplog.text and "RELAY_REGISTRY_AUTH_QUAY_IO" in caplog.text
    assert EnvCredentials.variable_name("registry.k8s.io") == "RELAY_REGISTRY_AUTH_REGISTRY_K8S_IO"


def test_static_and_chain(tmp_path: Path) -> None:
    first = StaticCredentials({"ghcr.io/org": Credential("org-bot", "p")})
    second = ImageSyncerAuth(
        {"ghcr.io": {"username": "any", "password": "q"}, "h:1": {"insecure": True}}
    )
    chain = CredentialChain([first, second])
    assert chain.get("ghcr.io", "org/app").username == "org-bot"  # type: ignore[union-attr]
    assert chain.get("ghcr.io", "else/app").username == "any"  # type: ignore[union-attr]
    assert chain.get("quay.io") is None
    assert chain.insecure("h:1") and not chain.insecure("ghcr.io")


def test_default_credentials(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"a.io": {"auth": _b64("d:1")}}}))
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {"a.io": {"auth": _b64("r:2")}}}))
    env = {"DOCKER_CONFIG": str(tmp_path), "REGISTRY_AUTH_FILE": str(auth_file)}
    assert default_credentials(env).get("a.io").username == "r"  # type: ignore[union-attr]
    env["RELAY_REGISTRY_AUTH_A_IO"] = "e:3"
    assert default_credentials(env).get("a.io").username == "e"  # type: ignore[union-attr]
    del env["REGISTRY_AUTH_FILE"]
    del env["RELAY_REGISTRY_AUTH_A_IO"]
    assert default_credentials(env).get("a.io").username == "d"  # type: ignore[union-attr]
    (tmp_path / "config.json").write_text("{not json")
    assert default_credentials(env).get("a.io") is None
