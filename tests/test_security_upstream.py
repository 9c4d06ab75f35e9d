"""A hostile upstream registry: what a server sends is validated at
the edge, bounded in size and time, sanitised before it is printed, and cannot make relay
print a secret.

Each test drives `relay` as CI would (relay.cli.main) against tests.fakes.hostile servers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from relay import cli
from relay.config import lockfile
from relay.registry.credentials import EnvCredentials
from tests.fakes.hostile import Answer, HostileServer

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SECRET = "s3cr3t-Pass/word+x"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _index(seed: str = "a") -> bytes:
    child = _digest(seed.encode())
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": child,
                    "size": 100,
                    "platform": {"os": "linux", "architecture": "amd64"},
                }
            ],
        }
    ).encode()


def _manifest_answer(body: bytes, media_type: str = OCI_INDEX) -> Answer:
    return Answer(200, {"Content-Type": media_type, "Docker-Content-Digest": _digest(body)}, body)


def _serve_images(server: HostileServer, repo: str = "team/app") -> None:
    server.registry()
    server.route("*", rf"/v2/{repo}/manifests/[^/]+", _manifest_answer(_index()))


def _repo(tmp_path: Path, entries: str, settings: str = "") -> Path:
    (tmp_path / "mirrors").mkdir(exist_ok=True)
    (tmp_path / "mirrors/images.yaml").write_text("images:\n" + entries)
    (tmp_path / "mirrors/relay.yaml").write_text("naming:\n  max_length: 64\n" + settings)
    return tmp_path


def _lock(repo: Path, *extra: str) -> int:
    return cli.main(["lock", "--repo", str(repo), *extra])


# --- tag lists: validated at the edge, per entry --------------------------------------------------


def test_invalid_tags_in_a_tag_list_are_skipped_and_reported(
    hostile: Callable[..., HostileServer], tmp_path: Path, capsys, caplog
) -> None:
    server = hostile()
    _serve_images(server)
    tags = ["1.0", "1.0\n", "-x", "a b", "x" * 200, None, 5, 1.5, {"a": 1}, "2.0", ".hidden"]
    server.route("GET", "/v2/team/app/tags/list", Answer.json({"name": "team/app", "tags": tags}))
    repo = _repo(tmp_path, f"  - source: {server.host}/team/app\n    select:\n      include: '.'\n")
    assert _lock(repo) == 0, capsys.readouterr()
    locked = lockfile.read(repo).images[f"{server.host}/team/app"]
    assert sorted(locked) == ["1.0", "2.0"]
    assert "skipped 9 invalid tag(s)" in caplog.text and "'1.0\\n'" in caplog.text
    # relay reads its own lock back.
    assert cli.main(["validate", "--repo", str(repo)]) == 0


def test_one_bad_tag_list_does_not_stop_other_entries(
    hostile: Callable[..., HostileServer], tmp_path: Path, capsys
) -> None:
    server = hostile()
    _serve_images(server)
    _serve_images(server, "team/other")
    server.route("GET", "/v2/team/app/tags/list", Answer.json({"tags": "1.0"}))
    server.route("GET", "/v2/team/other/tags/list", Answer.json({"tags": ["3.0"]}))
    repo = _repo(
        tmp_path,
        f"  - source: {server.host}/team/app\n    select:\n      include: '.'\n"
        f"  - source: {server.host}/team/other\n    select:\n      include: '.'\n",
    )
    assert _lock(repo, "--dry-run") == 1
    err = capsys.readouterr().err
    assert "mirrors/images.yaml:2:" in err and "not a list" in err
    assert "team/other" not in err  # resolved fine; only the bad entry is reported


def test_unknown_manifest_media_type_is_not_locked(
    hostile: Callable[..., HostileServer], tmp_path: Path, capsys
) -> None:
    server = hostile()
    server.registry()
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.evil+json"}).encode()
    server.route(
        "*", "/v2/team/app/manifests/1.0", _manifest_answer(body, "application/vnd.evil+json")
    )
    repo = _repo(tmp_path, f"  - source: {server.host}/team/app\n    tags: ['1.0']\n")
    assert _lock(repo) == 1
    assert "not an image or an image index" in capsys.readouterr().err
    assert not (repo / lockfile.LOCK_FILE).exists()


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b'"a string"', b"null", b"[" * 5000 + b"]" * 5000, b"\xff\xfe"],
    ids=["list", "string", "null", "deep", "binary"],
)
def test_malformed_manifests_end_in_one_line_per_entry(
    hostile: Callable[..., HostileServer], tmp_path: Path, capsys, body: bytes
) -> None:
    server = hostile()
    server.registry()
    server.route("*", "/v2/team/app/manifests/1.0", _manifest_answer(body))
    _serve_images(server, "team/ok")
    repo = _repo(
        tmp_path,
        f"  - source: {server.host}/team/app\n    tags: ['1.0']\n"
        f"  - source: {server.host}/team/ok\n    tags: ['1.0']\n",
    )
    assert _lock(repo) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "mirrors/images.yaml:" in err


@pytest.mark.parametrize(
    "config",
    [b"[]", b'"x"', b'{"os": 5, "architecture": ["a"]}', b"{" * 3000],
    ids=["list", "string", "odd-types", "deep"],
)
def test_malformed_image_configs(
    hostile: Callable[..., HostileServer], tmp_path: Path, capsys, config: bytes
) -> None:
    server = hostile()
    server.registry()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "x", "digest": _digest(config), "size": len(config)},
            "layers": [],
        }
    ).encode()
    server.route("*", "/v2/team/app/manifests/1.0", _manifest_answer(manifest, OCI_MANIFEST))
    server.route("GET", f"/v2/team/app/blobs/{_digest(config)}", Answer(200, {}, config))
    repo = _repo(tmp_path, f"  - source: {server.host}/team/app\n    tags: ['1.0']\n")
    code = _lock(repo)
    out = capsys.readouterr()
    assert code in (0, 1) and "Traceback" not in out.err


def test_bad_config_digest_and_bad_urls(
    hostile: Callable[..., HostileServer], tmp_path: Path, capsys
) -> None:
    server = hostile()
    server.registry()
    manifest = json.dumps(
        {"schemaVersion": 2, "config": {"digest": "sha256:nothex", "size": 1}, "layers": []}
    ).encode()
    server.route("*", "/v2/team/app/manifests/1.0", _manifest_answer(manifest, OCI_MANIFEST))
    server.route("*", "/v2/team/b/manifests/1.0", Answer(302, {"Location": "http://[::1"}))
    server.route("*", "/v2/team/c/manifests/1.0", Answer(302, {"Location": "file:///etc/passwd"}))
    server.route(
        "*",
        "/v2/team/d/manifests/1.0",
        Answer(401, {"WWW-Authenticate": 'Bearer realm="http://[::1/token",service="x"'}),
    )
    repo = _repo(
        tmp_path,
        "".join(
            f"  - source: {server.host}/team/{name}\n    tags: ['1.0']\n"
            for name in ("app", "b", "c", "d")
        ),
    )
    assert _lock(repo) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("mirrors/images.yaml:") >= 4  # one line per entry, none aborts the others


# --- bounds ---------------------------------------------------------------------------------------


def test_huge_manifest_is_refused_by_its_announced_size(
    hostile: Callable[..., HostileServer], tmp_path: Path, capsys
) -> None:
    server = hostile()
    server.registry()
    chunk = b" " * (1 << 20)
    server.route(
        "*",
        "/v2/team/app/manifests/1.0",
        Answer(200, {"Content-Type": OCI_INDEX}, chunk, stream_chunks=100),
    )
    repo = _repo(tmp_path, f"  - source: {server.host}/team/app\n    tags: ['1.0']\n")
    started = time.monotonic()
    assert _lock(repo) == 1
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert "larger than the 4.0 MiB" in err and "registries.limits" in err


def test_manifest_cap_holds_without_a_length_and_is_settable(
    hostile: Callable[..., HostileServer], tmp_path: Path, capsys
) -> None:
    server = hostile()
    server.registry()
    server.route(
        "*",
        "/v2/team/app/manifests/1.0",
        Answer(200, {"Content-Type": OCI_INDEX}, b" " * 65536, chunked=True, stream_chunks=64),
    )
    repo = _repo(
        tmp_path,
        f"  - source: {server.host}/team/app\n    tags: ['1.0']\n",
        "registries:\n  limits:\n    manifest_bytes: 1048576\n",
    )
    assert _lock(repo) == 1
    assert "larger than the 1.0 MiB" in capsys.readouterr().err


def test_a_streaming_token_realm_is_cut_off(
    hostile: Callable[..., HostileServer], tmp_path: Path, capsys
) -> None:
    server = hostile()
    challenge = f'Bearer realm="{server.url}/token",service="x"'
    server.route("GET", "/v2/?", Answer(401, {"WWW-Authenticate": challenge}))
    server.route("*", "/v2/team/app/manifests/1.0", Answer(401, {"WWW-Authenticate": challenge}))
    server.route(
        "GET",
        "/token",
        Answer(200, {}, b'{"token": "' + b"a" * 65536, chunked=True, stream_chunks=10_000),
    )
    repo = _repo(tmp_path, f"  - source: {server.host}/team/app\n    tags: ['1.0']\n")
    started = time.monotonic()
    assert _lock(repo) == 1
    assert time.monotonic() - started < 20
    assert "larger than the 1.0 MiB" in capsys.readouterr().err


def test_endless_tag_pages_stop_at_the_cap(
    hostile: Callable[..., HostileServer], tmp_path: Path, capsys
) -> None:
    server = hostile()
    _serve_images(server)
    pages = iter(range(10**9))

    def page(handler, match):  # type: ignore[no-untyped-def]
        n = next(pages)
        link = f'</v2/team/app/tags/list?last=t{n}>; rel="next"'
        return Answer.json({"tags": [f"t{n}"]}, headers={"Link": link})

    server.route("GET", "/v2/team/app/tags/list", page)
    repo = _repo(
        tmp_path,
        f"  - source: {server.host}/team/app\n    select:\n      include: '.'\n",
        "registries:\n  limits:\n    tag_pages: 20\n",
    )
    assert _lock(repo) == 1
    err = capsys.readouterr().err
    assert "more than 20 pages" in err and "registries.limits.tag_pages" in err
    assert len([s for s in server.seen if "tags/list" in s.path]) == 20


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_trickling_server_cannot_hold_a_run(
    hostile: Callable[..., HostileServer], tmp_path: Path, capsys, where: str
) -> None:
    server = hostile()
    server.registry()
    body = _index()

    def trickle_headers(handler, match):  # type: ignore[no-untyped-def]
        raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Slow: " + b"a" * 200
        try:
            for i in range(len(raw)):
                handler.wfile.write(raw[i : i + 1])
                handler.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass
        handler.close_connection = True
        return None

    if where == "body":
        answer = _manifest_answer(body)
        answer.trickle, answer.trickle_every = 1, 0.2
        server.route("*", "/v2/team/app/manifests/1.0", answer)
    else:
        server.route("*", "/v2/team/app/manifests/1.0", trickle_headers)
    repo = _repo(
        tmp_path,
        f"  - source: {server.host}/team/app\n    tags: ['1.0']\n",
        "registries:\n  limits:\n    deadline: 1.5\n",
    )
    started = time.monotonic()
    assert _lock(repo) == 1
    assert time.monotonic() - started < 15
    assert "sends too slowly" in capsys.readouterr().err


# --- what is printed -----------------------------------------------------------------------------

FORGED = "bad\n::error file=README.md,line=1::forged\r\x1b[2J\x1b]0;title\x07 \u202eevil ##[error]x"


def _assert_clean(text: str) -> None:
    """Only relay's own workflow commands, on the list's lines; no terminal control."""
    for line in text.splitlines():
        stripped = line.lstrip()
        assert not stripped.startswith("##["), line
        if stripped.startswith("::"):
            command, _, _ = stripped[2:].partition("::")
            assert command in ("error", "warning") or command.startswith(
                ("error file=mirrors/images.yaml,", "warning file=mirrors/images.yaml,")
            ), line
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text and "\x07" not in text


def test_server_error_text_cannot_forge_annotations_or_rewrite_the_terminal(
    hostile: Callable[..., HostileServer],
    tmp_path: Path,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = hostile()
    server.registry()
    server.route(
        "*",
        "/v2/team/app/manifests/1.0",
        Answer.json({"errors": [{"code": FORGED, "message": FORGED, "detail": FORGED}]}, 400),
    )
    server.route("*", "/v2/team/b/manifests/1.0", Answer(403, {}, FORGED.encode()))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    repo = _repo(
        tmp_path,
        f"  - source: {server.host}/team/app\n    tags: ['1.0']\n"
        f"  - source: {server.host}/team/b\n    tags: ['1.0']\n",
        "",
    )
    assert _lock(repo) == 1
    out = capsys.readouterr()
    _assert_clean(out.out + out.err)
    assert "::error file=mirrors/images.yaml,line=" in out.err
    assert "forged" in out.err  # the text is shown, as text


def test_a_server_echoing_credentials_in_any_form_is_redacted(
    hostile: Callable[..., HostileServer],
    tmp_path: Path,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = hostile()
    server.route("GET", "/v2/?", Answer(401, {"WWW-Authenticate": 'Basic realm="x"'}))

    def echo(handler, match):  # type: ignore[no-untyped-def]
        sent = handler.headers.get("Authorization", "")
        return Answer.json(
            {
                "errors": [
                    {
                        "code": "DENIED",
                        "message": f"you sent {sent}; url {quote(SECRET, safe='')}; "
                        f"token ghp_{GITHUB[4:]} b64 {base64.b64encode(b'xx' + SECRET.encode()).decode()}",
                    }
                ]
            },
            403,
        )

    server.route("*", "/v2/team/app/manifests/1.0", echo)
    GITHUB_VALUE = GITHUB
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_VALUE)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    for name, value in EnvCredentials.environment({server.host: f"ci:{SECRET}"}).items():
        monkeypatch.setenv(name, value)
    repo = _repo(tmp_path, f"  - source: {server.host}/team/app\n    tags: ['1.0']\n")
    assert _lock(repo) == 1
    out = capsys.readouterr()
    text = out.out + out.err + (summary.read_text() if summary.exists() else "")
    assert "you sent" in text  # the message is there ...
    for form in (
        SECRET,
        quote(SECRET, safe=""),
        base64.b64encode(f"ci:{SECRET}".encode()).decode(),
        GITHUB_VALUE,
        GITHUB_VALUE[4:],
    ):
        assert form not in text, form  # ... the secret in none of its forms


GITHUB = "ghp_" + "Ab1" * 12
