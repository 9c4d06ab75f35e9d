"""The conventions of the tools relay's users know: skopeo's and
crane's flags on copy and sync, global flags before or after the command, --help with examples,
shell completion, progress only on a terminal, quiet logs for insecure registries, one retry
wording across the registry, ACR and Harbor clients."""

from __future__ import annotations

import base64
import json
import logging
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relay import cli
from relay.registry.credentials import EnvCredentials

ROOT = Path(__file__).resolve().parent.parent

# relay.net.retry's one wording, "<what>: <reason>; retry n of m in s", where every client's
# <what> is "<who>: <action>": a registry and repository, "ACR" or "Harbor", then what it did.
RETRY_LINE = re.compile(
    r"^(?P<who>\S+): (?P<action>[A-Za-z][^:]*): (?P<reason>.+); retry \d+ of \d+ in \d+\.\ds$"
)


def relay(*args: str) -> int:
    return cli.main(list(args))


@pytest.fixture
def no_env_logins(monkeypatch, tmp_path):
    """No login from the environment or a docker config: the flags must do it."""
    for name in list(os.environ):
        if name.startswith("RELAY_REGISTRY_AUTH"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)


# --- global flags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["-q", "-o", "json", "lock"],
        ["lock", "-q", "-o", "json"],
        ["-q", "lock", "--output", "json"],
        ["--quiet", "--output=json", "lock"],
    ],
)
def test_global_flags_before_or_after_the_command(argv) -> None:
    args = cli._parser().parse_args(argv)
    assert (args.quiet, args.output, args.verbose) == (True, "json", False)


def test_verbose_after_the_command_and_defaults() -> None:
    args = cli._parser().parse_args(["acr", "plan", "-v"])
    assert args.verbose is True and args.quiet is False and args.output == "text"
    args = cli._parser().parse_args(["-v", "harbor", "replicate", "--wait"])
    assert args.verbose is True


# --- --help -------------------------------------------------------------------------------------


def _subcommands(parser) -> list[list[str]]:
    import argparse

    out: list[list[str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _subcommands(sub)
                out.extend([[name, *n] for n in nested] if nested else [[name]])
    return out


@pytest.mark.parametrize("command", _subcommands(cli._parser()), ids=" ".join)
def test_every_subcommand_has_a_description_and_examples(command, capsys) -> None:
    assert relay(*command, "--help") == 0
    out = capsys.readouterr().out
    head, _, examples = out.partition("\nexamples:\n")
    description = head.split("\n\n")[1]  # after the usage
    assert len(description.split()) >= 8, f"{command}: {description!r}"
    lines = [line.strip() for line in examples.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3 and all(
        line.startswith(("relay ", "eval ", "kubeadm ")) for line in lines
    ), lines
    # The examples name the command they illustrate.
    assert any(" ".join(command) in line for line in lines), lines


# --- shell completion ---------------------------------------------------------------------------


def test_bash_completion_is_valid_bash_and_knows_the_commands(capsys) -> None:
    assert relay("completion", "bash") == 0
    script = capsys.readouterr().out
    for word in ("validate", "doctor", "--src-tls-verify", "--exit-code", "replicate"):
        assert word in script
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    # Sourced in a real bash, it completes `relay doc` to doctor.
    probe = (
        script
        + '\nCOMP_WORDS=(relay doc); COMP_CWORD=1; COMP_LINE="relay doc"; COMP_POINT=9\n'
        + "_shtab_relay relay doc relay; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)
    assert done.stdout.split() == ["doctor"], done.stdout + done.stderr


def test_zsh_completion(capsys) -> None:
    assert relay("completion", "zsh") == 0
    script = capsys.readouterr().out
    assert script.startswith("#compdef relay") and "doctor" in script and "--dry-run" in script
    zsh = shutil.which("zsh")
    if zsh is not None:  # zsh is not in the test dependencies; bash is always there
        checked = subprocess.run([zsh, "-n"], input=script, text=True, capture_output=True)
        assert checked.returncode == 0, checked.stderr


# --- skopeo's and crane's flags on relay copy ---------------------------------------------------


@pytest.fixture
def pushed(plain_registry, image_factory):
    return image_factory.push(plain_registry, "conv/app", "1.0", "oci-index", seed="conventions")


def test_dest_creds_and_docker_prefix(
    pushed, plain_registry, tls_registry, no_env_logins, tmp_path, capsys
) -> None:
    repo = tmp_path / "repo"
    (repo / "mirrors").mkdir(parents=True)
    (repo / "mirrors/relay.yaml").write_text(
        f'registries:\n  ca_bundles: {{"127.0.0.1": "{tls_registry.ca_file}"}}\n'
    )
    src = f"docker://{plain_registry.host}/conv/app:1.0"
    dst = f"docker://{tls_registry.host}/conv-creds/app:1.0"
    # Without a login the TLS registry refuses the push.
    assert relay("copy", src, dst, "--repo", str(repo)) == 1
    capsys.readouterr()
    good = f"{tls_registry.username}:{tls_registry.password}"
    assert relay("copy", src, dst, "--dest-creds", good, "--repo", str(repo)) == 0
    out, err = capsys.readouterr()
    assert pushed.digest in out
    assert tls_registry.password not in out + err
    assert (
        relay(
            "copy", src, dst, "--dest-creds", f"{tls_registry.username}:wrong", "--repo", str(repo)
        )
        == 1
    )


def test_authfile(pushed, plain_registry, tls_registry, no_env_logins, tmp_path, capsys) -> None:
    auth = tmp_path / "auth.json"
    token = base64.b64encode(f"{tls_registry.username}:{tls_registry.password}".encode()).decode()
    auth.write_text(json.dumps({"auths": {tls_registry.host: {"auth": token}}}))
    repo = tmp_path / "repo"
    (repo / "mirrors").mkdir(parents=True)
    (repo / "mirrors/relay.yaml").write_text(
        f'registries:\n  ca_bundles: {{"127.0.0.1": "{tls_registry.ca_file}"}}\n'
    )
    src, dst = f"{plain_registry.host}/conv/app:1.0", f"{tls_registry.host}/conv-auth/app:1.0"
    assert relay("copy", src, dst, "--authfile", str(auth), "--repo", str(repo)) == 0
    assert pushed.digest in capsys.readouterr().out
    assert relay("copy", src, dst, "--authfile", str(tmp_path / "missing.json")) == 2
    assert "missing.json: cannot read" in capsys.readouterr().err


def test_tls_verify_false_marks_that_side_insecure() -> None:
    """--src-tls-verify=false / --dest-tls-verify=false / --insecure: Docker's insecure-registry
    rule (HTTPS without verification, then HTTP) for that side's registries only. (Loopback
    registries are insecure anyway, so this is checked on the pool the copy would use.)"""
    from relay.commands.access import Access, registry_options
    from relay.config.settings import RegistrySettings
    from relay.registry.pool import ClientPool

    settings = RegistrySettings(insecure=("harbor.lan:5000",))
    src, dst = ["quay.io"], ["registry.example.cn"]
    for access, insecure in (
        (Access(), {"harbor.lan:5000"}),
        (Access(dest_tls_verify=False), {"harbor.lan:5000", "registry.example.cn"}),
        (Access(src_tls_verify=False), {"harbor.lan:5000", "quay.io"}),
        (
            Access(src_tls_verify=False, dest_tls_verify=False),
            {"harbor.lan:5000", "quay.io", "registry.example.cn"},
        ),
    ):
        options = registry_options(settings, access, src, dst)
        assert set(options.insecure) == insecure
        pool = ClientPool(options)
        assert pool.tls.is_insecure("registry.example.cn") == ("registry.example.cn" in insecure)
        assert pool.tls.is_insecure("quay.io") == ("quay.io" in insecure)
    args = cli._parser().parse_args(["copy", "a:1", "b:1", "--insecure"])
    assert cli._access(args) == Access(src_tls_verify=False, dest_tls_verify=False)
    args = cli._parser().parse_args(["sync", "--images", "i", "--src-tls-verify=false"])
    assert cli._access(args) == Access(src_tls_verify=False)


def test_tls_verify_false_copies(
    pushed, plain_registry, tls_registry, tmp_path, monkeypatch, capsys
) -> None:
    for name, value in EnvCredentials.environment(
        {tls_registry.host: f"{tls_registry.username}:{tls_registry.password}"}
    ).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no relay.yaml, so no CA bundle for the test CA
    src = f"{plain_registry.host}/conv/app:1.0"
    assert (
        relay("copy", src, f"{tls_registry.host}/conv-tls/app:1.0", "--dest-tls-verify=false") == 0
    )
    assert pushed.digest in capsys.readouterr().out
    assert relay("copy", src, f"{tls_registry.host}/conv-tls/app:2.0", "--insecure") == 0
    assert (
        relay("copy", src, f"{tls_registry.host}/conv-tls/app:3.0", "--dest-tls-verify", "maybe")
        == 2
    )
    assert "'maybe' is not true or false" in capsys.readouterr().err


def test_a_reference_without_a_tag_says_latest(plain_registry, image_factory, caplog) -> None:
    image_factory.push(plain_registry, "conv/plain", "latest", "docker", seed="latest")
    caplog.set_level(logging.INFO)
    src = f"{plain_registry.host}/conv/plain"
    assert relay("copy", src, f"{plain_registry.host}/conv/plain-copy", "--dry-run") == 0
    assert f"SRC {src} has no tag or digest: it means {src}:latest" in caplog.text


def test_other_skopeo_transports_are_refused(capsys) -> None:
    assert relay("copy", "oci:/tmp/layout:1", "registry.example.cn/x:1") == 2
    assert "relay copies between registries only; oci: is a skopeo transport" in (
        capsys.readouterr().err
    )


def test_src_creds_without_a_password_and_no_terminal(pushed, plain_registry, capsys) -> None:
    code = relay(
        "copy",
        "--src-creds",
        "someone",
        f"{plain_registry.host}/conv/app:1.0",
        f"{plain_registry.host}/conv/x:1",
    )
    assert code == 2
    assert "--src-creds someone: no password given and no terminal to ask on" in (
        capsys.readouterr().err
    )


def test_sync_config_says_split_it(tmp_path, capsys) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("auth: {}\nimages: {}\n")
    code = relay("sync", "--config", str(config), "--images", str(config))
    assert code == 2
    err = capsys.readouterr().err
    assert "split it into an --auth file (its 'auth' part) and an --images file" in err


def test_sync_takes_the_creds_flags(
    pushed, plain_registry, tls_registry, no_env_logins, tmp_path, capsys
) -> None:
    images = tmp_path / "images.yaml"
    images.write_text(f"{plain_registry.host}/conv/app:1.0: {tls_registry.host}/conv-sync/app\n")
    good = f"{tls_registry.username}:{tls_registry.password}"
    code = relay(
        "sync",
        "--images",
        str(images),
        "--dest-creds",
        good,
        "--dest-tls-verify=false",
        "--retries",
        "0",
        "--jobs",
        "1",
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "1 copied" in out and tls_registry.password not in out + err


# --- logs: the insecure fallback, one retry wording --------------------------------------------


def test_plain_http_fallback_is_not_logged_at_info(pushed, plain_registry, caplog) -> None:
    """A loopback (insecure) registry on plain HTTP: HTTPS fails first on every run; that is
    not news, so no SSL error at INFO (only under -v)."""
    caplog.set_level(logging.DEBUG)
    assert (
        relay(
            "copy",
            f"{plain_registry.host}/conv/app:1.0",
            f"{plain_registry.host}/conv/app-copy:1.0",
            "--dry-run",
        )
        == 0
    )
    fallback = [r for r in caplog.records if "trying plain HTTP" in r.getMessage()]
    assert fallback and all(r.levelno == logging.DEBUG for r in fallback)


def test_one_retry_wording_for_registry_acr_and_harbor(
    fake, acr_emulator, harbor_emulator, caplog
) -> None:
    from relay.config.settings import RetrySettings
    from relay.net.retry import RetryPolicy
    from relay.registry.client import RegistryClient
    from relay.stages.acr.connect import connect
    from relay.stages.acr.settings import AcrSettings, Credentials
    from relay.stages.harbor.api import HarborClient
    from relay.stages.harbor.settings import Login

    caplog.set_level(logging.INFO)
    fast = RetryPolicy(attempts=3, backoff=0.0, max_backoff=0.0)

    fake.add_fault("GET", r"/v2/tags-here/tags/list", status=503)
    with RegistryClient(fake.url, retry=fast) as registry:
        try:
            registry.list_tags("tags-here")
        except Exception:  # noqa: BLE001 - the repository is empty; the retry is what counts
            pass

    acr_emulator.inject("throttling", count=1, action="GetNamespaceList")
    acr = AcrSettings(
        namespace="wording", retry=RetrySettings(attempts=3, backoff=0.0, max_backoff=0.0)
    )
    client = connect(
        acr,
        Credentials(acr_emulator.access_key_id, acr_emulator.access_key_secret),
        env={"RELAY_ACR_ENDPOINT": acr_emulator.endpoint},
    )
    client.list_namespaces()

    harbor_emulator.inject("5xx", count=1, action="getSystemInfo", status=503)
    harbor = HarborClient(
        harbor_emulator.url,
        Login("admin", harbor_emulator.admin_password),
        ca_bundle=harbor_emulator.ca_file,
        retry=fast,
    )
    try:
        harbor.systeminfo()
    finally:
        harbor.close()

    retries = [r.getMessage() for r in caplog.records if "; retry " in r.getMessage()]
    whats = []
    for line in retries:
        found = RETRY_LINE.match(line)
        assert found, line
        whats.append((found.group("who"), found.group("action")))
    assert (f"{fake.host}/tags-here", "list tags") in whats, retries
    assert ("ACR", "GetNamespaceList") in whats, retries
    assert ("Harbor", "read systeminfo") in whats, retries


# --- progress: on a terminal only, never with -q ------------------------------------------------


def _on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, bytes]:
    """Run relay with stderr on a pseudo-terminal: (exit code, stdout, what the terminal got)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "relay", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        cwd=ROOT,
    )
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            screen += data
        elif proc.poll() is not None:
            break
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(timeout=30), out, screen


@pytest.mark.slow
def test_progress_on_a_terminal_only(plain_registry, image_factory, tmp_path) -> None:
    image = image_factory.push(
        plain_registry,
        "conv/big",
        "1",
        "docker",
        seed="progress",
        layer_count=3,
        layer_size=6 << 20,
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    src = f"{plain_registry.host}/conv/big:1"

    code, out, screen = _on_a_terminal(["copy", src, f"{plain_registry.host}/conv/p1:1"], env)
    assert code == 0 and image.digest in out
    text = screen.decode("utf-8", "replace")
    assert "conv/p1" in text and re.search(r"\d+(\.\d+)?/\d+(\.\d+)? ?[kM]B", text), text[:500]
    assert re.search(r"\x1b\[[0-9;]*3[0-9]m", text), "colour expected without NO_COLOR"
    assert image.digest not in text  # data stays on stdout

    code, out, screen = _on_a_terminal(
        ["copy", src, f"{plain_registry.host}/conv/p2:1"], {**env, "NO_COLOR": "1"}
    )
    text = screen.decode("utf-8", "replace")
    assert code == 0 and "conv/p2" in text
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]m", text), "NO_COLOR must mean no colour"

    code, out, screen = _on_a_terminal(["-q", "copy", src, f"{plain_registry.host}/conv/p3:1"], env)
    assert code == 0 and image.digest in out and b"conv/p3" not in screen

    # Not a terminal (a CI log): nothing but logs.
    piped = subprocess.run(
        [sys.executable, "-m", "relay", "copy", src, f"{plain_registry.host}/conv/p4:1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert piped.returncode == 0 and "\x1b[" not in piped.stderr and "MB" not in piped.stderr


def test_verbose_keeps_urllib3_request_lines_out() -> None:
    # urllib3 logs each request's path and query at DEBUG: a presigned redirect's
    # X-Amz-Signature would reach the job log under -v.
    import logging

    from relay import cli

    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.DEBUG)  # what -v sets (under pytest, _logging leaves root alone)
    try:
        for name in ("urllib3", "requests"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        cli._logging(verbose=True, quiet=False)
        for name in ("urllib3.connectionpool", "requests"):
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
        assert logging.getLogger("relay.net.transport").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(saved)
