"""The GitHub workflows: zizmor finds nothing at its default persona, every file validates against
GitHub's workflow (and Dependabot) JSON Schema as check-jsonschema vendors it, the hardening
rules hold in every workflow, and the shell in the steps passes relay the arguments it should.

zizmor and check-jsonschema are in the test extra; a missing one fails, it does not skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay import cli

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
NAMES = {p.name for p in WORKFLOWS}
SHELL = "bash --noprofile --norc -euo pipefail {0}"
SHA_PIN = re.compile(
    r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40})\s+#\s+v\d+(?:\.\d+)*\s*$"
)


def tool(name: str) -> str:
    """A tool from the test extra, next to this interpreter or on PATH; missing fails."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    assert found, f"{name} is not installed: `pip install -e '.[test]'` (make test does)"
    return found


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in doc["jobs"].items() for step in spec.get("steps", [])]


def step(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [s for _, s in steps(doc) if s.get("name") == name]
    return found


def test_the_workflows_are_there() -> None:
    assert NAMES == {"ci.yml", "harbor.yml", "main.yml", "pr-comment.yml", "pr.yml"}


# --- the tools ------------------------------------------------------------------------------------


def test_zizmor_finds_nothing() -> None:
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--format=json", "--no-progress", str(GITHUB)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = json.loads(result.stdout or "[]")
    summary = [
        f"{f['ident']}: {f['locations'][0]['symbolic']['key']}"
        if f.get("locations")
        else f["ident"]
        for f in findings
    ]
    assert findings == [], summary
    assert result.returncode == 0, result.stderr[-2000:]


def test_zizmor_catches_what_it_should(tmp_path: Path) -> None:
    # The check can fail: an unpinned action and a secret pasted into a script are findings.
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    permissions: {}\n    steps:\n      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ github.event.head_commit.message }}\n"
    )
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--format=json", "--no-progress", str(tmp_path / ".github")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    idents = {f["ident"] for f in json.loads(result.stdout)}
    assert {"unpinned-uses", "template-injection", "artipacked"} <= idents
    assert result.returncode != 0


@pytest.mark.parametrize(
    "schema, paths",
    [
        ("vendor.github-workflows", [str(p) for p in WORKFLOWS]),
        ("vendor.dependabot", [str(GITHUB / "dependabot.yml")]),
    ],
)
def test_the_vendored_json_schemas_accept_them(schema: str, paths: list[str]) -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, *paths],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1


# --- the rules every workflow follows --------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_hygiene(path: Path) -> None:
    text = path.read_text()
    doc = load(path)
    assert doc["permissions"] == {}, "least privilege: nothing at the top, each job asks"
    # `shell: bash` is -eo pipefail; -u too, so a misspelt or unset variable fails the step
    # rather than expanding to nothing (tests below run each script the same way).
    assert doc["defaults"]["run"]["shell"] == SHELL, "bash -euo pipefail: failures are not hidden"
    for name, job in doc["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{name}: timeout-minutes"
        assert "permissions" in job, f"{name}: its own permissions"
        assert job.get("name"), f"{name}: a name"
        if any(s.get("uses", "").startswith("actions/checkout@") for s in job.get("steps", [])):
            # Without it checkout fails in a private or internal repository.
            assert job["permissions"].get("contents") in ("read", "write"), f"{name}: contents"
    for job, s in steps(doc):
        assert s.get("shell", SHELL) == SHELL, f"{job}: a step that drops -euo pipefail"
        run = s.get("run", "")
        # Secrets and event data reach scripts through env: only (no template injection).
        assert "${{" not in run, f"{job}: an expression inside a script: {run[:60]}"
        assert "docker login" not in run
        if s.get("uses", "").startswith("actions/checkout@"):
            assert s["with"]["persist-credentials"] is False, f"{job}: checkout keeps its token"
    for line in text.splitlines():
        if re.match(r"^\s*(-\s+)?uses:", line):
            assert SHA_PIN.match(line), f"not pinned to a full SHA with its version: {line}"
    assert "pull_request_target" not in doc["on"]


def test_pull_requests_run_without_secrets() -> None:
    doc = load(GITHUB / "workflows" / "pr.yml")
    assert list(doc["on"]) == ["pull_request"]
    assert "secrets." not in (GITHUB / "workflows" / "pr.yml").read_text()
    assert doc["concurrency"] == {
        "group": "relay-plan-${{ github.event.pull_request.number }}",
        "cancel-in-progress": True,
    }
    (job,) = doc["jobs"].values()
    assert job["permissions"] == {"contents": "read"}
    runs = [s.get("run", "") for _, s in steps(doc)]
    assert "relay validate" in runs and any(r.startswith("relay plan --out") for r in runs)
    # A failed validation still gets a plan (it reports the problems), so the comment run
    # has an artifact and replaces the previous commit's verdict.
    assert step(doc, "Plan")["if"] == "${{ !cancelled() }}"
    upload = step(doc, "Keep the plan for the comment workflow")
    assert upload["with"]["name"] == "relay-plan" and upload["if"] == "${{ !cancelled() }}"


def test_the_comment_run_is_trusted_code_only() -> None:
    doc = load(GITHUB / "workflows" / "pr-comment.yml")
    assert doc["on"]["workflow_run"]["workflows"] == ["relay plan"]
    (job,) = doc["jobs"].values()
    assert job["permissions"] == {
        "contents": "read",
        "actions": "read",
        "pull-requests": "write",
    }
    checkout = next(s for _, s in steps(doc) if s.get("uses", "").startswith("actions/checkout@"))
    assert "ref" not in checkout["with"], "the default branch, never the pull request's head"
    runs = [s["run"] for _, s in steps(doc) if "run" in s]
    # The artifact is data for relay's parser; nothing from it is run, sourced or interpolated.
    assert runs[-1] == 'relay github comment-plan --artifact "$RUNNER_TEMP/plan"'
    assert not any("plan/" in r or "source" in r or "bash " in r for r in runs[:-1])


def test_apply_delivers_from_the_default_branch_only() -> None:
    doc = load(GITHUB / "workflows" / "main.yml")
    assert set(doc["on"]) == {"push", "schedule", "workflow_dispatch"}
    inputs = doc["on"]["workflow_dispatch"]["inputs"]
    assert inputs["mode"]["options"] == ["lock", "update", "check"]
    assert {"prune", "dry-run", "images"} <= set(inputs)
    lock, deliver = doc["jobs"]["lock"], doc["jobs"]["deliver"]
    assert lock["environment"] == "relay-changes"
    assert lock["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert deliver["environment"] == "relay-delivery"
    assert deliver["permissions"] == {"contents": "read", "id-token": "write"}
    assert "github.ref == 'refs/heads/main'" in deliver["if"]  # the branch `push:` names
    assert deliver["strategy"]["fail-fast"] is False
    # The transport is read from mirrors/relay.yaml (relay github settings), not from variables.
    text = (GITHUB / "workflows" / "main.yml").read_text()
    assert "vars.RELAY_TRANSPORT" not in text and "needs.lock.outputs.transport" in text
    # Secrets only in the environment-bound jobs, and only through env:.
    for name, job in doc["jobs"].items():
        if "secrets." in json.dumps(job):
            assert job.get("environment"), f"{name} uses secrets outside an environment"


def test_harbor_runs_on_the_configured_runner_and_never_on_pull_requests() -> None:
    doc = load(GITHUB / "workflows" / "harbor.yml")
    assert "pull_request" not in doc["on"]
    assert doc["on"]["workflow_run"]["workflows"] == ["relay apply"]
    job = doc["jobs"]["harbor"]
    assert job["runs-on"] == "${{ fromJSON(vars.RELAY_HARBOR_RUNNER) }}"
    assert job["environment"] == "relay-harbor"
    assert job["permissions"] == {"contents": "read", "actions": "read"}
    assert "vars.RELAY_HARBOR_RUNNER != ''" in job["if"]
    # workflow_run matches a workflow and a branch by name only; a fork's pull request can add
    # a workflow called "relay apply" on its own `main`. Only this repository's own runs count,
    # and only those started by push, schedule or dispatch.
    guard = " ".join(job["if"].split())
    assert "github.event.workflow_run.head_repository.full_name == github.repository" in guard
    events = """contains(fromJSON('["push", "schedule", "workflow_dispatch"]'), """
    assert events + "github.event.workflow_run.event)" in guard
    assert "!= 'pull_request'" not in guard  # a deny-list misses pull_request_review and others


def test_the_commands_the_workflows_run_exist() -> None:
    parser = cli._parser()  # noqa: SLF001 - the CLI's own grammar is the oracle
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    seen = set()
    for path in WORKFLOWS:
        for _, s in steps(load(path)):
            for m in re.finditer(r'(?:^|[\s"/])relay"? ((?:[a-z-]+ ?){1,2})', s.get("run", "")):
                words = m.group(1).split()
                seen.add(" ".join(words))
                if words[0] == "harbor" and "harbor" not in commands:
                    continue  # relay harbor arrives with the Harbor stage (README: the Harbor job)
                assert words[0] in commands, f"{path.name}: relay {words[0]}"
    assert {"validate", "plan --out", "github comment-plan", "github propose", "lock"} <= seen
    assert {"acr apply", "publish", "harbor apply", "harbor replicate", "verify"} <= seen


# --- the shell in the steps, run with a stand-in relay ------------------------------------------------


def run_step(script: str, env: dict[str, str], tmp_path: Path) -> list[list[str]]:
    """Run a step's script as the workflows' shell does (SHELL: bash -euo pipefail) with
    `relay` recording its arguments; the calls it made."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls.jsonl"
    fake = bin_dir / "relay"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    fake.chmod(0o755)
    script_file = tmp_path / "step.sh"
    script_file.write_text(script)
    environ = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNNER_TEMP": str(tmp_path), **env}
    subprocess.run(
        [*SHELL.replace("{0}", str(script_file)).split()],
        env=environ,
        check=True,
        timeout=60,
    )
    lines = calls.read_text().splitlines() if calls.exists() else []
    calls.unlink(missing_ok=True)
    return [json.loads(line) for line in lines]


def test_the_shell_fails_on_an_unset_variable(tmp_path: Path) -> None:
    # -u: a step whose env: lacks a variable it reads fails instead of passing it on empty.
    with pytest.raises(subprocess.CalledProcessError):
        run_step('relay lock --only "$IMAGES"\n', {}, tmp_path)
    assert run_step('relay lock --only "$IMAGES"\n', {"IMAGES": "x"}, tmp_path) == [
        ["lock", "--only", "x"]
    ]


@pytest.mark.parametrize(
    "mode, dry_run, images, expected",
    [
        ("lock", "", "", ["lock"]),  # a push: inputs are empty
        ("update", "", "", ["lock", "--update"]),  # the schedule
        ("update", "true", "", ["lock", "--check"]),
        ("lock", "true", "", ["lock", "--dry-run"]),
        ("check", "false", "k8s_* nginx", ["lock", "--only", "k8s_*", "nginx", "--check"]),
    ],
)
def test_the_lock_step(
    mode: str, dry_run: str, images: str, expected: list[str], tmp_path: Path
) -> None:
    script = step(load(GITHUB / "workflows" / "main.yml"), "Lock tags to digests")["run"]
    env = {"MODE": mode, "DRY_RUN": dry_run, "IMAGES": images}
    assert run_step(script, env, tmp_path) == [expected]


def test_the_delivery_steps(tmp_path: Path) -> None:
    doc = load(GITHUB / "workflows" / "main.yml")
    env = {"SHARD": "2/3", "PRUNE": "true", "IMAGES": "app tool"}
    assert run_step(step(doc, "Delivery arguments")["run"], env, tmp_path) == []
    common = ["--shard", "2/3", "--delivered", f"{tmp_path}/delivered.txt", "--only", "app", "tool"]
    acr = run_step(step(doc, "ACR builds (STS token)")["run"], env, tmp_path)
    assert acr == [["acr", "apply", "--wait", *common, "--prune"]]
    copy = run_step(step(doc, "Copy transport")["run"], env, tmp_path)
    assert copy == [["publish", *common]]  # no --prune: publish has none
    # A failing relay fails the step (pipefail and -e, the workflows' shell).
    (tmp_path / "bin" / "relay").write_text("#!/bin/sh\nexit 3\n")
    with pytest.raises(subprocess.CalledProcessError):
        run_step(step(doc, "Copy transport")["run"] + " | cat\n", env, tmp_path)


def test_the_harbor_steps_replicate_and_verify_what_was_delivered(tmp_path: Path) -> None:
    doc = load(GITHUB / "workflows" / "harbor.yml")

    def script(name: str) -> str:
        return step(doc, name)["run"].replace('"$RUNNER_TEMP/venv/bin/relay"', "relay")

    def run(event: str) -> list[list[str]]:
        env = {"EVENT": event}
        calls = run_step(script("What to replicate and verify"), env, tmp_path)
        calls += run_step(script("Replicate"), env, tmp_path)
        return calls + run_step(script("Verify upstream, ACR and Harbor agree"), env, tmp_path)

    assert run("schedule") == [["harbor", "replicate", "--wait"], ["verify"]]
    assert run("workflow_dispatch") == [["harbor", "replicate", "--wait"], ["verify"]]
    # Nothing delivered: still whatever Harbor lacks (a stopped run's builds); nothing verified.
    assert run("workflow_run") == [["harbor", "replicate", "--wait", "--missing"]]
    for i, names in enumerate(["nginx\nk8s_pause\n", "", "nginx\nquay_app\n"]):
        part = tmp_path / "delivered" / f"delivered-{i}"
        part.mkdir(parents=True)
        (part / "delivered.txt").write_text(names)
    only = ["--only", "k8s_pause", "nginx", "quay_app"]
    replicate = ["harbor", "replicate", "--wait", "--missing", *only]
    assert run("workflow_run") == [replicate, ["verify", *only]]
    # Verify runs after a failed replication (its table says what is missing), not when cancelled
    # and not when the names were refused.
    verify = step(doc, "Verify upstream, ACR and Harbor agree")
    assert verify["if"].startswith("${{ !cancelled()")
    assert "steps.scope.outcome == 'success'" in verify["if"]
    assert "RELAY_REGISTRY_AUTH" in verify["env"]


@pytest.mark.parametrize(
    "line",
    [
        "--repo /tmp/evil",  # would become an option of relay
        "-x",
        "nginx --repo",
        "k8s_*",  # a pattern, not a name
        "UPPER",
        "a",  # shorter than a target name can be
        "x" * 65,
        "::warning::forged",
    ],
)
def test_the_harbor_step_refuses_delivered_lines_that_are_not_target_names(
    line: str, tmp_path: Path
) -> None:
    doc = load(GITHUB / "workflows" / "harbor.yml")
    part = tmp_path / "delivered" / "delivered-0"
    part.mkdir(parents=True)
    (part / "delivered.txt").write_text(f"nginx\n{line}\n")
    script = step(doc, "What to replicate and verify")["run"]
    with pytest.raises(subprocess.CalledProcessError):
        run_step(script, {"EVENT": "workflow_run"}, tmp_path)
    assert not (tmp_path / "scope").exists()  # nothing for Replicate or Verify to act on


# --- supply chain -------------------------------------------------------------------------------------


def pins_in(*names: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for name in names:
        text = (ROOT / "requirements" / name).read_text()
        for block in re.split(r"\n(?=[A-Za-z])", text):
            head = block.split(" ", 1)[0].strip()
            if not head or head.startswith("#"):
                continue
            assert "==" in head and "--hash=sha256:" in block, (
                f"{name}: {head} not pinned with a hash"
            )
            package, version = head.split("==")
            pins[package.lower().replace("_", "-")] = version
    return pins


def pyproject_names(block_start: str) -> list[str]:
    # A list in pyproject.toml (tomllib is 3.11+; relay supports 3.10).
    block = re.search(
        rf"^{re.escape(block_start)}(.*?)^\]", (ROOT / "pyproject.toml").read_text(), re.M | re.S
    )
    assert block is not None
    return [
        re.split(r"[<>=!~\[; ]", dependency, maxsplit=1)[0].lower().replace("_", "-")
        for dependency in re.findall(r'^\s*"([^"]+)"', block.group(1), re.M)
    ]


def test_requirements_are_hash_locked_and_cover_pyproject() -> None:
    pins = pins_in("build.txt", "workflows.txt")
    for name in pyproject_names("dependencies = ["):
        assert name in pins, f"requirements/workflows.txt lacks {name}: run `make requirements`"
    assert "setuptools" in pins  # the build backend, for --no-build-isolation
    # ci.yml's: the test extra too, at the versions the workflows run.
    tests = pins_in("test.txt")
    for name in pyproject_names("dependencies = [") + pyproject_names("test = ["):
        assert name in tests, f"requirements/test.txt lacks {name}: run `make requirements`"
    for name, version in pins.items():
        assert tests.get(name, version) == version, f"test.txt pins {name} apart from the rest"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_install_is_hash_checked(path: Path) -> None:
    # README: every workflow installs relay from hash-locked requirements. Dependencies only
    # with --require-hashes; relay itself (the checkout, `.`) with --no-deps.
    installs = 0
    for _, s in steps(load(path)):
        for command in s.get("run", "").replace("\\\n", " ").splitlines():
            if "pip install" not in command:
                continue
            installs += 1
            words = command.split()
            if "--require-hashes" in words:
                assert "-r" in words and "--upgrade" not in words, command
            else:
                assert "--no-deps" in words and words[-1] == ".", command
    assert installs, f"{path.name} installs nothing"


def test_dependabot_watches_actions_and_pip() -> None:
    doc = yaml.safe_load((GITHUB / "dependabot.yml").read_text())
    ecosystems = {u["package-ecosystem"]: u for u in doc["updates"]}
    assert set(ecosystems) == {"github-actions", "pip"}
    assert "/requirements" in ecosystems["pip"]["directories"]
