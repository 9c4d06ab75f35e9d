"""README.zh-CN.md is the whole README.md in Chinese; this keeps the two from drifting apart.

Both files are reduced to a skeleton: their headings (level only: the text is translated) and
their fenced code blocks, in order. The skeletons must be equal:

* the same number of headings at each level, in the same order, with the code blocks between
  them in the same places;
* each code block has the same language, and the same lines once comments are set aside:
  - in `sh`/`bash`/`console`/`shell`, `yaml`, `toml` and `Dockerfile` blocks a `#` comment (at
    the start of a line or after a space, outside quotes) may be translated, so comments are
    dropped and every command, key and value must be identical;
  - every other block (untagged program output, the workflow diagram, the source tree, JSON) is
    compared line for line: it is what relay prints or what a file holds, so it stays in English.

A difference fails with the first section where the files diverge, named in both languages, so
whoever changed README.md knows which part of README.zh-CN.md to re-translate. Links are checked
too: every `#anchor` must name a heading of the same file (GitHub's slugs), every relative link
an existing file, and each file links to the other at its top.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = ROOT / "README.md"
CHINESE = ROOT / "README.zh-CN.md"

# Languages whose `#` starts a comment that a translation may reword.
COMMENTED = frozenset({"sh", "bash", "console", "shell", "yaml", "yml", "toml", "dockerfile"})
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


@dataclass(frozen=True)
class Part:
    """One element of a document's skeleton: a heading or a fenced code block."""

    kind: Literal["heading", "code"]
    line: int  # 1-based line of the heading or of the opening fence
    level: int = 0  # a heading's level
    title: str = ""  # a heading's text
    lang: str = ""  # a code block's language, lower case
    lines: tuple[str, ...] = ()  # a code block's lines, comments dropped where allowed
    section: str = ""  # the heading this part is under

    def key(self) -> tuple[object, ...]:
        """What must be equal in both files."""
        if self.kind == "heading":
            return ("heading", self.level)
        return ("code", self.lang, self.lines)

    def describe(self) -> str:
        if self.kind == "heading":
            return f"a level-{self.level} heading {self.title!r}"
        return f"a {self.lang or 'plain'} code block"


def strip_comment(line: str) -> str:
    """`line` without a `#` comment: one that starts the line or follows a space, outside
    single or double quotes (so `'\\.sig$'`, `"a#b"` and `robot$ci` are left alone)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def skeleton(text: str) -> list[Part]:
    parts: list[Part] = []
    section = "(top)"
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence:
            start, indent, marker = i, fence["indent"], fence["fence"]
            lang = fence["info"].strip().split(" ")[0].lower() if fence["info"].strip() else ""
            body: list[str] = []
            i += 1
            while i < len(lines):
                close = lines[i].strip()
                if close.startswith(marker[0] * len(marker)) and not close.strip(marker[0]):
                    break
                raw = lines[i]
                body.append(raw[len(indent) :] if raw.startswith(indent) else raw.lstrip())
                i += 1
            kept = (strip_comment(b) if lang in COMMENTED else b.rstrip() for b in body)
            parts.append(
                Part(
                    "code",
                    start + 1,
                    lang=lang,
                    lines=tuple(k for k in kept if k.strip()),
                    section=section,
                )
            )
            i += 1
            continue
        heading = _HEADING.match(lines[i])
        if heading:
            section = heading[2]
            parts.append(
                Part("heading", i + 1, level=len(heading[1]), title=heading[2], section=section)
            )
        i += 1
    return parts


def drift(english: str, chinese: str) -> str | None:
    """None when the skeletons agree, else where and how they first differ."""
    en, zh = skeleton(english), skeleton(chinese)
    for index in range(max(len(en), len(zh))):
        a = en[index] if index < len(en) else None
        b = zh[index] if index < len(zh) else None
        if a is not None and b is not None and a.key() == b.key():
            continue
        where = _where(a, b, en, zh, index)
        if a is None or b is None:
            longer, name = (a, "README.md") if b is None else (b, "README.zh-CN.md")
            assert longer is not None
            return f"{where}: only {name} goes on, with {longer.describe()} at line {longer.line}"
        if a.kind != b.kind or a.kind == "heading" or a.lang != b.lang:
            return (
                f"{where}: README.md:{a.line} has {a.describe()}, README.zh-CN.md:{b.line} has "
                f"{b.describe()}"
            )
        return f"{where}: the code blocks differ: {_first_difference(a, b)}"
    return None


def _where(a: Part | None, b: Part | None, en: list[Part], zh: list[Part], index: int) -> str:
    """The section each file is in at `index`: the last heading the two still agreed on."""

    def section(parts: list[Part], part: Part | None) -> str:
        if part is not None:
            return part.section if part.kind == "code" else _previous(parts, index)
        return parts[-1].section if parts else "(top)"

    return (
        f"README.zh-CN.md has drifted from README.md in section {section(en, a)!r} "
        f"(zh: {section(zh, b)!r})"
    )


def _previous(parts: list[Part], index: int) -> str:
    before = [p for p in parts[:index] if p.kind == "heading"]
    return before[-1].title if before else "(top)"


def _first_difference(a: Part, b: Part) -> str:
    for offset, (x, y) in enumerate(zip(a.lines, b.lines, strict=False)):
        if x != y:
            return f"README.md code line {offset + 1} {x!r} vs README.zh-CN.md {y!r}"
    shorter = "README.zh-CN.md" if len(a.lines) > len(b.lines) else "README.md"
    line = (a.lines if shorter == "README.zh-CN.md" else b.lines)[min(len(a.lines), len(b.lines))]
    return f"{shorter} lacks the line {line!r} (README.md:{a.line}, README.zh-CN.md:{b.line})"


def github_slug(title: str) -> str:
    """The anchor GitHub gives a heading (github-slugger): lower case, everything but letters,
    digits, marks, `-`, `_` and spaces removed (CJK punctuation too), spaces to `-`."""
    kept = (c for c in title.lower() if c in "-_ " or unicodedata.category(c)[0] in "LNM")
    return "".join(kept).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for part in skeleton(text):
        if part.kind != "heading":
            continue
        slug = github_slug(part.title)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def broken_links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    known = anchors(text)
    outside_code = "\n".join(line for line in _without_code(text.splitlines()))
    broken = []
    for match in _LINK.finditer(outside_code):
        target = match["target"]
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, fragment = target.partition("#")
        if not file and fragment not in known:
            broken.append(f"{path.name}: #{fragment} names no heading of this file")
        elif file and not (path.parent / file).exists():
            broken.append(f"{path.name}: {file} does not exist")
    return broken


def _without_code(lines: list[str]) -> list[str]:
    out, fence = [], ""
    for line in lines:
        match = _FENCE.match(line)
        if match and not fence:
            fence = match["fence"]
        elif fence and line.strip().startswith(fence):
            fence = ""
        elif not fence:
            out.append(line)
    return out


# --- the two READMEs ---------------------------------------------------------------------------


def test_the_chinese_readme_has_the_same_sections_and_commands() -> None:
    assert CHINESE.exists(), "README.zh-CN.md is missing"
    english = ENGLISH.read_text(encoding="utf-8")
    chinese = CHINESE.read_text(encoding="utf-8")
    problem = drift(english, chinese)
    assert problem is None, problem + " (re-translate that part of README.zh-CN.md)"
    # Not vacuous: both have their headings and their code.
    parts = skeleton(english)
    assert sum(p.kind == "heading" for p in parts) > 30
    assert sum(p.kind == "code" for p in parts) > 25


@pytest.mark.parametrize("path", [ENGLISH, CHINESE], ids=["en", "zh"])
def test_links_and_anchors_resolve(path: Path) -> None:
    assert broken_links(path) == []


def test_each_links_to_the_other_at_the_top() -> None:
    english_top = ENGLISH.read_text(encoding="utf-8").splitlines()[:5]
    chinese_top = CHINESE.read_text(encoding="utf-8").splitlines()[:5]
    assert any("](README.zh-CN.md)" in line for line in english_top), english_top
    assert any("](README.md)" in line for line in chinese_top), chinese_top


# --- the check itself can fail -----------------------------------------------------------------


def test_a_deleted_heading_is_named() -> None:
    chinese = CHINESE.read_text(encoding="utf-8")
    headings = [p for p in skeleton(chinese) if p.kind == "heading" and p.level == 3]
    gone = headings[len(headings) // 2]
    lines = chinese.splitlines()
    del lines[gone.line - 1]
    problem = drift(ENGLISH.read_text(encoding="utf-8"), "\n".join(lines))
    assert problem is not None
    assert "README.zh-CN.md has drifted from README.md in section" in problem
    # The section named is the one the heading stood in: the English and the Chinese title.
    english_parts = skeleton(ENGLISH.read_text(encoding="utf-8"))
    index = skeleton(chinese).index(gone)
    assert repr(_previous(english_parts, index)) in problem, problem


def test_a_changed_command_is_named_with_both_lines() -> None:
    english = ENGLISH.read_text(encoding="utf-8")
    chinese = CHINESE.read_text(encoding="utf-8")
    changed = chinese.replace("make test   #", "make tests  #", 1)
    assert changed != chinese
    problem = drift(english, changed)
    assert problem is not None
    assert "the code blocks differ: README.md code line 2 'make test' vs README.zh-CN.md " in (
        problem
    ), problem
    quick_start = next(p for p in skeleton(english) if p.kind == "code" and "make demo" in p.lines)
    assert repr(quick_start.section) in problem, problem


def test_translated_comments_are_not_drift() -> None:
    english = "# T\n\n```yaml\nkey: 'a#b'   # a comment\n# whole line\n```\n"
    chinese = "# 标题\n\n```yaml\nkey: 'a#b'   # 注释\n```\n"
    assert drift(english, chinese) is None
    assert drift(english, chinese.replace("'a#b'", "'a#c'")) is not None
    # Untagged blocks (what relay prints) are compared as they are.
    assert drift("```\nrelay: ok\n```\n", "```\nrelay: 好\n```\n") is not None


def test_github_slugs() -> None:
    assert github_slug("A protected `main`") == "a-protected-main"
    assert (
        github_slug("Alibaba Cloud credentials: OIDC (recommended) or an AccessKey")
        == "alibaba-cloud-credentials-oidc-recommended-or-an-accesskey"
    )
    assert (
        github_slug("The mirrors list: `mirrors/images.yaml`")
        == "the-mirrors-list-mirrorsimagesyaml"
    )
    assert github_slug("1. 复刻并启用工作流") == "1-复刻并启用工作流"
    assert github_slug("阿里云凭证：OIDC（推荐）或 AccessKey") == "阿里云凭证oidc推荐或-accesskey"
