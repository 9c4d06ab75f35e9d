"""Strict YAML reading that keeps line numbers.

The mirrors list is written by people the maintainers may not know, so it is read as a tree of
nodes rather than through PyYAML's constructors: we never construct arbitrary tags, we see every
duplicate key (PyYAML keeps the last one silently), and scalars keep their source text, so a tag
written as `1.20` stays "1.20" instead of becoming the float 1.2.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from relay.errors import InputError, Problem
from relay.safety import show

try:  # libyaml makes a 10,000-entry list parse in well under a second
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


@dataclass(frozen=True)
class Doc:
    """Where nodes came from, so every error can name its file and line."""

    path: str

    def problem(self, node: yaml.Node | None, message: str) -> Problem:
        line = node.start_mark.line + 1 if node is not None else None
        return Problem(self.path, line, message)


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def compose(text: str, path: str) -> yaml.Node | None:
    """Parse `text` into a node tree; a syntax error becomes an InputError naming file and line,
    with a hint for the mistakes people make most (`syntax_hint`)."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid YAML"
        hint = syntax_hint(text, exc)
        message = f"invalid YAML: {reason}" + (f"; {hint}" if hint else "")
        raise InputError(Problem(path, line, message)) from None
    except yaml.YAMLError as exc:
        raise InputError(Problem(path, None, f"invalid YAML: {exc}")) from None


# A plain (unquoted) value cannot start with these: YAML reads them as block scalars (> |),
# aliases and anchors (* &), tags (!), directives (%), or reserved characters (@ `).
_INDICATORS = ">|*&!%@`"
_VALUE_RE = re.compile(r"^\s*(?:-\s+)?([A-Za-z0-9_.-]+):\s+(\S.*)$")
_KEY_RE = re.compile(r"^(\s*)((?:-\s+)?)([A-Za-z0-9_.-]+)\s*:(?:\s|$)")
_ITEM_RE = re.compile(r"^(\s*)-(?:\s|$)")


def syntax_hint(text: str, exc: yaml.MarkedYAMLError) -> str:
    """What the parser's words usually mean, for the mistakes people make in these files:
    a regular expression in double quotes, a value that starts with `>`, a key or list item
    indented differently from its neighbours. Empty when nothing fits."""
    lines = text.splitlines()
    problem = exc.problem or ""
    marks = [m for m in (exc.context_mark, exc.problem_mark) if m is not None]
    first = min((m.line for m in marks), default=0)
    last = max((m.line for m in marks), default=0)
    around = range(max(0, first - 1), min(len(lines), last + 1))
    if "unknown escape character" in problem or "expected escape sequence" in problem:
        return (
            "inside double quotes a backslash starts an escape; use single quotes for regular "
            "expressions, e.g. include: '^1\\.27'"
        )
    for index in around:
        found = _VALUE_RE.match(lines[index])
        if found and found.group(2)[0] in _INDICATORS:
            key, value = found.group(1), found.group(2).rstrip()
            return (
                f"line {index + 1}: {key}'s value starts with {value[0]!r}, which YAML reads as "
                f"syntax; quote values that start with > | * & ! % @ or `, e.g. "
                f"{key}: '{value}'"
            )
    if exc.problem_mark is not None:
        return _indent_hint(lines, exc.problem_mark.line)
    return ""


def _indent_hint(lines: list[str], index: int) -> str:
    """A key or list item whose indentation differs from the one above it at the same level."""
    if not 0 <= index < len(lines):
        return ""
    here = _KEY_RE.match(lines[index])
    item = _ITEM_RE.match(lines[index])
    if here is None and item is None:
        return ""
    column = len((here or item).group(1)) + 1  # type: ignore[union-attr]  # one matched
    for above in range(index - 1, -1, -1):
        line = lines[above]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if here is not None:
            other = _KEY_RE.match(line)
            if other is None:
                continue
            # The key after a list dash starts where the dash's text starts.
            other_column = len(other.group(1)) + len(other.group(2)) + 1
            if other_column != column and abs(other_column - column) <= 2:
                return (
                    f"key '{here.group(3)}' on line {index + 1} is at column {column}, but "
                    f"'{other.group(3)}' above it is at column {other_column}: indent the keys "
                    "of one mapping alike"
                )
            return ""
        other_item = _ITEM_RE.match(line)
        if other_item is None:
            continue
        other_column = len(other_item.group(1)) + 1
        if other_column != column:
            return (
                f"the list item on line {index + 1} is at column {column}, but the one above it "
                f"is at column {other_column}: indent the items of one list alike"
            )
        return ""
    return ""


def mapping_items(
    doc: Doc,
    node: yaml.Node,
    what: str,
    allowed: set[str],
    problems: list[Problem],
    hints: Mapping[str, str] | None = None,
) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """The keys of a mapping node, refusing unknown and duplicate keys.

    Returns {key: (key_node, value_node)}; problems are appended rather than raised so one run
    reports every mistake in the file. ``hints`` says more about unknown keys people are
    known to write (a secret in the settings file, say) than "did you mean".
    """
    if not isinstance(node, yaml.MappingNode):
        problems.append(doc.problem(node, f"{what} must be a mapping, not {kind(node)}"))
        return {}
    items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            problems.append(doc.problem(key_node, f"{what}: keys must be plain strings"))
            continue
        key = key_node.value
        if key in items:
            first = line_of(items[key][0])
            problems.append(
                doc.problem(key_node, f"{what}: duplicate key {show(key)} (first at line {first})")
            )
            continue
        if key not in allowed:
            if hints and key.lower() in hints:
                problems.append(
                    doc.problem(key_node, f"{what}: unknown key '{key}': {hints[key.lower()]}")
                )
                continue
            hint = _closest(key, allowed)
            suffix = (
                f"; did you mean '{hint}'?" if hint else f"; allowed: {', '.join(sorted(allowed))}"
            )
            # Shown escaped: a key with a zero-width or bidi character must look different.
            problems.append(doc.problem(key_node, f"{what}: unknown key {show(key)}{suffix}"))
            continue
        items[key] = (key_node, value_node)
    return items


def kind(node: yaml.Node | None) -> str:
    if node is None:
        return "nothing"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "null"
    if node.tag in (_INT, _FLOAT):
        return "a number"
    if node.tag == _BOOL:
        return "a boolean"
    return "a string"


def string(doc: Doc, node: yaml.Node, what: str, problems: list[Problem]) -> str | None:
    """A scalar's source text. Numbers are accepted as text (tags such as 1.20 are strings)."""
    if not isinstance(node, yaml.ScalarNode) or node.tag in (_NULL, _BOOL):
        message = f"{what} must be a string, not {kind(node)}"
        if isinstance(node, yaml.ScalarNode) and node.value.strip():
            # `on`, `yes`, `off`, `null`, `~`: YAML 1.1 words, not the text they look like.
            read_as = "no value" if node.tag == _NULL else kind(node)
            message += f": YAML reads {node.value} as {read_as}; quote it: '{node.value}'"
        problems.append(doc.problem(node, message))
        return None
    if node.tag == _TIMESTAMP:
        problems.append(
            doc.problem(
                node,
                f"{what} must be a string, not a date: YAML reads {node.value} as a date; "
                f"quote it: '{node.value}'",
            )
        )
        return None
    if node.tag not in (_STR, _INT, _FLOAT):
        problems.append(doc.problem(node, f"{what}: unsupported YAML tag {node.tag}"))
        return None
    return node.value


def integer(doc: Doc, node: yaml.Node, what: str, problems: list[Problem]) -> int | None:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _INT:
        problems.append(doc.problem(node, f"{what} must be a whole number, not {kind(node)}"))
        return None
    try:
        return int(node.value.replace("_", ""), 0)
    except ValueError:
        problems.append(doc.problem(node, f"{what} must be a whole number"))
        return None


def integer_in(
    doc: Doc, node: yaml.Node, what: str, low: int, high: int, problems: list[Problem]
) -> int | None:
    """A whole number from `low` to `high`, or None with a problem appended."""
    value = integer(doc, node, what, problems)
    if value is not None and not low <= value <= high:
        problems.append(doc.problem(node, f"{what} must be from {low} to {high}"))
        return None
    return value


def number_in(
    doc: Doc, node: yaml.Node, what: str, low: float, high: float, problems: list[Problem]
) -> float | None:
    """A whole or decimal number from `low` to `high` (seconds, say)."""
    if not isinstance(node, yaml.ScalarNode) or node.tag not in (_INT, _FLOAT):
        problems.append(doc.problem(node, f"{what} must be a number, not {kind(node)}"))
        return None
    try:
        value = float(node.value.replace("_", ""))
    except ValueError:
        problems.append(doc.problem(node, f"{what} must be a number"))
        return None
    if not low <= value <= high:
        problems.append(doc.problem(node, f"{what} must be from {low:g} to {high:g}"))
        return None
    return value


def boolean(doc: Doc, node: yaml.Node, what: str, problems: list[Problem]) -> bool | None:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _BOOL:
        problems.append(doc.problem(node, f"{what} must be true or false, not {kind(node)}"))
        return None
    return node.value.lower() in ("true", "yes", "on", "y")


def sequence(doc: Doc, node: yaml.Node, what: str, problems: list[Problem]) -> list[yaml.Node]:
    if not isinstance(node, yaml.SequenceNode):
        problems.append(doc.problem(node, f"{what} must be a list, not {kind(node)}"))
        return []
    return list(node.value)


def _closest(key: str, allowed: set[str]) -> str | None:
    found = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    return found[0] if found else None


MAX_DEPTH = 64  # nesting deeper than this is no configuration file anyone writes


def refuse_aliases(doc: Doc, root: yaml.Node) -> None:
    """Refuse a document that uses aliases (`*name`) or nests deeper than MAX_DEPTH.

    An alias is composed as the very node it names, so a tree walk that turns nodes into data
    expands each use: nine aliases of nine aliases make a billion strings, and an anchor that
    contains its own alias makes a loop. Files that are data (image-syncer's) have no need for
    them. Iterative, so the check itself cannot exhaust the stack.
    """
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            raise InputError(
                doc.problem(node, "YAML aliases (*name) are not allowed here; write the value out")
            )
        seen.add(id(node))
        if depth > MAX_DEPTH:
            raise InputError(doc.problem(node, f"nested deeper than {MAX_DEPTH} levels"))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
