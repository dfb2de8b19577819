"""Work that is not moving, for `skylens images stuck`: uploads and stagings whose
process stopped renewing their lease, images left `importing` by a task that ended
or vanished, and tasks whose holder's lease lapsed or that nobody claims.

It only reads. What puts such work right (the orphan sweep for uploads, another
runner for tasks) is elsewhere; this tells an operator what waits and on whom.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import sqlalchemy as sa

from skylens.db.engine import connected
from skylens.db.image_rows import stale_upload
from skylens.db.tables import image_properties, image_uploads, images, tasks

# The image property an import holds its lock with: the task's id.
_IMPORT_TASK_PROPERTY = "os_glance_import_task"
_STAGE_HOST_PROPERTY = "os_glance_stage_host"
_UNFINISHED_TASKS = ("pending", "processing")


@dataclasses.dataclass(frozen=True)
class StuckWork:
    """One piece of work not moving. `kind`: upload, stage, import or task; `id`: the
    image's id (the task's for a task); `age_seconds`: since its last change;
    `holder`: the process holding it, when known."""

    kind: str
    id: str
    image_id: str | None
    owner: str | None
    status: str
    age_seconds: int
    holder: str | None
    reason: str


def stuck_work(engine: sa.Engine, now: dt.datetime, older_than: int) -> list[StuckWork]:
    """Everything not moving for longer than `older_than` seconds at `now` (naive
    UTC, as the database stores it), oldest first."""
    before = now - dt.timedelta(seconds=older_than)
    with connected(engine) as connection:
        found = [
            *_uploads(connection, now, before),
            *_imports(connection, now, before),
            *_tasks(connection, now, before),
        ]
    return sorted(found, key=lambda work: (-work.age_seconds, work.kind, work.id))


def _age(now: dt.datetime, then: dt.datetime | None) -> int:
    return max(0, int((now - then).total_seconds())) if then is not None else 0


def _uploads(
    connection: sa.Connection, now: dt.datetime, before: dt.datetime
) -> Iterator[StuckWork]:
    """Images `saving` (an upload) or `uploading` without a size (a stage under way)
    whose lease was last renewed before `before`, or that hold no lease and have not
    changed since then."""
    lease = image_uploads.c.renewed_at
    stage_host = (
        sa.select(image_properties.c.value)
        .where(
            image_properties.c.image_id == images.c.id,
            image_properties.c.name == _STAGE_HOST_PROPERTY,
        )
        .scalar_subquery()
    )
    query = (
        sa.select(
            images.c.id,
            images.c.owner,
            images.c.status,
            images.c.updated_at,
            lease,
            image_uploads.c.holder,
            stage_host.label("stage_host"),
        )
        .outerjoin(image_uploads, image_uploads.c.image_id == images.c.id)
        .where(stale_upload(before))
    )
    for row in connection.execute(query):
        kind = "upload" if row.status == "saving" else "stage"
        if row.renewed_at is None:
            reason = "no upload lease (its process never took one or released it)"
            last = row.updated_at
        else:
            reason = (
                f"lease not renewed for {_age(now, row.renewed_at)} s "
                "(its process died or cannot reach the database)"
            )
            last = row.renewed_at
        yield StuckWork(
            kind=kind,
            id=row.id,
            image_id=row.id,
            owner=row.owner,
            status=row.status,
            age_seconds=_age(now, last),
            holder=row.holder or row.stage_host,
            reason=reason,
        )


def _imports(
    connection: sa.Connection, now: dt.datetime, before: dt.datetime
) -> Iterator[StuckWork]:
    """Images `importing` whose import task is gone or finished (nothing will move
    them on), or whose task's lease lapsed before `before`."""
    lock = image_properties.alias("lock")
    query = (
        sa.select(
            images.c.id,
            images.c.owner,
            images.c.status,
            images.c.updated_at,
            lock.c.value.label("task_id"),
            tasks.c.status.label("task_status"),
            tasks.c.lease_holder,
            tasks.c.lease_expires_at,
        )
        .outerjoin(
            lock, sa.and_(lock.c.image_id == images.c.id, lock.c.name == _IMPORT_TASK_PROPERTY)
        )
        .outerjoin(tasks, tasks.c.id == lock.c.value)
        .where(images.c.status == "importing", images.c.updated_at < before)
    )
    for row in connection.execute(query):
        if row.task_id is None:
            reason = "importing without an import lock (no task will finish it)"
        elif row.task_status is None:
            reason = f"its import task {row.task_id} no longer exists"
        elif row.task_status not in _UNFINISHED_TASKS:
            reason = f"its import task {row.task_id} ended ({row.task_status})"
        elif row.lease_expires_at is not None and row.lease_expires_at < before:
            reason = f"its import task {row.task_id} is held by a lapsed lease"
        else:
            continue  # its task is alive: the task's own line says whether it moves
        yield StuckWork(
            kind="import",
            id=row.id,
            image_id=row.id,
            owner=row.owner,
            status=row.status,
            age_seconds=_age(now, row.updated_at),
            holder=row.lease_holder,
            reason=reason,
        )


def _tasks(connection: sa.Connection, now: dt.datetime, before: dt.datetime) -> Iterator[StuckWork]:
    """Unfinished tasks past their lease, nobody's for longer than the threshold, or
    held without a word of progress since `before`."""
    expires = tasks.c.lease_expires_at
    query = sa.select(
        tasks.c.id,
        tasks.c.image_id,
        tasks.c.owner,
        tasks.c.status,
        tasks.c.updated_at,
        tasks.c.lease_holder,
        expires,
        tasks.c.attempts,
    ).where(
        tasks.c.status.in_(_UNFINISHED_TASKS),
        sa.or_(expires < now, tasks.c.updated_at < before),
    )
    for row in connection.execute(query):
        if row.lease_expires_at is not None and row.lease_expires_at < now:
            reason = (
                f"lease expired {_age(now, row.lease_expires_at)} s ago "
                f"(attempt {row.attempts}; its worker died or cannot reach the database)"
            )
        elif row.lease_expires_at is None:
            reason = "no runner has claimed it (is tasks.concurrency 0 everywhere?)"
        else:
            reason = "no progress reported while its lease is renewed"
        yield StuckWork(
            kind="task",
            id=row.id,
            image_id=row.image_id,
            owner=row.owner,
            status=row.status,
            age_seconds=_age(now, row.updated_at),
            holder=row.lease_holder,
            reason=reason,
        )
