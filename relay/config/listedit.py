"""Adding images to `mirrors/images.yaml` by editing its text, for `relay import`.

The list is a file people edit and review: a YAML dumper would drop its comments, reorder
keys and restyle every line. So the edits here are insertions at positions the YAML parser
reports (node marks): a tag appended to an entry's `tags:` list (flow `[…]` or block `- …`),
a platform to its `platforms:`, a missing `tags:`/`select:` line after `source:`, and new
entries after the last one, in the list's own indentation and line endings. Nothing that is
there changes. The result is validated like any list before it is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from relay import platforms as platform_rules
from relay import reference
from relay.config import naming, yamlnodes
from relay.config.imports import Wanted
from relay.errors import InputError, Problem


@dataclass
class Change:
    kind: str  # "added", "merged"
    source: str
    what: list[str]

    def __str__(self) -> str:
        return f"{self.kind:<7} {self.source}: {'; '.join(self.what)}"


@dataclass
class Edit:
    text: str
    changes: list[Change] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)


def merge(
    text: str,
    path: str,
    wanted: list[Wanted],
    *,
    max_name_length: int = naming.DEFAULT_MAX_LENGTH,
    prefixes: Mapping[str, str] | None = None,
    comment: str = "",
) -> Edit:
    """``text`` with ``wanted`` merged in: tags and platforms into the entries that have the
    source already, new entries after the last one (with a `name:` where the derived one is
    taken or too long)."""
    newline = "\r\n" if "\r\n" in text else "\n"
    root = yamlnodes.compose(text, path)
    doc = yamlnodes.Doc(path)
    problems: list[Problem] = []
    if root is None:
        root_items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    else:
        yamlnodes.refuse_aliases(doc, root)  # as the mirrors list: an alias expands per use
        root_items = yamlnodes.mapping_items(doc, root, "the file", {"images"}, problems)
    if problems:
        raise InputError(problems)
    images = root_items.get("images", (None, None))[1]
    entries = list(images.value) if isinstance(images, yaml.SequenceNode) else []

    existing: dict[str, yaml.MappingNode] = {}
    taken: set[str] = set()
    for node in entries:
        if not isinstance(node, yaml.MappingNode):
            continue
        items = {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        source = items.get("source", (None, None))[1]
        if not isinstance(source, yaml.ScalarNode):
            continue
        try:
            ref = reference.parse_repository(source.value)
        except ValueError:
            continue
        existing.setdefault(ref.name, node)
        name = items.get("name", (None, None))[1]
        taken.add(name.value if isinstance(name, yaml.ScalarNode) else naming.derive(ref, prefixes))

    inserts: list[tuple[int, str]] = []
    out = Edit(text)
    new: list[Wanted] = []
    for w in wanted:
        node = existing.get(w.source.name)
        if node is None:
            new.append(w)
        else:
            _merge_entry(text, newline, node, w, inserts, out)

    if new:
        block = _new_entries(
            text, newline, images, entries, new, max_name_length, prefixes, taken, comment, out
        )
        if isinstance(images, yaml.SequenceNode) and images.flow_style and not entries:
            # `images: []`: the new block list replaces the empty flow list.
            start = images.start_mark.index
            while start > 0 and text[start - 1] in " \t":  # `images: []` → `images:`
                start -= 1
            inserts.append((start, "\0" * (images.end_mark.index - start)))
            inserts.append((len(text), block))
        elif images is None and "images" not in root_items:
            prefix = "" if not text or text.endswith(("\n", "\r")) else newline
            inserts.append((len(text), f"{prefix}images:{newline}{block}"))
        else:
            inserts.append((len(text), block))
    out.text = _apply(text, inserts)
    return out


def _merge_entry(
    text: str,
    newline: str,
    node: yaml.MappingNode,
    w: Wanted,
    inserts: list[tuple[int, str]],
    out: Edit,
) -> None:
    items = {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    what: list[str] = []
    tags_node = items.get("tags", (None, None))[1]
    have: set[str] = set()
    if isinstance(tags_node, yaml.SequenceNode):
        have = {str(t.value).partition("@")[0] for t in tags_node.value}
    new_tags = [t for t in w.tags if t.partition("@")[0] not in have]
    if new_tags:
        if isinstance(tags_node, yaml.SequenceNode):
            _append_items(text, newline, tags_node, [_quote(t) for t in new_tags], inserts)
        else:
            _add_key(text, newline, node, f"tags: [{', '.join(map(_quote, new_tags))}]", inserts)
        what.append("tags " + ", ".join(new_tags))
    platforms_node = items.get("platforms", (None, None))[1]
    if isinstance(platforms_node, yaml.SequenceNode) and w.wanted_platforms:
        have_p = [str(p.value) for p in platforms_node.value]
        new_p = [p for p in w.wanted_platforms if not platform_rules.contains(have_p, p)]
        if new_p:
            _append_items(text, newline, platforms_node, new_p, inserts)
            what.append("platforms " + ", ".join(new_p))
    elif isinstance(platforms_node, yaml.SequenceNode) and w.any_platform:
        out.notes.append(
            Problem(
                "",
                yamlnodes.line_of(platforms_node),
                f"{w.spelled}: the import asks for every platform; the entry's platforms: "
                "list is kept",
            )
        )
    elif platforms_node is None and w.wanted_platforms:
        out.notes.append(
            Problem(
                "",
                yamlnodes.line_of(node),
                f"{w.spelled}: the list's entry has every platform; the import's "
                f"{', '.join(w.wanted_platforms)} narrows nothing",
            )
        )
    rule = _select_text(w)
    if rule is not None:
        if "select" in items:
            out.notes.append(
                Problem(
                    "",
                    yamlnodes.line_of(node),
                    f"{w.spelled}: the entry has a select: already; kept it (the import asked "
                    f"for {rule})",
                )
            )
        else:
            _add_key(text, newline, node, f"select: {rule}", inserts)
            what.append(f"select {rule}")
    if what:
        out.changes.append(Change("merged", w.source.name, what))


def _new_entries(
    text: str,
    newline: str,
    images: yaml.Node | None,
    entries: list[yaml.Node],
    new: list[Wanted],
    max_length: int,
    prefixes: Mapping[str, str] | None,
    taken: set[str],
    comment: str,
    out: Edit,
) -> str:
    dash = "  - "
    if entries:
        first = entries[0]
        line_start = text.rfind("\n", 0, first.start_mark.index) + 1
        dash = text[line_start : first.start_mark.index]
        if dash.strip() != "-":
            dash = " " * (first.start_mark.column - 2) + "- "
    indent = " " * len(dash)
    lines: list[str] = []
    if comment:
        lines.append(f"{dash[:-2]}# {comment}")
    for w in new:
        what: list[str] = []
        lines.append(f"{dash}source: {w.spelled}")
        derived = naming.derive(w.source, prefixes)
        if naming.check(derived, max_length) is not None or derived in taken:
            name = naming.suggest(w.source, max_length, taken, prefixes)
            lines.append(f"{indent}name: {name}")
            why = "taken" if derived in taken else "not a valid name"
            what.append(f"name {name} (the derived {derived} is {why})")
        else:
            name = derived
        taken.add(name)
        rule = _select_text(w)
        tags = w.tags if rule != "{all: true}" else []
        if tags:
            lines.append(f"{indent}tags: [{', '.join(map(_quote, tags))}]")
            what.append("tags " + ", ".join(tags))
        if w.wanted_platforms:
            lines.append(f"{indent}platforms: [{', '.join(w.wanted_platforms)}]")
            what.append("platforms " + ", ".join(w.wanted_platforms))
        if rule is not None:
            lines.append(f"{indent}select: {rule}")
            what.append(f"select {rule}")
        out.changes.append(Change("added", w.source.name, what))
    lead = "" if not text or text.endswith(("\n", "\r")) else newline
    return lead + newline.join(lines) + newline


def _select_text(w: Wanted) -> str | None:
    if w.all_tags:
        return "{all: true}"
    if w.include is not None:
        return "{include: " + _single_quoted(w.include) + "}"
    return None


def _append_items(
    text: str,
    newline: str,
    seq: yaml.SequenceNode,
    values: list[str],
    inserts: list[tuple[int, str]],
) -> None:
    if seq.flow_style or not seq.value:
        # `[a, b]`: before the closing bracket.
        close = seq.end_mark.index - 1
        lead = ", " if seq.value else ""
        inserts.append((close, lead + ", ".join(values)))
        return
    first, last = seq.value[0], seq.value[-1]
    line_start = text.rfind("\n", 0, first.start_mark.index) + 1
    prefix = text[line_start : first.start_mark.index]
    if prefix.strip() != "-":
        prefix = " " * (first.start_mark.column - 2) + "- "
    end = _line_end(text, last.end_mark.index)
    inserts.append((end, "".join(f"{newline}{prefix}{v}" for v in values)))


def _add_key(
    text: str, newline: str, node: yaml.MappingNode, line: str, inserts: list[tuple[int, str]]
) -> None:
    """A new `key: value` in an entry: in a flow mapping before its `}`, else a line of its
    own right after the `source:` line, at the column of the entry's keys."""
    if node.flow_style:
        inserts.append((node.end_mark.index - 1, f", {line}"))
        return
    source_key, source_value = next(
        (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "source"
    )
    end = _line_end(text, source_value.end_mark.index)
    inserts.append((end, f"{newline}{' ' * source_key.start_mark.column}{line}"))


def _line_end(text: str, index: int) -> int:
    end = text.find("\n", index)
    if end < 0:
        return len(text)
    return end - 1 if end > 0 and text[end - 1] == "\r" else end


def _apply(text: str, inserts: list[tuple[int, str]]) -> str:
    # "\0" * n at a position means: delete n characters there (the empty `[]`).
    out = text
    for index, piece in sorted(inserts, key=lambda x: x[0], reverse=True):
        if piece and set(piece) == {"\0"}:
            out = out[:index] + out[index + len(piece) :]
        else:
            out = out[:index] + piece + out[index:]
    return out


def _quote(tag: str) -> str:
    # Tags keep their spelling: "1.20" is the tag 1.20, not the number 1.2.
    return json.dumps(tag)


def _single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
