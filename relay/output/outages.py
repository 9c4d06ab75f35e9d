"""The final word on registries out of reach: one message per cause, saying what to do.

A registry found unreachable fails every image on it at once with the same `Outage`
(relay.net.reachability). Reported per image, that is the same line a hundred times; reported
here, it is one line per host: what failed, how much of the work it stopped, and what to do
about it. Behind the firewall the answer is nearly always the same: commands that read the
upstream registries run in the GitHub workflow, whose runners are outside the mainland, or go
through a proxy or a registry mirror. Under GitHub Actions each message is also an annotation
(the CLI reports Problems as annotations; `annotate()` does it for the rest).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from relay.errors import Problem
from relay.net.reachability import Outage, outage_of
from relay.output import ghactions

# Line numbers named in a grouped problem before "and N more".
MAX_LINES = 10
# The commands relay's GitHub workflows run (.github/workflows): for these, "run it there".
WORKFLOW_COMMANDS = frozenset({"relay lock", "relay plan", "relay publish", "relay verify"})


@dataclass(frozen=True)
class Unreached(Problem):
    """A problem caused by an unreachable host: reported grouped (`group_problems`)."""

    outage: Outage | None = None
    registry: str = ""


def problem(path: str, line: int | None, message: str, exc: BaseException) -> Problem:
    """The problem for a failed request: `Unreached` when a host was out of reach."""
    outage = outage_of(exc)
    if outage is None:
        return Problem(path, line, message)
    return Unreached(path, line, message, outage, getattr(exc, "registry", "") or "")


def advice(
    command: str, outage: Outage, *, upstream: bool = True, setting: str = "", registry: str = ""
) -> str:
    """What to do about ``outage`` in ``command``: for the upstream registries, where to run
    it; for a registry of the user's own (``setting`` names where it is configured), what to
    check."""
    if outage.proxy:
        return (
            f"{command} went through the proxy {outage.proxy} (HTTPS_PROXY): check that the "
            f"proxy is up and can reach {outage.host}"
        )
    spelling = f" (and check that {outage.host} is spelled right)" if outage.kind == "dns" else ""
    if not upstream:
        where = f" ({setting})" if setting else ""
        return f"check the address{where} and that this machine can reach it{spelling}"
    where = (
        "run it in the GitHub workflow, whose runners are outside the mainland"
        if command in WORKFLOW_COMMANDS
        else "run it outside the mainland (on a GitHub Actions runner, say)"
    )
    return (
        f"{command} needs the upstream registries: {where}, or set HTTPS_PROXY, or list a "
        f"mirror of {registry or outage.host} you can reach under registries.mirrors{spelling}"
    )


def _who(outage: Outage, registries: Iterable[str]) -> str:
    """``docker.io: registry-1.docker.io is not reachable…`` when the registry's host differs."""
    names = sorted({r for r in registries if r and r != outage.host})
    return f"{', '.join(names)}: {outage}" if names else str(outage)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _lines(lines: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:MAX_LINES])
    more = f" and {len(lines) - MAX_LINES} more" if len(lines) > MAX_LINES else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def group_problems(
    problems: Sequence[Problem], *, command: str, noun: str = "tag", verb: str = "looked up"
) -> list[Problem]:
    """``problems`` with every `Unreached` one replaced by one problem per host, at the first
    line it stopped, naming the lines it stopped and what to do; the others kept as they
    are. Sorted by line, then message."""
    kept: list[Problem] = []
    by_host: dict[str, list[Unreached]] = {}
    for each in problems:
        if isinstance(each, Unreached) and each.outage is not None:
            by_host.setdefault(each.outage.host, []).append(each)
        else:
            kept.append(each)
    for group in by_host.values():
        outage = group[0].outage
        assert outage is not None
        lines = sorted({p.line for p in group if p.line is not None})
        registries = [p.registry for p in group]
        where = f" ({_lines(lines)})" if lines else ""
        kept.append(
            Problem(
                group[0].path,
                lines[0] if lines else None,
                f"{_who(outage, registries)}: {_plural(len(group), noun)}{where} not {verb}. "
                f"{advice(command, outage, registry=_registry(registries, outage))}",
            )
        )
    kept.sort(key=lambda p: (p.line or 0, p.message))
    return kept


def _registry(registries: Sequence[str], outage: Outage) -> str:
    names = sorted({r for r in registries if r})
    return names[0] if len(names) == 1 else outage.host


def summarise(
    errors: Iterable[BaseException | None],
    *,
    command: str,
    noun: str = "image",
    verb: str = "copied",
    targets: Iterable[str] = (),
    setting: str = "",
) -> list[str]:
    """One message per unreachable host among the errors of the items that failed (one per
    item; None for those that did not): ``<host> is not reachable … : 5 images not copied.
    <advice>``, by host. ``targets`` are the user's own registries (the copy target, named by
    ``setting``), whose advice is to check the address; every other registry is upstream."""
    own = set(targets)
    groups: dict[str, tuple[Outage, list[BaseException], set[str]]] = {}
    for error in errors:
        outage = outage_of(error)
        if outage is None or error is None:
            continue
        entry = groups.setdefault(outage.host, (outage, [], set()))
        entry[1].append(error)
        registry = getattr(error, "registry", "") or ""
        if registry:
            entry[2].add(registry)
    lines = []
    for host in sorted(groups):
        outage, items, registries = groups[host]
        lines.append(
            f"{_who(outage, registries)}: {_plural(len(items), noun)} not {verb}. "
            + advice(
                command,
                outage,
                upstream=not registries & own,
                setting=setting,
                registry=_registry(sorted(registries), outage),
            )
        )
    return lines


def explain(
    outages: Iterable[Outage], *, command: str, own: Mapping[str, str] | None = None
) -> list[str]:
    """One message per outage of the run (`Reachability.outages()`), by host: what failed and
    what to do. ``own`` maps the hosts of the user's own registries to the setting that names
    each; every other host is upstream."""
    mine = own or {}
    return [
        f"{outage}. "
        + advice(
            command, outage, upstream=outage.host not in mine, setting=mine.get(outage.host, "")
        )
        for outage in sorted(outages, key=lambda o: o.host)
    ]


def annotate(messages: Sequence[str]) -> None:
    """Each grouped message as an error annotation under GitHub Actions (inert elsewhere)."""
    for message in messages:
        ghactions.error(message)
