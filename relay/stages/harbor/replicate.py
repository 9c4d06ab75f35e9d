"""Running a replication policy and watching it to the end.

Harbor's execution status is refreshed asynchronously (every 30 s by default since v2.8), a
retried task shows Failed for a while, and a failure before any task exists appears only in
`status_text` (docs/vendors/harbor.md#executions-tasks-and-logs). So an execution is done only
when its status is terminal *and* nothing is in progress, and a Failed one is read again after
`poll.settle` seconds before it is reported.

The fast path (`replicate --only a b`): the manual policy `<policy>-now` is pointed at
`<namespace>/{a,b}` with a tag filter of the tags that changed, then run. Harbor still pages
through the namespace's repository list (its ali-acr adapter only short-cuts a literal
namespace), but reads the tags of those repositories only, and copies only those tags, instead
of every tag of every repository as the scheduled policy does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from relay import untrusted
from relay.errors import OperationFailed
from relay.net.retry import NEVER, retrying
from relay.output.progress import NULL, Progress, Task
from relay.safety import one_line
from relay.stages.harbor.api import HarborClient, HarborError
from relay.stages.harbor.plan import Batch, Desired
from relay.stages.harbor.settings import PollSettings

log = logging.getLogger(__name__)

TERMINAL = frozenset({"Succeed", "Failed", "Stopped"})
# With single_active_replication (Harbor ≥ 2.14) a start while another execution of the policy
# runs is created and marked Failed at once with this status_text (execution.go Start).
SKIPPED = "Execution skipped"
BUSY = "another replication of the policy is running; retry later"


@dataclass
class TaskRow:
    repository: str  # the destination repository, as Harbor names it (project/name)
    status: str
    seconds: float | None = None
    log_tail: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    policy: str
    execution_id: int
    status: str = "InProgress"
    status_text: str = ""
    total: int = 0
    succeed: int = 0
    failed: int = 0
    in_progress: int = 0
    stopped: int = 0
    timed_out: bool = False
    waited: bool = False
    tasks: list[TaskRow] = field(default_factory=list)
    elapsed: float = 0.0
    executions: list[int] = field(default_factory=list)  # every batch's, in order
    started: bool = True  # False: another execution still ran at the deadline
    # Repositories asked for by name (--only, --missing) that got no task: not in ACR, or
    # none of their tags there.
    untouched: list[str] = field(default_factory=list)
    logs_left: int = 0  # failed tasks whose log was not fetched (MAX_LOGS)

    @property
    def skipped(self) -> bool:
        """Harbor created the execution and skipped it: another one was running."""
        return self.status == "Failed" and SKIPPED in self.status_text

    @property
    def ok(self) -> bool:
        if self.skipped or not self.started or self.untouched:
            return False
        if not self.waited:
            return True
        return self.status == "Succeed" and self.failed == 0 and not self.timed_out

    def absorb(self, execution: dict[str, Any]) -> None:
        self.status = str(execution.get("status") or "InProgress")
        self.status_text = one_line(str(execution.get("status_text") or ""), 500)
        for key in ("total", "succeed", "failed", "in_progress", "stopped"):
            value = execution.get(key)
            setattr(self, key, value if isinstance(value, int) else 0)


def point_fast_policy(
    client: HarborClient, desired: Desired, policy_id: int, registry_id: int, batch: Batch
) -> None:
    body = desired.policy_body(
        registry_id, fast=True, repositories=batch.repositories, tags=batch.tags
    )
    client.put(f"/replication/policies/{policy_id}", body, f"point {desired.fast_policy_name}")


def merge(outcomes: Sequence[Outcome]) -> Outcome:
    """The batches of one fast-path run as one outcome: counts and tasks added up, the first
    status that is not Succeed (else the last), every execution id."""
    if len(outcomes) == 1:
        only = outcomes[0]
        only.executions = [only.execution_id] if only.started else []
        return only
    last = outcomes[-1]
    bad = [o for o in outcomes if o.status != "Succeed"]
    out = Outcome(
        last.policy,
        last.execution_id,
        status=(bad[0] if bad else last).status,
        status_text="; ".join(dict.fromkeys(o.status_text for o in outcomes if o.status_text)),
        timed_out=any(o.timed_out for o in outcomes),
        waited=all(o.waited for o in outcomes),
        elapsed=sum(o.elapsed for o in outcomes),
        executions=[o.execution_id for o in outcomes if o.started],
        started=all(o.started for o in outcomes),
    )
    for o in outcomes:
        for key in ("total", "succeed", "failed", "in_progress", "stopped"):
            setattr(out, key, getattr(out, key) + getattr(o, key))
        out.tasks.extend(o.tasks)
        out.logs_left += o.logs_left
    return out


def start(
    client: HarborClient, policy_id: int, policy_name: str, sleep: Callable[[float], None]
) -> int:
    """Start an execution; its id. A start whose answer was lost (5xx, reset) is looked for
    before it is sent again, so a retry never runs the policy twice."""
    before = _latest_execution(client, policy_id)

    def attempt(number: int) -> int:
        if number > 1:
            latest = _latest_execution(client, policy_id)
            if latest is not None and (before is None or latest > before):
                return latest
        response = client.request(
            "POST",
            "/replication/executions",
            what=f"start policy {policy_name}",
            body={"policy_id": policy_id},
            ok=(201,),
            retry=NEVER,
        )
        response.close()
        return client.created_id(response, f"start policy {policy_name}")

    def lost(exc: BaseException) -> bool:
        return isinstance(exc, HarborError) and (
            exc.status is None or exc.status >= 500 or exc.status == 429
        )

    return retrying(
        attempt,
        client.transport.retry,
        retry_if=lost,
        what=f"Harbor: start policy {policy_name}",
        sleep=sleep,
    )


def _latest_execution(client: HarborClient, policy_id: int) -> int | None:
    found = client.get(
        "/replication/executions",
        "list executions",
        {"policy_id": str(policy_id), "page": "1", "page_size": "1", "sort": "-start_time"},
    )
    if isinstance(found, list) and found and isinstance(found[0], dict):
        value = found[0].get("id")
        return value if isinstance(value, int) else None
    return None


def wait_for_running(
    client: HarborClient,
    policy_id: int,
    poll: PollSettings,
    deadline: float,
    sleep: Callable[[float], None],
) -> int | None:
    """With single_active_replication, a start while another execution runs is skipped at once
    ("Execution skipped: active replication still in progress"): wait for it first. The id of
    the execution still running at the deadline, or None once none runs."""
    while True:
        running = client.get(
            "/replication/executions",
            "list running executions",
            {"policy_id": str(policy_id), "status": "InProgress", "page": "1", "page_size": "1"},
        )
        if not isinstance(running, list) or not running:
            return None
        first = running[0] if isinstance(running[0], dict) else {}
        ident = first.get("id")
        if time.monotonic() >= deadline:
            return ident if isinstance(ident, int) else 0
        log.info("execution %s of policy %s is still running; waiting for it", ident, policy_id)
        sleep(min(poll.interval, max(0.0, deadline - time.monotonic())))


def watch(
    client: HarborClient,
    outcome: Outcome,
    poll: PollSettings,
    deadline: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float] = time.monotonic,
    progress: Progress = NULL,
) -> None:
    """Poll the execution until it ends or the deadline passes; ``progress`` shows its tasks
    done of its total (a bar on a terminal)."""
    bar = progress.task(f"replication {outcome.execution_id}", 0)
    try:
        _watch(client, outcome, poll, deadline, sleep, clock, bar)
    finally:
        bar.finish()


def _watch(
    client: HarborClient,
    outcome: Outcome,
    poll: PollSettings,
    deadline: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    bar: Task,
) -> None:
    outcome.waited = True
    interval = poll.interval
    settled = False
    shown: tuple[str, int, int] | None = None
    counted = (0, 0)  # (total, done) the bar shows
    while True:
        execution = client.get(
            f"/replication/executions/{outcome.execution_id}", "read the execution"
        )
        if isinstance(execution, dict):
            outcome.absorb(execution)
        now = (outcome.total, outcome.succeed + outcome.failed + outcome.stopped)
        bar.grow(now[0] - counted[0])
        bar.advance(now[1] - counted[1])
        counted = now
        done = outcome.status in TERMINAL and outcome.in_progress == 0
        if done and outcome.skipped:
            return  # a skip is final at once, not a status that lags
        if done and outcome.status == "Failed" and not settled and clock() + poll.settle < deadline:
            # The status may lag, or show a task that is being retried: read it once more.
            settled = True
            log.info(
                "execution %d reads Failed; reading it again in %.0fs (Harbor's status lags)",
                outcome.execution_id,
                poll.settle,
            )
            sleep(poll.settle)
            continue
        if done:
            return
        if clock() >= deadline:
            outcome.timed_out = True
            return
        progress = (
            outcome.status,
            outcome.succeed + outcome.failed + outcome.stopped,
            outcome.total,
        )
        if progress != shown:  # say what changed, not every poll
            shown = progress
            log.info("execution %d: %s, %d of %d tasks done", outcome.execution_id, *progress)
        sleep(min(interval, max(0.0, deadline - clock())))
        interval = min(poll.max_interval, interval * 1.5)


MAX_LOGS = 5  # failed tasks whose log tail is fetched; a mass failure has one cause


def collect_tasks(
    client: HarborClient, outcome: Outcome, *, log_lines: int = 20, max_logs: int = MAX_LOGS
) -> None:
    """Every task for the report, and the log tails of the first ``max_logs`` failed ones,
    found with `?status=Failed` (docs/vendors/harbor.md#executions-tasks-and-logs); how many
    more failed goes to ``logs_left``."""
    path = f"/replication/executions/{outcome.execution_id}/tasks"
    rows: dict[int, TaskRow] = {}
    for task in client.paged(path, "list the tasks"):
        if not isinstance(task, dict):
            continue
        row = TaskRow(
            repository=one_line(str(task.get("dst_resource") or "").split(" [", 1)[0], 200),
            status=str(task.get("status") or ""),
            seconds=_seconds(task.get("start_time"), task.get("end_time")),
        )
        outcome.tasks.append(row)
        if isinstance(task.get("id"), int):
            rows[task["id"]] = row
    if not any(row.status == "Failed" for row in outcome.tasks):
        return
    response = client.request(
        "GET",
        path,
        what="list the failed tasks",
        params={"status": "Failed", "page": "1", "page_size": str(max_logs), "sort": "id"},
    )
    total = response.headers.get("X-Total-Count", "")
    failed = client.json(response)
    fetched = 0
    for task in failed if isinstance(failed, list) else []:
        task_id = task.get("id") if isinstance(task, dict) else None
        found = rows.get(task_id) if isinstance(task_id, int) else None
        if found is None or task_id is None or fetched >= max_logs:
            continue
        fetched += 1
        try:
            found.log_tail = client.task_log_tail(outcome.execution_id, task_id, log_lines)
        except HarborError as exc:
            found.log_tail = [f"(log unavailable: {exc})"]
    failed = untrusted.count(total)
    if failed is None:
        failed = sum(r.status == "Failed" for r in outcome.tasks)
    outcome.logs_left = max(0, failed - fetched)


def _seconds(start: Any, end: Any) -> float | None:
    try:
        a = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        b = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return None
    seconds = (b - a).total_seconds()
    return seconds if seconds >= 0 else None


def untouched(outcome: Outcome, batches: Sequence[Batch]) -> list[str]:
    """The named repositories no task was made for, once every batch was watched to its end
    (a task's destination is `<project>/<name>`: one level flattened)."""
    if not outcome.waited or outcome.timed_out or not outcome.started or outcome.skipped:
        return []
    got = {row.repository.split("/", 1)[-1] for row in outcome.tasks}
    return sorted({n for batch in batches for n in batch.repositories} - got)


def deadline_of(poll: PollSettings, timeout: float | None) -> float:
    return time.monotonic() + (poll.timeout if timeout is None else timeout)


def run(
    client: HarborClient,
    *,
    policy_id: int,
    policy_name: str,
    wait: bool,
    poll: PollSettings,
    deadline: float,
    exclusive: bool,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = NULL,
) -> Outcome:
    """Start the policy and, with ``wait``, watch it to the end. ``exclusive``: the policy has
    single_active_replication (Harbor ≥ 2.14), so Harbor skips a start while another execution
    runs (docs/vendors/harbor.md#executions-tasks-and-logs). Then, with ``wait``, a running
    execution is waited for first, up to the deadline (past it nothing is started and the
    outcome says so); without ``wait`` the new execution is read once to tell a skip."""
    started = time.monotonic()
    if wait and exclusive:
        running = wait_for_running(client, policy_id, poll, deadline, sleep)
        if running is not None:
            return Outcome(
                policy_name,
                0,
                status="",
                status_text=(
                    f"execution {running} of {policy_name} was still running at the deadline; "
                    "relay started no other (Harbor would skip it)"
                ),
                timed_out=True,
                waited=True,
                started=False,
                elapsed=time.monotonic() - started,
            )
    execution_id = start(client, policy_id, policy_name, sleep)
    outcome = Outcome(policy_name, execution_id)
    log.info("started execution %d of policy %s", execution_id, policy_name)
    if wait:
        watch(client, outcome, poll, deadline, sleep, progress=progress)
        if not outcome.skipped:
            collect_tasks(client, outcome)
    elif exclusive:
        execution = client.get(f"/replication/executions/{execution_id}", "read the execution")
        if isinstance(execution, dict):
            outcome.absorb(execution)
    outcome.elapsed = time.monotonic() - started
    return outcome


def require(found: dict[str, Any] | None, name: str) -> int:
    if found is None:
        raise OperationFailed(
            f"Harbor has no replication policy {name}; run `relay harbor apply` first"
        )
    return int(found["id"])
