"""Regular expressions that users write (the list's `select.include`/`exclude`, image-syncer's
`/regex/` rules), compiled with Google's RE2: the one engine for every user-supplied pattern.

Why RE2 (the `google-re2` bindings): it matches in time linear in the input, so a pattern such
as `^(a+)+b$` cannot backtrack catastrophically against a long tag and hang `relay lock` or
`relay sync` (Python's `re` takes exponential time there). It is also the syntax of Go's
`regexp`, which image-syncer uses, so `relay sync` reads `/regex/` exactly as image-syncer does
(`\\d` is ASCII, `$` does not match before a final newline, no look-around or back-references).
A pattern RE2 cannot compile is refused with RE2's reason.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import re2

MAX_LENGTH = 256
# RE2 builds its automata within this memory; a pattern needing more is refused when compiled.
MAX_MEMORY = 8 << 20


class PatternError(ValueError):
    """A pattern that is too long or that RE2 cannot compile; the message says why."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own complaint to stderr
    options.max_mem = MAX_MEMORY
    return options


@dataclass(frozen=True)
class UserPattern:
    """A compiled user pattern. ``search`` is unanchored, like Go's MatchString."""

    pattern: str
    _compiled: Any = field(repr=False, compare=False)

    def search(self, text: str) -> bool:
        return self._compiled.search(text) is not None


@functools.lru_cache(maxsize=1024)
def compile_pattern(text: str) -> UserPattern:
    """RE2's compiled ``text`` (cached: rules are matched against every tag listed)."""
    if len(text) > MAX_LENGTH:
        raise PatternError(f"regex is longer than {MAX_LENGTH} characters")
    try:
        compiled = re2.compile(text, _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(f"invalid regex (RE2, Go regexp syntax): {reason}") from None
    return UserPattern(text, compiled)
