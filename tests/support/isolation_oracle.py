"""What Glance answers when one caller touches one image: the tenant-isolation oracle.

Written from Glance 2023.x and later with its secure-RBAC defaults
(`enforce_new_defaults`), never from Skylens code. Three layers decide, in this order:

1. **Visibility** (`glance/db/utils.py::is_image_visible`): an image the caller may
   not see does not exist for it, so every operation answers 404.
2. **Policy** (`glance/policies/base.py` and `image.py`), checked against the target
   `glance.api.policy.ImageTarget` builds from the image: `project_id` is the image's
   owner, `member_id` is the caller's project when the image is `shared` and the caller
   does not own it (`glance/db/__init__.py::ImageRepo._format_image_from_db`).
   `glance/api/v2/policy.py::ImageAPIPolicy._enforce` turns a refusal into 404 when
   `get_image` is refused as well, and into 403 otherwise.
3. **The controller's own checks** (`glance/api/v2/*.py`), e.g. that only shared images
   have members, and the authorization proxy (`glance/api/authorization.py`) for members.

Callers are described by their project's relation to the image and their roles after
Keystone's implied roles (admin implies member, member implies reader).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

# -- the axes -------------------------------------------------------------------------------

# Each visibility of the matrix: the image's visibility, and the status of the membership
# the "member" project holds (shared images only; the others have no members).
VISIBILITIES: Mapping[str, tuple[str, str | None]] = {
    "private": ("private", None),
    "shared_pending": ("shared", "pending"),
    "shared_accepted": ("shared", "accepted"),
    "shared_rejected": ("shared", "rejected"),
    "community": ("community", None),
    "public": ("public", None),
}


@dataclasses.dataclass(frozen=True)
class Caller:
    project: str  # "owning", "member" (the project an image is shared with) or "other"
    roles: frozenset[str]  # with Keystone's implied roles


_MEMBER = frozenset({"member", "reader"})
_READER = frozenset({"reader"})

CALLERS: Mapping[str, Caller] = {
    "owner": Caller("owning", _MEMBER),
    "reader": Caller("owning", _READER),
    "member": Caller("member", _MEMBER),
    "member_reader": Caller("member", _READER),
    "stranger": Caller("other", _MEMBER),
    "admin": Caller("other", frozenset({"admin"}) | _MEMBER),  # admin of an unrelated project
}


@dataclasses.dataclass(frozen=True)
class Situation:
    """One caller facing one image, as Glance's checks see it."""

    visibility: str  # private, shared, community or public
    membership: str | None  # the caller project's member status on the image, if any
    owns: bool  # project_id:%(project_id)s
    roles: frozenset[str]

    @property
    def admin(self) -> bool:
        return "admin" in self.roles  # context_is_admin: 'role:admin'

    @property
    def is_member_id(self) -> bool:
        """project_id:%(member_id)s: `member` is the caller's project on a shared image
        it does not own, whether or not it holds a membership."""
        return self.visibility == "shared" and not self.owns


def situation(visibility: str, caller: str) -> Situation:
    image_visibility, member_status = VISIBILITIES[visibility]
    who = CALLERS[caller]
    return Situation(
        visibility=image_visibility,
        membership=member_status if who.project == "member" else None,
        owns=who.project == "owning",
        roles=who.roles,
    )


# -- layer 1: visibility (glance/db/utils.py::is_image_visible, status=None) -----------------


def visible(s: Situation) -> bool:
    if s.admin or s.visibility in ("public", "community") or s.owns:
        return True
    return s.visibility == "shared" and s.membership is not None  # any status


# -- layer 2: the policy defaults, one predicate per check string ------------------------------

_OPEN = frozenset({"community", "public", "shared"})


def _reader_of_any_visible(s: Situation) -> bool:
    return "reader" in s.roles and (s.owns or s.is_member_id or s.visibility in _OPEN)


def _member_of_any_visible(s: Situation) -> bool:
    return "member" in s.roles and (s.owns or s.is_member_id or s.visibility in _OPEN)


def _project_member(s: Situation) -> bool:
    return "member" in s.roles and s.owns


def _project_or_shared_reader(s: Situation) -> bool:
    return "reader" in s.roles and (s.owns or s.is_member_id)


RULES: Mapping[str, Callable[[Situation], bool]] = {
    # ADMIN_OR_PROJECT_READER_GET_IMAGE: 'role:admin or (role:reader and (project_id:%(project_id)s
    #   or project_id:%(member_id)s or "community":%(visibility)s or "public":%(visibility)s
    #   or "shared":%(visibility)s))'
    "get_image": lambda s: s.admin or _reader_of_any_visible(s),
    # ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE: the same with role:member
    "download_image": lambda s: s.admin or _member_of_any_visible(s),
    # ADMIN_OR_PROJECT_MEMBER: 'role:admin or (role:member and project_id:%(project_id)s)'
    "modify_image": lambda s: s.admin or _project_member(s),
    "delete_image": lambda s: s.admin or _project_member(s),
    "upload_image": lambda s: s.admin or _project_member(s),
    "deactivate": lambda s: s.admin or _project_member(s),
    "reactivate": lambda s: s.admin or _project_member(s),
    "add_member": lambda s: s.admin or _project_member(s),
    "delete_member": lambda s: s.admin or _project_member(s),
    # ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER: 'role:admin or role:reader and
    #   (project_id:%(project_id)s or project_id:%(member_id)s)'
    "get_member": lambda s: s.admin or _project_or_shared_reader(s),
    "get_members": lambda s: s.admin or _project_or_shared_reader(s),
    # ADMIN_OR_SHARED_MEMBER: 'role:admin or (role:member and project_id:%(member_id)s)'
    "modify_member": lambda s: s.admin or ("member" in s.roles and s.is_member_id),
}
# get_images ('role:admin or (role:reader and project_id:%(project_id)s)', the target
# being the caller's own project) allows every caller of the matrix; see `in_list`.


# -- outcomes -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: int
    message: str | None = None  # an error's text; `{id}` stands for the image id
    listed: bool | None = None  # list operations: does the image appear?
    members: frozenset[str] = frozenset()  # members listings: whose memberships appear


# webob's own text for a bare HTTPNotFound(), as ImageAPIPolicy._enforce raises it.
_WEBOB_NOT_FOUND = "The resource could not be found."


def _policy(s: Situation, rule: str) -> Outcome | None:
    """ImageAPIPolicy._enforce (and MemberAPIPolicy, which checks get_image first)."""
    if not RULES["get_image"](s):
        return Outcome(404, _WEBOB_NOT_FOUND)
    if RULES[rule](s):
        return None
    return Outcome(403, f"You are not authorized to complete {rule} action.")


# images.py show and update, image_data.py, image_actions.py: the repository's 404
# carries the db layer's "No image found with ID <id>".
_NO_IMAGE = "No image found with ID {id}"
# images.py delete, image_tags.py and image_members.py word it themselves.
_NOT_FOUND_TO_DELETE = "Failed to find image {id} to delete"
_IMAGE_NOT_FOUND = "Image {id} not found."


def image_call(
    rule: str, success: int, not_found: str = _NO_IMAGE
) -> Callable[[Situation], Outcome]:
    def decide(s: Situation) -> Outcome:
        if not visible(s):
            return Outcome(404, not_found)
        return _policy(s, rule) or Outcome(success)

    return decide


def show(s: Situation) -> Outcome:
    """images.py show: get_image; its refusal is 404 (ImageAPIPolicy._enforce)."""
    if not visible(s):
        return Outcome(404, _NO_IMAGE)
    return _policy(s, "get_image") or Outcome(200)


def in_list(s: Situation, visibility: str | None = None, member_status: str = "accepted") -> bool:
    """glance/db/sqlalchemy/api.py image_get_all + _select_images_query.

    Regular users get the union of public and community images, their own, and shared
    images with a membership of theirs in `member_status` ("all" for any); admins get
    every image. Without a `visibility` filter community images appear only to their
    owner; with one, only images of that visibility ("all": any) appear.
    """
    if s.admin:
        selected = True
    else:
        shared_with_caller = (
            s.visibility == "shared"
            and s.membership is not None
            and member_status in ("all", s.membership)
        )
        selected = s.visibility in ("public", "community") or s.owns or shared_with_caller
    if visibility is None:
        return selected and (s.owns or s.visibility != "community")
    return selected and visibility in ("all", s.visibility)


# -- members (glance/api/v2/image_members.py, secure-RBAC branch) ----------------------------

_NOT_SHARED = "Only shared images have members."


def _members_gate(s: Situation, verb: str, rule: str, reason: str = ".") -> Outcome | None:
    """_lookup_image, then _check_visibility_and_ownership, then the rule."""
    if not visible(s):
        return Outcome(404, _IMAGE_NOT_FOUND)
    if s.visibility != "shared":
        return Outcome(403, f"Not allowed to {verb} members for image {{id}}{reason}")
    return _policy(s, rule)


def _may_fetch_member(s: Situation) -> bool:
    """authorization.py ImageMemberRepoProxy.get('member'): admin, the owner, or the
    member itself."""
    return s.admin or s.owns or s.membership is not None


def list_members(s: Situation) -> Outcome:
    """index: the owner and admins see every membership, a member its own (the proxy's
    list(), and _image_member_find filtering by owner or member)."""
    refused = _members_gate(s, "list", "get_members", f": {_NOT_SHARED}")
    if refused:
        return refused
    seen = {"member", "bystander"} if s.admin or s.owns else {"member"}
    return Outcome(200, members=frozenset(seen))


def show_member(s: Situation) -> Outcome:
    """show: every Forbidden (webob's or Glance's) becomes 404, to leak nothing."""
    if not visible(s):
        return Outcome(404, _IMAGE_NOT_FOUND)
    if s.visibility != "shared":
        return Outcome(404, _NOT_SHARED)
    if not (RULES["get_image"](s) and RULES["get_member"](s) and _may_fetch_member(s)):
        return Outcome(404)
    return Outcome(200)


def add_member(s: Situation) -> Outcome:
    return _members_gate(s, "create", "add_member") or Outcome(200)


def _member_lookup_then(s: Situation, verb: str, rule: str, success: int) -> Outcome:
    """update/delete: gate, _lookup_member (get_member, then the proxy's get), the rule."""
    refused = _members_gate(s, verb, "get_member")
    if refused:
        return refused
    if not _may_fetch_member(s):
        return Outcome(403, "You are not authorized to lookup the members of the image {id}.")
    return _policy(s, rule) or Outcome(success)


def set_member_status(s: Situation) -> Outcome:
    """PUT .../members/<member project> with that membership's current status."""
    return _member_lookup_then(s, "update", "modify_member", 200)


def delete_member(s: Situation) -> Outcome:
    return _member_lookup_then(s, "delete", "delete_member", 204)


# -- the operations of the matrix ------------------------------------------------------------

ORACLE: Mapping[str, Callable[[Situation], Outcome]] = {
    "show": show,
    "list": lambda s: Outcome(200, listed=in_list(s)),
    "list_visibility": lambda s: Outcome(200, listed=in_list(s, visibility=s.visibility)),
    "list_member_status_all": lambda s: Outcome(200, listed=in_list(s, member_status="all")),
    "patch": image_call("modify_image", 200),
    "delete": image_call("delete_image", 204, _NOT_FOUND_TO_DELETE),
    "upload": image_call("upload_image", 204),
    "download": image_call("download_image", 200),
    # image_tags.py update/delete check modify_image.
    "tag_add": image_call("modify_image", 204, _IMAGE_NOT_FOUND),
    "tag_delete": image_call("modify_image", 204, _IMAGE_NOT_FOUND),
    "members_list": list_members,
    "member_show": show_member,
    "member_add": add_member,
    "member_status": set_member_status,
    "member_delete": delete_member,
    "deactivate": image_call("deactivate", 204),
    "reactivate": image_call("reactivate", 204),
}


def expected(operation: str, visibility: str, caller: str) -> Outcome:
    return ORACLE[operation](situation(visibility, caller))
