"""`-o json` on every command that reports something: stdout is one JSON document whose keys are
the ones docs/json.md lists, whatever the command did, failures included.

The commands run against real registries (docker-registry), the Harbor emulator and the ACR
emulator, through the CLI, in this process."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from relay import cli
from relay.registry.credentials import EnvCredentials
from tests.helpers import write_repo

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "json.md"


def documented() -> tuple[set[str], set[str], dict[str, set[str]]]:
    """(every document's keys, the error key, {command: its top-level keys}) from docs/json.md."""
    sections: dict[str, set[str]] = {}
    current = ""
    for line in DOC.read_text().splitlines():
        heading = re.match(r"^#{2,3} (.+)$", line)
        if heading:
            title = heading.group(1)
            current = title.removeprefix("relay ") if title.startswith("relay ") else title
            continue
        if line.startswith("| `") and current:
            first = line.split("|")[1]
            sections.setdefault(current, set()).update(re.findall(r"`([A-Za-z]+)`", first))
    envelope = sections.pop("Every document")
    error = sections.pop("When a command fails before it can report")
    return envelope, error, sections


ENVELOPE, ERROR, KEYS = documented()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    doc = json.loads(out)  # the whole of stdout, or this fails
    assert isinstance(doc, dict)
    return code, doc, err


def check(doc: dict[str, Any], command: str, *, exact: bool = True) -> None:
    assert doc["relay"] == 1 and doc["command"] == command, doc
    assert isinstance(doc["ok"], bool)
    if "error" in doc:
        assert set(doc) == ENVELOPE | ERROR, doc
        return
    want = ENVELOPE | KEYS[command]
    if exact:
        assert set(doc) == want, f"{command}: {sorted(set(doc) ^ want)} differ from docs/json.md"
    else:
        assert want <= set(doc), sorted(want - set(doc))


def test_the_documentation_lists_every_json_command() -> None:
    assert set(KEYS) == set(cli.JSON_COMMANDS)
    assert ENVELOPE == {"relay", "command", "ok"} and ERROR == {"error"}


# --- the commands that need a registry or two ---------------------------------------------------


@pytest.fixture
def copy_repo(tmp_path: Path, token_registry, tls_registry, image_factory, monkeypatch):
    logins = {r.host: f"{r.username}:{r.password}" for r in (token_registry, tls_registry)}
    for name, value in EnvCredentials.environment(logins).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    ns = f"json-{uuid.uuid4().hex[:6]}"
    index = image_factory.push(token_registry, f"{ns}/app", "1.0", "oci-index", seed=ns + "a")
    repo = write_repo(
        tmp_path / "relay",
        f"images:\n  - source: {token_registry.host}/{ns}/app\n    name: app\n    tags: ['1.0']\n",
        f"""\
        transport: copy
        copy: {{registry: "{tls_registry.host}", namespace: {ns}}}
        registries:
          ca_bundles: {{"127.0.0.1": "{tls_registry.ca_file}"}}
        """,
    )
    return repo, ns, index


def test_validate_plan_lock_publish_copy_sync_documents(
    copy_repo, token_registry, tls_registry, capsys, tmp_path
) -> None:
    repo, ns, index = copy_repo
    at = ("--repo", str(repo))

    code, doc, _ = run(capsys, "validate", "-o", "json", *at)
    assert code == 0 and doc["ok"] and doc["images"] == 1
    check(doc, "validate")

    # Before the lock: the plan adds one tag; --exit-code makes that exit 1, `ok` stays true.
    code, doc, err = run(capsys, "-o", "json", "plan", "--exit-code", *at)
    assert code == 1 and doc["ok"] is True, err
    check(doc, "plan")
    assert doc["lock"]["complete"] is True and doc["lock"]["unanswered"] == []
    [change] = doc["lock"]["changes"]
    assert change == {
        "kind": "add",
        "source": f"{token_registry.host}/{ns}/app",
        "tag": "1.0",
        "old": None,
        "new": index.digest,
    }
    assert doc["dockerfiles"] == [
        {"action": "create", "path": "mirrors/dockerfiles/app/1.0/Dockerfile"}
    ]

    code, doc, _ = run(capsys, "lock", "--dry-run", "-o", "json", *at)
    assert code == 0 and doc["mode"] == "dryRun" and doc["written"] is None
    check(doc, "lock")
    code, doc, _ = run(capsys, "lock", "-o", "json", *at)
    assert code == 0 and doc["written"] is True and doc["changes"][0]["new"] == index.digest
    check(doc, "lock")
    code, doc, _ = run(capsys, "lock", "--check", "-o", "json", *at)
    assert code == 0 and doc["ok"] and doc["changes"] == [] and doc["mode"] == "check"

    code, doc, _ = run(capsys, "publish", "--dry-run", "-o", "json", *at)
    assert code == 0 and doc["dryRun"] is True
    check(doc, "publish")
    [image] = doc["images"]
    assert image["status"] == "would-copy" and image["digest"] == index.digest
    assert image["image"] == f"{tls_registry.host}/{ns}/app:1.0"
    code, doc, _ = run(capsys, "publish", "-o", "json", "--jobs", "2", *at)
    assert code == 0 and doc["images"][0]["status"] == "copied"
    assert doc["images"][0]["bytesCopied"] > 0 and doc["counts"]["copied"] == 1
    code, doc, _ = run(capsys, "publish", "-o", "json", *at)
    assert doc["images"][0]["status"] == "unchanged" and doc["images"][0]["bytesCopied"] == 0

    src = f"docker://{token_registry.host}/{ns}/app:1.0"
    dst = f"{tls_registry.host}/{ns}/copied:1.0"
    code, doc, _ = run(capsys, "copy", src, dst, "--dry-run", "-o", "json", *at)
    assert code == 0 and doc["wouldCopy"] is True and doc["destinationDigest"] is None
    check(doc, "copy", exact=False)
    code, doc, _ = run(capsys, "-o", "json", "copy", src, dst, *at)
    assert code == 0 and doc["digest"] == index.digest and doc["unchanged"] is False
    assert doc["blobs"]["copied"] > 0 and doc["bytesCopied"] > 0
    check(doc, "copy", exact=False)
    code, doc, _ = run(capsys, "copy", src, dst, "--dry-run", "-o", "json", *at)
    assert doc["wouldCopy"] is False and doc["destinationDigest"] == index.digest

    images = tmp_path / "images.yaml"
    images.write_text(f"{token_registry.host}/{ns}/app:1.0: {tls_registry.host}/{ns}/synced\n")
    code, doc, _ = run(capsys, "sync", "--images", str(images), "--dry-run", "-o", "json", *at)
    assert code == 0 and doc["images"][0]["result"] == "would-copy"
    check(doc, "sync")
    code, doc, _ = run(capsys, "sync", "--images", str(images), "-o", "json", "--proc", "2", *at)
    assert code == 0 and doc["ok"] and doc["images"][0]["result"] == "copied"
    assert doc["images"][0]["line"] == 1 and doc["counts"]["copied"] == 1
    check(doc, "sync")


def test_a_failure_is_one_error_document(tmp_path, capsys) -> None:
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text("images:\n  - source: nginx\n    tag: [1]\n")
    for command in (["validate"], ["lock"], ["plan"], ["publish"]):
        code, doc, err = run(capsys, *command, "-o", "json", "--repo", str(tmp_path))
        assert code == 2, (command, err)
        check(doc, command[0])
        assert doc["ok"] is False and doc["error"]["kind"] == "input"
        [problem] = doc["error"]["problems"]
        assert problem["path"] == "mirrors/images.yaml" and problem["line"] == 3
        assert "unknown key 'tag'" in problem["message"]
        assert "unknown key 'tag'" in err  # people still read stderr
    # The doctor reports the list as a finding of its own (and exits 1, as for any finding).
    code, doc, _ = run(capsys, "doctor", "-o", "json", "--repo", str(tmp_path))
    check(doc, "doctor")
    assert code == 1 and doc["ok"] is False
    [bad] = [f for f in doc["findings"] if f["subject"] == "mirrors/images.yaml"]
    assert bad["level"] == "fail" and bad["needed"] and "unknown key 'tag'" in bad["message"]
    assert bad["fix"] == "run relay validate for every problem with its line"


def test_a_command_without_json_says_so(tmp_path, capsys) -> None:
    assert cli.main(["-o", "json", "generate", "--repo", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "relay generate has no JSON output" in err


def test_a_stray_print_cannot_reach_the_document(copy_repo, capsys, monkeypatch) -> None:
    """While a command runs in JSON mode stdout is stderr: a stage that prints (as sync's table
    once did) lands in the log, not in the middle of the document."""
    from relay.commands import validate as module

    real = module.validate

    def noisy(**kwargs: Any) -> int:
        print("a stray line from somewhere")
        return real(**kwargs)

    monkeypatch.setattr(module, "validate", noisy)
    repo, _, _ = copy_repo
    code, doc, err = run(capsys, "validate", "-o", "json", "--repo", str(repo))
    assert code == 0 and doc["command"] == "validate"
    assert "a stray line from somewhere" in err


# --- Harbor, verify and doctor, against the Harbor emulator -------------------------------------


@pytest.mark.slow
def test_harbor_verify_and_doctor_documents(
    harbor_emulator, registry_factory, image_factory, tmp_path, capsys, monkeypatch
) -> None:
    from tests.test_harbor_stage import use
    from tests.test_verify import NS, CopyFlow, _copy_repo, _use_harbor_registry_login

    h = harbor_emulator
    upstream = registry_factory("plain")
    app = image_factory.push(upstream, "org/app", "1.0", "oci-index", seed=f"{tmp_path}app")
    h.seed_acr_repo(NS, "app", tags=())
    acr = h.acr.registry
    for name, value in EnvCredentials.environment(
        {acr.host: f"{acr.username}:{acr.password}"}
    ).items():
        monkeypatch.setenv(name, value)
    use(h, monkeypatch)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    flow = CopyFlow(tmp_path / "relay", h, upstream, {"app:1.0": app.digest})
    _copy_repo(flow, {"app": ["1.0"]})
    at = ("--repo", str(flow.repo))
    assert cli.main(["lock", *at]) == 0 and cli.main(["publish", *at]) == 0

    code, doc, _ = run(capsys, "harbor", "plan", "-o", "json", "--exit-code", *at)
    assert code == 1 and doc["ok"] is True
    check(doc, "harbor plan")
    assert {a["kind"] for a in doc["actions"]} >= {"create-registry", "create-policy"}
    code, doc, _ = run(capsys, "-o", "json", "harbor", "apply", *at)
    assert code == 0 and doc["writes"] >= 3 and len(doc["done"]) == doc["writes"]
    check(doc, "harbor apply")
    code, doc, _ = run(capsys, "harbor", "plan", "-o", "json", "--exit-code", *at)
    assert code == 0 and doc["actions"] == []

    code, doc, _ = run(capsys, "harbor", "replicate", "--wait", "-o", "json", *at)
    assert code == 0 and doc["ok"] and doc["status"] == "Succeed" and doc["waited"] is True
    check(doc, "harbor replicate")
    [task] = doc["tasks"]
    assert task["repository"] == "mirror/app" and task["tags"] == ["1.0"]

    # The doctor: upstream, the copy target, Harbor (admin) all answer; nothing blocks.
    code, doc, err = run(capsys, "doctor", "-o", "json", "--timeout", "5", *at)
    check(doc, "doctor")
    assert code == 0 and doc["ok"], err
    subjects = {f["subject"]: f for f in doc["findings"]}
    assert subjects[upstream.host]["level"] == "ok"
    assert subjects[f"Harbor {h.url}"]["level"] == "ok"
    assert subjects["Harbor permissions of admin"]["message"] == "a system administrator"

    _use_harbor_registry_login(h, monkeypatch)
    code, doc, _ = run(capsys, "verify", "-o", "json", *at)
    assert code == 0 and doc["ok"] and doc["counts"]["ok"] == 1
    check(doc, "verify")


# --- ACR, against the ACR emulator --------------------------------------------------------------


def _acr_repo(emu, registry_factory, image_factory, tmp_path, monkeypatch) -> Path:
    upstream = registry_factory("plain")
    emu.map_upstream(upstream.host, upstream)
    image_factory.push(upstream, "org/app", "1.0", "docker", seed=f"{tmp_path}json-app")
    repo = write_repo(
        tmp_path / "relay",
        f"images:\n  - source: {upstream.host}/org/app\n    name: app\n    tags: ['1.0']\n",
        """\
        acr:
          namespace: relay-json
          source: {github: octo/relay-json}
          poll: {interval: 0.05, max_interval: 0.2, timeout: 120}
          retry: {backoff: 0.01, max_backoff: 0.05}
        """,
    )
    monkeypatch.setenv("RELAY_ACR_ENDPOINT", emu.endpoint)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", emu.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", emu.access_key_secret)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    assert cli.main(["lock", "--repo", str(repo)]) == 0
    assert cli.main(["generate", "--repo", str(repo)]) == 0
    files = {
        str(p.relative_to(repo)): p.read_text()
        for p in (repo / "mirrors").rglob("*")
        if p.is_file()
    }
    emu.create_git_remote("octo/relay-json", files)
    return repo


def test_acr_plan_and_doctor_documents(
    acr_emulator, registry_factory, image_factory, tmp_path, capsys, monkeypatch
) -> None:
    repo = _acr_repo(acr_emulator, registry_factory, image_factory, tmp_path, monkeypatch)
    code, doc, _ = run(capsys, "acr", "plan", "-o", "json", "--exit-code", "--repo", str(repo))
    assert code == 1 and doc["ok"] is True
    check(doc, "acr plan")
    kinds = [a["kind"] for a in doc["actions"]]
    assert "create-namespace" in kinds and "build" in kinds
    [build] = [a for a in doc["actions"] if a["kind"] == "build"]
    assert (build["target"], build["tag"]) == ("app", "1.0") and build["text"].startswith("build")
    assert acr_emulator.writes() == []

    code, doc, err = run(capsys, "doctor", "-o", "json", "--repo", str(repo))
    assert code == 0 and doc["ok"], err
    subjects = {f["subject"]: f for f in doc["findings"]}
    assert subjects["ACR AccessKey"]["level"] == "ok"
    assert "does not exist yet" in subjects["ACR quota"]["message"]
    assert acr_emulator.access_key_secret not in json.dumps(doc) + err


@pytest.mark.buildah
@pytest.mark.slow
def test_acr_apply_document(
    acr_emulator, registry_factory, image_factory, tmp_path, capsys, monkeypatch
) -> None:
    repo = _acr_repo(acr_emulator, registry_factory, image_factory, tmp_path, monkeypatch)
    code, doc, err = run(capsys, "acr", "apply", "--wait", "-o", "json", "--repo", str(repo))
    assert code == 0 and doc["ok"], err
    check(doc, "acr apply")
    [build] = doc["builds"]
    assert (build["repo"], build["tag"], build["status"]) == ("app", "1.0", "SUCCESS")
    assert doc["counts"]["built"] == 1 and doc["namespace"] == "relay-json"


@pytest.mark.slow  # the refused connection is retried with backoff
def test_plan_does_not_say_the_lock_is_complete_when_upstream_was_not_asked(
    tmp_path, capsys
) -> None:
    """Port 9 (discard) on loopback refuses connections: upstream cannot be asked, so the plan
    must not say "the lock holds every tag", in the terminal or in its document."""
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text(
        "images:\n  - source: 127.0.0.1:9/org/app\n    tags: ['1.0']\n"
    )
    capsys.readouterr()
    assert cli.main(["plan", "--repo", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "the lock holds every tag" not in out
    assert "not known: upstream could not be asked about 127.0.0.1:9/org/app" in out
    code, doc, _ = run(capsys, "plan", "-o", "json", "--repo", str(tmp_path))
    assert code == 1 and doc["ok"] is False
    check(doc, "plan")
    assert doc["lock"] == {
        "complete": False,
        "unanswered": ["127.0.0.1:9/org/app"],
        "notChecked": [],  # nothing locked for it yet, so nothing kept
        "changes": [],
    }
    assert doc["problems"][0]["line"] == 3


def test_json_document_stays_valid_through_the_console() -> None:
    # The console escapes C1 controls as `\x85` and writes `##[` as `##\[`: neither is a JSON
    # escape, so the document must already spell such characters as JSON escapes.
    import io

    from relay import safety
    from relay.output import document
    from relay.sync.report import FAILED, ImageResult

    raw = io.StringIO()
    console = safety.Console(raw)
    value = "a\x85b\x7f\u009f\u202e\u200b ##[error]x 中文 \U000e0001"
    row = ImageResult(f"src{value}", "dst", FAILED, error=value)
    with document.json_mode():
        document._target = console
        document.emit("sync", False, {"value": value, "images": [row.json()]})
    console.flush()
    doc = json.loads(raw.getvalue())
    assert doc["value"] == value
    assert "##[" not in raw.getvalue()
    source = doc["images"][0]["source"]
    assert source.isprintable() and "\x85" not in source
