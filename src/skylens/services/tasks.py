"""The task runner every API process starts, and the task use cases clients see.

The runner claims unfinished tasks from the shared database under a lease, renews
the lease while a task runs (recording its progress message), and takes over tasks
whose lease lapsed: their worker died (kill -9, a lost host). A taken-over task is
run again from its start (each kind of task is written so that this is safe) or,
after `max_attempts` claims, failed cleanly. Finished tasks are purged once their
`expires_at` has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from skylens.domain.access import Action, RequestContext
from skylens.domain.errors import DatabaseUnavailable, InvalidRequest, TaskNotFound
from skylens.domain.policy import authorize
from skylens.domain.ports import Offload, Policy, TaskRepository
from skylens.domain.tasks import TASK_SORT_KEYS, Lease, Task, TaskStatus

log = logging.getLogger(__name__)


def task_clock() -> dt.datetime:
    """Tasks keep microseconds, as Glance's task rows do."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Progress(Protocol):
    def __call__(self, message: str) -> None:
        """Record the task's progress message (written with the next lease renewal)."""


class TaskHandler(Protocol):
    """What runs one type of task."""

    async def run(self, task: Task, attempt: int, progress: Progress) -> Mapping[str, Any]:
        """Do the task from its start (a taken-over task runs again); return its
        result. Raise to fail it: `fail` is called next, unless the lease was lost."""
        ...

    async def fail(self, task: Task, message: str) -> None:
        """Undo what a failed task leaves behind (its image's import state)."""
        ...


# Told each task's end: its type and outcome (`success`, `failure`, `lease_lost`, or
# `error` when the runner itself failed); the metrics count them.
TaskOutcomes = Callable[[str, str], None]


def _ignore_outcome(_type: str, _outcome: str) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class TaskStarter:
    """Starts a task on an image as imports do: the task row is written held by its
    creator, `lock` takes the image for it (one atomic image change), and only then
    may runners claim it. A failing `lock` saves the task as failed at once; a creator
    that dies in between leaves a task whose lease lapses and that finds its image
    not locked to it."""

    tasks: TaskRepository
    creator: str
    lease_for: dt.timedelta

    def start(
        self,
        context: RequestContext,
        task_type: str,
        image_id: str,
        task_input: Mapping[str, Any],
        request_id: str | None,
        lock: Callable[[Task], None],
        auth_token: str | None = None,
    ) -> str:
        """`auth_token`: the caller's token, for tasks that act as the caller
        (glance-download); kept until the task ends."""
        now = task_clock()
        task = Task(
            id=str(uuid.uuid4()),
            type=task_type,
            status=TaskStatus.PENDING,
            owner=context.project_id,
            input=dict(task_input),
            created_at=now,
            updated_at=now,
            image_id=image_id,
            request_id=request_id,
            user_id=context.user_id,
            auth_token=auth_token,
        )
        lease = Lease(task.id, self.creator, now + self.lease_for, attempt=0)
        self.tasks.add(task, lease)
        try:
            lock(task)
        except BaseException:
            failed = task.with_status(
                TaskStatus.FAILURE, task_clock(), message="Error: not started"
            )
            self.tasks.save(lease, failed)
            raise
        self.tasks.release(task.id)
        return task.id


class LeaseLost(Exception):
    """Another worker took the task over: this one must stop without a trace."""


@dataclasses.dataclass(frozen=True)
class RunnerSettings:
    holder: str  # who this worker is (host and process), as lease holder
    lease_seconds: float = 60.0
    poll_seconds: float = 5.0
    concurrency: int = 2  # tasks one process runs at once
    max_attempts: int = 3
    time_to_live: dt.timedelta = dt.timedelta(hours=48)
    purge_interval_seconds: float = 600.0


class TaskRunner:
    def __init__(
        self,
        repository: TaskRepository,
        handlers: Mapping[str, TaskHandler],
        settings: RunnerSettings,
        *,
        database: Offload,
        clock: Callable[[], dt.datetime] = task_clock,
        outcomes: TaskOutcomes = _ignore_outcome,
        running: Callable[[int], None] = lambda _count: None,
    ) -> None:
        self._repository = repository
        self._outcomes = outcomes
        self._report_running = running  # told how many tasks run here, at each change
        self._handlers = handlers
        self._settings = settings
        self._database = database
        self._clock = clock
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._failing = False  # the last claim failed: the next failure is one line

    def wake(self) -> None:
        """Look for tasks now (one was just created here)."""
        self._wake.set()

    async def run_forever(self) -> None:
        last_purge = -float("inf")
        loop = asyncio.get_running_loop()
        try:
            while True:
                if loop.time() - last_purge >= self._settings.purge_interval_seconds:
                    last_purge = loop.time()
                    await self._purge()
                await self._claim_while_room()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)
        finally:
            for running in self._running:
                running.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _purge(self) -> None:
        try:
            purged = await self._database(self._repository.purge, self._clock())
        except Exception:
            log.exception("purging expired tasks failed")
            return
        if purged:
            log.info("purged %d expired task(s)", purged)

    async def _claim_while_room(self) -> None:
        lease_for = dt.timedelta(seconds=self._settings.lease_seconds)
        while len(self._running) < self._settings.concurrency:
            try:
                claimed = await self._database(
                    self._repository.claim, self._settings.holder, self._clock(), lease_for
                )
            except Exception as error:
                self._claim_failed(error)
                return
            self._failing = False
            if claimed is None:
                return
            running = asyncio.create_task(self._run(*claimed))
            self._running.add(running)
            self._report_running(len(self._running))
            running.add_done_callback(self._finished)

    def _claim_failed(self, error: Exception) -> None:
        """The first failure with its traceback; while it lasts (an unmigrated or
        unreachable database: every poll fails), one line each. A database away is
        one line from the start (the database's own log line says why)."""
        if self._failing or isinstance(error, DatabaseUnavailable):
            self._failing = True
            reason = getattr(error, "reason", None) or str(error)
            reason = (reason.strip().splitlines() or [""])[0]
            log.warning("claiming a task failed: %s: %s", type(error).__name__, reason)
            return
        self._failing = True
        log.exception("claiming a task failed (until it works again, one line per poll)")

    def _finished(self, running: asyncio.Task[None]) -> None:
        self._running.discard(running)
        self._report_running(len(self._running))
        self._wake.set()  # room for another

    async def _run(self, task: Task, lease: Lease) -> None:
        try:
            outcome = await self._work(task, lease)
        except LeaseLost:
            log.warning("task %s: its lease was lost; another worker has it", task.id)
            outcome = "lease_lost"
        except Exception:
            log.exception("task %s: the runner failed", task.id)
            outcome = "error"
        self._outcomes(task.type, outcome)

    async def _work(self, task: Task, lease: Lease) -> str:
        """Run the task to its end; its outcome, `success` or `failure`."""
        handler = self._handlers.get(task.type)
        if handler is None:
            await self._end(task, lease, f"Error: unknown task type {task.type}")
            return "failure"
        if lease.attempt > self._settings.max_attempts:
            message = f"Error: the task was interrupted {lease.attempt - 1} times; given up"
            await handler.fail(task, message)
            await self._end(task, lease, message)
            return "failure"
        if task.status is TaskStatus.PENDING:
            task = task.with_status(TaskStatus.PROCESSING, self._clock())
            await self._save(lease, task)
        keeper = _LeaseKeeper(self, lease)
        work = asyncio.create_task(handler.run(task, lease.attempt, keeper.progress))
        renewing = asyncio.create_task(keeper.renew_until_lost(work))
        try:
            result = await work
        except asyncio.CancelledError:
            if keeper.lost:
                raise LeaseLost() from None
            raise
        except Exception as error:
            log.exception("task %s failed", task.id)
            message = f"Error: {getattr(error, 'message', None) or error}"
            await handler.fail(task, message)
            await self._end(task, keeper.lease, message)
            return "failure"
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        done = task.with_status(
            TaskStatus.SUCCESS,
            self._clock(),
            result=result,
            message=keeper.message or task.message,
            time_to_live=self._settings.time_to_live,
        )
        await self._save(keeper.lease, done)
        return "success"

    async def _end(self, task: Task, lease: Lease, message: str) -> None:
        failed = task.with_status(
            TaskStatus.FAILURE,
            self._clock(),
            message=message,
            time_to_live=self._settings.time_to_live,
        )
        await self._save(lease, failed)

    async def _save(self, lease: Lease, task: Task) -> None:
        if not await self._database(self._repository.save, lease, task):
            raise LeaseLost()

    async def renew(self, lease: Lease, message: str | None) -> Lease | None:
        lease_for = dt.timedelta(seconds=self._settings.lease_seconds)
        return await self._database(
            self._repository.renew, lease, self._clock(), lease_for, message
        )

    @property
    def renew_every(self) -> float:
        return self._settings.lease_seconds / 3


class _LeaseKeeper:
    """Renews a running task's lease, writing its latest progress message; cancels
    the work as soon as the lease is found lost."""

    def __init__(self, runner: TaskRunner, lease: Lease) -> None:
        self._runner = runner
        self.lease = lease
        self.message: str | None = None
        self._written: str | None = None
        self.lost = False

    def progress(self, message: str) -> None:
        self.message = message

    async def renew_until_lost(self, work: asyncio.Task[Any]) -> None:
        while True:
            await asyncio.sleep(self._runner.renew_every)
            message = self.message if self.message != self._written else None
            try:
                renewed = await self._runner.renew(self.lease, message)
            except Exception:
                log.exception("task %s: renewing its lease failed", self.lease.task_id)
                continue
            if renewed is None:
                self.lost = True
                work.cancel()
                return
            self.lease, self._written = renewed, self.message


class TaskService:
    """The task API: `GET /v2/tasks[/{id}]`, an image's tasks, `POST /v2/tasks`."""

    def __init__(self, repository: TaskRepository, policy: Policy) -> None:
        self._repository = repository
        self._policy = policy

    def check_access(self, context: RequestContext) -> None:
        """Glance's `tasks_api_access`: the task API is for admins by default."""
        authorize(self._policy, context, Action.TASKS_API_ACCESS)

    def get(self, context: RequestContext, task_id: str) -> Task:
        authorize(self._policy, context, Action.TASKS_API_ACCESS)
        task = self._repository.get(task_id)
        if task is None or not _owned(context, task):
            raise TaskNotFound(task_id)
        return task

    def list(
        self,
        context: RequestContext,
        *,
        limit: int,
        marker: str | None = None,
        status: TaskStatus | None = None,
        descending: bool = True,
        sort_key: str = "created_at",
    ) -> Sequence[Task]:
        authorize(self._policy, context, Action.TASKS_API_ACCESS)
        if sort_key not in TASK_SORT_KEYS:
            raise InvalidRequest(f"Unsupported sort_key: {sort_key}")
        after = None
        if marker is not None:
            after = self._repository.get(marker)
            if after is None or not _owned(context, after):
                raise InvalidRequest(f"Task with identifier {marker} not found")
        owner = None if context.is_admin else context.project_id
        return list(
            self._repository.list(
                owner=owner,
                status=status,
                limit=limit,
                marker=after,
                descending=descending,
                sort_key=sort_key,
            )
        )

    def of_image(self, context: RequestContext, image_id: str) -> Sequence[Task]:
        """The image's unexpired tasks, oldest first, whoever created them (the
        caller checked it may see the image), as Glance lists them."""
        now = task_clock()
        tasks = self._repository.list(owner=None, image_id=image_id, limit=1000, descending=False)
        return [task for task in tasks if task.expires_at is None or task.expires_at >= now]

    def create(self, context: RequestContext) -> None:
        """`POST /v2/tasks`: Glance's legacy task API, closed to all but admins; the
        legacy `import` task itself is not served (use image import)."""
        authorize(self._policy, context, Action.TASKS_API_ACCESS)
        raise InvalidRequest(
            "The legacy 'import' task is not supported: use the image import API "
            "(POST /v2/images/{image_id}/import)."
        )


def _owned(context: RequestContext, task: Task) -> bool:
    return context.is_admin or task.owner == context.project_id
