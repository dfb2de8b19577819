"""`TaskRepository` on SQLAlchemy Core: task rows and the leases workers hold on them.

Claiming is one conditional write per task, so two workers never hold one task:
PostgreSQL picks a candidate row `FOR UPDATE SKIP LOCKED` (workers claiming at once
pick different rows, none waits); SQLite, whose writers take turns anyway, updates
the candidate only if it is still claimable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from skylens.db.engine import autocommit_reads, connected, transaction
from skylens.db.tables import tasks
from skylens.domain.tasks import FINISHED, Lease, Task, TaskStatus

_UNFINISHED = (TaskStatus.PENDING.value, TaskStatus.PROCESSING.value)
_FIELDS = (
    "id",
    "type",
    "status",
    "owner",
    "input",
    "result",
    "message",
    "expires_at",
    "created_at",
    "updated_at",
    "image_id",
    "request_id",
    "user_id",
)
_COLUMNS = tuple(tasks.c[name] for name in _FIELDS)


class SqlTaskRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._reader = autocommit_reads(engine)

    # -- reads -----------------------------------------------------------------

    def get(self, task_id: str) -> Task | None:
        with connected(self._reader) as connection:
            row = connection.execute(sa.select(*_COLUMNS).where(tasks.c.id == task_id)).first()
        return None if row is None else _task_of(row)

    def list(
        self,
        *,
        owner: str | None,
        image_id: str | None = None,
        status: TaskStatus | None = None,
        limit: int = 25,
        marker: Task | None = None,
        descending: bool = True,
        sort_key: str = "created_at",
    ) -> list[Task]:
        """Tasks by `sort_key`, then creation time and id; `owner`'s only unless None."""
        query = sa.select(*_COLUMNS)
        if owner is not None:
            query = query.where(tasks.c.owner == owner)
        if image_id is not None:
            query = query.where(tasks.c.image_id == image_id)
        if status is not None:
            query = query.where(tasks.c.status == status.value)
        names = [sort_key, *(name for name in ("created_at", "id") if name != sort_key)]
        order = [tasks.c[name] for name in names]
        if marker is not None:
            key = sa.tuple_(*order)
            after = sa.tuple_(
                *(sa.literal(_value_of(marker, name), tasks.c[name].type) for name in names)
            )
            query = query.where(key < after if descending else key > after)
        query = query.order_by(*(column.desc() if descending else column for column in order))
        with connected(self._reader) as connection:
            return [_task_of(row) for row in connection.execute(query.limit(limit))]

    # -- writes ----------------------------------------------------------------

    def add(self, task: Task, lease: Lease | None = None) -> None:
        """Store a new task; with `lease`, held by its creator (no worker claims it
        until the creator releases it, or the lease lapses)."""
        with transaction(self._engine) as connection:
            connection.execute(
                tasks.insert().values(
                    **_columns_of(task),
                    auth_token=task.auth_token,
                    lease_holder=None if lease is None else lease.holder,
                    lease_expires_at=None if lease is None else lease.expires_at,
                    attempts=0,
                )
            )

    def release(self, task_id: str) -> None:
        """Let any worker claim the task now (its creator is done preparing it)."""
        with transaction(self._engine) as connection:
            connection.execute(
                tasks.update()
                .where(tasks.c.id == task_id, tasks.c.attempts == 0)
                .values(lease_holder=None, lease_expires_at=None)
            )

    def claim(
        self, holder: str, now: dt.datetime, lease_for: dt.timedelta
    ) -> tuple[Task, Lease] | None:
        """Take one unfinished task nobody holds (or whose holder's lease lapsed: its
        worker died), oldest first; None when there is none."""
        claimable = sa.and_(
            tasks.c.status.in_(_UNFINISHED),
            sa.or_(tasks.c.lease_expires_at.is_(None), tasks.c.lease_expires_at < now),
        )
        candidates = sa.select(tasks.c.id).where(claimable).order_by(tasks.c.created_at).limit(1)
        with transaction(self._engine) as connection:
            if connection.dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            task_id = connection.execute(candidates).scalar()
            if task_id is None:
                return None
            expires_at = now + lease_for
            claimed = connection.execute(
                tasks.update()
                .where(tasks.c.id == task_id, claimable)
                .values(
                    lease_holder=holder,
                    lease_expires_at=expires_at,
                    attempts=tasks.c.attempts + 1,
                )
                .returning(*_COLUMNS, tasks.c.attempts, tasks.c.auth_token)
            ).first()
        if claimed is None:
            return None  # another worker got there first (SQLite)
        task = dataclasses.replace(_task_of(claimed), auth_token=claimed.auth_token)
        return task, Lease(claimed.id, holder, expires_at, claimed.attempts)

    def renew(
        self, lease: Lease, now: dt.datetime, lease_for: dt.timedelta, message: str | None = None
    ) -> Lease | None:
        """Extend the lease (and record progress); None if the lease was lost."""
        values: dict[str, Any] = {"lease_expires_at": now + lease_for}
        if message is not None:
            values.update(message=message, updated_at=now)
        with transaction(self._engine) as connection:
            renewed = connection.execute(tasks.update().where(*_held(lease)).values(**values))
        if renewed.rowcount != 1:
            return None
        return dataclasses.replace(lease, expires_at=now + lease_for)

    def save(self, lease: Lease, task: Task) -> bool:
        """Store the task's new status, result and message while holding `lease`;
        a finished task's lease ends, and so does its creator's token. False (nothing
        stored) if the lease was lost."""
        values: dict[str, Any] = {
            name: value
            for name, value in _columns_of(task).items()
            if name in ("status", "result", "message", "expires_at", "updated_at")
        }
        if task.status in FINISHED:
            values.update(lease_holder=None, lease_expires_at=None, auth_token=None)
        with transaction(self._engine) as connection:
            saved = connection.execute(tasks.update().where(*_held(lease)).values(**values))
        return bool(saved.rowcount == 1)

    def purge(self, now: dt.datetime) -> int:
        """Delete finished tasks past their `expires_at`."""
        with transaction(self._engine) as connection:
            purged = connection.execute(
                tasks.delete().where(
                    tasks.c.expires_at < now,
                    tasks.c.status.in_([status.value for status in FINISHED]),
                )
            )
        return int(purged.rowcount)


def _held(lease: Lease) -> Sequence[sa.ColumnElement[bool]]:
    return (tasks.c.id == lease.task_id, tasks.c.lease_holder == lease.holder)


def _columns_of(task: Task) -> dict[str, Any]:
    values = {name: getattr(task, name) for name in _FIELDS}
    values["status"] = task.status.value
    values["input"] = orjson.dumps(task.input).decode()
    values["result"] = None if task.result is None else orjson.dumps(task.result).decode()
    return values


def _task_of(row: Any) -> Task:
    values = {name: getattr(row, name) for name in _FIELDS}
    values["status"] = TaskStatus(values["status"])
    values["input"] = orjson.loads(values["input"]) if values["input"] else {}
    values["result"] = orjson.loads(values["result"]) if values["result"] else None
    return Task(**values)


def _value_of(task: Task, name: str) -> Any:
    """The task's value in the column `name` (a sort key: no JSON column)."""
    value = getattr(task, name)
    return value.value if isinstance(value, TaskStatus) else value
