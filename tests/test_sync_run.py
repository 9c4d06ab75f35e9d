"""`relay sync` end to end (relay/sync/run.py), from image-syncer's auth and images files,
against real registries on 127.0.0.1.

skopeo is the oracle for digests. Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from relay import sync
from relay.config.settings import RegistrySettings
from relay.errors import InputError
from relay.net import transport
from relay.net.retry import RetryPolicy
from tests.fixtures.registries import free_port
from tests.sync_helpers import write

pytestmark = pytest.mark.slow


def uid() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    # TLS registries are trusted through the settings' CA bundle alone, never the environment.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    # No docker config or RELAY_REGISTRY_AUTH_*: credentials come from the auth file only.
    return {"DOCKER_CONFIG": str(tmp_path / "no-docker-config")}


@pytest.fixture
def settings(tls_registry) -> RegistrySettings:
    return RegistrySettings(ca_bundles={"127.0.0.1": tls_registry.ca_file})


def auth_entry(registry) -> dict[str, Any]:
    return {"username": registry.username, "password": registry.password}


@dataclass
class Run:
    report: sync.SyncReport
    out: str

    def rows(self) -> dict[str, sync.ImageResult]:
        return {r.destination: r for r in self.report.results}


def run_sync(
    tmp_path: Path,
    images: Any,
    auth: Any = None,
    *,
    name: str = "images.json",
    env: dict[str, str],
    settings: RegistrySettings | None = None,
    **kwargs: Any,
) -> Run:
    images_path = write(tmp_path / name, images)
    auth_path = write(tmp_path / "auth.json", auth) if auth is not None else None
    out = io.StringIO()
    report = sync.run(images_path, auth_path, settings=settings, environ=env, out=out, **kwargs)
    return Run(report, out.getvalue())


def test_all_tags_tag_list_digest_and_regex(
    tmp_path, env, settings, tls_registry, token_registry, image_factory, skopeo
):
    src, dst = tls_registry, token_registry
    name = f"sync-{uid()}"
    pushed = {
        tag: image_factory.push(src, f"{name}/app", tag, kind, seed=f"{name}-{tag}")
        for tag, kind in [
            ("1.0", "oci-index"),
            ("1.1", "docker-list"),
            ("2.0", "docker"),
            ("latest", "oci"),
        ]
    }
    by_digest = pushed["1.1"].digest
    images = {
        f"{src.host}/{name}/app": f"{dst.host}/{name}/all",
        f"{src.host}/{name}/app:1.0,2.0": f"{dst.host}/{name}/list",
        f"{src.host}/{name}/app@{by_digest}": f"{dst.host}/{name}/bydigest",
        f"{src.host}/{name}/app:/^1\\./": f"{dst.host}/{name}/regex",
    }
    auth = {src.host: auth_entry(src), dst.host: auth_entry(dst)}
    first = run_sync(tmp_path, images, auth, env=env, settings=settings, proc=3)
    assert first.report.ok, first.out

    expected = {
        **{f"{dst.host}/{name}/all:{t}": pushed[t].digest for t in pushed},
        **{f"{dst.host}/{name}/list:{t}": pushed[t].digest for t in ("1.0", "2.0")},
        f"{dst.host}/{name}/bydigest@{by_digest}": by_digest,
        **{f"{dst.host}/{name}/regex:{t}": pushed[t].digest for t in ("1.0", "1.1")},
    }
    rows = first.rows()
    assert sorted(rows) == sorted(expected)
    for destination, digest in expected.items():
        row = rows[destination]
        assert (row.result, row.digest, row.attempts) == (sync.COPIED, digest, 1), row
        assert skopeo.digest(destination, dst) == digest
        assert destination in first.out and digest in first.out
    assert sorted(skopeo.list_tags(f"{name}/regex", dst)) == ["1.0", "1.1"]
    assert "9 images: 9 copied, 0 unchanged, 0 failed" in first.out

    # A second run finds every image in place after one HEAD each side and moves nothing.
    second = run_sync(tmp_path, images, auth, env=env, settings=settings, proc=3)
    assert second.report.ok
    assert {r.result for r in second.report.results} == {sync.UNCHANGED}
    assert sum(r.bytes for r in second.report.results) == 0
    # 9 images x 2 HEADs, 2 tag listings, plus pings and token fetches: far below a copy.
    assert second.report.requests < 9 * 2 + 2 + 12, second.report.requests
    assert "9 images: 0 copied, 9 unchanged, 0 failed" in second.out


def test_yaml_destination_list_and_renamed_tags(
    tmp_path, env, plain_registry, image_factory, skopeo
):
    reg = plain_registry
    name = f"yaml-{uid()}"
    one = image_factory.push(reg, f"{name}/src", "1", "oci-index", seed=f"{name}-1")
    two = image_factory.push(reg, f"{name}/src", "2", "docker", seed=f"{name}-2")
    images = f"""\
# image-syncer accepts YAML as well; comments and all.
{reg.host}/{name}/src:1:
  - {reg.host}/{name}/copy-a
  - {reg.host}/{name}/copy-b:renamed
{reg.host}/{name}/src:1,2: {reg.host}/{name}/mapped:one,two
"""
    done = run_sync(tmp_path, images, name="images.yaml", env=env)
    assert done.report.ok, done.out
    expected = {
        f"{reg.host}/{name}/copy-a:1": one.digest,
        f"{reg.host}/{name}/copy-b:renamed": one.digest,
        f"{reg.host}/{name}/mapped:one": one.digest,
        f"{reg.host}/{name}/mapped:two": two.digest,
    }
    assert {d: r.digest for d, r in done.rows().items()} == expected
    for destination, digest in expected.items():
        assert skopeo.digest(destination, reg) == digest
    # Same registry: blobs were mounted, not sent again.
    assert all(r.bytes == 0 for r in done.report.results)


@pytest.fixture
def fast_failures(monkeypatch):
    """One attempt per request: a dead registry fails at once instead of after ~10 s of backoff.

    The client's own retries are tested elsewhere; here only sync's passes are under test.
    """
    monkeypatch.setattr(transport, "RetryPolicy", lambda: RetryPolicy(attempts=1))


def test_bad_entries_are_reported_while_the_rest_succeed(
    tmp_path, env, fast_failures, plain_registry, image_factory, skopeo
):
    reg = plain_registry
    name = f"bad-{uid()}"
    good = image_factory.push(reg, f"{name}/src", "1", "oci", seed=name)
    dead = f"127.0.0.1:{free_port()}"
    images = {
        f"{reg.host}/{name}/src:1": f"{reg.host}/{name}/dst",
        f"{reg.host}/{name}/src:missing": f"{reg.host}/{name}/dst",
        f"{dead}/{name}/gone": f"{reg.host}/{name}/gone",
        f"{reg.host}/{name}/src:/^nomatch$/": f"{reg.host}/{name}/none",
    }
    done = run_sync(tmp_path, images, env=env, retries=1)
    assert not done.report.ok
    rows = done.rows()
    assert rows[f"{reg.host}/{name}/dst:1"].result == sync.COPIED
    assert skopeo.digest(f"{reg.host}/{name}/dst:1", reg) == good.digest
    missing = rows[f"{reg.host}/{name}/dst:missing"]
    assert (missing.result, missing.attempts) == (sync.FAILED, 2)
    assert "not found" in missing.error
    # A rule whose tag listing failed is a row of its own, with the rule as written.
    gone = rows[f"{reg.host}/{name}/gone"]
    # Its registry refused twice (one re-check): out of reach for the run, not tried again in
    # the second pass (relay.net.reachability).
    assert (gone.source, gone.result, gone.attempts) == (f"{dead}/{name}/gone", sync.FAILED, 1)
    assert f"{dead} is not reachable from this machine (connection refused" in gone.error
    # A regex that selects nothing is reported but is not a failure (image-syncer is silent).
    none = rows[f"{reg.host}/{name}/none"]
    assert (none.result, none.error) == (sync.SKIPPED, "no tag matches /^nomatch$/ (1 listed)")
    assert len(done.report.failed) == 2
    lines = done.out.splitlines()
    assert lines[0].split() == [
        "SOURCE",
        "DESTINATION",
        "RESULT",
        "DIGEST",
        "SIZE",
        "ATTEMPTS",
        "ERROR",
    ]
    assert "4 images: 1 copied, 0 unchanged, 2 failed, 1 skipped" in done.out


def test_overlapping_rules_copy_each_image_once(tmp_path, env, plain_registry, image_factory):
    reg = plain_registry
    name = f"twin-{uid()}"
    pushed = image_factory.push(reg, f"{name}/src", "1", "oci", seed=name)
    images = {
        f"{reg.host}/{name}/src": f"{reg.host}/{name}/dst",
        f"{reg.host}/{name}/src:1": f"{reg.host}/{name}/dst",
    }
    done = run_sync(tmp_path, images, env=env)
    (row,) = done.report.results
    assert (row.destination, row.result, row.digest) == (
        f"{reg.host}/{name}/dst:1",
        sync.COPIED,
        pushed.digest,
    )


def test_two_sources_for_one_destination_fail_without_a_request(tmp_path, env):
    images = {
        "127.0.0.1:9/a/b:1": "127.0.0.1:9/c/d:x",
        "127.0.0.1:9/a/e:2": "127.0.0.1:9/c/d:x",
    }
    done = run_sync(tmp_path, images, env=env)
    assert not done.report.ok and done.report.requests == 0
    errors = sorted(r.error for r in done.report.results)
    assert errors == [
        "127.0.0.1:9/c/d:x is also the destination of 127.0.0.1:9/a/b:1 (line 2)",
        "127.0.0.1:9/c/d:x is also the destination of 127.0.0.1:9/a/e:2 (line 3)",
    ]


def test_bad_input_raises_before_any_request(tmp_path, env):
    with pytest.raises(InputError, match="images.json:2"):
        run_sync(tmp_path, {"127.0.0.1:9/a/b": "127.0.0.1:9/c/D"}, env=env)
    with pytest.raises(InputError, match="proc"):
        run_sync(tmp_path, {}, env=env, proc=0)


# -- retries: a proxy that fails chosen requests a given number of times -----------------------


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    times: int
    status: int = 400


class FaultProxy:
    """Plain-HTTP reverse proxy in front of a registry that answers chosen requests with an
    error a given number of times. 400 is deliberately not a status the client retries by
    itself, so every injected fault fails a whole attempt of sync."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.hits: list[str] = []
        self.lock = threading.Lock()
        self.session = requests.Session()
        self.session.trust_env = False  # never route 127.0.0.1 through a proxy from the env
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy.forward(self)

            do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def fail(self, method: str, path: str, times: int = 1) -> None:
        with self.lock:
            self.faults.append(Fault(method, re.compile(path), times))

    def _take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path.search(path):
                    fault.times -= 1
                    self.hits.append(f"{method} {path}")
                    return fault
        return None

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        fault = self._take(handler.command, handler.path.split("?", 1)[0])
        if fault is not None:
            payload = json.dumps({"errors": [{"code": "UNSUPPORTED", "message": "injected"}]})
            _reply(handler, fault.status, {"Content-Type": "application/json"}, payload.encode())
            return
        # The Host header goes through unchanged, so the registry's Location URLs point here.
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = self.session.request(
            handler.command,
            self.upstream + handler.path,
            headers=headers,
            data=body if body or handler.command in ("PUT", "POST", "PATCH") else None,
            allow_redirects=False,
            stream=True,
            timeout=30,
        )
        with upstream:
            content = b"" if handler.command == "HEAD" else upstream.raw.read(decode_content=False)
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            if handler.command != "HEAD":
                out["Content-Length"] = str(len(content))
            _reply(handler, upstream.status_code, out, content)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.session.close()


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"} | {
    "content-length"
}


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(handler.rfile.readline().strip().split(b";", 1)[0], 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += handler.rfile.read(size)
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _reply(
    handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    handler.send_response(status)
    headers.setdefault("Content-Length", str(len(body)))
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    if body and handler.command != "HEAD":
        handler.wfile.write(body)


@pytest.fixture
def proxy(plain_registry) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(plain_registry.url)
    yield fault_proxy
    fault_proxy.close()


def test_retries_really_retry(tmp_path, env, proxy, plain_registry, image_factory, skopeo):
    reg = plain_registry
    name = f"retry-{uid()}"
    pushed = image_factory.push(reg, f"{name}/src", "1", "docker-list", seed=name)
    # The destination refuses the first tag PUT, and the tag listing of the all-tags rule
    # fails once: both are retried by the second pass.
    proxy.fail("PUT", rf"/v2/{name}/dst/manifests/1$")
    proxy.fail("GET", rf"/v2/{name}/src/tags/list$")
    images = {
        f"{reg.host}/{name}/src:1": f"{proxy.host}/{name}/dst",
        f"{proxy.host}/{name}/src": f"{reg.host}/{name}/all",
    }
    done = run_sync(tmp_path, images, env=env, retries=2)
    assert done.report.ok, done.out
    assert len(proxy.hits) == 2
    rows = done.rows()
    retried = rows[f"{proxy.host}/{name}/dst:1"]
    assert (retried.result, retried.attempts) == (sync.COPIED, 2)
    listed = rows[f"{reg.host}/{name}/all:1"]
    assert (listed.result, listed.attempts) == (sync.COPIED, 1)  # its rule took 2 listings
    assert done.report.passes == 2
    assert skopeo.digest(f"{name}/dst:1", reg) == pushed.digest
    assert skopeo.digest(f"{name}/all:1", reg) == pushed.digest


def test_retries_give_up_after_the_last_pass(tmp_path, env, proxy, plain_registry, image_factory):
    reg = plain_registry
    name = f"giveup-{uid()}"
    image_factory.push(reg, f"{name}/src", "1", "oci", seed=name)
    proxy.fail("PUT", rf"/v2/{name}/dst/manifests/1$", times=10)
    images = {f"{reg.host}/{name}/src:1": f"{proxy.host}/{name}/dst"}
    done = run_sync(tmp_path, images, env=env, retries=1)
    (row,) = done.report.results
    assert (row.result, row.attempts) == (sync.FAILED, 2)
    assert "HTTP 400" in row.error and "injected" in row.error
    assert not done.report.ok and done.report.passes == 2
    # --retries 0: one pass only.
    done = run_sync(tmp_path, images, env=env, retries=0)
    assert done.report.results[0].attempts == 1 and done.report.passes == 1


# -- secrets ------------------------------------------------------------------------------------

PASSWORD = "Relay-Sync-Pw-9f3b27e1"


@pytest.fixture(scope="module")
def secret_registry(registry_factory):
    return registry_factory("tls", name=f"sync-secret-{uid()}", password=PASSWORD)


def test_passwords_never_appear(
    tmp_path,
    env,
    settings,
    secret_registry,
    token_registry,
    image_factory,
    monkeypatch,
    caplog,
    capsys,
):
    caplog.set_level(logging.DEBUG)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    src, dst = secret_registry, token_registry
    name = f"secret-{uid()}"
    image_factory.push(src, f"{name}/src", "1", "oci", seed=name)
    env = {**env, "SYNC_PW": PASSWORD}
    auth = {
        src.host: {"username": src.username, "password": "${SYNC_PW}"},
        # A user the token server does not know, with the same distinctive password: a failure path.
        f"{dst.host}/{name}/denied": {"username": "intruder", "password": PASSWORD},
        dst.host: auth_entry(dst),
    }
    images = {
        f"{src.host}/{name}/src:1": [f"{dst.host}/{name}/ok", f"{dst.host}/{name}/denied"],
    }
    done = run_sync(tmp_path, images, auth, env=env, settings=settings, retries=0)
    rows = done.rows()
    assert rows[f"{dst.host}/{name}/ok:1"].result == sync.COPIED, done.out
    denied = rows[f"{dst.host}/{name}/denied:1"]
    assert denied.result == sync.FAILED and "UNAUTHORIZED" in denied.error  # the auth path
    captured = capsys.readouterr()
    for text in (
        done.out,
        captured.out,
        captured.err,
        caplog.text,
        summary.read_text(),
        repr(done.report),
    ):
        assert PASSWORD not in text
    assert "| Source | Destination | Result |" in summary.read_text()


def test_the_cli_runs_sync_and_exits_by_the_result(
    tmp_path, env, tls_registry, plain_registry, image_factory, skopeo, capsys, monkeypatch
):
    from relay import cli

    monkeypatch.setenv("DOCKER_CONFIG", env["DOCKER_CONFIG"])
    name = f"cli-{uuid.uuid4().hex[:6]}"
    pushed = image_factory.push(tls_registry, name, "1", "oci-index", seed=name)
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/relay.yaml").write_text(
        f'registries:\n  ca_bundles:\n    "127.0.0.1": "{tls_registry.ca_file}"\n'
    )
    images = write(
        tmp_path / "images.json",
        {f"{tls_registry.host}/{name}:1": f"{plain_registry.host}/synced/{name}"},
    )
    auth = write(tmp_path / "auth.json", {tls_registry.host: auth_entry(tls_registry)})
    argv = ["sync", "--images", str(images), "--auth", str(auth), "--repo", str(tmp_path)]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert skopeo.digest(f"{plain_registry.host}/synced/{name}:1", plain_registry) == pushed.digest
    write(
        tmp_path / "images.json", {f"{tls_registry.host}/{name}:nope": f"{plain_registry.host}/x"}
    )
    assert cli.main([*argv, "--retries", "0"]) == 1
    assert "1 image(s) failed after the retries" in capsys.readouterr().err


def test_cli_defaults_are_image_syncers():
    from relay.cli import _parser

    args = _parser().parse_args(["sync", "--images", "images.json"])
    assert (args.jobs, args.retries) == (sync.DEFAULT_PROC, sync.DEFAULT_RETRIES) == (5, 2)
    # image-syncer's --proc is kept as an alias of the one concurrency flag, --jobs.
    assert _parser().parse_args(["sync", "--images", "i", "--proc", "9"]).jobs == 9
    assert _parser().parse_args(["sync", "--images", "i", "-j", "3"]).jobs == 3


@pytest.mark.parametrize("across", [False, True], ids=["one-registry", "two-registries"])
def test_one_image_to_one_repository_several_times_never_races(
    tmp_path, env, plain_registry, registry_factory, image_factory, across
):
    """image-syncer's own CI config copies one image into one repository by tag, by digest and
    by digest under another tag, all at once. distribution's registry rewrites a repository's
    link to a blob on every write of it, truncating first, and a manifest PUT that reads the link
    then fails (`DIGEST_INVALID; MANIFEST_BLOB_UNKNOWN`); before relay serialised those writes,
    3-6 of 20 first passes failed here. 20 fresh first passes, no retries: every one must pass."""
    src = plain_registry
    dst = registry_factory("plain") if across else src
    failed = []
    for n in range(20):
        name = f"race-{uid()}"
        pushed = image_factory.push(
            src, f"{name}/src", "1.0", "oci-index", seed=f"race-{n}", layer_count=4, layer_size=4096
        )
        images = {
            f"{src.host}/{name}/src:1.0": f"{dst.host}/{name}/dst",
            f"{src.host}/{name}/src@{pushed.digest}": [
                f"{dst.host}/{name}/dst",
                f"{dst.host}/{name}/dst:other",
            ],
        }
        done = run_sync(tmp_path, images, env=env, retries=0, name=f"images-{n}.json")
        if not done.report.ok:
            failed.append(done.out)
        else:
            assert {r.digest for r in done.report.results} == {pushed.digest}
    assert not failed, f"{len(failed)} of 20 first passes failed:\n{failed[0]}"


def test_src_creds_bind_to_one_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --src-creds went to every source registry of the images file: a pull request adding
    # evil.example/x to the file would receive the login. Now it is refused, before any request.
    from relay import cli

    images = write(
        tmp_path / "images.json",
        {"good.example/a:1": "dest.example/a", "evil.example/x:1": "dest.example/x"},
    )
    argv = ["sync", "--images", str(images), "--repo", str(tmp_path)]
    assert cli.main([*argv, "--src-creds", "robot:s3cret-pass"]) == 2
    err = capsys.readouterr().err
    assert "--src-creds gives one login to one registry" in err
    assert "evil.example, good.example" in err and "RELAY_REGISTRY_AUTH" in err
    assert "s3cret-pass" not in err
    # One destination registry: --dest-creds is fine there (the run then fails to connect,
    # which is not this test's business), but not across two.
    images2 = write(
        tmp_path / "images2.json",
        {"good.example/a:1": "dest.example/a", "good.example/b:1": "other.example/b"},
    )
    argv2 = ["sync", "--images", str(images2), "--repo", str(tmp_path)]
    assert cli.main([*argv2, "--dest-creds", "robot:pw12345"]) == 2
    assert "--dest-creds gives one login to one registry" in capsys.readouterr().err
