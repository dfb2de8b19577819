"""How the Image API reads a list query and shows images: a profile, chosen once.

Glance's own behaviour is `GlanceProfile`; the Huawei Cloud IMS profile
(`skylens.api.image_v2.ims`, `images.ims_profile`) is the other. The handlers ask
the profile and never which one it is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from starlette.requests import Request

from skylens.api.image_v2.views import image_view, no_locations
from skylens.api.listing import ListLimits, parse_list_query
from skylens.domain.images import Image
from skylens.domain.listing import ListQuery

ImageView = Callable[[Image], dict[str, Any]]


class ImageProfile(Protocol):
    def list_query(self, request: Request, limits: ListLimits) -> ListQuery:
        """The query `GET /v2/images` asks for; raises for an invalid one."""
        ...

    async def viewer(self, request: Request, images: Sequence[Image]) -> ImageView:
        """How to show `images` (already read for the caller) in the response."""
        ...


class GlanceProfile:
    """Glance's Image API, unchanged; `locations` adds `locations` and `direct_url`
    to images when the options show them."""

    def __init__(self, locations: Callable[[Image], dict[str, Any]] = no_locations) -> None:
        self._view: ImageView = functools.partial(image_view, locations=locations)

    def list_query(self, request: Request, limits: ListLimits) -> ListQuery:
        return parse_list_query(request.query_params.multi_items(), limits)

    async def viewer(self, request: Request, images: Sequence[Image]) -> ImageView:
        return self._view
