"""Who is asking, the policy actions they ask for, and what they may see.

The visibility rules here have one SQL twin in `skylens.db.visibility`; a test
evaluates both over every combination and proves they agree. The policy rules
themselves live in `skylens.domain.policy`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from enum import StrEnum

from skylens.domain.images import Image, ImageStatus, MemberStatus, Visibility

ADMIN = "admin"
MEMBER = "member"
READER = "reader"
SERVICE = "service"  # other OpenStack services' own users (Nova, Cinder)


@dataclasses.dataclass(frozen=True, slots=True)
class RequestContext:
    """The identity a request runs as, produced by the authenticator."""

    project_id: str | None
    user_id: str | None
    roles: frozenset[str]
    # What the token is scoped to: "project", "domain", "system" or "unscoped".
    # Every image rule is project-scoped, as in Glance, so other scopes are refused.
    scope: str = "project"

    @classmethod
    def create(
        cls,
        project_id: str | None,
        user_id: str | None,
        roles: Iterable[str],
        scope: str = "project",
    ) -> RequestContext:
        """An identity with exactly `roles`. Without a project it is never
        project-scoped: no project-scoped rule can then match `None` (an image
        without owner, a project of nobody) as the caller's project."""
        # The roles as given, never expanded: Keystone already puts a user's implied
        # roles (member -> reader) in its tokens, and Glance, like oslo.policy, checks
        # the roles it receives literally. So `X-Roles: member` is not a reader.
        named = frozenset(role.strip().lower() for role in roles if role.strip())
        if not project_id:
            project_id = None
            if scope == "project":
                scope = "unscoped"
        return cls(project_id=project_id, user_id=user_id, roles=named, scope=scope)

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles


class Action(StrEnum):
    """Policy actions, named as Glance names them so policy files carry over."""

    GET_IMAGE = "get_image"
    GET_IMAGES = "get_images"
    ADD_IMAGE = "add_image"
    MODIFY_IMAGE = "modify_image"
    DELETE_IMAGE = "delete_image"
    PUBLICIZE_IMAGE = "publicize_image"
    COMMUNITIZE_IMAGE = "communitize_image"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    UPLOAD_IMAGE = "upload_image"
    DOWNLOAD_IMAGE = "download_image"
    DOWNLOAD_FROM_STORE = "download_from_store"
    ADD_MEMBER = "add_member"
    GET_MEMBER = "get_member"
    GET_MEMBERS = "get_members"
    MODIFY_MEMBER = "modify_member"
    DELETE_MEMBER = "delete_member"
    DELETE_IMAGE_LOCATION = "delete_image_location"
    SET_IMAGE_LOCATION = "set_image_location"
    GET_IMAGE_LOCATION = "get_image_location"
    ADD_IMAGE_LOCATION = "add_image_location"
    FETCH_IMAGE_LOCATION = "fetch_image_location"
    STORES_INFO_DETAIL = "stores_info_detail"
    COPY_IMAGE = "copy_image"
    TASKS_API_ACCESS = "tasks_api_access"
    CACHE_IMAGE = "cache_image"
    CACHE_LIST = "cache_list"
    CACHE_DELETE = "cache_delete"
    CACHE_CLEAN = "cache_clean"
    CACHE_PRUNE = "cache_prune"
    LIST_CACHED_NODES = "list_cached_nodes"


def as_seen_by(image: Image, context: RequestContext) -> Image:
    """The image as the caller is shown it: where a deactivated image's data lives
    (its `stores`) is kept from all but admins, as Glance's database layer keeps
    the locations of a deactivated image from them."""
    hidden = image.stores or image.locations
    if image.status is ImageStatus.DEACTIVATED and hidden and not context.is_admin:
        return dataclasses.replace(image, stores=(), locations=())
    return image


def is_visible(
    image: Image, context: RequestContext, caller_membership: MemberStatus | None
) -> bool:
    """May the caller know this image exists (show, tags, data, marker)?

    `caller_membership` is the caller project's member status on the image, if
    it is a member. Any membership status grants sight of a shared image: a
    member must be able to look at an image before accepting it.
    """
    if context.is_admin or image.owner is None:
        return True
    if image.visibility in (Visibility.PUBLIC, Visibility.COMMUNITY):
        return True
    if context.project_id is None:
        return False
    if image.owner == context.project_id:
        return True
    return image.visibility == Visibility.SHARED and caller_membership is not None


def is_listed(
    image: Image,
    context: RequestContext,
    caller_membership: MemberStatus | None,
    member_status: MemberStatus | None,
    visibility_filter_given: bool,
) -> bool:
    """Does the image appear in the caller's list before any explicit filter?

    `member_status` None means "all". Without a `visibility` filter, community
    images appear only to their owner, as in Glance.
    """
    owned = context.project_id is not None and image.owner == context.project_id
    if not visibility_filter_given and image.visibility == Visibility.COMMUNITY and not owned:
        return False
    if context.is_admin:
        return True
    if image.visibility in (Visibility.PUBLIC, Visibility.COMMUNITY) or owned:
        return True
    if image.visibility != Visibility.SHARED or caller_membership is None:
        return False
    return member_status is None or caller_membership == member_status
