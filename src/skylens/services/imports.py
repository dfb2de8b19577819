"""Image import, the request: `POST /v2/images/{id}/import` checked as Glance 33
checks it, in Glance's order, then an import task created and the image locked to it.

The task row is written first, held by its creator; then one atomic image change
takes the import lock (`os_glance_import_task`), records the target stores and moves
the image to `importing`; then the task is released to the runners. A creator that
dies in between leaves a task whose lease lapses: a runner takes it, finds the image
not locked to it and fails it, and the image was never touched.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from skylens.domain.access import Action, RequestContext
from skylens.domain.errors import Conflict, ImageNotFound, InvalidRequest
from skylens.domain.images import Image, ImageStatus, utc_now
from skylens.domain.policy import authorize
from skylens.domain.ports import ImageRepository, Policy, TaskRepository
from skylens.domain.stores import ConfiguredStore
from skylens.domain.tasks import IMPORT_TASK, ImportRequest, Task
from skylens.services.images import ImageService
from skylens.services.import_methods import COPY_IMAGE, KNOWN_METHODS, ImportMethod
from skylens.services.import_plugins import MetadataInjection
from skylens.services.quotas import QuotaService
from skylens.services.tasks import TaskStarter

# The image properties Glance keeps an import's state in.
IMPORT_LOCK = "os_glance_import_task"
IMPORTING_TO = "os_glance_importing_to_stores"
FAILED_IMPORT = "os_glance_failed_import"
STAGE_HOST = "os_glance_stage_host"


def store_list(value: str | None) -> list[str]:
    return [name for name in (value or "").split(",") if name]


def with_stores(
    image: Image, key: str, add: Sequence[str] = (), remove: Sequence[str] = ()
) -> dict[str, str | None]:
    """The image's properties with `add` put in, and `remove` taken out of, the
    comma-separated store list under `key`."""
    names = [name for name in store_list(image.properties.get(key)) if name not in remove]
    names += [name for name in add if name not in names]
    return {**image.properties, key: ",".join(names)}


def check_import_lock(tasks: TaskRepository, image: Image) -> str | None:
    """Glance's `_enforce_import_lock`, for an import and a location import (2.17)
    alike: 409 while the task holding the image's import lock runs; the id of a stale
    lock (its task finished or gone), which the caller may take over."""
    holder = image.properties.get(IMPORT_LOCK)
    if not holder:
        return None
    task = tasks.get(holder)
    if task is not None and not task.finished:
        raise Conflict("Image has active task")
    return holder


def check_lock_unchanged(image: Image, stale_lock: str | None) -> None:
    """In the atomic change that takes the import lock: 409 if another operation took
    it since `check_import_lock` found it free (or held by `stale_lock`)."""
    if image.properties.get(IMPORT_LOCK, stale_lock) != stale_lock:
        raise Conflict(
            f"New operation on image '{image.id}' is not permitted as prior operation "
            "is still in progress"
        )


@dataclasses.dataclass(frozen=True)
class Started:
    task_id: str | None  # None: nothing to do (copy-image to stores that have it)


class ImportService:
    def __init__(
        self,
        images: ImageService,
        repository: ImageRepository,
        tasks: TaskRepository,
        methods: Mapping[str, ImportMethod],
        stores: Mapping[str, ConfiguredStore],
        default_store: str,
        policy: Policy,
        quotas: QuotaService,
        *,
        creator: str,
        lease_seconds: float = 60.0,
        clock: Callable[[], dt.datetime] = utc_now,
        injection: MetadataInjection | None = None,
    ) -> None:
        self._injection = injection
        self._images = images
        self._repository = repository
        self._tasks = tasks
        self._methods = methods
        self._stores = stores
        self._default_store = default_store
        self._policy = policy
        self._quotas = quotas
        self._starter = TaskStarter(tasks, creator, dt.timedelta(seconds=lease_seconds))
        self._clock = clock

    def enabled_methods(self) -> list[str]:
        """The import methods served, in Glance's order."""
        known = [name for name in KNOWN_METHODS if name in self._methods]
        return known + sorted(set(self._methods) - set(known))

    def parse(self, body: Any, header_store: str | None) -> ImportRequest:
        """Glance's checks of the request body (all 400)."""
        if not isinstance(body, dict) or "method" not in body:
            raise InvalidRequest("Import request requires a 'method' field.")
        method = body["method"]
        if not isinstance(method, dict) or "name" not in method:
            raise InvalidRequest("Import request requires a 'name' field.")
        name = method["name"]
        if not isinstance(name, str) or name not in self._methods:
            raise InvalidRequest(f"Unknown import method name '{name}'.")
        must_succeed = body.get("all_stores_must_succeed", True)
        if not isinstance(must_succeed, bool):
            raise InvalidRequest("'all_stores_must_succeed' must be boolean value only")
        all_stores = body.get("all_stores", False)
        if not isinstance(all_stores, bool):
            raise InvalidRequest("'all_stores' must be boolean value only")
        return ImportRequest(
            method=name,
            stores=self._stores_of(body, header_store, all_stores),
            all_stores_must_succeed=must_succeed,
            all_stores=all_stores,
            fields={key: value for key, value in method.items() if key != "name"},
        )

    def _stores_of(
        self, body: dict[str, Any], header: str | None, all_stores: bool
    ) -> tuple[str, ...]:
        if all_stores:
            if "stores" in body or header is not None:
                raise InvalidRequest(
                    "All_stores parameter can't be used with x-image-meta-store header or "
                    "stores parameter"
                )
            return tuple(self._stores)
        if "stores" not in body:
            return (header or self._default_store,)
        if header is not None:
            raise InvalidRequest(
                "Stores parameter and x-image-meta-store header can't be both specified"
            )
        stores = body["stores"]
        if not isinstance(stores, list) or not all(isinstance(s, str) for s in stores):
            raise InvalidRequest("'stores' must be a list of store identifiers")
        return tuple(stores)

    def start(
        self,
        context: RequestContext,
        image_id: str,
        request: ImportRequest,
        request_id: str | None,
        token: str | None = None,
    ) -> Started:
        """Check the import as Glance does, then create its task and lock the image.
        `token`: the caller's, for a method that acts as the caller."""
        self._check_size_quota(context)
        image = self._images.visible(context, image_id, ImageNotFound)
        method = self._methods[request.method]
        self._check_status(image, method)
        request = method.with_fields(request, token)
        if request.method == COPY_IMAGE:
            authorize(self._policy, context, Action.COPY_IMAGE, image)
        else:
            authorize(self._policy, context, Action.MODIFY_IMAGE, image)
        stale_lock = check_import_lock(self._tasks, image)
        for store in request.stores:
            if store not in self._stores:
                raise Conflict(f"Store for identifier {store} not found")
        stores = request.stores
        if request.method == COPY_IMAGE:
            if request.all_stores:
                stores = tuple(name for name in stores if name not in image.stores)
                if not stores:
                    return Started(None)
            for name in stores:
                if name in image.stores:
                    raise InvalidRequest(f"Image is already present at store '{name}'")
        method.check(image, request)
        request = dataclasses.replace(request, stores=stores)
        return Started(self._create(context, image, method, request, request_id, stale_lock))

    def _check_size_quota(self, context: RequestContext) -> None:
        """413 for a caller's project already over `image_size_total`, as Glance."""
        budget = self._quotas.size_budget(context.project_id)
        if budget is not None and budget < 0:
            assert context.project_id is not None  # only projects have budgets
            raise self._quotas.over_budget(context.project_id, budget, 0)

    def _check_status(self, image: Image, method: ImportMethod) -> None:
        if image.status is ImageStatus.ACTIVE and method.name != COPY_IMAGE:
            raise Conflict("Image with status active cannot be target for import")
        if image.status is not method.required_status:
            raise Conflict(method.wrong_status)
        if not image.container_format:
            raise Conflict("'container_format' needs to be set before import")
        if not image.disk_format:
            raise Conflict("'disk_format' needs to be set before import")

    def _create(
        self,
        context: RequestContext,
        image: Image,
        method: ImportMethod,
        request: ImportRequest,
        request_id: str | None,
        stale_lock: str | None,
    ) -> str:
        body: dict[str, Any] = {"method": {"name": request.method, **request.fields}}
        if request.all_stores:
            body["all_stores"] = True
        if not request.all_stores_must_succeed:
            body["all_stores_must_succeed"] = False
        if request.stores and (request.all_stores or request.stores != (self._default_store,)):
            body.setdefault("stores", list(request.stores))
        # inject_image_metadata: the importing user's roles are known only here.
        injected = {}
        if self._injection is not None and method.name != COPY_IMAGE:
            injected = dict(self._injection.for_roles(context.roles))

        def lock(task: Task) -> None:
            self._repository.update(
                image.id, self._locking(task, method, request, stale_lock, injected)
            )

        task_input = {"image_id": image.id, "import_req": body, "backend": list(request.stores)}
        return self._starter.start(
            context, IMPORT_TASK, image.id, task_input, request_id, lock, auth_token=request.token
        )

    def _locking(
        self,
        task: Task,
        method: ImportMethod,
        request: ImportRequest,
        stale_lock: str | None,
        injected: Mapping[str, str],
    ) -> Callable[[Image], Image]:
        def locked(image: Image) -> Image:
            check_lock_unchanged(image, stale_lock)
            self._check_status(image, method)
            changed = dataclasses.replace(
                image, properties=with_stores(image, IMPORTING_TO, request.stores)
            )
            properties = with_stores(changed, FAILED_IMPORT, remove=request.stores)
            properties.update(injected)
            properties[IMPORT_LOCK] = task.id
            properties.pop(STAGE_HOST, None)
            changed = dataclasses.replace(changed, properties=properties)
            if method.name == COPY_IMAGE:
                return changed.with_changes(self._clock())
            return changed.with_status(ImageStatus.IMPORTING, self._clock())

        return locked
