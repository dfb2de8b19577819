"""Tasks: durable records of work done after the request that asked for it
(Glance's `api_image_import`), with their status machine, and image import requests.

A task row is claimed by one worker at a time under a lease (see `TaskRepository`
in `skylens.domain.ports`); what a worker does with it lives in the services.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from skylens.domain.errors import InvalidTaskTransition


class TaskStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILURE = "failure"


# The one table every task status change goes through. processing -> pending does
# not exist: a worker that takes over a task whose worker died keeps it processing.
_T = TaskStatus
TASK_TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    _T.PENDING: frozenset({_T.PROCESSING, _T.FAILURE}),
    _T.PROCESSING: frozenset({_T.SUCCESS, _T.FAILURE}),
    _T.SUCCESS: frozenset(),
    _T.FAILURE: frozenset(),
}
FINISHED = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILURE})

IMPORT_TASK = "api_image_import"
# The keys `GET /v2/tasks` sorts by: the columns glanceclient offers (`task-list
# --sort-key`, whose default is `status`) and the timestamps; ties broken by
# `created_at` then `id`, as Glance pages tasks.
TASK_SORT_KEYS = ("created_at", "updated_at", "id", "type", "status")
# Glance's [task] task_time_to_live default: a finished task is kept 48 hours.
DEFAULT_TIME_TO_LIVE = dt.timedelta(hours=48)


@dataclasses.dataclass(frozen=True, slots=True)
class Task:
    id: str
    type: str
    status: TaskStatus
    owner: str | None
    input: Mapping[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    result: Mapping[str, Any] | None = None
    message: str = ""
    expires_at: dt.datetime | None = None
    image_id: str | None = None
    request_id: str | None = None
    user_id: str | None = None
    # The creator's token, for a task that acts as its creator elsewhere (glance-download
    # reads the other region as the caller). Kept until the task ends; never shown.
    auth_token: str | None = dataclasses.field(default=None, repr=False, compare=False)

    def with_status(
        self,
        target: TaskStatus,
        now: dt.datetime,
        *,
        message: str | None = None,
        result: Mapping[str, Any] | None = None,
        time_to_live: dt.timedelta = DEFAULT_TIME_TO_LIVE,
    ) -> Task:
        """The task moved to `target`; a finished task expires `time_to_live` later."""
        if target not in TASK_TRANSITIONS[self.status]:
            raise InvalidTaskTransition(self.status.value, target.value)
        return dataclasses.replace(
            self,
            status=target,
            updated_at=now,
            message=self.message if message is None else message,
            result=self.result if result is None else result,
            expires_at=now + time_to_live if target in FINISHED else self.expires_at,
        )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclasses.dataclass(frozen=True, slots=True)
class ImportRequest:
    """`POST /v2/images/{id}/import`, checked: the method, the stores to import to
    (in order), and the method's own fields (`uri`, `glance_image_id`...)."""

    method: str
    stores: tuple[str, ...]
    all_stores_must_succeed: bool = True
    all_stores: bool = False
    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # The caller's token, for a method that acts as the caller (glance-download).
    token: str | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def of_task(cls, task: Task) -> ImportRequest:
        """The request an import task was created for (its Glance-shaped `input`)."""
        body = task.input["import_req"]
        method = dict(body["method"])
        name = method.pop("name")
        return cls(
            method=name,
            stores=tuple(task.input["backend"]),
            all_stores_must_succeed=body.get("all_stores_must_succeed", True),
            all_stores=body.get("all_stores", False),
            fields=method,
            token=task.auth_token,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Lease:
    """A worker's hold on a task: until `expires_at`, no other worker takes it."""

    task_id: str
    holder: str
    expires_at: dt.datetime
    attempt: int  # 1 for the first worker, more for each takeover
