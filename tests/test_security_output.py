"""One choke point for what relay writes: every derived form of every
secret is redacted, and server text cannot forge annotations or drive the terminal, on stdout,
stderr, logs, tables, the job summary and the PR comment.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay import safety
from relay.errors import Problem
from relay.output import ghactions, prcomment
from relay.output.tables import Column, Table
from relay.registry.credentials import Credential

PASSWORD = "pa ss/word+€:7"
USER = "robot$ci"


def _forms(user: str, password: str) -> list[str]:
    pair = f"{user}:{password}".encode()
    return [
        password,
        quote(password, safe=""),
        quote(password, safe="").lower(),
        quote_plus(password),
        json.dumps(password)[1:-1],
        base64.b64encode(pair).decode(),
        base64.urlsafe_b64encode(pair).decode().rstrip("="),
        base64.b64encode(b"prefix" + password.encode() + b"suffix").decode()[8:-8],
    ]


def test_every_form_of_a_credential_is_redacted() -> None:
    Credential(USER, PASSWORD)  # registering is what making one does
    for form in _forms(USER, PASSWORD):
        text = f"server said: <{form}> and more"
        assert form not in safety.redact(text), form


@given(st.text(min_size=8, max_size=40).filter(lambda s: s.strip() == s and "\x00" not in s))
def test_base64_at_any_alignment_is_redacted(secret: str) -> None:
    safety.forget_secrets()
    safety.add_secret(secret)
    for prefix in (b"", b"x", b"xy", b"xyz"):
        blob = base64.b64encode(prefix + secret.encode() + b"tail").decode()
        assert safety.redact(blob) != blob


def test_environment_secrets_are_known_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "GITHUB_TOKEN": "ghs_abcdefghijklmnop",
        "HARBOR_PASSWORD": "Harbor12345",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "alisecretvalue",
        "RELAY_HARBOR_ACR_ACCESS_KEY_SECRET": "harboraccesssecret",
        "RELAY_REGISTRY_AUTH": json.dumps({"h.io:5000": "u:mapsecret1"}),
        "RELAY_REGISTRY_AUTH_GHCR_IO": "bot:legacysecret",
        "HTTPS_PROXY": "http://proxyuser:proxypass99@127.0.0.1:3128",
        "SOME_OTHER_TOKEN": "another-long-token",
        "REGISTRY_AUTH_FILE": "/home/me/auth.json",  # where a secret is, not one
    }
    safety.add_environment(env)
    for value in ("ghs_abcdefghijklmnop", "Harbor12345", "alisecretvalue", "harboraccesssecret"):
        assert safety.redact(f"x {value} y") == "x *** y"
    for value in ("mapsecret1", "legacysecret", "proxypass99", "another-long-token"):
        assert value not in safety.redact(f"x {value} y")
    assert safety.redact("/home/me/auth.json") == "/home/me/auth.json"


FORGED = "msg\n::error file=README.md,line=1::x\r\x1b[31mred\x1b]8;;http://e\x07\u202e\u200b ##[warning]y"


@given(st.text())
def test_one_line_is_one_safe_line(text: str) -> None:
    line = safety.one_line(text, 100)
    assert "\n" not in line and "\r" not in line and len(line) <= 100
    assert not line.lstrip().startswith("::") and "##[" not in line
    assert all(ch.isprintable() or ch == " " for ch in line)


def test_console_neutralises_forged_commands_but_keeps_relays_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    safety.add_secret("console-secret")
    raw = io.StringIO()
    console = safety.Console(raw)
    print(f"server: {FORGED} console-secret", file=console)
    ghactions.annotate(
        Problem("mirrors/images.yaml", 3, f"bad {FORGED} console-secret"), stream=console
    )
    console.write("partial ::error::")
    console.flush()
    lines = raw.getvalue().splitlines()
    commands = [line for line in lines if line.lstrip().startswith("::")]
    assert len(commands) == 1 and commands[0].startswith(
        "::error file=mirrors/images.yaml,line=3::"
    )
    text = raw.getvalue()
    assert "console-secret" not in text and "\x1b" not in text and "\r" not in text
    assert "\u202e" not in text and "\x07" not in text
    assert "\\::error file=README.md" in text  # shown, as text


def test_log_records_are_one_redacted_line() -> None:
    safety.add_secret("log-secret-value")
    formatter = safety.LogFormatter("relay: %(levelname)s: %(message)s")
    record = logging.LogRecord(
        "relay", logging.WARNING, "", 0, "%s said %s", ("srv", FORGED + " log-secret-value"), None
    )
    out = formatter.format(record)
    assert "\n" not in out and "log-secret-value" not in out and "\x1b" not in out


def test_the_cli_process_redacts_its_logs_and_errors(tmp_path: Path) -> None:
    """The real process: logging configured by relay.cli, stdout and stderr through Console."""
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text(
        "images:\n  - source: nginx\n    tags: ['1']\n    extra-supersecret-1234: x\n"
    )
    env = {
        **os.environ,
        "GITHUB_TOKEN": "supersecret-1234",
        "GITHUB_ACTIONS": "true",
        "PYTHONPATH": str(Path(__file__).parent.parent),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "relay", "validate", "--repo", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "supersecret-1234" not in proc.stdout + proc.stderr
    assert "unknown key 'extra-***'" in proc.stderr
    assert "::error file=mirrors/images.yaml,line=4::" in proc.stderr


def test_tables_job_summary_and_pr_comment_are_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Credential(USER, PASSWORD)
    b64 = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    table = Table("relay sync", [Column("Source"), Column("Error")])
    table.add("quay.io/a/b:1", f"{FORGED} Basic {b64} {quote(PASSWORD, safe='')}", flag=True)
    table.notes.append(f"note {FORGED}")
    table.summary = f"summary {PASSWORD}"
    text = table.text()
    ghactions.summary(table)
    ghactions.summary(f"free text {FORGED} {b64}\n| a | b |")
    body = prcomment.render([prcomment.Section("Problems", [f"{FORGED} {b64} {PASSWORD}"])], False)
    for out in (text, summary.read_text(), body):
        for form in _forms(USER, PASSWORD):
            assert form not in out, (form, out)
        assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
        assert not any(line.lstrip().startswith(("::", "##[")) for line in out.splitlines())
    assert len(text.splitlines()) == 5  # note, header, one row, blank, summary


def test_legacy_command_is_escaped_anywhere_in_a_line() -> None:
    # actions/runner's ActionCommand.TryParse finds `##[` anywhere in a line, not only at its
    # start: a registry's error text must not stop annotations or forge an error.
    text = "manifest unknown: ##[stop-commands]tok then ##[error]forged"
    for out in (
        safety.one_line(text),
        safety.Console.clean(text),
        safety.LogFormatter.clean(text),
        safety.clean_block(f"a\n{text}"),
    ):
        assert "##[" not in out, out
        assert "stop-commands" in out
    raw = io.StringIO()
    print(text, file=safety.Console(raw))
    assert "##[" not in raw.getvalue()


def test_many_bearer_tokens_keep_redaction_cheap() -> None:
    # A sync of hundreds of repositories registers a JWT-sized bearer token per repository;
    # each must stay redacted in every form without redaction slowing to seconds per token.
    import time

    safety.forget_secrets()
    tokens = [
        base64.urlsafe_b64encode(os.urandom(600)).decode().rstrip("=") + f".{i}" for i in range(500)
    ]
    start = time.monotonic()
    for token in tokens:
        safety.add_secret(token)
        assert token not in safety.redact(f"Authorization: Bearer {token}")
    elapsed = time.monotonic() - start
    assert elapsed < 5, elapsed  # generous: the old regex rebuild took minutes here
    for token in tokens[::50]:
        for form in safety.forms(token):
            assert form not in safety.redact(f"x {form} y"), form


def test_library_messages_are_redacted_before_they_are_cut() -> None:
    # describe_exception keeps 300 characters, reachability's _plain 200: a secret straddling
    # the cut must not leave its prefix behind.
    from relay.net import reachability
    from relay.net.transport import describe_exception

    secret = "straddling-secret-0123456789abcdefghij"
    safety.add_secret(secret)
    for keep, describe in ((300, describe_exception), (200, reachability._plain)):
        exc = OSError("x" * (keep - 10) + " " + secret + " tail")
        shown = describe(exc)
        assert secret[:8] not in shown, (describe, shown)
