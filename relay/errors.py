"""The one exception hierarchy. The CLI turns these into exit codes; nothing else does."""

from __future__ import annotations

from dataclasses import dataclass


class RelayError(Exception):
    """Base of everything relay raises on purpose. Exit code 1 unless a subclass says otherwise."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file, anchored where a person can find it."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"


class InputError(RelayError):
    """Invalid input or usage: the user must change something. Exit code 2."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("relay", None, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = problems
        super().__init__("\n".join(str(p) for p in problems))


class CheckFailed(RelayError):
    """A check found drift or a difference. Exit code 1."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        self.details = details or []
        super().__init__(message)


class OperationFailed(RelayError):
    """An operation against a remote system failed. Exit code 1."""


class ProblemsFound(OperationFailed):
    """Problems with what the list asks of the outside world (a tag missing upstream, say),
    anchored to the list's lines like input errors but exit code 1: the file is well formed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
