"""Declarative sections of mirrors/relay.yaml, over `yamlnodes`, in the manner of pre-commit's
cfgv: a section is a dataclass plus a table of keys and readers, so adding a setting is one
line, and every section refuses unknown keys, reports every problem with its line, and keeps
the default for what is wrong.

A reader is a function ``(doc, node, what, problems) -> value | None``; None means "a problem
was appended" (or the value is absent), and the dataclass default stays.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import yaml

from relay.config import yamlnodes
from relay.errors import Problem

T = TypeVar("T")
V = TypeVar("V")

Reader = Callable[[yamlnodes.Doc, yaml.Node, str, list[Problem]], Any]
# After the fields are read: (the result, the document, the section's node, its items, problems).
Check = Callable[
    [Any, yamlnodes.Doc, yaml.Node, dict[str, tuple[yaml.Node, yaml.Node]], list[Problem]], None
]


@dataclass(frozen=True)
class Key:
    """One key of a section: its name in the file, how to read it, and the dataclass field it
    fills (the same name unless given)."""

    name: str
    read: Reader
    field: str | None = None


@dataclass(frozen=True)
class Section(Generic[T]):
    """A mapping in the settings file read into the dataclass ``cls``."""

    cls: type[T]
    keys: Sequence[Key]
    check: Check | None = None
    # Unknown keys worth more than "did you mean": {"access_key_id": "secrets come from ..."}.
    hints: Mapping[str, str] | None = None

    def read(self, doc: yamlnodes.Doc, node: yaml.Node, what: str, problems: list[Problem]) -> T:
        items = yamlnodes.mapping_items(
            doc, node, what, {k.name for k in self.keys}, problems, self.hints
        )
        values: dict[str, Any] = {}
        for key in self.keys:
            if key.name in items:
                value = key.read(doc, items[key.name][1], f"{what}.{key.name}", problems)
                if value is not None:
                    values[key.field or key.name] = value
        result = self.cls(**values)
        if self.check is not None:
            self.check(result, doc, node, items, problems)
        return result

    def __call__(
        self, doc: yamlnodes.Doc, node: yaml.Node, what: str, problems: list[Problem]
    ) -> T:
        """A section is a reader too, so sections nest."""
        return self.read(doc, node, what, problems)


# --- readers ------------------------------------------------------------------------------------


def text(pattern: re.Pattern[str] | None = None, hint: str = "") -> Reader:
    """A string; with ``pattern``, one that matches it whole (``hint`` says what is expected)."""

    def read(doc: yamlnodes.Doc, node: yaml.Node, what: str, problems: list[Problem]) -> Any:
        value = yamlnodes.string(doc, node, what, problems)
        if value is None:
            return None
        if pattern is not None and not pattern.fullmatch(value):
            problems.append(doc.problem(node, f"{what} {hint}".rstrip()))
            return None
        return value

    return read


def choice(*allowed: str, fold_upper: bool = False) -> Reader:
    def read(doc: yamlnodes.Doc, node: yaml.Node, what: str, problems: list[Problem]) -> Any:
        value = yamlnodes.string(doc, node, what, problems)
        if value is None:
            return None
        value = value.upper() if fold_upper else value
        if value not in allowed:
            problems.append(doc.problem(node, f"{what} must be one of {', '.join(allowed)}"))
            return None
        return value

    return read


def integer(low: int, high: int) -> Reader:
    def read(doc: yamlnodes.Doc, node: yaml.Node, what: str, problems: list[Problem]) -> Any:
        return yamlnodes.integer_in(doc, node, what, low, high, problems)

    return read


def number(low: float, high: float) -> Reader:
    def read(doc: yamlnodes.Doc, node: yaml.Node, what: str, problems: list[Problem]) -> Any:
        return yamlnodes.number_in(doc, node, what, low, high, problems)

    return read


def boolean() -> Reader:
    def read(doc: yamlnodes.Doc, node: yaml.Node, what: str, problems: list[Problem]) -> Any:
        return yamlnodes.boolean(doc, node, what, problems)

    return read


def list_of(item: Reader) -> Reader:
    """A YAML list, each element read by ``item``; a tuple of the elements that read well."""

    def read(doc: yamlnodes.Doc, node: yaml.Node, what: str, problems: list[Problem]) -> Any:
        out = []
        for element in yamlnodes.sequence(doc, node, what, problems):
            value = item(doc, element, f"{what} entry", problems)
            if value is not None:
                out.append(value)
        return tuple(out)

    return read


def map_of(value: Reader, key: Reader | None = None) -> Reader:
    """A mapping whose keys are data (host names, say), not settings; values read by ``value``,
    keys (strings) checked by ``key`` when given."""

    def read(doc: yamlnodes.Doc, node: yaml.Node, what: str, problems: list[Problem]) -> Any:
        items = yamlnodes.mapping_items(doc, node, what, _AnyKey(), problems)
        out: dict[str, Any] = {}
        for name, (key_node, value_node) in items.items():
            if key is not None and key(doc, key_node, f"{what} key", problems) is None:
                continue
            got = value(doc, value_node, f"{what}.{name}", problems)
            if got is not None:
                out[name] = got
        return out

    return read


def where(reader: Reader, test: Callable[[Any], str | None]) -> Reader:
    """``reader``, then ``test(value)``: None if the value is fine, else what is wrong."""

    def read(doc: yamlnodes.Doc, node: yaml.Node, what: str, problems: list[Problem]) -> Any:
        value = reader(doc, node, what, problems)
        if value is None:
            return None
        wrong = test(value)
        if wrong is not None:
            problems.append(doc.problem(node, f"{what} {wrong}"))
            return None
        return value

    return read


class _AnyKey(set[str]):
    """Accepts every key: for maps whose keys are data, not settings."""

    def __contains__(self, item: object) -> bool:
        return True


def defaults(sections: Mapping[str, Section[Any]]) -> dict[str, Any]:
    """Each section's dataclass with every default: what an absent section means."""
    return {name: section.cls() for name, section in sections.items()}
