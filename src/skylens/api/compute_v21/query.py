"""The Compute API's image list parameters, mapped to the Image API's filters.

The Compute API passes its filters on to the Image API under other names, so
they are translated here and then parsed exactly as `GET /v2/images` parses
them: the same grammar, the same errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from skylens.api.listing import ListLimits, check_count, parse_list_query, requested_limit
from skylens.domain.listing import ListQuery

_RENAMED = {
    "name": "name",
    "status": "status",
    "server": "instance_uuid",
    "type": "image_type",
    "minRam": "min_ram",
    "minDisk": "min_disk",
}
_PROPERTY_PREFIX = "property-"


@dataclasses.dataclass(frozen=True, slots=True)
class ComputeListQuery:
    query: ListQuery
    # The size of a full page: a page this long gets a `next` link. None: no link.
    page_size: int | None


def parse_compute_query(params: Sequence[tuple[str, str]], limits: ListLimits) -> ComputeListQuery:
    """`limits.maximum` is also the page an unlimited list gets; its caps apply
    to the parameters as the client sent them."""
    last = dict(params)
    glance: list[tuple[str, str]] = []
    for key, value in last.items():
        if key in _RENAMED:
            glance.append((_RENAMED[key], _filter_value(key, value)))
        elif key == "changes-since":
            glance.append(("updated_at", f"gte:{value}"))
        elif key.startswith(_PROPERTY_PREFIX) and len(key) > len(_PROPERTY_PREFIX):
            glance.append((key[len(_PROPERTY_PREFIX) :], value))
    if "marker" in last:
        glance.append(("marker", last["marker"]))
    limit = requested_limit(last.get("limit"))
    # No limit (or 0) lists up to `maximum`; a full page then gets a link, as one
    # at an explicit limit (capped at `maximum`) does.
    size = limits.maximum if not limit else min(limit, limits.maximum)
    glance.append(("limit", str(size)))
    check_count("query parameters", len(params), limits.parameters)
    query = parse_list_query(glance, dataclasses.replace(limits, default=size))
    return ComputeListQuery(query, None if limit == 0 else size)


def _filter_value(key: str, value: str) -> str:
    if key == "status":
        return value.lower()  # the Image API's statuses are lower case
    if key == "server":
        return value.rsplit("/", 1)[-1]  # a server's id, or its URL
    return value
