"""Images as the Compute API v2.1 shows them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from skylens.api.responses import timestamp
from skylens.domain.images import Image, ImageStatus

_STATUS = {
    ImageStatus.ACTIVE: "ACTIVE",
    ImageStatus.QUEUED: "SAVING",
    ImageStatus.SAVING: "SAVING",
    ImageStatus.DELETED: "DELETED",
    ImageStatus.PENDING_DELETE: "DELETED",
    ImageStatus.KILLED: "ERROR",
}
_PROGRESS = {ImageStatus.QUEUED: 25, ImageStatus.SAVING: 50, ImageStatus.ACTIVE: 100}
# oslo.utils' bool_from_string: what reads as true; anything else is false.
_TRUE_STRINGS = frozenset({"1", "t", "true", "on", "y", "yes"})


@dataclasses.dataclass(frozen=True)
class Links:
    """Where links point: `versioned` is the Compute endpoint as the client called it
    (`.../v2.1` and, if the URL had one, `/{project_id}`), `bookmark` the same
    without the version, `image_api` the Image API's root."""

    versioned: str
    bookmark: str
    image_api: str

    def pair(self, collection: str, identifier: str) -> list[dict[str, str]]:
        return [
            {"rel": "self", "href": f"{self.versioned}/{collection}/{identifier}"},
            {"rel": "bookmark", "href": f"{self.bookmark}/{collection}/{identifier}"},
        ]

    def image(self, image_id: str) -> list[dict[str, str]]:
        return [
            *self.pair("images", image_id),
            {
                "rel": "alternate",
                "type": "application/vnd.openstack.image",
                "href": f"{self.image_api}/images/{image_id}",
            },
        ]


def basic_view(image: Image, links: Links) -> dict[str, Any]:
    return {"id": image.id, "name": image.name, "links": links.image(image.id)}


def detail_view(image: Image, links: Links) -> dict[str, Any]:
    metadata = dict(image.properties)
    view: dict[str, Any] = {
        "id": image.id,
        "name": image.name,
        "minRam": image.min_ram,
        "minDisk": image.min_disk,
        "metadata": metadata,
        "created": timestamp(image.created_at),
        "updated": timestamp(image.updated_at),
        "status": _STATUS.get(image.status, "UNKNOWN"),
        "progress": _PROGRESS.get(image.status, 0),
        "OS-EXT-IMG-SIZE:size": image.size or 0,
        "links": links.image(image.id),
    }
    server = metadata.get("instance_uuid")
    if server is not None:
        view["server"] = {"id": server, "links": links.pair("servers", server)}
    disk_config = metadata.get("auto_disk_config")
    if disk_config is not None:
        automatic = disk_config.strip().lower() in _TRUE_STRINGS
        view["OS-DCF:diskConfig"] = "AUTO" if automatic else "MANUAL"
    return view


def list_view(
    images: Sequence[Image],
    links: Links,
    *,
    detailed: bool,
    params: Sequence[tuple[str, str]],
    page_full: bool,
) -> dict[str, Any]:
    """The list, and `images_links` with `next` when the page is full: the query's
    parameters sorted by name (the last value of each) with the last image as marker."""
    view = detail_view if detailed else basic_view
    body: dict[str, Any] = {"images": [view(image, links) for image in images]}
    if page_full and images:
        query = dict(sorted(dict(params).items()))
        query["marker"] = images[-1].id
        collection = "images/detail" if detailed else "images"
        body["images_links"] = [
            {"rel": "next", "href": f"{links.versioned}/{collection}?{urlencode(query)}"}
        ]
    return body


def metadata_view(image: Image) -> dict[str, Any]:
    return {"metadata": dict(image.properties)}
