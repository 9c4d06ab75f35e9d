"""Reading image-syncer's images and auth files (JSON or YAML); every error names file and line."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from relay import untrusted
from relay.config import yamlnodes
from relay.errors import InputError, Problem
from relay.reference import InvalidReference
from relay.registry.credentials import ENV_REF, ImageSyncerAuth
from relay.sync.rules import Rule, make_rule

log = logging.getLogger(__name__)

_AUTH_FIELDS = ("username", "password", "insecure", "identityToken")


@dataclass(frozen=True)
class _Entry:
    key: str
    line: int | None
    value: object


def _read(path: str | os.PathLike[str]) -> str:
    # A regular file, capped, UTF-8 (a BOM, which Windows editors like to add, is dropped).
    return untrusted.read_text(path)


def _is_json(path: str | os.PathLike[str], text: str) -> bool:
    """image-syncer goes by the extension; files without a known one are sniffed."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return True
    if suffix in (".yaml", ".yml"):
        return False
    return text.lstrip().startswith("{")


def _entries(path: str | os.PathLike[str], text: str, problems: list[Problem]) -> list[_Entry]:
    """The top-level ``key: value`` pairs with their lines, duplicates reported."""
    if _is_json(path, text):
        return _json_entries(str(path), text, problems)
    return _yaml_entries(str(path), text, problems)


_WS = re.compile(r"[ \t\n\r]*")


def _skip_ws(text: str, at: int) -> int:
    """The index of the first non-whitespace character at or after ``at`` (JSON whitespace)."""
    found = _WS.match(text, at)
    return found.end() if found is not None else at


def _json_entries(path: str, text: str, problems: list[Problem]) -> list[_Entry]:
    try:
        doc = untrusted.load_json(text)
    except json.JSONDecodeError as exc:
        raise InputError(Problem(path, exc.lineno, f"invalid JSON: {exc.msg}")) from None
    except ValueError as exc:  # nested too deeply, a number too long
        raise InputError(Problem(path, None, f"invalid JSON: {exc}")) from None
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise InputError(Problem(path, 1, "the top level must be an object"))
    # json.loads keeps the last of duplicate keys and no positions; walk the (now known-valid)
    # top-level object once more to get each key's line and see every duplicate.
    decoder = json.JSONDecoder()
    entries: list[_Entry] = []
    seen: dict[str, int] = {}
    i = _skip_ws(text, 0) + 1  # past "{"
    i = _skip_ws(text, i)
    # Lines are counted from the previous key on, so reading stays linear in the file size.
    line, counted = 1, 0
    while text[i] == '"':
        line += text.count("\n", counted, i)
        counted = i
        # json.decoder.scanstring is public (json's own decoder uses it) but not in typeshed.
        key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
        i = _skip_ws(text, i) + 1  # past ":"
        value, i = decoder.raw_decode(text, _skip_ws(text, i))
        if key in seen:
            problems.append(
                Problem(path, line, f"duplicate key {key!r} (first at line {seen[key]})")
            )
        else:
            seen[key] = line
            entries.append(_Entry(key, line, value))
        i = _skip_ws(text, i)
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
    return entries


def _yaml_entries(path: str, text: str, problems: list[Problem]) -> list[_Entry]:
    root = yamlnodes.compose(text, path)
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag.endswith(":null")):
        return []
    doc = yamlnodes.Doc(path)
    if not isinstance(root, yaml.MappingNode):
        raise InputError(
            doc.problem(root, f"the top level must be a mapping, not {yamlnodes.kind(root)}")
        )
    entries: list[_Entry] = []
    seen: dict[str, int] = {}
    yamlnodes.refuse_aliases(doc, root)  # billion laughs, self-reference: as the mirrors list
    for key_node, value_node in root.value:
        line = yamlnodes.line_of(key_node)
        if not isinstance(key_node, yaml.ScalarNode):
            problems.append(Problem(path, line, "keys must be plain strings"))
            continue
        key = key_node.value
        if key in seen:
            problems.append(
                Problem(path, line, f"duplicate key {key!r} (first at line {seen[key]})")
            )
            continue
        seen[key] = line
        entries.append(_Entry(key, line, _yaml_value(doc, value_node, problems)))
    return entries


def _yaml_value(doc: yamlnodes.Doc, node: yaml.Node, problems: list[Problem]) -> object:
    """Plain data from a node; scalars keep their source text (a password 0123 stays "0123")."""
    if isinstance(node, yaml.SequenceNode):
        return [_yaml_value(doc, item, problems) for item in node.value]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in out:
                problems.append(doc.problem(key_node, f"duplicate key {key!r}"))
            out[key] = _yaml_value(doc, value_node, problems)
        return out
    if node.tag.endswith(":null"):
        return None
    if node.tag.endswith(":bool"):
        return node.value.lower() in ("true", "yes", "on", "y")
    return node.value


def _go_expand(text: str, lookup: Callable[[str], str]) -> str:
    """Go's os.Expand: ``$NAME``, ``${NAME}`` and the shell's one-character specials, anywhere.

    Reproduced exactly (including "${}" being dropped and a lone trailing "$" kept) because
    image-syncer runs os.ExpandEnv over passwords and destinations, so a file that works there
    depends on precisely this.
    """
    out: list[str] = []
    start = 0
    j = 0
    while j < len(text):
        if text[j] == "$" and j + 1 < len(text):
            out.append(text[start:j])
            name, width = _shell_name(text[j + 1 :])
            if name == "" and width > 0:
                pass  # bad syntax such as "${}": Go eats it
            elif name == "":
                out.append("$")  # "$" not followed by a name stays
            else:
                out.append(lookup(name))
            j += width
            start = j + 1
        j += 1
    out.append(text[start:])
    return "".join(out)


_SPECIAL = frozenset("*#$@!?-0123456789")


def _shell_name(rest: str) -> tuple[str, int]:
    if rest[0] == "{":
        if len(rest) > 2 and rest[1] in _SPECIAL and rest[2] == "}":
            return rest[1], 3
        end = rest.find("}", 1)
        if end == 1:
            return "", 2
        if end < 0:
            return "", 1
        return rest[1:end], end + 1
    if rest[0] in _SPECIAL:
        return rest[0], 1
    n = 0
    while n < len(rest) and (rest[n] == "_" or rest[n].isascii() and rest[n].isalnum()):
        n += 1
    return rest[:n], n


def load_rules(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> list[Rule]:
    """Read an image-syncer images file. Every problem is reported at once, with its line."""
    env = environ if environ is not None else os.environ
    name = str(path)
    text = _read(path)
    problems: list[Problem] = []
    entries = _entries(path, text, problems)
    if (
        entries
        and {e.key for e in entries} <= {"auth", "images"}
        and all(isinstance(e.value, dict) for e in entries)
    ):
        raise InputError(
            Problem(
                name,
                entries[0].line,
                "this is an image-syncer --config file (auth and images together); give relay "
                "its 'images' part as --images and its 'auth' part as --auth",
            )
        )
    rules: list[Rule] = []
    for entry in entries:
        where = f"source {entry.key!r}"
        value = entry.value
        if isinstance(value, str):
            destinations = [value]
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            destinations = list(value)
        elif value is None or value == []:
            problems.append(Problem(name, entry.line, f"{where}: empty destination"))
            continue
        else:
            problems.append(
                Problem(
                    name, entry.line, f"{where}: destination must be a string or a list of strings"
                )
            )
            continue
        for raw in destinations:
            missing: list[str] = []

            def lookup(var: str, missing: list[str] = missing) -> str:
                if var not in env:
                    missing.append(var)
                    return ""
                return env[var]

            destination = _go_expand(raw, lookup)
            if missing:
                # image-syncer would substitute "" and push somewhere unintended; refuse.
                problems.append(
                    Problem(
                        name,
                        entry.line,
                        f"{where}: destination {raw!r} uses unset environment variable(s) "
                        + ", ".join(sorted(set(missing))),
                    )
                )
                continue
            try:
                rules.append(make_rule(entry.key, destination, entry.line))
            except (InvalidReference, ValueError) as exc:
                problems.append(Problem(name, entry.line, f"{where} -> {destination!r}: {exc}"))
    if problems:
        raise InputError(_by_line(problems))
    if not rules:
        log.warning("%s has no rules; nothing to sync", name)
    return _unique(rules)


def _by_line(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line or 0)


def _unique(rules: list[Rule]) -> list[Rule]:
    """A destination listed twice for one source (a YAML list, say) is one rule."""
    seen: set[tuple[str, str]] = set()
    out = []
    for rule in rules:
        key = (rule.source, rule.destination)
        if key not in seen:
            seen.add(key)
            out.append(rule)
    return out


@dataclass
class AuthFile:
    """The auth file as a credential provider, plus the secrets it holds (for redaction)."""

    provider: ImageSyncerAuth
    secrets: list[str] = field(default_factory=list, repr=False)


def load_auth(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> AuthFile:
    """Read an image-syncer auth file. Values are never echoed, in errors or in logs."""
    env = environ if environ is not None else os.environ
    name = str(path)
    text = _read(path)
    problems: list[Problem] = []
    data: dict[str, dict[str, object]] = {}
    secrets: list[str] = []
    for entry in _entries(path, text, problems):
        where = f"entry {entry.key!r}"
        if not entry.key.strip():
            problems.append(Problem(name, entry.line, "registry key must not be empty"))
            continue
        if not isinstance(entry.value, dict):
            problems.append(Problem(name, entry.line, f"{where} must be a mapping"))
            continue
        fields: dict[str, object] = {}
        for key, value in entry.value.items():
            if key not in _AUTH_FIELDS:
                # Go's decoders ignore unknown fields; a warning is kinder than silence.
                log.warning("%s:%s: %s: unknown field %r ignored", name, entry.line, where, key)
                continue
            if key == "identityToken":
                log.warning(
                    "%s:%s: %s: identityToken is not supported; ignored", name, entry.line, where
                )
                continue
            if key == "insecure":
                if not isinstance(value, bool):
                    problems.append(
                        Problem(name, entry.line, f"{where}: insecure must be true or false")
                    )
                    continue
                fields[key] = value
                continue
            if value is None:
                continue
            if not isinstance(value, str):
                problems.append(Problem(name, entry.line, f"{where}: {key} must be a string"))
                continue

            def lookup(
                var: str, key: str = key, line: int | None = entry.line, where: str = where
            ) -> str:
                if var not in env:
                    log.warning(
                        "%s:%s: %s: %s uses unset environment variable %s",
                        name,
                        line,
                        where,
                        key,
                        var,
                    )
                    return ""
                return env[var]

            expanded = _go_expand(value, lookup)
            fields[key] = expanded
            if key == "password" and expanded:
                secrets.append(expanded)
        data[entry.key] = fields
    if problems:
        raise InputError(_by_line(problems))
    provider = ImageSyncerAuth(data, source=name, environ=_verbatim_environ(data))
    return AuthFile(provider, secrets)


def _verbatim_environ(data: Mapping[str, Mapping[str, object]]) -> dict[str, str]:
    """An environment under which ImageSyncerAuth leaves the values as they are (it expands
    the whole-value "$NAME" / "${NAME}" form, ENV_REF, by itself).

    They were expanded already (Go-style, anywhere in the string); a value that still reads
    "$NAME" after that (a password starting with '$', say) must not be looked up again, so NAME
    maps back to that very value.
    """
    env: dict[str, str] = {}
    for fields in data.values():
        for value in fields.values():
            if isinstance(value, str) and (match := ENV_REF.match(value.strip())):
                env[match.group(1) or match.group(2)] = value
    return env
