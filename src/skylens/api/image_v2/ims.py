"""The Huawei Cloud IMS profile of the Image API v2 (`images.ims_profile`).

It changes nothing unless it is on. Then:
- `GET /v2/images` takes IMS's extension filters: `__imagetype`, `__isregistered`
  (computed, never stored) and the `__` properties, whose values are checked
  against the enums of the published image schema (the same document that
  validates create and PATCH); `tag=key=value` also finds the legacy tag
  `key.value`; `sort_key` is limited to the keys IMS documents.
- every image shown carries `__imagetype`, `__isregistered` and `active_at`;
- `X-Api-Version` picks the release the response follows (see `release`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.requests import Request

from skylens.api.image_v2.profile import ImageView
from skylens.api.image_v2.schemas import Schema
from skylens.api.image_v2.views import image_view
from skylens.api.listing import ListLimits, invalid_value, parse_list_query
from skylens.api.responses import timestamp
from skylens.domain.errors import InvalidFilter, InvalidRequest
from skylens.domain.images import Image, Visibility
from skylens.domain.ims import (
    ApiRelease,
    ImageType,
    ImsQuery,
    mitaka_visibility,
    mitaka_visibility_filter,
    release_of,
)
from skylens.domain.listing import ListQuery

API_VERSION_HEADER = "X-Api-Version"
# The sort keys IMS documents, in its order.
SORT_KEYS = ("name", "container_format", "disk_format", "status", "id", "size", "created_at")
# Attributes a Mitaka client never saw: Queens-era (os_hidden, os_hash_*) and the
# import and multi-store era (stores).
QUEENS_ONLY = ("os_hidden", "os_hash_algo", "os_hash_value", "stores")
_COMPUTED = ("__imagetype", "__isregistered")

ImageTypes = Mapping[str, ImageType]


@dataclasses.dataclass(frozen=True)
class ImsProfile:
    """The `ImageProfile` of IMS."""

    image_schema: Schema  # with the IMS properties (`load_schemas(ims_profile=True)`)
    # The `__imagetype` of each image (they are already read for the caller).
    image_types: Callable[[Sequence[Image]], Awaitable[ImageTypes]]

    def list_query(self, request: Request, limits: ListLimits) -> ListQuery:
        release = self.release(request.headers)
        return self.parse_query(request.query_params.multi_items(), limits, release)

    async def viewer(self, request: Request, images: Sequence[Image]) -> ImageView:
        release = self.release(request.headers)
        return self.release_viewer(release, await self.image_types(images))

    def release(self, headers: Mapping[str, str]) -> ApiRelease:
        raw = headers.get(API_VERSION_HEADER)
        release = release_of(raw)
        if release is None:
            raise InvalidRequest(
                f"Invalid {API_VERSION_HEADER} header: {raw!r}. It must start with a "
                "letter: M or before for the Mitaka API, after M for the Queens API."
            )
        return release

    def parse_query(
        self, params: Sequence[tuple[str, str]], limits: ListLimits, release: ApiRelease
    ) -> ListQuery:
        last = dict(params)
        standard = [(key, value) for key, value in params if key not in _COMPUTED]
        query = parse_list_query(standard, limits, SORT_KEYS)
        for name, value in query.properties.items():
            self._check_value(name, value)
        visibilities: tuple[Visibility, ...] = ()
        if release is ApiRelease.MITAKA and query.visibility is not None:
            visibilities = mitaka_visibility_filter(query.visibility)
            if not visibilities:
                raise InvalidFilter(f"Invalid visibility value: {query.visibility.value}")
        ims = ImsQuery(
            image_type=_image_type(last.get("__imagetype")),
            registered=_registered(last.get("__isregistered")),
            visibilities=visibilities,
        )
        return dataclasses.replace(query, ims=ims)

    def _check_value(self, name: str, value: str) -> None:
        allowed = self.image_schema.properties.get(name, {}).get("enum")
        if allowed is not None and value not in allowed:
            raise InvalidFilter(invalid_value(name, value, allowed))

    def release_viewer(self, release: ApiRelease, types: ImageTypes) -> ImageView:
        """The image view the release asks for, with the IMS attributes."""

        def view(image: Image) -> dict[str, Any]:
            shown = image_view(image)
            shown["__imagetype"] = types[image.id].value
            shown["__isregistered"] = "true"
            shown["active_at"] = None if image.active_at is None else timestamp(image.active_at)
            if release is ApiRelease.MITAKA:
                shown["visibility"] = mitaka_visibility(image.visibility).value
                for name in QUEENS_ONLY:
                    shown.pop(name, None)
            return shown

        return view


def _image_type(raw: str | None) -> ImageType | None:
    if raw is None:
        return None
    try:
        return ImageType(raw)
    except ValueError:
        raise InvalidFilter(
            invalid_value("__imagetype", raw, [t.value for t in ImageType])
        ) from None


def _registered(raw: str | None) -> bool:
    if raw is None:
        return True
    if raw not in ("true", "false"):
        raise InvalidFilter(invalid_value("__isregistered", raw, ["true", "false"]))
    return raw == "true"
