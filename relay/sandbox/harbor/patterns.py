"""Name matching and namespace mapping as Harbor's replication does them.

* :func:`match`: ``util.Match`` (``src/pkg/reg/util/pattern.go``), i.e. bmatcuk/doublestar v1
  ``Match``: ``*`` and ``?`` stay inside one path component, ``**`` as a whole component spans
  any number of them, ``[...]`` classes, ``{a,b}`` alternatives, ``\\`` escapes; an empty
  pattern matches everything.
* :func:`specific_component`: ``util.IsSpecificPathComponent``, which decides whether the ali-acr
  adapter can skip listing namespaces.
* :func:`replace_namespace`: ``replaceNamespace`` in
  ``src/controller/replication/flow/stage.go`` (-1 legacy flatten-all, 0, N).
"""

from __future__ import annotations

import functools
import re


class PatternError(ValueError):
    """doublestar.ErrBadPattern."""


def _expand_braces(pattern: str) -> list[str]:
    """``a{b,c}d{e,f}`` -> the four literal-brace-free alternatives (nesting allowed)."""
    depth = 0
    start = -1
    for i, ch in enumerate(pattern):
        if ch == "\\":
            continue
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                inner = pattern[start + 1 : i]
                options: list[str] = []
                level = 0
                current = ""
                for c in inner:
                    if c == "," and level == 0:
                        options.append(current)
                        current = ""
                        continue
                    level += c == "{"
                    level -= c == "}"
                    current += c
                options.append(current)
                head, tail = pattern[:start], pattern[i + 1 :]
                out: list[str] = []
                for opt in options:
                    out.extend(_expand_braces(head + opt + tail))
                return out
    if depth != 0:
        raise PatternError("syntax error in pattern")
    return [pattern]


@functools.lru_cache(maxsize=512)
def _component_re(component: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(component):
        ch = component[i]
        if ch == "\\":
            i += 1
            if i >= len(component):
                raise PatternError("syntax error in pattern")
            out += re.escape(component[i])
        elif ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            j = component.find("]", i + 1)
            if j == -1:
                raise PatternError("syntax error in pattern")
            body = component[i + 1 : j]
            negate = body.startswith(("^", "!"))
            body = body[1:] if negate else body
            if not body:
                raise PatternError("syntax error in pattern")
            out += "[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]"
            i = j
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + r"\Z")


def _match_parts(pattern: list[str], name: list[str]) -> bool:
    if not pattern:
        return not name
    head = pattern[0]
    if head == "**":
        # zero or more whole components
        return any(_match_parts(pattern[1:], name[k:]) for k in range(len(name) + 1))
    if not name:
        return False
    if not _component_re(head).match(name[0]):
        return False
    return _match_parts(pattern[1:], name[1:])


def match(pattern: str, name: str) -> bool:
    """``util.Match``: doublestar over ``/``-separated components; "" matches everything."""
    if not pattern:
        return True
    for alternative in _expand_braces(pattern):
        if _match_parts(alternative.split("/"), name.split("/")):
            return True
    return False


def specific_component(component: str) -> list[str] | None:
    """``util.IsSpecificPathComponent``: the literal names a component stands for, or None."""
    if not component:
        return None
    if any(c in component for c in "*?[\\]^/"):
        return None
    if not any(c in component for c in "{},"):
        return [component]
    if component.count("{") > 1:
        return None
    i = component.find("{")
    j = component.rfind("}")
    if i == -1 or j == -1 or i > j:
        return None
    prefix, suffix = component[:i], component[j + 1 :]
    return [prefix + part + suffix for part in component[i + 1 : j].split(",")]


class FlatteningError(ValueError):
    """The 400 replaceNamespace returns when the replace count exceeds the path depth."""


def replace_namespace(repository: str, namespace: str, replace_count: int) -> str:
    """``replaceNamespace`` for a Harbor destination (RepositoryPathComponentTypeAtLeastTwo)."""
    if not namespace:
        # The count is ignored without a namespace (goharbor/harbor#19319).
        dst = repository
    else:
        components = repository.split("/")
        depth = len(components) - 1
        if replace_count < 0:  # legacy: flatten everything
            prefix = namespace
        elif replace_count > depth:
            go_list = "[" + " ".join(components[:depth]) + "]"
            raise FlatteningError(
                f'the source repository "{repository}" contains only {depth} path components '
                f"{go_list} excepting the last one, but the destination namespace flattening "
                f"level is {replace_count}"
            )
        else:
            prefix = "/".join([namespace, *components[replace_count:depth]])
        dst = "/".join(p for p in [*prefix.split("/"), components[-1]] if p)  # path.Join
    parts = dst.split("/")
    if len(parts) < 2:
        raise FlatteningError(
            f'the destination repository "{dst}" contains only {len(parts)} path components '
            f"[{' '.join(parts)}], but the destination registry requires at least 2"
        )
    return dst
