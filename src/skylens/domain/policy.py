"""Policy: Glance's rule names, Glance's default check strings, Glance's targets.

(The metadef rules' strings and targets live with the metadefs, in
`skylens.domain.metadefs`; `BuiltinPolicy` decides both kinds.)

The check strings below are data, written in oslo.policy's language exactly as
Glance 33 ships them (secure-RBAC defaults, expanded). `BuiltinPolicy` is their
Python twin, the fast path used when no policy file is configured; a test
evaluates it and oslo.policy's reading of these strings over every combination
of roles, scope, caller and image, and requires them to agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skylens.domain.access import ADMIN, MEMBER, READER, SERVICE, Action, RequestContext
from skylens.domain.errors import Forbidden
from skylens.domain.images import Image, Visibility
from skylens.domain.metadefs import MetadefAction, Namespace, metadef_allows
from skylens.domain.ports import Policy

# Rules the action rules refer to (`rule:<name>`). `default` is what an undefined
# rule name resolves to in oslo.policy; Glance defines it as '' (always).
BASE_CHECK_STRINGS: Mapping[str, str] = {
    "context_is_admin": "role:admin",
    "default": "",
    "service_api": "role:service or role:admin",
}

_ADMIN_OR_PROJECT_MEMBER = "rule:context_is_admin or (role:member and project_id:%(project_id)s)"
_ANY_VISIBLE = (
    "project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s"
    " or 'public':%(visibility)s or 'shared':%(visibility)s"
)
_ADMIN_OR_MEMBER_READER = (
    "rule:context_is_admin or role:reader and (project_id:%(project_id)s"
    " or project_id:%(member_id)s)"
)

# Glance 33's secure-RBAC defaults (`glance.policies.list_rules()`), one per action.
# Every one has scope_types ["project"] in Glance.
DEFAULT_CHECK_STRINGS: Mapping[Action, str] = {
    Action.GET_IMAGE: f"rule:context_is_admin or (role:reader and ({_ANY_VISIBLE}))",
    Action.GET_IMAGES: "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
    Action.ADD_IMAGE: (
        "rule:context_is_admin or (role:member and project_id:%(project_id)s"
        " and project_id:%(owner)s)"
    ),
    Action.MODIFY_IMAGE: _ADMIN_OR_PROJECT_MEMBER,
    Action.DELETE_IMAGE: _ADMIN_OR_PROJECT_MEMBER,
    Action.PUBLICIZE_IMAGE: "rule:context_is_admin",
    Action.COMMUNITIZE_IMAGE: _ADMIN_OR_PROJECT_MEMBER,
    Action.DEACTIVATE: _ADMIN_OR_PROJECT_MEMBER,
    Action.REACTIVATE: _ADMIN_OR_PROJECT_MEMBER,
    Action.UPLOAD_IMAGE: _ADMIN_OR_PROJECT_MEMBER,
    Action.DOWNLOAD_IMAGE: f"rule:context_is_admin or (role:member and ({_ANY_VISIBLE}))",
    Action.DOWNLOAD_FROM_STORE: f"rule:context_is_admin or (role:member and ({_ANY_VISIBLE}))",
    Action.ADD_MEMBER: _ADMIN_OR_PROJECT_MEMBER,
    Action.GET_MEMBER: _ADMIN_OR_MEMBER_READER,
    Action.GET_MEMBERS: _ADMIN_OR_MEMBER_READER,
    Action.MODIFY_MEMBER: "rule:context_is_admin or (role:member and project_id:%(member_id)s)",
    Action.DELETE_MEMBER: _ADMIN_OR_PROJECT_MEMBER,
    Action.DELETE_IMAGE_LOCATION: "rule:context_is_admin",
    Action.SET_IMAGE_LOCATION: _ADMIN_OR_PROJECT_MEMBER,
    Action.GET_IMAGE_LOCATION: (
        "rule:context_is_admin or (role:reader and project_id:%(project_id)s)"
    ),
    Action.ADD_IMAGE_LOCATION: (
        "rule:service_api or (role:member and project_id:%(project_id)s and project_id:%(owner)s)"
    ),
    Action.FETCH_IMAGE_LOCATION: "rule:service_api",
    Action.STORES_INFO_DETAIL: "rule:context_is_admin or rule:service_api",
    Action.COPY_IMAGE: "rule:context_is_admin",
    Action.TASKS_API_ACCESS: "rule:context_is_admin",
    # The image cache (glance/policies/cache.py, and image.py's list_cached_nodes).
    Action.CACHE_IMAGE: "rule:context_is_admin",
    Action.CACHE_LIST: "rule:context_is_admin",
    Action.CACHE_DELETE: "rule:context_is_admin",
    Action.CACHE_CLEAN: "rule:context_is_admin",
    Action.CACHE_PRUNE: "rule:context_is_admin",
    Action.LIST_CACHED_NODES: "rule:context_is_admin",
}

# Glance enforces every image rule for project-scoped tokens only.
PROJECT_SCOPED: frozenset[Action] = frozenset(Action)

_IMAGE_ATTRIBUTES = (
    "checksum",
    "container_format",
    "created_at",
    "disk_format",
    "min_disk",
    "min_ram",
    "name",
    "os_hash_algo",
    "os_hash_value",
    "os_hidden",
    "protected",
    "size",
    "status",
    "updated_at",
    "virtual_size",
)


def core_target(
    context: RequestContext, action: Action, image: Image | None
) -> dict[str, str | None]:
    """The target keys Glance's default rules read, built as Glance builds them."""
    if action is Action.GET_IMAGES:
        return {"project_id": context.project_id}
    if image is None:
        return {}
    if action is Action.ADD_IMAGE:
        # The image does not exist yet: Glance passes the requested owner.
        owner = image.owner or context.project_id
        return {"project_id": owner, "owner": owner, "visibility": image.visibility.value}
    # glance.db ImageRepo: `member` is the caller's project when the image is shared
    # and the caller does not own it.
    shared_with_caller = image.visibility is Visibility.SHARED and context.project_id != image.owner
    return {
        "project_id": image.owner,
        "owner": image.owner,
        "member_id": context.project_id if shared_with_caller else None,
        "visibility": image.visibility.value,
        "id": image.id,
    }


def policy_target(context: RequestContext, action: Action, image: Image | None) -> dict[str, Any]:
    """Everything Glance's `ImageTarget` offers a policy file: the core keys, the
    image's attributes and its extra properties by name."""
    target: dict[str, Any] = {}
    if image is not None and action not in (Action.GET_IMAGES, Action.ADD_IMAGE):
        target.update(image.properties)
        for name in _IMAGE_ATTRIBUTES:
            value = getattr(image, name)
            target[name] = value.value if hasattr(value, "value") else value
        target["tags"] = sorted(image.tags)
        target["image_id"] = image.id
        target["member"] = None
    core = core_target(context, action, image)
    target.update(core)
    if "member_id" in core:
        target["member"] = core["member_id"]
    return target


def authorize(
    policy: Policy, context: RequestContext, action: Action, image: Image | None = None
) -> None:
    """Raise `Forbidden` with Glance's policy message unless the policy allows it."""
    if not policy.allows(context, action, image):
        raise Forbidden(f"You are not authorized to complete {action.value} action.")


class BuiltinPolicy:
    """`DEFAULT_CHECK_STRINGS` evaluated in plain Python, with oslo.policy's meaning:
    `project_id:%(key)s` compares the text of the caller's project with the text of
    the target's value (so None matches None) and is false when the key is absent."""

    def allows(self, context: RequestContext, action: Action, image: Image | None = None) -> bool:
        if context.scope != "project":
            return False
        roles = context.roles
        if ADMIN in roles:
            return True  # rule:context_is_admin opens every action
        target = core_target(context, action, image)
        caller = str(context.project_id)

        def is_caller(key: str) -> bool:
            return key in target and str(target[key]) == caller

        if action in _NEEDS_PROJECT_MEMBER:
            return MEMBER in roles and is_caller("project_id")
        if action in (Action.GET_IMAGE, Action.DOWNLOAD_IMAGE, Action.DOWNLOAD_FROM_STORE):
            role = READER if action is Action.GET_IMAGE else MEMBER
            return role in roles and (
                is_caller("project_id")
                or is_caller("member_id")
                or target.get("visibility") in _OPEN_VISIBILITIES
            )
        if action is Action.GET_IMAGES:
            return READER in roles and is_caller("project_id")
        if action is Action.ADD_IMAGE:
            return MEMBER in roles and is_caller("project_id") and is_caller("owner")
        if action in (Action.GET_MEMBER, Action.GET_MEMBERS):
            return READER in roles and (is_caller("project_id") or is_caller("member_id"))
        if action is Action.MODIFY_MEMBER:
            return MEMBER in roles and is_caller("member_id")
        if action in (Action.STORES_INFO_DETAIL, Action.FETCH_IMAGE_LOCATION):
            return SERVICE in roles
        if action is Action.GET_IMAGE_LOCATION:
            return READER in roles and is_caller("project_id")
        if action is Action.ADD_IMAGE_LOCATION:
            return SERVICE in roles or (
                MEMBER in roles and is_caller("project_id") and is_caller("owner")
            )
        # publicize_image, delete_image_location, copy_image, tasks_api_access and the
        # cache's rules: admin only
        return False

    def allows_metadef(
        self, context: RequestContext, action: MetadefAction, namespace: Namespace | None = None
    ) -> bool:
        """The metadef rules' defaults (`METADEF_CHECK_STRINGS`), in plain Python."""
        return metadef_allows(context, action, namespace)


_NEEDS_PROJECT_MEMBER = frozenset(
    action for action, check in DEFAULT_CHECK_STRINGS.items() if check == _ADMIN_OR_PROJECT_MEMBER
)
_OPEN_VISIBILITIES = frozenset({"community", "public", "shared"})
