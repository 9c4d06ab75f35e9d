"""What relay writes, made safe: the one place secrets are redacted and untrusted text is
sanitised, for everything relay prints, logs, or writes to a job summary or a PR comment.

Two concerns, each handled once:

* **Secrets.** Every secret relay handles is registered here when it first appears
  (`add_secret`, `add_credential`): passwords and identity tokens when a Credential is made,
  bearer tokens when a token server hands one out, `GITHUB_TOKEN`, the Harbor and Alibaba
  secrets and proxy passwords from the environment at start-up (`add_environment`). Each is
  registered in every form it can take on the wire or in a message: raw, URL-encoded
  (upper- and lower-case hex, `+` for spaces), JSON-escaped, base64 at each of the three byte
  alignments (so `Basic base64(user:password)` and base64 blobs that embed the secret are
  caught) and `base64(user:password)` whole. `redact(text)` replaces all of them.

* **Untrusted text.** What a registry, Harbor, ACR or GitHub sends (error codes and messages,
  tag names, headers) and what a pull request puts in a file can carry newlines, ANSI escapes,
  invisible or bidirectional characters, or a line starting `::error file=…::` that GitHub
  Actions would run as a workflow command. `one_line(text)` makes such text one line of
  visible characters, length-capped, that cannot start a workflow command; `show(value)`
  quotes a value for a message.

`Console` wraps stdout and stderr for the CLI: every line relay writes passes through
`redact` and the control-character escaping, and a line that would start a workflow command
is neutralised unless it is one of relay's own annotations (`Console.command`, used only by
relay.output.ghactions). `LogFormatter` does the same for log records. So a secret or a forged
annotation cannot reach the job log whichever code path printed it.

Stdlib only: every layer (the registry client registers tokens) may import this module.
"""

from __future__ import annotations

import base64
import bisect
import io
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Mapping
from typing import Any, TextIO
from urllib.parse import quote, quote_plus, urlsplit

MIN_SECRET = 4  # shorter strings are not redacted: they would mangle ordinary text
_MIN_DERIVED = 8  # a base64 fragment shorter than this could match by chance
REDACTED = "***"

_lock = threading.Lock()
_secrets: set[str] = set()
# The same secrets, longest first (a base64 pair is replaced whole, not around an inner match),
# kept sorted as each is added: a sync of hundreds of repositories registers a bearer token per
# repository, and rebuilding one alternation regex of every form after each new token cost
# seconds per rebuild (inside the lock, stalling all output). `redact` checks each form with
# `in`, a fast substring search, on a snapshot taken without any rebuild.
_ordered: list[str] = []
_snapshot: tuple[str, ...] = ()


def _b64_forms(raw: bytes) -> set[str]:
    """The base64 text of ``raw`` wherever it sits in a longer byte string: for each of the
    three alignments, the quanta that hold only bytes of ``raw`` (they encode the same
    whatever surrounds them), in the standard and the URL-safe alphabets."""
    out: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        full = (offset + len(raw)) // 3  # quanta made only of known bytes (the first aside)
        core = encoded[(4 if offset else 0) : full * 4]
        if len(core) >= _MIN_DERIVED:
            out.add(core)
            out.add(core.replace("+", "-").replace("/", "_"))
    whole = base64.b64encode(raw).decode("ascii")
    if len(whole) >= _MIN_DERIVED:
        out.add(whole)
        out.add(whole.rstrip("="))
    return out


def forms(secret: str) -> set[str]:
    """Every spelling of ``secret`` that `redact` looks for."""
    if len(secret) < MIN_SECRET:
        return set()
    found = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    found |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in set(found)}
    found |= _b64_forms(secret.encode("utf-8"))
    return {f for f in found if len(f) >= MIN_SECRET}


def add_secret(*secrets: str | None) -> None:
    """Register secrets (and their derived forms) for redaction, process-wide."""
    new: set[str] = set()
    for secret in secrets:
        if secret and isinstance(secret, str):
            new |= forms(secret)
    _add(new)


def add_credential(username: str, password: str | None) -> None:
    """A username and password: the password, and ``username:password`` as it travels in a
    Basic header (base64) or a URL's user information."""
    if not password:
        return
    add_secret(password)
    pair = f"{username}:{password}"
    _add(_b64_forms(pair.encode("utf-8")) | {pair, f"{quote(username)}:{quote(password)}"})


def _add(new: set[str]) -> None:
    global _snapshot
    with _lock:
        fresh = new - _secrets
        if not fresh:
            return
        _secrets.update(fresh)
        for secret in fresh:
            bisect.insort(_ordered, secret, key=lambda s: -len(s))
        _snapshot = tuple(_ordered)


# Environment variables whose values are secrets relay may handle, and the name patterns that
# usually mean a secret (what CI systems mask by convention).
SECRET_VARIABLES = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "HARBOR_PASSWORD",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIYUN_ACCESS_KEY_SECRET",
    "RELAY_HARBOR_ACR_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN", re.IGNORECASE)
# ...unless the name says the value is where a secret is, not the secret.
_NOT_SECRET = re.compile(r"_(?:FILE|PATH|DIR|URL|ENDPOINT|ID)$", re.IGNORECASE)
_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy")


def add_environment(environ: Mapping[str, str]) -> None:
    """Register the secrets the environment holds: the known ones, every variable whose name
    says it holds a secret, registry credentials (`user:password`) and proxy passwords."""
    for name, value in environ.items():
        if not value:
            continue
        if name in SECRET_VARIABLES:
            add_secret(value)
        elif name.startswith("RELAY_REGISTRY_AUTH"):
            add_secret(value)
            user, sep, secret = value.partition(":")
            if sep and not value.lstrip().startswith("{"):
                add_credential(user, secret)
            else:
                _add_json_secrets(value)
        elif name in _PROXY_VARIABLES or name.lower() == "all_proxy":
            try:
                parts = urlsplit(value if "://" in value else f"http://{value}")
                username, password = parts.username, parts.password
            except ValueError:
                username = password = None
            if password:
                add_credential(username or "", password)
        elif (
            _SECRET_NAME.search(name)
            and not _NOT_SECRET.search(name)
            and len(value) >= _MIN_DERIVED
        ):
            add_secret(value)


def _add_json_secrets(value: str) -> None:
    """The passwords in a RELAY_REGISTRY_AUTH map ({"host": "user:password"})."""
    try:
        doc = json.loads(value)
    except (ValueError, RecursionError):
        return
    if isinstance(doc, dict):
        for item in doc.values():
            if isinstance(item, str):
                user, sep, password = item.partition(":")
                if sep:
                    add_credential(user, password)


def redact(text: str) -> str:
    """``text`` with every registered secret form replaced by ``***``."""
    if not text:
        return text
    for secret in _snapshot:  # an immutable tuple, replaced whole by `_add`: no lock needed
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def forget_secrets() -> None:
    """Tests only: start again with no secrets."""
    global _snapshot
    with _lock:
        _secrets.clear()
        _ordered.clear()
        _snapshot = ()


# --- untrusted text ------------------------------------------------------------------------

# GitHub's runner trims leading whitespace, then runs a line starting `::` as a workflow
# command (actions/runner, ActionCommand.TryParseV2); its older parser (ActionCommand.TryParse)
# looks for `##[` anywhere in the line (`message.IndexOf("##[")`), so that is escaped wherever
# it appears.
_COMMAND_START = re.compile(r"^\s*::")
_LEGACY_COMMAND = "##["


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _unsafe(char: str) -> bool:
    """Control characters, and invisible ones that change how text reads: format characters
    (zero-width spaces and joiners, bidirectional overrides, the BOM), line and paragraph
    separators."""
    code = ord(char)
    if code < 0x20 or 0x7F <= code < 0xA0:
        return True
    if code < 0x80:
        return False
    return unicodedata.category(char) in ("Cf", "Zl", "Zp", "Cs", "Co", "Cn")


def escape_controls(text: str, *, keep: str = "") -> str:
    """Every unsafe character as a visible escape (``\\x1b``, ``\\u202e``), except ``keep``."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape_char(c) if _unsafe(c) and c not in keep else c for c in text)


def json_text(text: str) -> str:
    """JSON text (``json.dumps(..., ensure_ascii=False)``) made safe to pass through `Console`
    unchanged, so it stays valid JSON: each unsafe character (which the Console would write as
    ``\\x85``, not a JSON escape) as its ``\\u`` escape, and ``##[`` (which the Console would
    write as ``##\\[``) as ``##\\u005b``. Outside strings JSON text is ASCII punctuation, so
    these only ever occur inside strings, where the escapes mean the same characters."""
    if not (text.isascii() and text.isprintable()):
        text = "".join(json.dumps(c)[1:-1] if _unsafe(c) and c not in "\n\t" else c for c in text)
    return text.replace(_LEGACY_COMMAND, "##\\u005b")


def neutralise_command(line: str) -> str:
    """A line that GitHub Actions would run as a workflow command, made plain text: a leading
    ``::`` gets a backslash, and every ``##[`` (the legacy parser finds it anywhere in a line)
    becomes ``##\\[``. Console, LogFormatter, one_line and clean_block all use this."""
    if _LEGACY_COMMAND in line:
        line = line.replace(_LEGACY_COMMAND, "##\\[")
    if _COMMAND_START.match(line):
        stripped = line.lstrip()
        return line[: len(line) - len(stripped)] + "\\" + stripped
    return line


def one_line(text: object, limit: int | None = 300) -> str:
    """Untrusted text made safe to print: secrets redacted, line breaks and tabs as spaces,
    other control and invisible characters escaped, whitespace runs collapsed, cut to
    ``limit`` characters (at a word's end when one is near: a cause is not cut mid-word),
    and never the start of a workflow command."""
    value = redact(str(text))
    value = " ".join(escape_controls(value, keep="\r\n\t").split())
    value = neutralise_command(value)
    if limit is not None and len(value) > limit:
        cut = value[: max(0, limit - 1)]
        space = cut.rfind(" ")
        if space >= limit * 3 // 5:
            cut = cut[:space].rstrip(" ,;:")
        value = cut + "…"
    return value


def first_line(exc: BaseException, limit: int | None = 300) -> str:
    """An error's first line (its type's name when it says nothing) as `one_line` makes
    untrusted text printable: a server's words can be in it."""
    text = str(exc).strip()
    return one_line(text.splitlines()[0] if text else type(exc).__name__, limit)


def show(value: object, limit: int = 80) -> str:
    """A value quoted for a message: in quotes, every unsafe character escaped (invisible ones
    too), cut when long. What a person typed, as they can see it. A value that is not a
    string (a server's null or number where a string belongs) is shown as JSON, unquoted."""
    if not isinstance(value, str):
        try:
            shown = json.dumps(value, default=str)
        except (ValueError, RecursionError):
            shown = type(value).__name__
        return one_line(shown, limit)
    text = escape_controls(redact(value))
    if len(text) > limit:
        return f"'{text[: limit - 3]}...' ({len(str(value))} characters)"
    return f"'{text}'"


def clean_block(text: str, keep: str = "") -> str:
    """Multi-line text relay writes to a file people read (job summary, PR comment): secrets
    redacted, unsafe characters but line breaks (and ``keep``) escaped, no line a workflow
    command."""
    lines = escape_controls(redact(text), keep="\n\t" + keep).split("\n")
    return "\n".join(neutralise_command(line) for line in lines)


# --- the console ---------------------------------------------------------------------------


class Console(io.TextIOBase):
    """A text stream that writes whole lines to ``raw``, each redacted, with unsafe characters
    escaped and workflow commands neutralised. relay's own annotations go through `command`."""

    def __init__(self, raw: TextIO) -> None:
        super().__init__()
        self.raw = raw
        self._pending = ""
        self._lock = threading.Lock()

    @staticmethod
    def clean(line: str) -> str:
        return neutralise_command(escape_controls(redact(line), keep="\t"))

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            if "\n" in self._pending:
                *lines, self._pending = self._pending.split("\n")
                self.raw.write("".join(self.clean(line) + "\n" for line in lines))
        return len(text)

    def command(self, line: str) -> None:
        """One of relay's own workflow commands, escaped by its author: written as it is,
        after anything pending, with secrets redacted."""
        with self._lock:
            self._flush_pending()
            self.raw.write(redact(line).replace("\n", "%0A") + "\n")
            self.raw.flush()

    def _flush_pending(self) -> None:
        if self._pending:
            self.raw.write(self.clean(self._pending))
            self._pending = ""

    def flush(self) -> None:
        with self._lock:
            self._flush_pending()
            self.raw.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return bool(getattr(self.raw, "isatty", lambda: False)())

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase declares it read-only
        return str(getattr(self.raw, "encoding", "utf-8") or "utf-8")


def write_command(line: str, stream: TextIO) -> None:
    """Write one of relay's own workflow commands to ``stream`` (a Console passes it through
    untouched; any other stream gets it redacted)."""
    if isinstance(stream, Console):
        stream.command(line)
    else:
        stream.write(redact(line).replace("\n", "%0A") + "\n")


class LogFormatter(logging.Formatter):
    """Log records as one redacted line each, unsafe characters escaped (a traceback, under
    --verbose, keeps its own lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return self.clean(super().formatMessage(record))

    @staticmethod
    def clean(text: str) -> str:
        return neutralise_command(escape_controls(redact(text), keep="\t"))

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        text = super().formatException(ei)
        return "\n".join(self.clean(line) for line in text.split("\n"))
