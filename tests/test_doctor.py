"""`relay doctor`: every check against the real thing (registries, the ACR and Harbor emulators,
the GitHub stand-in), one line per finding with its fix, in seconds, exit 1 only for what a
configured stage needs."""

from __future__ import annotations

import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay import cli
from tests.fakes.github import BAD_TOKEN, BOT_TOKEN, USER_TOKEN
from tests.fixtures.harbor import robot


def relay(*args: str) -> int:
    return cli.main(list(args))


def repo_with(tmp_path: Path, images: str, settings: str = "") -> Path:
    repo = tmp_path / "relay"
    (repo / "mirrors").mkdir(parents=True, exist_ok=True)
    (repo / "mirrors/images.yaml").write_text(textwrap.dedent(images))
    (repo / "mirrors/relay.yaml").write_text(textwrap.dedent(settings))
    return repo


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GITHUB_TOKEN",
        "GITHUB_REPOSITORY",
        "GITHUB_API_URL",
        "HARBOR_USERNAME",
        "HARBOR_PASSWORD",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
        "no_proxy",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A listener that accepts connections and never answers (a silent firewall)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


def lines(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """The doctor's lines by subject."""
    out = capsys.readouterr().out
    found = {}
    for line in out.splitlines():
        level, _, rest = line.partition("  ")
        subject, _, _ = rest.lstrip().partition(": ")
        if level.strip() in ("ok", "info", "WARN", "FAIL"):
            found[subject] = line
    return found


def test_upstreams_in_parallel_and_in_seconds(tmp_path, plain_registry, black_hole, capsys) -> None:
    """One registry answers, one accepts and never answers, one does not resolve: all three are
    asked at once, and the whole run takes about the timeout, not the sum."""
    repo = repo_with(
        tmp_path,
        f"""\
        images:
          - source: {plain_registry.host}/org/a
            tags: ['1']
          - source: {black_hole}/org/b
            tags: ['1']
          - source: registry.invalid/org/c
            tags: ['1']
        """,
    )
    started = time.monotonic()
    assert relay("doctor", "--timeout", "2", "--repo", str(repo)) == 1
    took = time.monotonic() - started
    found = lines(capsys)
    assert took < 6, took
    assert (
        found[plain_registry.host].startswith("ok") and "plain HTTP" in found[plain_registry.host]
    )
    assert (
        found[black_hole].startswith("FAIL")
        and "not reachable from this machine" in found[black_hole]
    )
    assert found["registry.invalid"].startswith("FAIL")
    assert (
        "Fix: relay lock and relay plan need the upstream registries" in found["registry.invalid"]
    )
    assert "HTTPS_PROXY" in found["registry.invalid"]


def test_a_mirror_that_answers_makes_an_unreachable_registry_a_non_blocker(
    tmp_path, plain_registry, capsys
) -> None:
    repo = repo_with(
        tmp_path,
        "images:\n  - source: registry.invalid/org/c\n    tags: ['1']\n",
        f'registries:\n  mirrors:\n    registry.invalid: ["http://{plain_registry.host}"]\n',
    )
    assert relay("doctor", "--timeout", "2", "--repo", str(repo)) == 0
    found = lines(capsys)
    assert found["registry.invalid"].startswith("FAIL")
    assert found[f"registry.invalid mirror http://{plain_registry.host}"].startswith("ok")


def test_a_mirror_does_not_stand_in_for_a_registry_whose_tags_are_listed(
    tmp_path, plain_registry, capsys
) -> None:
    # `select:` lists tags from the registry itself (a pull-through mirror lists only what it
    # has cached), so the unreachable registry blocks even though its mirror answers.
    repo = repo_with(
        tmp_path,
        "images:\n  - source: registry.invalid/org/c\n    select: {latest: 2}\n",
        f'registries:\n  mirrors:\n    registry.invalid: ["http://{plain_registry.host}"]\n',
    )
    assert relay("doctor", "--timeout", "2", "--repo", str(repo)) == 1
    found = lines(capsys)
    assert found["registry.invalid"].startswith("FAIL")
    assert found[f"registry.invalid mirror http://{plain_registry.host}"].startswith("ok")


def test_harbor_robot_permissions_tls_and_login(
    harbor_factory, tmp_path, monkeypatch, capsys
) -> None:
    full = robot("relay")
    weak = robot("weak", [("registry", "list"), ("registry", "read"), ("project", "list")])
    h = harbor_factory(robots=[full, weak], tls=True)
    settings = f"""\
        acr: {{namespace: relay-doc, source: {{github: octo/x}}}}
        transport: build
        harbor:
          url: {h.url}
          project: mirrors
          registry: harbor.example.com
        """
    repo = repo_with(tmp_path, "images: []\n", settings)
    monkeypatch.setenv("RELAY_HARBOR_ACR_ACCESS_KEY_ID", h.acr.access_key_id)
    monkeypatch.setenv("RELAY_HARBOR_ACR_ACCESS_KEY_SECRET", h.acr.access_key_secret)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", h.acr.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", h.acr.access_key_secret)
    monkeypatch.setenv("RELAY_ACR_ENDPOINT", h.acr.endpoint)

    # A Harbor with a certificate from a private CA, and no harbor.ca_bundle: say so. (On
    # loopback relay goes on unverified, Docker's rule, so this one is a warning; elsewhere it
    # blocks the stage.)
    monkeypatch.setenv("HARBOR_USERNAME", "robot$relay")
    monkeypatch.setenv("HARBOR_PASSWORD", full.secret)
    assert relay("doctor", "--timeout", "5", "--repo", str(repo)) == 0
    found = lines(capsys)
    line = found[f"Harbor {h.url}"]
    assert line.startswith("WARN") and "TLS" in line and "set harbor.ca_bundle" in line
    assert "certificate" in line.lower()

    ca = repo / "harbor-ca.pem"
    ca.write_text(Path(h.ca_file).read_text())
    (repo / "mirrors/relay.yaml").write_text(
        textwrap.dedent(settings) + "  ca_bundle: harbor-ca.pem\n"
    )
    assert relay("doctor", "--timeout", "5", "--repo", str(repo)) == 0
    found = lines(capsys)
    assert found[f"Harbor {h.url}"].startswith("ok") and "harbor-ca.pem" in found[f"Harbor {h.url}"]
    assert found["Harbor login"].startswith("ok") and "robot$relay" in found["Harbor login"]
    assert found["Harbor permissions of robot$relay"].startswith("ok")
    assert found["ACR AccessKey"].startswith("ok")

    monkeypatch.setenv("HARBOR_USERNAME", "robot$weak")
    monkeypatch.setenv("HARBOR_PASSWORD", weak.secret)
    assert relay("doctor", "--timeout", "5", "--repo", str(repo)) == 1
    line = lines(capsys)["Harbor permissions of robot$weak"]
    assert line.startswith("FAIL")
    assert "registry create, registry update, replication-policy list" in line
    assert "project create" in line and "project list" not in line

    monkeypatch.setenv("HARBOR_PASSWORD", "not-the-secret")
    assert relay("doctor", "--timeout", "5", "--repo", str(repo)) == 1
    out = capsys.readouterr().out
    assert "FAIL  Harbor login: Harbor did not accept robot$weak" in out
    assert weak.secret not in out and full.secret not in out

    monkeypatch.delenv("HARBOR_PASSWORD")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-secret")
    assert relay("doctor", "--timeout", "5", "--repo", str(repo)) == 1
    found = lines(capsys)
    assert found["Harbor login"].startswith("FAIL") and "HARBOR_PASSWORD" in found["Harbor login"]
    assert found["ACR AccessKey"].startswith("FAIL") and "refused it" in found["ACR AccessKey"]


def test_github_token_and_proxies(tmp_path, fake_github, monkeypatch, capsys) -> None:
    repo = repo_with(tmp_path, "images: []\n")
    monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", fake_github.repository)
    monkeypatch.setenv("HTTPS_PROXY", "http://me:pr0xy-pass@proxy.example.cn:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    monkeypatch.setenv("GITHUB_TOKEN", USER_TOKEN)
    assert relay("doctor", "--repo", str(repo)) == 0
    out = capsys.readouterr().out
    assert "ok    GITHUB_TOKEN: accepted; scopes repo, workflow" in out
    assert "HTTPS_PROXY=http://me:***@proxy.example.cn:3128" in out
    assert "pr0xy-pass" not in out and USER_TOKEN not in out

    monkeypatch.setenv("GITHUB_TOKEN", BOT_TOKEN)
    assert relay("doctor", "--repo", str(repo)) == 0
    assert "GitHub lists no scopes" in capsys.readouterr().out

    fake_github.user_scopes = "read:org"
    monkeypatch.setenv("GITHUB_TOKEN", USER_TOKEN)
    assert relay("doctor", "--repo", str(repo)) == 0
    assert "WARN  GITHUB_TOKEN: accepted, but its scopes (read:org) do not include repo" in (
        capsys.readouterr().out
    )

    monkeypatch.setenv("GITHUB_TOKEN", BAD_TOKEN)
    assert relay("doctor", "--repo", str(repo)) == 1
    out = capsys.readouterr().out
    assert "FAIL  GITHUB_TOKEN: GitHub refused it (401 Bad credentials)" in out
    assert BAD_TOKEN not in out


def test_proxies_say_where_acr_calls_go_and_no_proxy_is_honoured() -> None:
    """The ACR client applies NO_PROXY (relay.net.proxies): doctor no longer warns that it is
    ignored, and says which way ACR's API calls go."""
    from relay.commands.common import RelaySettings
    from relay.stages import doctor
    from relay.stages.acr.settings import AcrSettings, SourceSettings

    cfg = RelaySettings(acr=AcrSettings(namespace="m1", source=SourceSettings("octo/x")))
    proxy = {"HTTPS_PROXY": "http://u:secret@proxy.example.cn:3128"}
    for env, route in (
        ({**proxy, "NO_PROXY": "aliyuncs.com"}, "direct"),
        (proxy, "through http://u:***@proxy.example.cn:3128"),
    ):
        ctx = doctor.Context(Path("."), env, 1.0, cfg, None)
        found = doctor.check_proxies(ctx)
        assert all(f.level != "warn" for f in found), found
        assert any(
            f.message.startswith(f"ACR API calls to cr.cn-hangzhou.aliyuncs.com go {route}")
            for f in found
        ), found
        assert all("secret" not in f.message for f in found)
