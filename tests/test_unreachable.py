"""Upstream out of reach: found out once per run, fast, in parallel, said once
per registry with what to do, and Ctrl-C ends a run within a second.

Each measured problem of the issue has a test here: `relay lock` with unreachable registries
(black hole, dropped SYNs, failing DNS), `relay publish` of many images on a dead registry (one
discovery, counted at the listener), partial success when another registry answers, Ctrl-C on
a run waiting on the network (a subprocess and a real SIGINT), raw library errors never shown,
`relay acr plan`'s cause never cut mid-word. The network is tests/fixtures/blackhole.py's: real
sockets on loopback, names routed in this process, every other name failing to resolve.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from relay import cli, safety
from relay.net import cancel, deadline
from relay.net.errors import ConnectionFailed
from relay.net.reachability import (
    HostUnreachable,
    Reachability,
    classify,
    condense,
    outage_of,
)
from relay.net.transport import Transport
from relay.registry.pool import ClientPool
from relay.stages.acr.errors import AcrError, from_sdk
from tests.fakes.registry import FakeRegistry
from tests.fixtures.blackhole import BlackHole, SynDrop, routes

ROOT = Path(__file__).resolve().parent.parent
DIGEST = "sha256:" + "ab" * 32
# One second instead of five: the tests wait for real timeouts.
FAST = """\
registries:
  limits:
    connect_timeout: 1
"""
RAW = ("NameResolutionError", "HTTPSConnection", "Errno", "Max retries", "object at 0x")


def make_repo(base: Path, images: str, settings: str = FAST) -> Path:
    (base / "mirrors").mkdir(parents=True)
    (base / "mirrors/images.yaml").write_text(textwrap.dedent(images))
    (base / "mirrors/relay.yaml").write_text(settings)
    return base


LOCK_LIST = """\
images:
  - source: quay.io/prometheus/node-exporter
    tags: [v1.8.0, v1.8.1, v1.8.2]
  - source: gcr.io/distroless/static
    tags: [nonroot, latest]
  - source: registry.k8s.io/pause
    tags: ["3.8", "3.9", "3.10"]
"""


def test_lock_finds_three_unreachable_registries_in_parallel_and_says_so_once_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Two workers for eight tags: without the registries pinged side by side first, the
    # workers would wait on quay.io's tags, then gcr.io's, one registry after another.
    repo = make_repo(tmp_path, LOCK_LIST, FAST + "lock:\n  concurrency: 2\n")
    caplog.set_level(logging.INFO)
    with (
        BlackHole() as hole,
        SynDrop() as dropped,
        routes(
            {"quay.io": hole.address, "gcr.io": dropped.address}, failing=("registry.k8s.io",)
        ) as lookups,
    ):
        started, wall = time.monotonic(), time.time()
        code = cli.main(["lock", "--repo", str(repo)])
        took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 1
    # Two tries of 1 s for each silent registry, side by side; one after another would take
    # twice as long. Before: five tries of 10 s per registry, one after another.
    assert took < 3.8, took
    # Found out once: two tries, not two per tag (the black hole counts connections).
    assert hole.accepted == 2
    assert lookups["registry.k8s.io"] == 2
    lines = [line for line in err.splitlines() if "is not reachable" in line]
    assert len(lines) == 3, err
    quay, gcr, k8s = (next(x for x in lines if f"{h} is not" in x) for h in UPSTREAM_HOSTS)
    assert quay.startswith("mirrors/images.yaml:3: quay.io is not reachable from this machine")
    assert "no answer to the TLS handshake within 1 s; 2 attempts" in quay
    assert "registries.limits.connect_timeout sets the wait" in quay
    assert "3 tags (line 3) not looked up" in quay
    assert "connect timed out after 1 s" in gcr and "2 tags (line 5)" in gcr
    assert "its name does not resolve" in k8s and "spelled right" in k8s
    for line in lines:
        assert (
            "relay lock needs the upstream registries: run it in the GitHub workflow, whose "
            "runners are outside the mainland, or set HTTPS_PROXY" in line
        )
    assert "relay: 3 problems" in err
    assert not any(raw in err for raw in RAW), err
    assert sorted(os.listdir(repo / "mirrors")) == ["images.yaml", "relay.yaml"]
    # The first sign of trouble is said at once, while the run is still waiting.
    first = [r for r in caplog.records if "quay.io is not answering yet" in r.getMessage()]
    assert len(first) == 1 and first[0].levelno == logging.WARNING
    assert first[0].created - wall < 1.8


UPSTREAM_HOSTS = ("quay.io", "gcr.io", "registry.k8s.io")


def test_failing_dns_is_rechecked_once_and_annotated_under_actions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path, LOCK_LIST)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    with routes(failing=UPSTREAM_HOSTS) as lookups:
        started = time.monotonic()
        code = cli.main(["lock", "--repo", str(repo)])
        took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 1 and took < 2.5, took
    assert all(lookups[h] == 2 for h in UPSTREAM_HOSTS), lookups  # not once per tag
    annotations = [line for line in err.splitlines() if line.startswith("::error file=")]
    assert len(annotations) == 3
    assert all("is not reachable from this machine" in a for a in annotations)
    assert any(
        a.startswith("::error file=mirrors/images.yaml,line=3::quay.io") for a in annotations
    )


def publish_repo(base: Path, target: str, sources: list[str]) -> Path:
    entries = "".join(
        f'  - source: {source}\n    name: {source.rsplit("/", 1)[1]}\n    tags: ["1.0@{DIGEST}"]\n'
        for source in sources
    )
    settings = FAST + f"transport: copy\ncopy:\n  registry: {target}\n  namespace: mirrors\n"
    return make_repo(base, "images:\n" + entries, settings)


def test_publish_of_many_images_on_a_dead_registry_fails_all_at_once(
    tmp_path: Path, fake: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = [f"quay.io/jetstack/image-{n:02d}" for n in range(13)]
    repo = publish_repo(tmp_path, fake.host, sources)
    with BlackHole() as hole, routes({"quay.io": hole.address}):
        started = time.monotonic()
        code = cli.main(["publish", "--repo", str(repo)])
        took = time.monotonic() - started
    captured = capsys.readouterr()
    assert code == 1
    # One discovery for the registry, not one per image: two connections in all. Before,
    # every image waited out five tries again (9 min 15 s for the 13 shipped ones).
    assert hole.accepted == 2
    assert took < 4.0, took
    assert captured.out.count("quay.io is not reachable from this machine") == 13
    err = captured.err
    assert "relay: error: 13 of 13 images failed to copy" in err
    assert err.count("is not reachable") == 1, err
    assert "quay.io is not reachable from this machine (no answer to the TLS handshake" in err
    assert "13 images not copied. relay publish needs the upstream registries" in err
    assert not any(raw in err + captured.out for raw in RAW)
    assert fake.count("PUT") == 0 and fake.count("POST") == 0


def test_publish_copies_what_answers_and_reports_the_rest(
    tmp_path: Path, plain_registry, image_factory, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = f"part-{uuid.uuid4().hex[:6]}"
    for name in ("one", "two"):
        image_factory.push(plain_registry, f"{ns}/{name}", "1.0", "oci-index", seed=ns + name)
    entries = [f"{plain_registry.host}/{ns}/one", f"{plain_registry.host}/{ns}/two"]
    entries += ["quay.io/jetstack/cert-manager-webhook", "quay.io/jetstack/cert-manager-cainjector"]
    repo = publish_repo(tmp_path, plain_registry.host, entries)
    text = (repo / "mirrors/images.yaml").read_text()
    (repo / "mirrors/images.yaml").write_text(
        text.replace(f'tags: ["1.0@{DIGEST}"]\n', 'tags: ["1.0"]\n', 2)
    )
    assert cli.main(["lock", "--repo", str(repo), "--only", "one", "two"]) == 0
    capsys.readouterr()
    with BlackHole() as hole, routes({"quay.io": hole.address}):
        code = cli.main(["publish", "--repo", str(repo)])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert captured.out.count("copied") >= 2
    assert "relay: error: 2 of 4 images failed to copy (2 copied or already there)" in captured.err
    assert "quay.io is not reachable from this machine" in captured.err
    assert hole.accepted == 2
    with ClientPool() as pool:
        client = pool.get(plain_registry.host)
        assert client.head_manifest("mirrors/one", "1.0") is not None
        assert client.head_manifest("mirrors/two", "1.0") is not None


def test_sync_does_not_retry_a_registry_found_unreachable(
    tmp_path: Path, fake: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/relay.yaml").write_text(FAST)
    images = tmp_path / "images.yaml"
    images.write_text(f"quay.io/a/one:1: {fake.host}/x/one\nquay.io/a/two:1: {fake.host}/x/two\n")
    with routes(failing=("quay.io",)) as lookups:
        code = cli.main(
            ["sync", "--repo", str(tmp_path), "--images", str(images), "--retries", "2"]
        )
    captured = capsys.readouterr()
    assert code == 1
    assert lookups["quay.io"] == 2  # no further passes over what cannot change in this run
    assert "in 1 pass(es)" in captured.out
    assert "relay: error: 2 image(s) failed after the retries" in captured.err
    assert "quay.io is not reachable from this machine (its name does not resolve" in captured.err
    assert "2 images not copied. relay sync needs the upstream registries: run it outside " in (
        captured.err
    )


def test_verify_finds_its_target_unreachable_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = [f"quay.io/jetstack/image-{n:02d}" for n in range(6)]
    repo = publish_repo(tmp_path, "registry.example.com", sources)
    with BlackHole() as hole, routes({"registry.example.com": hole.address}):
        started = time.monotonic()
        code = cli.main(["verify", "--repo", str(repo)])
        took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 1 and took < 3.5, (took, err)
    assert hole.accepted == 2  # the target's ping; its tags fail without a request each
    assert "relay: 6 of 6 tags do not agree across upstream, the target" in err
    assert "registry.example.com is not reachable from this machine" in err
    assert "check the address (copy.registry) and that this machine can reach it" in err


def test_copy_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with routes(failing=("ghcr.io",)):
        code = cli.main(
            ["copy", "--repo", str(tmp_path), "ghcr.io/fluxcd/flux:v2", "127.0.0.1:1/x/flux:v2"]
        )
    err = capsys.readouterr().err
    assert code == 1
    assert "ghcr.io is not reachable from this machine" in err
    assert "relay copy needs the upstream registries" in err
    assert not any(raw in err for raw in RAW), err


def test_concurrent_requests_to_a_new_host_wait_for_one_probe() -> None:
    transport = Transport(timeout=(0.5, 2.0), sleep=lambda _s: None)
    errors: list[BaseException] = []

    def get() -> None:
        try:
            transport.request("GET", "https://quay.io/v2/", what="quay.io: ping", kind="ping")
        except ConnectionFailed as exc:
            errors.append(exc)

    with BlackHole() as hole, routes({"quay.io": hole.address}):
        threads = [threading.Thread(target=get) for _ in range(8)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.monotonic() - started
    assert hole.accepted == 2 and len(errors) == 8
    assert took < 2.0, took
    outages = {id(outage_of(e)) for e in errors}
    assert len(outages) == 1 and all(isinstance(e, HostUnreachable) for e in errors)


def test_pools_of_one_run_share_what_they_found_out() -> None:
    reach = Reachability()
    with BlackHole() as hole, routes({"quay.io": hole.address}):
        for _ in range(2):
            with ClientPool(reach=reach) as pool:
                pool.get("quay.io").transport.timeout = (0.5, 2.0)
                pool.probe(["quay.io"])
        assert hole.accepted == 2
        assert [o.host for o in reach.outages()] == ["quay.io"]


def test_a_host_that_answers_is_not_remembered_as_down(fake: FakeRegistry) -> None:
    transport = Transport(sleep=lambda _s: None)
    fake.add_fault("GET", r"^/v2/$", status=503, times=1)
    assert transport.request("GET", fake.url + "/v2/", what="x", kind="ping").status_code == 200
    assert transport.reach.outages() == []


def test_mirrors_are_probed_not_the_upstream_behind_them(
    tmp_path: Path, plain_registry, image_factory, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = f"mir-{uuid.uuid4().hex[:6]}"
    image_factory.push(plain_registry, f"{ns}/node-exporter", "v1", "oci-index", seed=ns)
    settings = FAST + f'  mirrors:\n    quay.io: ["http://{plain_registry.host}"]\n'
    repo = make_repo(
        tmp_path, f"images:\n  - source: quay.io/{ns}/node-exporter\n    tags: [v1]\n", settings
    )
    with BlackHole() as hole, routes({"quay.io": hole.address}):
        code = cli.main(["lock", "--repo", str(repo)])
    assert code == 0, capsys.readouterr().err
    assert hole.accepted == 0  # the mirror served it: upstream was never asked


# --- Ctrl-C --------------------------------------------------------------------------------------


def _relay(args: list[str], route: dict[str, str]) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tests.fixtures.blackhole"]
    for host, where in route.items():
        cmd += ["--route", f"{host}={where}"]
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.pop("GITHUB_ACTIONS", None)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [*cmd, "--", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.02)


def test_ctrl_c_ends_lock_within_a_second_and_leaves_nothing_half_written(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path, LOCK_LIST, settings="")  # the default timeouts: 5 s to connect
    with BlackHole() as hole:
        proc = _relay(["lock", "--repo", str(repo)], {h: hole.netloc for h in UPSTREAM_HOSTS})
        _wait_for(lambda: hole.accepted >= 3)
        time.sleep(0.3)  # inside the TLS handshakes, well before their timeout
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        took = time.monotonic() - started
    assert proc.returncode == 130, err
    assert took < 2.0, took
    assert "relay: interrupted; abandoned 3 requests in flight" in err
    assert "(to gcr.io, quay.io, registry.k8s.io)" in err
    assert "run the command again to finish" in err
    assert "Traceback" not in err
    assert sorted(os.listdir(repo / "mirrors")) == ["images.yaml", "relay.yaml"]


def test_ctrl_c_does_not_wait_for_a_connect_no_thread_can_wake(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, LOCK_LIST, settings="")
    with SynDrop() as dropped:
        proc = _relay(["lock", "--repo", str(repo)], {h: dropped.netloc for h in UPSTREAM_HOSTS})
        time.sleep(1.5)  # the pings are waiting in connect (5 s)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - started
    assert proc.returncode == 130, err
    assert took < 2.0, took
    assert "relay: interrupted; abandoned" in err and "Traceback" not in err


def test_a_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, LOCK_LIST, settings="")
    with SynDrop() as dropped:
        proc = _relay(["lock", "--repo", str(repo)], {h: dropped.netloc for h in UPSTREAM_HOSTS})
        time.sleep(1.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - started
    assert proc.returncode == 130, err
    assert took < 0.7, took
    assert "relay: interrupted again; exiting now" in err


def test_an_interrupted_run_stops_every_thread_at_its_next_wait() -> None:
    """cancel.trigger() (the CLI's Ctrl-C) shuts a request in a TLS handshake down at once,
    and a retry's wait or a new request raise Interrupted instead of starting."""
    transport = Transport()
    caught: list[BaseException] = []

    def get() -> None:
        try:
            transport.request("GET", "https://quay.io/v2/", what="ping", kind="ping")
        except BaseException as exc:  # noqa: BLE001 - the test looks at what ended it
            caught.append(exc)

    try:
        with BlackHole() as hole, routes({"quay.io": hole.address}):
            thread = threading.Thread(target=get)
            thread.start()
            _wait_for(lambda: hole.accepted == 1)
            time.sleep(0.2)
            started = time.monotonic()
            assert cancel.trigger() == ["quay.io"]
            thread.join(5)
            assert time.monotonic() - started < 0.5
            assert len(caught) == 1 and isinstance(caught[0], cancel.Interrupted)
            with pytest.raises(cancel.Interrupted):
                cancel.pause(30)
            with pytest.raises(cancel.Interrupted):
                Transport().request("GET", "https://quay.io/v2/", what="ping", kind="ping")
    finally:
        cancel.reset()
        deadline.reset_abort()


# --- what the user reads --------------------------------------------------------------------------


def test_library_errors_become_one_plain_cause() -> None:
    with routes(failing=("quay.io",)):
        with pytest.raises(requests.ConnectionError) as dns:
            requests.get("https://quay.io/v2/", timeout=1)
    assert classify(dns.value).kind == "dns"
    assert classify(dns.value).detail == "its name does not resolve: Name or service not known"
    with SynDrop() as dropped:
        with pytest.raises(requests.ConnectTimeout) as slow:
            requests.get(f"https://{dropped.netloc}/v2/", timeout=(0.3, 1))
    found = classify(slow.value, connect=0.3, hint="registries.limits")
    assert found.kind == "connect-timeout" and found.detail == "connect timed out after 0.3 s"
    assert found.setting == "registries.limits.connect_timeout"
    with BlackHole() as hole:
        with pytest.raises(requests.RequestException) as silent:
            requests.get(f"https://{hole.netloc}/v2/", timeout=(0.3, 1))
        with pytest.raises(requests.ReadTimeout) as plain:
            requests.get(f"http://{hole.netloc}/v2/", timeout=(0.3, 0.3))
    assert classify(silent.value, connect=0.3).kind == "tls-timeout"
    assert classify(plain.value, read=0.3).detail == "connected, but no answer within 0.3 s"


SDK_MESSAGE = (
    "HTTPSConnectionPool(host='cr.cn-hangzhou.aliyuncs.com', port=443): Max retries exceeded "
    "with url: /namespace?RegionId=cn-hangzhou (Caused by NewConnectionError('<aliyunsdkcore."
    "vendored.requests.packages.urllib3.connection.VerifiedHTTPSConnection object at "
    "0x7f83554e1a90>: Failed to establish a new connection: [Errno -2] Name or service not "
    "known'))"
)


def test_acr_plan_says_the_cause_whole() -> None:
    from aliyunsdkcore.acs_exception.exceptions import ClientException

    error = from_sdk("GetNamespaceList", ClientException("SDK.HttpError", SDK_MESSAGE))
    assert error.message == "cannot reach cr.cn-hangzhou.aliyuncs.com: its name does not resolve"
    assert str(error).endswith(
        "SDK.HttpError cannot reach cr.cn-hangzhou.aliyuncs.com: its name does not resolve"
    )
    assert error.connect_failure  # still safe to retry a write after it
    assert condense("Connection refused") == "cannot connect: connection refused"
    # Any other long cause is cut at a word's end.
    long = AcrError("CreateRepo", "InvalidParameter", "word " * 100)
    assert long.message.endswith("word…") and len(long.message) <= 300
    assert safety.one_line("alpha beta gamma delta", 14) == "alpha beta…"


def test_timeouts_are_settings_with_errors_that_name_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(
        tmp_path,
        "images:\n  - source: nginx\n    tags: ['1.27']\n",
        "registries:\n  limits:\n    connect_timeout: 0\n    read_timeout: 30\n",
    )
    assert cli.main(["validate", "--repo", str(repo)]) == 2
    err = capsys.readouterr().err
    assert "mirrors/relay.yaml:3:" in err and "connect_timeout" in err
