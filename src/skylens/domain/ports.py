"""Protocols the outer layers implement for the services."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from skylens.domain.access import RequestContext
from skylens.domain.images import Image, MemberStatus
from skylens.domain.listing import ImagePage, ListQuery


class ImageRepository(Protocol):
    def add(self, image: Image) -> None:
        """Insert a new image; raise `Conflict` if its id was ever used."""

    def get(self, image_id: str) -> Image | None:
        """The live image with this id, whoever owns it."""

    def membership(self, image_id: str, project_id: str) -> MemberStatus | None:
        """The project's member status on the image, if it is a member."""

    def update(self, image_id: str, change: Callable[[Image], Image]) -> Image:
        """Apply `change` to the current image atomically and store the result.

        `change` may run more than once (it is retried when another writer got
        there first), so it must be a pure function of the image it is given.
        A result whose status is `deleted` removes the image and retires its id
        for good. Raise `ImageNotFound` when the image is gone.
        """

    def list(self, context: RequestContext, query: ListQuery) -> ImagePage:
        """One page of the images the caller may list, filtered and ordered."""


class Authenticator(Protocol):
    async def authenticate(self, headers: Mapping[str, str]) -> RequestContext:
        """The identity the request carries; raise `NotAuthenticated` if none."""
