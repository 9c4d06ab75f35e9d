"""An execution, run for real: Harbor's copy flow and the jobservice tasks it creates.

``src/controller/replication/flow/copy.go`` Run, in order: build the source and destination
adapters, fetch the source resources (the ali-acr adapter's FetchArtifacts), stop if the
execution was stopped, "no resources need to be replicated" when nothing matched, map names
with replaceNamespace, PrepareForPush (create missing projects, private), then one task per
repository. Each task copies its tags with skopeo from the ACR stand-in registry into the Harbor
stand-in registry; jobservice retries a failing task (MaxFails 3). An error before any task
exists marks the execution Failed with the error as ``status_text`` and nothing else
(execution.go markError).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relay.sandbox.harbor import patterns
from relay.sandbox.harbor.adapter import Adapter, AdapterError, OpenApiError, Resource
from relay.sandbox.harbor.copier import CopyResult, Endpoint, mask
from relay.sandbox.harbor.state import Execution, JobStatus, Policy, Task, now

if TYPE_CHECKING:
    from relay.sandbox.harbor.server import HarborServer

MAX_FAILS = 3  # src/jobservice/job/impl/replication/replication.go MaxFails()


class FlowError(Exception):
    """An error that ends the flow before tasks exist; the message becomes status_text."""


def _log_line(level: str, source: str, message: str) -> str:
    # jobservice's logger: "<RFC3339 time> [LEVEL] [<file>:<line>]: message"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{stamp} [{level}] [{source}]: {message}"


@dataclass(frozen=True)
class Planned:
    src: Resource
    dst_repository: str


class ExecutionRunner:
    """Runs one execution in a background thread (``start``)."""

    def __init__(self, server: HarborServer, execution: Execution, policy: Policy) -> None:
        self.server = server
        self.state = server.state
        self.execution = execution
        self.policy = policy
        self.thread = threading.Thread(
            target=self._run, name=f"harbor-execution-{execution.id}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    # -- the flow ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._flow()
        except FlowError as exc:
            self.server.mark_error(self.execution, str(exc))
        except Exception as exc:  # an emulator bug: Harbor would say "panic during the process"
            self.server.log.exception("execution %d failed", self.execution.id)
            self.server.mark_error(self.execution, f"emulator error: {exc}")
        finally:
            with self.state.lock:
                self.execution.flow_done = True
            self.server.refresh(self.execution)

    def _adapter(self) -> Adapter:
        registry = self.server.registry_snapshot(self.policy.src_registry_id)
        if registry is None:
            raise FlowError(f"registry {self.policy.src_registry_id} not found")
        try:
            return self.server.create_adapter(registry)
        except AdapterError as exc:
            raise FlowError(
                f"failed to create adapter for source registry {registry.url}: {exc}"
            ) from None

    def _flow(self) -> None:
        adapter = self._adapter()
        try:
            resources = adapter.fetch_artifacts(self.policy.filters)
        except (OpenApiError, patterns.PatternError) as exc:
            raise FlowError(f"failed to fetch artifacts: {exc}") from None
        if self.execution.stop_requested:
            return
        if not resources:
            self.server.mark_done(self.execution, "no resources need to be replicated")
            return
        planned: list[Planned] = []
        for res in resources:
            try:
                dst = patterns.replace_namespace(
                    res.repository,
                    self.policy.dest_namespace,
                    self.policy.dest_namespace_replace_count,
                )
            except patterns.FlatteningError as exc:
                raise FlowError(str(exc)) from None
            planned.append(Planned(res, dst))
        self._prepare_for_push(planned)
        tasks = self._create_tasks(planned)
        if not tasks:
            self.server.mark_done(self.execution, "no resources need to be replicated")
            return
        with self.state.lock:
            self.execution.flow_done = True  # every task exists; the rest is jobservice's
        for task, plan in tasks:
            self._run_task(task, plan, adapter)

    def _prepare_for_push(self, planned: list[Planned]) -> None:
        """PrepareForPush of the local Harbor adapter: create missing projects, private."""
        names = sorted({p.dst_repository.split("/")[0] for p in planned})
        for name in names:
            failure = self.server.create_project_for_replication(name)
            if failure is not None:
                raise FlowError(
                    f"failed to do the prepare work for pushing/uploading resources: {failure}"
                )

    def _create_tasks(self, planned: list[Planned]) -> list[tuple[Task, Planned]]:
        out: list[tuple[Task, Planned]] = []
        for plan in planned:
            project = self.state.project_by_name(plan.dst_repository.split("/")[0])
            if project is not None and project.registry_id > 0:
                # a proxy-cache project: skipped, with a warning in the core log only
                self.server.log.warning(
                    "skip create replication task because of dest limitation: %s",
                    plan.dst_repository,
                )
                continue
            n = len(plan.src.tags)
            task = Task(
                id=self.state.next_id("task"),
                execution_id=self.execution.id,
                status="Pending",
                src_resource=f"{plan.src.repository} [{n} item(s) in total]",
                dst_resource=f"{plan.dst_repository} [{n} item(s) in total]",
                job_id=secrets.token_hex(12),
                references=",".join(plan.src.tags),
            )
            with self.state.lock:
                self.state.tasks[task.id] = task
            out.append((task, plan))
        return out

    # -- tasks ---------------------------------------------------------------------------------

    def _task_log(self, task: Task, level: str, message: str) -> None:
        source = "/controller/replication/transfer/image/transfer.go"
        with self.state.lock:
            task.log.append(_log_line(level, source, message))

    def _set_task(self, task: Task, status: JobStatus) -> None:
        with self.state.lock:
            task.status = status
            if status == "Running" and task.start_time is None:
                task.start_time = now()
            if status in ("Success", "Error", "Stopped"):
                task.end_time = now()
        self.server.refresh(self.execution, immediate=status == "Stopped")

    def _run_task(self, task: Task, plan: Planned, adapter: Adapter) -> None:
        """One jobservice job: up to MAX_FAILS attempts, Failed in between."""
        quirks = self.server.quirks
        for attempt in range(1, MAX_FAILS + 1):
            if self.execution.stop_requested:
                self._set_task(task, "Stopped")
                return
            with self.state.lock:
                task.run_count = attempt
            self._set_task(task, "Running")
            if attempt <= quirks.transient_task_failures:
                self._task_log(
                    task, "ERROR", f"injected transient failure (attempt {attempt} of {MAX_FAILS})"
                )
                ok = False
            else:
                ok = self._copy_all(task, plan, adapter)
            if self.execution.stop_requested:
                self._set_task(task, "Stopped")
                return
            if ok:
                self._set_task(task, "Success")
                return
            self._set_task(task, "Error")
            if attempt < MAX_FAILS:
                self._task_log(task, "INFO", "the job failed, it will be retried")
                time.sleep(quirks.retry_delay)
                self._set_task(task, "Pending")

    def _copy_all(self, task: Task, plan: Planned, adapter: Adapter) -> bool:
        server = self.server
        token = adapter.temp_token()
        src = Endpoint(
            host=server.net.resolve_host(adapter.url.split("://", 1)[1]),
            tls=adapter.url.startswith("https://"),
            verify=adapter.verify,
            username=token.user,
            password=token.password,
        )
        dst = server.destination_endpoint()
        tags = list(plan.src.tags)
        secrets_to_mask = (token.password, dst.password)
        self._task_log(
            task,
            "INFO",
            f"client for source registry [type: ali-acr, URL: {adapter.url}, insecure: "
            f"{str(adapter.verify is False).lower()}] created",
        )
        self._task_log(
            task,
            "INFO",
            f"copying {plan.src.repository}:[{','.join(tags)}](source registry) to "
            f"{plan.dst_repository}:[{','.join(tags)}](destination registry)...",
        )
        ok = True
        for tag in tags:
            if self.execution.stop_requested:
                return False
            result: CopyResult = server.copier.copy(
                src, plan.src.repository, dst, plan.dst_repository, tag
            )
            self._task_log(task, "INFO", mask(result.command, secrets_to_mask))
            for line in result.output.splitlines():
                if line.strip():
                    self._task_log(task, "INFO" if result.ok else "ERROR", line)
            if not result.ok:
                self._task_log(
                    task,
                    "ERROR",
                    f"failed to copy {plan.src.repository}:{tag} to {plan.dst_repository}:{tag}",
                )
                ok = False
                break
            self._task_log(
                task,
                "INFO",
                f"copy {plan.src.repository}:[{tag}](source registry) to "
                f"{plan.dst_repository}:[{tag}](destination registry) completed",
            )
        return ok
