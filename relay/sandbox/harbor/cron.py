"""Cron strings as Harbor's replication accepts them: robfig/cron v3 plus Harbor's own checks.

Harbor parses with ``cron.NewParser(Second | Minute | Hour | Dom | Month | Dow)``
(``src/common/utils/utils.go`` CronParser): exactly six whitespace-separated fields, seconds
first, no ``@daily`` descriptors, no optional fields. From v2.9 the policy validation
(``src/controller/replication/model/model.go`` Validate) then splits the string on *single*
spaces and wants field 1 to be ``0`` and field 2 not ``*``.
"""

from __future__ import annotations

from dataclasses import dataclass

# (name, min, max) per field, robfig/cron v3 spec.go bounds.
_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("dom", 1, 31),
    ("month", 1, 12),
    ("dow", 0, 6),
)
_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS = {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}

EMPTY_MESSAGE = "the cron string cannot be empty when the trigger type is scheduled"
SECONDS_MESSAGE = "the 1st field (indicating Seconds of time) of the cron setting must be 0"
MINUTES_MESSAGE = "* is not allowed for the Minutes field of the cron setting of replication policy"


class CronError(ValueError):
    """Why robfig/cron would refuse the string (Harbor does not show this to clients)."""


@dataclass(frozen=True)
class Cron:
    fields: tuple[frozenset[int], ...]  # allowed values per field

    def matches(self, second: int, minute: int, hour: int, dom: int, month: int, dow: int) -> bool:
        values = (second, minute, hour, dom, month, dow)
        return all(v in allowed for v, allowed in zip(values, self.fields, strict=True))


def _number(text: str, names: dict[str, int] | None) -> int:
    if names is not None and text.lower() in names:
        return names[text.lower()]
    if not (text.isascii() and text.isdigit()):
        # strconv.Atoi accepts a sign; robfig then refuses negatives. Both are errors here, and
        # so is any digit Atoi does not know (str.isdigit also takes "²" and "٣").
        raise CronError(f"failed to parse int from {text}")
    return int(text)


def _range(expr: str, lo: int, hi: int, names: dict[str, int] | None) -> set[int]:
    range_and_step = expr.split("/")
    if len(range_and_step) > 2:
        raise CronError(f"too many slashes: {expr}")
    low_and_high = range_and_step[0].split("-")
    if len(low_and_high) > 2:
        raise CronError(f"too many hyphens: {expr}")
    if low_and_high[0] in ("*", "?"):
        if len(low_and_high) > 1:
            raise CronError(f"too many hyphens: {expr}")
        start, end = lo, hi
    else:
        start = _number(low_and_high[0], names)
        end = _number(low_and_high[1], names) if len(low_and_high) == 2 else start
    step = 1
    if len(range_and_step) == 2:
        step = _number(range_and_step[1], None)
        if len(low_and_high) == 1 and low_and_high[0] not in ("*", "?"):
            end = hi  # "N/step" means N-max/step
        if step <= 0:
            raise CronError(f"step of range should be a positive number: {expr}")
    if start < lo:
        raise CronError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
    if end > hi:
        raise CronError(f"end of range ({end}) above maximum ({hi}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    return set(range(start, end + 1, step))


def parse(spec: str) -> Cron:
    """Parse like robfig/cron v3 with Second|Minute|Hour|Dom|Month|Dow; raise CronError."""
    if not spec:
        raise CronError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        # robfig accepts a time zone prefix; the emulator has no zone database to check it
        # against, so it refuses rather than accept something Harbor might not.
        raise CronError("time zone prefixes are not supported by this emulator")
    if spec.startswith("@"):
        raise CronError(f"parser does not accept descriptors: {spec}")
    fields = spec.split()  # strings.Fields: any run of whitespace
    if len(fields) != 6:
        raise CronError(f"expected exactly 6 fields, found {len(fields)}: [{' '.join(fields)}]")
    allowed: list[frozenset[int]] = []
    for text, (name, lo, hi) in zip(fields, _FIELDS, strict=True):
        names = _MONTHS if name == "month" else _DAYS if name == "dow" else None
        values: set[int] = set()
        for part in text.split(","):
            values |= _range(part, lo, hi, names)
        allowed.append(frozenset(values))
    return Cron(tuple(allowed))


def replication_error(spec: str, *, harbor_checks: bool) -> str | None:
    """Harbor's 400 message for a scheduled trigger's cron, or None when it is accepted.

    ``harbor_checks``: the v2.9+ seconds/minutes checks (model.go Validate).
    """
    if not spec:
        return EMPTY_MESSAGE
    try:
        parse(spec)
    except CronError:
        return f"invalid cron string for scheduled trigger: {spec}"
    if harbor_checks:
        # strings.Split(cron, " "): single spaces only; "0  5 * * * *" passes, " 0 5..." fails.
        parts = spec.split(" ")
        if parts[0] != "0":
            return SECONDS_MESSAGE
        if parts[1] == "*":
            return MINUTES_MESSAGE
    return None
