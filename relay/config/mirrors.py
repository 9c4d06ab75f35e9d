"""The mirrors list, `mirrors/images.yaml`: what the team wants relayed.

The list is a security boundary: its values end up in Dockerfiles built on machines that hold
credentials. Every value is therefore checked against a strict grammar here, every unknown or
duplicate key is an error, and every error names its file and line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from relay import platforms as platforms_rule
from relay import reference, untrusted
from relay.config import naming, selection, yamlnodes
from relay.errors import InputError, Problem

LIST_FILE = "mirrors/images.yaml"

ENTRY_KEYS = {"source", "tags", "name", "platforms", "select"}
SELECT_KEYS = {"semver", "include", "exclude", "latest", "all"}


@dataclass(frozen=True)
class TagSpec:
    """One explicit tag; `digest` is set when it was pinned inline as TAG@sha256:HEX."""

    tag: str
    digest: str | None
    line: int


@dataclass(frozen=True)
class Entry:
    source: reference.Reference  # repository only: no tag, no digest
    target: str  # the target repository name, derived or from `name:`
    tags: tuple[TagSpec, ...]
    platforms: tuple[str, ...]
    select: selection.Selection | None
    line: int
    explicit_name: bool


@dataclass(frozen=True)
class MirrorList:
    path: str
    entries: tuple[Entry, ...]

    def by_source(self) -> dict[str, Entry]:
        return {e.source.name: e for e in self.entries}


def load(
    repo: Path,
    *,
    max_name_length: int = naming.DEFAULT_MAX_LENGTH,
    prefixes: Mapping[str, str] | None = None,
) -> MirrorList:
    text = untrusted.read_repo_text(repo, LIST_FILE)  # a regular file inside repo, capped
    if text is None:
        raise InputError(Problem(LIST_FILE, None, "no mirrors list here (is --repo right?)"))
    return parse(text, LIST_FILE, max_name_length=max_name_length, prefixes=prefixes)


def parse(
    text: str,
    path: str,
    *,
    max_name_length: int = naming.DEFAULT_MAX_LENGTH,
    prefixes: Mapping[str, str] | None = None,
) -> MirrorList:
    """Parse and validate the whole list, reporting every problem at once. Target names may be
    ``max_name_length`` characters long (the settings' naming.max_length) and derive with the
    settings' ``naming.prefixes``."""
    doc = yamlnodes.Doc(path)
    root = yamlnodes.compose(text, path)
    problems: list[Problem] = []
    if root is None:
        raise InputError(Problem(path, None, "the file is empty; it needs an 'images:' list"))
    # An alias is the node it names: 2,000 tags aliased 2,000 times are 4M tags from 230 KB.
    yamlnodes.refuse_aliases(doc, root)
    top = yamlnodes.mapping_items(doc, root, "the file", {"images"}, problems)
    if "images" not in top:
        if not problems:
            problems.append(doc.problem(root, "missing 'images:' list"))
        raise InputError(problems)
    drafts: list[_Draft] = []
    for node in yamlnodes.sequence(doc, top["images"][1], "images", problems):
        draft = _entry(doc, node, max_name_length, prefixes, problems)
        if draft is not None:
            drafts.append(draft)
    # Every entry whose source and name are known takes part, even one with a bad tag: one
    # round of fixes must be enough.
    _check_unique(doc, drafts, max_name_length, prefixes, problems)
    if problems:
        raise InputError(sorted(problems, key=lambda p: (p.line or 0, p.message)))
    return MirrorList(path, tuple(d.entry for d in drafts))


@dataclass(frozen=True)
class _Draft:
    """An entry as far as it could be read; ``name_problem`` is set when the derived name is
    not valid (the suggestion needs the whole list, so it is made later)."""

    entry: Entry
    source_node: yaml.Node
    name_problem: str | None = None


def _entry(
    doc: yamlnodes.Doc,
    node: yaml.Node,
    max_length: int,
    prefixes: Mapping[str, str] | None,
    problems: list[Problem],
) -> _Draft | None:
    before = len(problems)
    items = yamlnodes.mapping_items(doc, node, "image entry", ENTRY_KEYS, problems)
    if not isinstance(node, yaml.MappingNode):
        return None
    # A mistyped key (`tag:`) already explains a missing `tags:`; don't pile on.
    bad_keys = len(problems) > before
    if "source" not in items:
        problems.append(doc.problem(node, "image entry: missing 'source:'"))
        return None
    source_node = items["source"][1]
    text = yamlnodes.string(doc, source_node, "source", problems)
    source: reference.Reference | None = None
    if text is not None:
        try:
            source = reference.parse_repository(text)
        except ValueError as exc:
            problems.append(doc.problem(source_node, f"source '{_show(text)}': {exc}"))
        else:
            why = naming.host_case_problem(source.domain)
            if why is not None:
                lowered = source.domain.lower() + text[len(source.domain) :]
                problems.append(
                    doc.problem(
                        source_node, f"source '{_show(text)}': {why}; did you mean '{lowered}'?"
                    )
                )
                source = None

    tags = _tags(doc, items, problems)
    platforms = _platforms(doc, items, problems)
    select = _select(doc, items, problems)
    if "tags" not in items and "select" not in items and not bad_keys:
        problems.append(doc.problem(node, "image entry: needs 'tags:', 'select:' or both"))

    target = None
    name_problem = None
    explicit = "name" in items
    if explicit:
        name_node = items["name"][1]
        target = yamlnodes.string(doc, name_node, "name", problems)
        if target is not None:
            why = naming.check(target, max_length)
            if why:
                problems.append(doc.problem(name_node, f"name: {why}"))
    elif source is not None:
        target = naming.derive(source, prefixes)
        name_problem = naming.check(target, max_length)
    if source is None or target is None:
        return None
    entry = Entry(
        source=source,
        target=target,
        tags=tuple(tags),
        platforms=tuple(platforms),
        select=select,
        line=yamlnodes.line_of(node),
        explicit_name=explicit,
    )
    return _Draft(entry, source_node, name_problem)


def _tags(doc: yamlnodes.Doc, items: dict, problems: list[Problem]) -> list[TagSpec]:
    if "tags" not in items:
        return []
    tags: list[TagSpec] = []
    seen: dict[str, int] = {}
    nodes = yamlnodes.sequence(doc, items["tags"][1], "tags", problems)
    if isinstance(items["tags"][1], yaml.SequenceNode) and not nodes:
        problems.append(doc.problem(items["tags"][1], "tags: the list is empty"))
    for tag_node in nodes:
        text = yamlnodes.string(doc, tag_node, "tag", problems)
        if text is None:
            continue
        tag, sep, digest = text.partition("@")
        if not reference.is_valid_tag(tag):
            problems.append(
                doc.problem(
                    tag_node,
                    f"tag '{_show(tag)}' is not a valid tag: 1-128 characters of letters, "
                    "digits, '_', '.' and '-', not starting with '.' or '-'",
                )
            )
            continue
        if sep and not (digest.startswith("sha256:") and reference.is_valid_digest(digest)):
            problems.append(
                doc.problem(
                    tag_node,
                    f"tag '{tag}': pin '{_show(digest)}' is not a digest of the form "
                    "sha256:<64 lower-case hex digits>",
                )
            )
            continue
        line = yamlnodes.line_of(tag_node)
        if tag in seen:
            problems.append(
                doc.problem(tag_node, f"duplicate tag '{tag}' (first at line {seen[tag]})")
            )
            continue
        seen[tag] = line
        tags.append(TagSpec(tag, digest or None, line))
    return tags


def _platforms(doc: yamlnodes.Doc, items: dict, problems: list[Problem]) -> list[str]:
    if "platforms" not in items:
        return []
    platforms: list[str] = []
    for p_node in yamlnodes.sequence(doc, items["platforms"][1], "platforms", problems):
        text = yamlnodes.string(doc, p_node, "platform", problems)
        if text is None:
            continue
        why = platforms_rule.problem(text)
        if why is not None:
            problems.append(doc.problem(p_node, f"platform '{_show(text)}' {why}"))
            continue
        same = next((p for p in platforms if platforms_rule.same(p, text)), None)
        if same is not None:
            shown = f"duplicate platform '{text}'"
            if same != text:
                shown += f" ('{same}' is the same platform: {platforms_rule.parse(text)})"
            problems.append(doc.problem(p_node, shown))
        else:
            platforms.append(text)
    return platforms


def _select(doc: yamlnodes.Doc, items: dict, problems: list[Problem]) -> selection.Selection | None:
    if "select" not in items:
        return None
    node = items["select"][1]
    rules = yamlnodes.mapping_items(doc, node, "select", SELECT_KEYS, problems)
    if isinstance(node, yaml.MappingNode) and not rules and not node.value:
        problems.append(
            doc.problem(node, "select: give at least one of " + ", ".join(sorted(SELECT_KEYS)))
        )
    values: dict = {}
    for key in ("semver", "include", "exclude"):
        if key not in rules:
            continue
        rule_node = rules[key][1]
        text = yamlnodes.string(doc, rule_node, f"select.{key}", problems)
        if text is None:
            continue
        try:
            if key == "semver":
                values[key] = selection.parse_range(text)
            else:
                values[key] = selection.compile_regex(text)
        except selection.RuleError as exc:
            problems.append(doc.problem(rule_node, f"select.{key}: {exc}"))
    if "latest" in rules:
        n = yamlnodes.integer_in(
            doc, rules["latest"][1], "select.latest", 1, selection.MAX_LATEST, problems
        )
        if n is not None:
            values["latest"] = n
    if "all" in rules:
        all_node = rules["all"][1]
        every = yamlnodes.boolean(doc, all_node, "select.all", problems)
        narrowing = sorted(k for k in ("semver", "include", "latest") if k in rules)
        if every is False:
            problems.append(
                doc.problem(all_node, "select.all: false selects nothing; remove the key")
            )
        elif every and narrowing:
            problems.append(
                doc.problem(
                    all_node,
                    f"select.all: true takes every tag, but {', '.join(narrowing)} narrows it; "
                    "keep one or the other (all: true goes with exclude only)",
                )
            )
        elif every:
            values["all"] = True
    if "exclude" in rules and not any(k in rules for k in ("all", "semver", "include", "latest")):
        # exclude only narrows: alone it would take every other tag, which all: true opts into.
        problems.append(
            doc.problem(
                rules["exclude"][0],
                "select.exclude narrows a selection but there is none; add all: true to take "
                "every other tag, or semver, include or latest",
            )
        )
        return None
    return selection.Selection(**values)


def _check_unique(
    doc: yamlnodes.Doc,
    drafts: list[_Draft],
    max_length: int,
    prefixes: Mapping[str, str] | None,
    problems: list[Problem],
) -> None:
    """Duplicate sources, colliding names and derived names ACR would refuse. Every suggested
    `name:` is unused in the list, including by the other suggestions made here."""
    by_source: dict[str, Entry] = {}
    by_target: dict[str, Entry] = {}
    taken = {d.entry.target for d in drafts}

    def hint(entry: Entry) -> str:
        name = naming.suggest(entry.source, max_length, taken, prefixes)
        taken.add(name)
        return name

    for draft in drafts:
        entry = draft.entry
        first = by_source.get(entry.source.name)
        if first is not None:
            problems.append(
                Problem(
                    doc.path,
                    entry.line,
                    f"duplicate entry for {entry.source.name} (first at line {first.line}); "
                    "merge the tags into one entry",
                )
            )
            continue
        by_source[entry.source.name] = entry
        if draft.name_problem is not None:
            problems.append(
                doc.problem(
                    draft.source_node,
                    f"target name {draft.name_problem}; add 'name: {hint(entry)}' "
                    "(or another name) to this entry",
                )
            )
            continue
        other = by_target.get(entry.target)
        if other is not None:
            problems.append(
                Problem(
                    doc.path,
                    entry.line,
                    f"target name '{entry.target}' of {entry.source.name} collides with "
                    f"{other.source.name} (line {other.line}); add 'name: {hint(entry)}' "
                    "(or another unused name) to one of them",
                )
            )
            continue
        by_target[entry.target] = entry


def _show(text: str) -> str:
    """Quote user input safely in a message: no raw newlines or control characters."""
    shown = text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 80 else shown[:77] + "..."
