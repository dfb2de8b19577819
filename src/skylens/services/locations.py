"""Image locations: the `locations` of PATCH (Glance 2.4+ rules) and the locations
API of 2.17 (`POST`/`GET /v2/images/{id}/locations`).

A new location's URL is matched to a store first (metadata `store`, or the first
store of URLs that serves it and whose URI filter lets it through; the service's
own copy of this image in one of its stores also matches). The whole PATCH is then
tried on the image as it is, so that every rule that needs no network (Glance's
rules, `LocationEditor`, the quota among them) refuses before any URL is read; then
the size of each new location the tried image keeps is read from its store (network
I/O, before the image's row is locked), and the change applies the same rules again
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
from skylens.domain.uris import UriFilter
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
        uri_filter: UriFilter,
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
        self._uri_filter = uri_filter
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
        self,
        context: RequestContext,
        image_id: str,
        changes: Sequence[Change],
        *,
        add_replaces: bool = True,
    ) -> tuple[Change, ...]:
        """The changes with each new location found in its store and its size read
        (before the image is locked); other changes as they are.

        The whole PATCH is tried first on the image as it is (`ImageService.try_update`):
        what Glance refuses without reading a URL (policy, status, validation data,
        positions, the quota, duplicates, a URL no store serves or the URI filter
        refuses, and every other change's rules) is refused before anything is
        fetched. Then only the new locations the tried image keeps are fetched, so a
        request fetches at most `location_quota` URLs."""
        if not self.options.shown:
            return tuple(changes)  # refused with Glance's 403s when applied
        matched = tuple(self._matched(image_id, change) for change in changes)
        sizes: dict[str, int] = {}
        for new in await self._to_read(context, image_id, matched, add_replaces):
            if new.location.url not in sizes:
                sizes[new.location.url] = await self._size(new)

        def with_size(new: NewLocation) -> NewLocation:
            size = sizes.get(new.location.url)
            return new if size is None else dataclasses.replace(new, size=size)

        return tuple(
            dataclasses.replace(change, value=_each(change, with_size))
            if change.name == "locations" and change.op is not ChangeOp.REMOVE
            else change
            for change in matched
        )

    async def _to_read(
        self,
        context: RequestContext,
        image_id: str,
        changes: Sequence[Change],
        add_replaces: bool,
    ) -> list[NewLocation]:
        """The new locations whose URLs `changes` (matched) must read: those the PATCH,
        tried on the image as it is, leaves on it; but not the service's own copies,
        nor the URLs a replace keeps (Glance reads none when only metadata changes).
        Raises what the PATCH would be refused for."""
        added: list[NewLocation] = []
        edit = self.editing(context, [])

        def tried(image: Image, change: Change, now: dt.datetime) -> Image:
            changed = edit(image, change, now)
            if change.op is ChangeOp.ADD:
                added.append(change.value)
            elif change.op is ChangeOp.REPLACE:
                known = {location.url for location in self.editor.locations(image)}
                added.extend(new for new in change.value if new.location.url not in known)
            return changed

        image = await self._database(
            self._images.try_update, context, image_id, changes, tried, add_replaces
        )
        kept = self.editor.locations(image)
        return [new for new in added if not new.location.own and new.location in kept]

    def _matched(self, image_id: str, change: Change) -> Change:
        """A PATCH change with the new locations it names matched to their stores."""
        if change.name != "locations" or change.op is ChangeOp.REMOVE:
            return change
        return dataclasses.replace(
            change, value=_each(change, lambda raw: self.match(image_id, raw))
        )

    def match(self, image_id: str, raw: Mapping[str, Any]) -> NewLocation:
        """A location a client gave, its store found without fetching anything; or,
        in `refused`, why none may serve it."""
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
            if store.key_of_url(url) is None:
                continue
            refused = None
            try:
                self._uri_filter.check(url)
            except ImportUriRefused as error:  # Glance's word for any bad URL
                refused = f"{url}: {error.reason}"
            return NewLocation(Location(url, store.id, metadata), None, validation, refused)
        refused = f"{url}: no store serves it"
        return NewLocation(Location(url, wanted or "", metadata), None, validation, refused)

    async def resolve(self, image_id: str, raw: Mapping[str, Any]) -> NewLocation:
        """A location a client gave, its store found and its size read;
        `InvalidLocation` if no store serves it or its data cannot be read."""
        new = self.match(image_id, raw)
        if new.refused is not None:
            raise InvalidLocation(new.refused)
        if new.location.own:
            return new
        return dataclasses.replace(new, size=await self._size(new))

    async def _size(self, new: NewLocation) -> int:
        """The size of the data at `new`'s URL (in a store of URLs), read from there."""
        url = new.location.url
        store = self._stores[new.location.store]
        assert store.key_of_url is not None
        key = store.key_of_url(url)
        assert key is not None
        try:
            size = await self._storage(store.blob.size, key)
        except ImportUriRefused as refused:  # the filter, on the addresses or a redirect
            raise InvalidLocation(f"{url}: {refused.reason}") from refused
        if not size:
            raise InvalidLocation(f"{url}: no data")
        return size

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


def _each(change: Change, convert: Callable[[Any], NewLocation]) -> Any:
    """A `/locations` add's or replace's value with each location converted."""
    if change.op is ChangeOp.ADD:
        return convert(change.value)
    return tuple(convert(value) for value in change.value)
