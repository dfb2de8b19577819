"""Images as the Image API v2 shows them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from skylens.api.responses import timestamp
from skylens.domain.images import Image

IMAGE_SCHEMA_PATH = "/v2/schemas/image"
IMAGES_SCHEMA_PATH = "/v2/schemas/images"

# Glance's key order: extra properties first, then these.
_ATTRIBUTES = (
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "size",
    "virtual_size",
    "status",
    "checksum",
    "protected",
    "min_ram",
    "min_disk",
    "owner",
    "os_hidden",
    "os_hash_algo",
    "os_hash_value",
)


def image_path(image_id: str) -> str:
    return f"/v2/images/{image_id}"


# Properties the service keeps for itself, never shown (as in Glance).
_HIDDEN_PROPERTIES = frozenset({"os_glance_stage_host", "os_glance_hash_op_host"})


def no_locations(_image: Image) -> dict[str, Any]:
    return {}


def image_view(
    image: Image, locations: Callable[[Image], dict[str, Any]] = no_locations
) -> dict[str, Any]:
    """`locations` gives `locations` and `direct_url` when the options show them."""
    view: dict[str, Any] = {
        name: value for name, value in image.properties.items() if name not in _HIDDEN_PROPERTIES
    }
    for name in _ATTRIBUTES:
        view[name] = getattr(image, name)
    path = image_path(image.id)
    view["id"] = image.id
    view["created_at"] = timestamp(image.created_at)
    view["updated_at"] = timestamp(image.updated_at)
    view.update(locations(image))
    view["tags"] = sorted(image.tags)
    view["self"] = path
    view["file"] = f"{path}/file"
    view["schema"] = IMAGE_SCHEMA_PATH
    stores = dict.fromkeys([*image.stores, *(loc.store for loc in image.locations)])
    if stores:
        # As in Glance: present only once the image has data (a location's store too).
        view["stores"] = ",".join(stores)
    return view


def images_view(
    images: Iterable[Image],
    params: Iterable[tuple[str, str]],
    next_marker: str | None,
    view: Callable[[Image], dict[str, Any]] = image_view,
) -> dict[str, Any]:
    """The list envelope with Glance's relative, URL-encoded paging links.

    Repeated parameters keep their last value, as in Glance, except those the
    list reads every value of (`tag`, `sort_key`, `sort_dir`): all their values
    are kept, so that following `next` never widens the filter or changes the
    order mid-way (Glance keeps only the last one of these too).
    """
    query = _link_params(params)
    body: dict[str, Any] = {"images": [view(image) for image in images]}
    body["first"] = "/v2/images" + (f"?{urlencode(query)}" if query else "")
    body["schema"] = IMAGES_SCHEMA_PATH
    if next_marker is not None:
        body["next"] = "/v2/images?" + urlencode([*query, ("marker", next_marker)])
    return body


# Parameters the list reads every value of; the links must keep them all.
_MULTI_VALUED = frozenset({"tag", "sort_key", "sort_dir"})


def _link_params(params: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    values: dict[str, list[str]] = {}  # in order of first appearance
    for key, value in params:
        if key == "marker":
            continue
        if key in _MULTI_VALUED:
            values.setdefault(key, []).append(value)
        else:
            values[key] = [value]  # a dict keeps the key's first position
    return [(key, value) for key, kept in values.items() for value in kept]
