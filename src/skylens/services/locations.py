"""Image locations: the `locations` of PATCH (Glance 2.4+ rules) and the locations
API of 2.17 (`POST`/`GET /v2/images/{id}/locations`).

A new location's URL is matched to a store first (metadata `store`, or the first
store of URLs that serves it; the service's own copy of this image in one of its
stores also matches) and its size read from there: network I/O, done before the
image's row is locked. Then the change applies Glance's rules (`LocationEditor`)
inside the image's atomic update. A removed own copy's data is deleted after.

`POST .../locations` creates a `location_import` task (`LocationImport`) and locks
the image to it, as an import does: the task reads the data (with
`images.do_secure_hash`), checks it and activates the image.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from skylens.domain.access import SERVICE, Action, RequestContext
from skylens.domain.changes import Change, ChangeOp, LocationChange, invisible
from skylens.domain.errors import Conflict, Forbidden, ImportUriRefused, InvalidLocation
from skylens.domain.images import Image, ImageStatus, Location, utc_now
from skylens.domain.locations import ExpectedHash, LocationEditor, NewLocation, expected_hash
from skylens.domain.policy import authorize
from skylens.domain.ports import ImageRepository, Offload, Policy, TaskRepository
from skylens.domain.stores import ConfiguredStore
from skylens.domain.tasks import Task
from skylens.services.images import ImageService
from skylens.services.imports import IMPORT_LOCK, check_import_lock, check_lock_unchanged
from skylens.services.tasks import TaskStarter

log = logging.getLogger(__name__)

LOCATION_IMPORT_TASK = "location_import"
_VERBS = {ChangeOp.ADD: "add", ChangeOp.REPLACE: "update", ChangeOp.REMOVE: "remove"}


@dataclasses.dataclass(frozen=True)
class LocationOptions:
    shown: bool = False  # images.show_multiple_locations
    direct_url: bool = False  # images.show_image_direct_url
    api: bool = False  # images.locations_api: POST/GET .../locations
    do_secure_hash: bool = True
    quota: int = 10  # images.location_quota


@dataclasses.dataclass(frozen=True)
class LocationAdd:
    """A `POST .../locations` that passed its checks: the image as they found it, the
    URL and the hash its data must have (`validation_data`, read)."""

    image: Image
    url: str
    expected: ExpectedHash | None


class LocationService:
    def __init__(
        self,
        images: ImageService,
        repository: ImageRepository,
        tasks: TaskRepository,
        stores: Mapping[str, ConfiguredStore],
        key_of: Callable[[str], str],
        policy: Policy,
        options: LocationOptions,
        *,
        hash_algo: str,
        database: Offload,
        storage: Offload,
        creator: str,
        lease_seconds: float = 60.0,
    ) -> None:
        self._images = images
        self._repository = repository
        self._tasks = tasks
        self._stores = stores
        self._key_of = key_of
        self._policy = policy
        self.options = options
        self.editor = LocationEditor(self._own_url, hash_algo, options.quota)
        self._database = database
        self._storage = storage
        self._starter = TaskStarter(tasks, creator, dt.timedelta(seconds=lease_seconds))

    def _own_url(self, store: str, image_id: str) -> str:
        configured = self._stores.get(store)
        key = self._key_of(image_id)
        return configured.location_url(key) if configured else f"{store}://{key}"

    # -- what images show -------------------------------------------------------

    def shown(self, image: Image) -> dict[str, Any]:
        """`locations` and `direct_url` as the options show them (Glance's view)."""
        view: dict[str, Any] = {}
        if not (self.options.shown or self.options.direct_url):
            return view
        locations = self.editor.locations(image)
        if self.options.shown:
            view["locations"] = [location.shown() for location in locations]
        if self.options.direct_url and locations:
            view["direct_url"] = locations[0].url
        return view

    # -- PATCH -------------------------------------------------------------------

    async def prepare(
        self, context: RequestContext, image_id: str, changes: Sequence[Change]
    ) -> tuple[Change, ...]:
        """The changes with each new location found in its store and its size read
        (before the image is locked); other changes as they are."""
        if not self.options.shown:
            return tuple(changes)  # refused with Glance's 403s when applied
        current = await self._database(self._images.get, context, image_id)
        if not all(
            self._policy.allows(context, action, current)
            for action in (Action.MODIFY_IMAGE, Action.SET_IMAGE_LOCATION)
        ):
            # Nothing is fetched for a caller who may not add locations: the change
            # is refused with the policy's 403 when applied.
            return tuple(changes)
        known = {loc.url for loc in self.editor.locations(current)}
        prepared = []
        for change in changes:
            if change.name != "locations" or change.op is ChangeOp.REMOVE:
                prepared.append(change)
                continue
            if change.op is ChangeOp.ADD:
                value: Any = await self.resolve(image_id, change.value, known=set())
            else:
                value = tuple([await self.resolve(image_id, raw, known) for raw in change.value])
            prepared.append(dataclasses.replace(change, value=value))
        return tuple(prepared)

    async def resolve(self, image_id: str, raw: Mapping[str, Any], known: set[str]) -> NewLocation:
        """A location a client gave, its store found and (unless the image already
        has this URL) its size read; `InvalidLocation` if no store serves it."""
        url = raw["url"]
        metadata = dict(raw.get("metadata") or {})
        validation = dict(raw.get("validation_data") or {})
        wanted = metadata.pop("store", None)
        for store in self._stores.values():
            if wanted is not None and store.id != wanted:
                continue
            if store.key_of_url is None:
                if url == self._own_url(store.id, image_id):
                    return NewLocation(Location(url, store.id, {}, own=True), None, validation)
                continue
            key = store.key_of_url(url)
            if key is None:
                continue
            location = Location(url, store.id, metadata)
            if url in known:
                return NewLocation(location, None, validation)
            try:
                size = await self._storage(store.blob.size, key)
            except ImportUriRefused as refused:  # Glance's word for any bad URL
                raise InvalidLocation(f"{url}: {refused.reason}") from refused
            if not size:
                raise InvalidLocation(f"{url}: no data")
            return NewLocation(location, size, validation)
        raise InvalidLocation(f"{url}: no store serves it")

    def editing(self, context: RequestContext, removed: list[Location]) -> LocationChange:
        """What applies a PATCH's `/locations` changes to the image (appending the
        own copies it removes to `removed`, whose data the caller then deletes)."""

        def apply(image: Image, change: Change, now: dt.datetime) -> Image:
            if change.op is ChangeOp.REPLACE and not change.value:
                raise Forbidden("Cannot set locations to empty list.")
            action = Action.DELETE_IMAGE_LOCATION
            if change.op is not ChangeOp.REMOVE:
                action = Action.SET_IMAGE_LOCATION
            authorize(self._policy, context, action, image)
            if not self.options.shown:
                raise invisible(_VERBS[change.op])
            if change.op is ChangeOp.ADD:
                return self.editor.add(image, change.position or "-", change.value, now)
            if change.op is ChangeOp.REPLACE:
                return self.editor.replace(image, change.value, now)
            changed, location = self.editor.remove(image, change.position or "-", now)
            if location.own:
                removed.append(location)
            return changed

        return apply

    def delete_removed(self, image_id: str, removed: Sequence[Location]) -> None:
        """Best effort, as an image's delete: what stays is the orphan sweep's."""
        for location in removed:
            store = self._stores.get(location.store)
            if store is None:
                continue
            try:
                store.blob.delete(self._key_of(image_id))
            except Exception:
                log.exception("could not delete the data of image %s from %s", image_id, store.id)

    # -- the locations API (2.17) -------------------------------------------------

    def locations(self, context: RequestContext, image_id: str) -> list[dict[str, Any]]:
        """`GET .../locations`: the service role's (`fetch_image_location`)."""
        image = self._images.get(context, image_id)
        authorize(self._policy, context, Action.FETCH_IMAGE_LOCATION, image)
        return [location.shown() for location in self.editor.locations(image)]

    def check_add(
        self, context: RequestContext, image_id: str, url: str, validation: Mapping[str, str]
    ) -> LocationAdd:
        """`POST .../locations`'s checks, in Glance's order."""
        image = self._images.get(context, image_id)
        if image.status is not ImageStatus.QUEUED:
            raise Conflict(
                f"It's not allowed to add locations if image status is {image.status.value}."
            )
        authorize(self._policy, context, Action.ADD_IMAGE_LOCATION, image)
        if SERVICE not in context.roles and not self._served_by_url_store(url):
            raise Forbidden("http store must be enabled to use location API by normal user.")
        expected = expected_hash(validation, self.editor.hash_algo)
        check_import_lock(self._tasks, image)
        return LocationAdd(image, url, expected)

    def _served_by_url_store(self, url: str) -> bool:
        return any(
            store.key_of_url is not None and store.key_of_url(url) is not None
            for store in self._stores.values()
        )

    def start_add(self, context: RequestContext, add: LocationAdd, request_id: str | None) -> str:
        """The `location_import` task, held by its creator until the image is locked
        to it; then released to the runners. Its id."""
        image = add.image
        stale = image.properties.get(IMPORT_LOCK)

        def lock(task: Task) -> None:
            def locked(current: Image) -> Image:
                if current.status is not ImageStatus.QUEUED:
                    raise Conflict(
                        f"It's not allowed to add locations if image status is "
                        f"{current.status.value}."
                    )
                check_lock_unchanged(current, stale)
                properties = {**current.properties, IMPORT_LOCK: task.id}
                return current.with_changes(utc_now(), properties=properties)

            self._repository.update(image.id, locked)

        validation = add.expected.validation_data() if add.expected else {}
        task_input = {"image_id": image.id, "loc_url": add.url, "validation_data": validation}
        return self._starter.start(
            context, LOCATION_IMPORT_TASK, image.id, task_input, request_id, lock
        )
