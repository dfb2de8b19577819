"""Handlers for interoperable image import (Image API 2.6+) and tasks:
`GET /v2/info/import`, `PUT /v2/images/{id}/stage`, `POST /v2/images/{id}/import`,
`GET /v2/images/{id}/tasks`, `GET|POST /v2/tasks`, `GET /v2/tasks/{id}`."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from skylens.api.image_v2.data import OCTET_STREAM, announced_size, check_upload_media_type
from skylens.api.offload import Offload
from skylens.api.request_body import request_body
from skylens.api.requests import read_json
from skylens.api.responses import empty, json_response, no_content, timestamp
from skylens.api.routing import Operation, Resource
from skylens.domain.access import RequestContext
from skylens.domain.errors import ImageNotFound, InvalidRequest
from skylens.domain.tasks import Task, TaskStatus
from skylens.logs import note_store
from skylens.services.images import ImageService
from skylens.services.imports import ImportService
from skylens.services.staging import StagingService
from skylens.services.tasks import TaskService

_JSON = "application/json"
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)


@dataclasses.dataclass(frozen=True)
class ImportHandlers:
    images: ImageService
    imports: ImportService
    staging: StagingService
    tasks: TaskService
    wake_runner: Any  # Callable[[], None]
    reads: Offload
    writes: Offload
    limit_default: int = 25
    limit_max: int = 1000

    async def info(self, request: Request, context: RequestContext) -> Response:
        return json_response(
            {
                "import-methods": {
                    "description": "Import methods available.",
                    "type": "array",
                    "value": self.imports.enabled_methods(),
                }
            }
        )

    async def stage(self, request: Request, context: RequestContext) -> Response:
        """PUT /v2/images/{id}/stage, after `check_upload_media_type`."""
        note_store(self.staging.store_id)
        await self.staging.stage(
            context,
            request.path_params["image_id"],
            request_body(request),
            expected_size=announced_size(request.headers.get("x-openstack-image-size")),
        )
        return no_content()

    async def import_image(self, request: Request, context: RequestContext) -> Response:
        body = await read_json(request)
        parsed = self.imports.parse(body, request.headers.get("x-image-meta-store"))
        request_id = getattr(request.state, "request_id", None)
        # The caller's token (auth.mode = "keystone"), which glance-download acts with.
        token = request.headers.get("x-auth-token") or request.headers.get("x-storage-token")
        started = await self.writes(
            self.imports.start, context, request.path_params["image_id"], parsed, request_id, token
        )
        if started.task_id is not None:
            self.wake_runner()
        return empty(202)

    async def image_tasks(self, request: Request, context: RequestContext) -> Response:
        image_id = request.path_params["image_id"]
        image = await self.reads(self.images.visible, context, image_id, _no_image)
        tasks = await self.reads(self.tasks.of_image, context, image.id)
        return json_response({"tasks": [_task_record(task) for task in tasks]})

    async def index(self, request: Request, context: RequestContext) -> Response:
        await self.reads(self.tasks.check_access, context)
        params = request.query_params
        limit = _limit(params.get("limit"), self.limit_default, self.limit_max)
        marker = params.get("marker")
        if marker is not None and not _UUID.fullmatch(marker):
            raise InvalidRequest("Invalid marker format")
        sort_dir = params.get("sort_dir", "desc")
        if sort_dir not in ("asc", "desc"):
            raise InvalidRequest(f"Invalid sort direction: {sort_dir}")
        sort_key = params.get("sort_key", "created_at")
        status = params.get("status")
        if status and status not in {s.value for s in TaskStatus}:
            raise InvalidRequest(f"Invalid status value: {status}")
        kind = params.get("type")
        if kind and kind != "import":
            raise InvalidRequest(f"Invalid type value: {kind}")
        if kind:  # Glance's only listable type: no import task is one
            tasks: Sequence[Task] = []
        else:
            tasks = await self.reads(
                self.tasks.list,
                context,
                limit=limit,
                marker=marker,
                status=TaskStatus(status) if status else None,
                descending=sort_dir == "desc",
                sort_key=sort_key,
            )
        query = [(key, value) for key, value in params.multi_items() if key != "marker"]
        body: dict[str, Any] = {
            "tasks": [_task_stub(task) for task in tasks],
            "first": "/v2/tasks" + (f"?{urlencode(query)}" if query else ""),
            "schema": "/v2/schemas/tasks",
        }
        if tasks and len(tasks) == limit:
            body["next"] = "/v2/tasks?" + urlencode([*query, ("marker", tasks[-1].id)])
        return json_response(body)

    async def show(self, request: Request, context: RequestContext) -> Response:
        task = await self.reads(self.tasks.get, context, request.path_params["task_id"])
        return json_response(_task_view(task))

    async def create(self, request: Request, context: RequestContext) -> Response:
        await self.reads(self.tasks.create, context)
        raise AssertionError("unreachable: create always refuses")


def _no_image(image_id: str) -> ImageNotFound:
    return ImageNotFound(image_id, "The resource could not be found.")


def _limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return min(default, maximum)
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidRequest("limit param must be an integer") from None
    if limit < 0:
        raise InvalidRequest("limit param must be positive")
    return min(limit, maximum)


def _task_stub(task: Task) -> dict[str, Any]:
    """A task in `GET /v2/tasks`, as Glance's partial task view."""
    view: dict[str, Any] = {
        "id": task.id,
        "type": task.type,
        "status": task.status.value,
        "owner": task.owner,
        "created_at": timestamp(task.created_at.replace(microsecond=0)),
        "updated_at": timestamp(task.updated_at.replace(microsecond=0)),
        "self": f"/v2/tasks/{task.id}",
        "schema": "/v2/schemas/task",
    }
    if task.expires_at is not None:
        view["expires_at"] = timestamp(task.expires_at.replace(microsecond=0))
    return view


def _task_view(task: Task) -> dict[str, Any]:
    """`GET /v2/tasks/{id}`, in Glance's key order."""
    view: dict[str, Any] = {
        "id": task.id,
        "input": dict(task.input),
        "type": task.type,
        "status": task.status.value,
        "owner": task.owner,
        "message": task.message,
        "result": None if task.result is None else dict(task.result),
        "created_at": timestamp(task.created_at.replace(microsecond=0)),
        "updated_at": timestamp(task.updated_at.replace(microsecond=0)),
        "self": f"/v2/tasks/{task.id}",
        "schema": "/v2/schemas/task",
    }
    for name in ("image_id", "request_id", "user_id"):
        if getattr(task, name):
            view[name] = getattr(task, name)
    if task.expires_at is not None:
        view["expires_at"] = timestamp(task.expires_at.replace(microsecond=0))
    return view


def _task_record(task: Task) -> dict[str, Any]:
    """A task in `GET /v2/images/{id}/tasks`: Glance returns its database rows as they
    are (ISO times with microseconds, `deleted` and `deleted_at` included)."""
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status.value,
        "owner": task.owner,
        "expires_at": None if task.expires_at is None else task.expires_at.isoformat(),
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
        "deleted_at": None,
        "deleted": False,
        "image_id": task.image_id,
        "request_id": task.request_id,
        "user_id": task.user_id,
        "input": dict(task.input),
        "result": None if task.result is None else dict(task.result),
        "message": task.message,
    }


def import_resources(handlers: ImportHandlers) -> list[Resource]:
    image_errors = (401, 403, 404)
    return [
        Resource(
            "/v2/info/import",
            [Operation("GET", handlers.info, "List the import methods served", errors=(401,))],
            tag="import",
        ),
        Resource(
            "/v2/images/{image_id}/stage",
            [
                Operation(
                    "PUT",
                    handlers.stage,
                    "Stage image data for a glance-direct import",
                    success=204,
                    errors=(400, *image_errors, 409, 413, 415, 503),
                    request_media_type=OCTET_STREAM,
                    request_schema="image_data",
                    precheck=check_upload_media_type,
                )
            ],
            tag="import",
        ),
        Resource(
            "/v2/images/{image_id}/import",
            [
                Operation(
                    "POST",
                    handlers.import_image,
                    "Import image data (glance-direct, copy-image...): runs as a task",
                    success=202,
                    errors=(400, *image_errors, 409, 413),
                    request_media_type=_JSON,
                )
            ],
            tag="import",
        ),
        Resource(
            "/v2/images/{image_id}/tasks",
            [
                Operation(
                    "GET",
                    handlers.image_tasks,
                    "List the tasks of an image",
                    errors=image_errors,
                )
            ],
            tag="tasks",
        ),
        Resource(
            "/v2/tasks",
            [
                Operation(
                    "GET",
                    handlers.index,
                    "List tasks (admin)",
                    errors=(400, 401, 403),
                    response_schema="tasks",
                ),
                Operation(
                    "POST",
                    handlers.create,
                    "Create a legacy task: refused (403 unless admin; 400: use image import)",
                    success=201,
                    errors=(400, 401, 403),
                    request_media_type=_JSON,
                ),
            ],
            tag="tasks",
        ),
        Resource(
            "/v2/tasks/{task_id}",
            [
                Operation(
                    "GET",
                    handlers.show,
                    "Show a task (admin)",
                    errors=(401, 403, 404),
                    response_schema="task",
                )
            ],
            tag="tasks",
        ),
    ]
