"""Sharing: the members of `shared` images, with Glance's checks in Glance's order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from skylens.domain.access import Action, RequestContext
from skylens.domain.errors import Forbidden, InvalidRequest, NotFound
from skylens.domain.images import Image, MemberStatus, Visibility, utc_now
from skylens.domain.members import MAX_MEMBER_ID_LENGTH, ImageMember
from skylens.domain.policy import authorize
from skylens.domain.ports import ImageRepository, Policy
from skylens.services.images import ImageService


def _image_not_found(image_id: str) -> NotFound:
    return NotFound(f"Image {image_id} not found.")


def _member_not_found(image_id: str, member_id: str) -> NotFound:
    return NotFound(f"{member_id} not found in the member list of the image {image_id}.")


class MemberService:
    def __init__(
        self,
        images: ImageService,
        repository: ImageRepository,
        quota: int,
        policy: Policy,
        clock: Callable[[], Any] = utc_now,
    ) -> None:
        self._images = images
        self._policy = policy
        self._repository = repository
        self._quota = quota
        self._clock = clock

    def list(self, context: RequestContext, image_id: str) -> Sequence[ImageMember]:
        """The owner (and admins) see every member; a member sees only itself."""
        image = self._shared_image(context, image_id, "list")
        authorize(self._policy, context, Action.GET_MEMBERS, image)
        return [m for m in self._repository.members(image_id) if _may_see(context, image, m)]

    def get(self, context: RequestContext, image_id: str, member_id: str) -> ImageMember:
        image = self._images.visible(context, image_id, _image_not_found)
        if image.visibility is not Visibility.SHARED:
            raise NotFound("Only shared images have members.")  # 404: Glance leaks nothing
        authorize(self._policy, context, Action.GET_MEMBER, image)
        return self._find(context, image, member_id)

    def add(self, context: RequestContext, image_id: str, member_id: str) -> ImageMember:
        if len(member_id) > MAX_MEMBER_ID_LENGTH:
            raise InvalidRequest(
                f"Member id should not be longer than {MAX_MEMBER_ID_LENGTH} characters."
            )
        image = self._shared_image(context, image_id, "create")
        authorize(self._policy, context, Action.ADD_MEMBER, image)
        now = self._clock()
        member = ImageMember(image_id, member_id, MemberStatus.PENDING, now, now)
        self._repository.add_member(member, self._quota)
        return member

    def set_status(
        self,
        context: RequestContext,
        image_id: str,
        member_id: str,
        status: Callable[[], MemberStatus],
    ) -> ImageMember:
        """`status` validates the requested status; Glance judges it last, after the
        caller has been found allowed to change this membership."""
        image = self._shared_image(context, image_id, "update")
        self._find(context, image, member_id)
        authorize(self._policy, context, Action.MODIFY_MEMBER, image)
        changed = self._repository.set_member_status(image_id, member_id, status(), self._clock())
        if changed is None:
            raise _member_not_found(image_id, member_id)
        return changed

    def remove(self, context: RequestContext, image_id: str, member_id: str) -> None:
        image = self._shared_image(context, image_id, "delete")
        self._find(context, image, member_id)
        authorize(self._policy, context, Action.DELETE_MEMBER, image)
        if not self._repository.remove_member(image_id, member_id):
            raise _member_not_found(image_id, member_id)

    # -- rules -----------------------------------------------------------------

    def _shared_image(self, context: RequestContext, image_id: str, verb: str) -> Image:
        image = self._images.visible(context, image_id, _image_not_found)
        if image.visibility is not Visibility.SHARED:
            reason = ": Only shared images have members." if verb == "list" else "."
            raise Forbidden(f"Not allowed to {verb} members for image {image_id}{reason}")
        return image

    def _find(self, context: RequestContext, image: Image, member_id: str) -> ImageMember:
        for member in self._repository.members(image.id):
            if member.member_id == member_id and _may_see(context, image, member):
                return member
        raise _member_not_found(image.id, member_id)


def _may_see(context: RequestContext, image: Image, member: ImageMember) -> bool:
    """Glance's row filter: admins and the owner see every membership, others their own."""
    return (
        context.is_admin
        or (context.project_id is not None and image.owner == context.project_id)
        or member.member_id == context.project_id
    )
