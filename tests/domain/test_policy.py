"""Who may do what: Glance's secure-RBAC defaults, as data, and their Python twin."""

from __future__ import annotations

import datetime as dt

import pytest

from skylens.domain.access import Action, RequestContext
from skylens.domain.errors import Forbidden
from skylens.domain.images import Image, ImageStatus, Visibility
from skylens.domain.policy import DEFAULT_CHECK_STRINGS, BuiltinPolicy, authorize, policy_target

NOW = dt.datetime(2026, 1, 1)
IMAGE = Image(
    id="i", owner="owner", status=ImageStatus.ACTIVE, visibility=Visibility.PUBLIC,
    created_at=NOW, updated_at=NOW, name="cirros", properties={"os_distro": "cirros"},
)  # fmt: skip
SHARED = Image(
    id="s", owner="owner", status=ImageStatus.ACTIVE, visibility=Visibility.SHARED,
    created_at=NOW, updated_at=NOW,
)  # fmt: skip

ADMIN = RequestContext.create("elsewhere", "u", ["admin"])
OWNER_MEMBER = RequestContext.create("owner", "u", ["member"])
OWNER_READER = RequestContext.create("owner", "u", ["reader"])
# As Keystone's tokens carry them: member with its implied reader.
STRANGER_MEMBER = RequestContext.create("stranger", "u", ["member", "reader"])
STRANGER_READER = RequestContext.create("stranger", "u", ["reader"])
NO_ROLES = RequestContext.create("owner", "u", [])
SERVICE = RequestContext.create("service", "nova", ["service"])
SYSTEM_ADMIN = RequestContext.create(None, "u", ["admin"], scope="system")


def test_every_action_has_glances_default_check_string() -> None:
    assert set(DEFAULT_CHECK_STRINGS) == set(Action)
    assert DEFAULT_CHECK_STRINGS[Action.GET_IMAGE] == (
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or "
        "project_id:%(member_id)s or 'community':%(visibility)s or 'public':%(visibility)s or "
        "'shared':%(visibility)s))"
    )


@pytest.mark.parametrize(
    ("context", "action", "image", "allowed"),
    [
        (ADMIN, Action.PUBLICIZE_IMAGE, IMAGE, True),
        (OWNER_MEMBER, Action.PUBLICIZE_IMAGE, IMAGE, False),
        (OWNER_MEMBER, Action.MODIFY_IMAGE, IMAGE, True),
        (OWNER_MEMBER, Action.DELETE_IMAGE, IMAGE, True),
        (OWNER_MEMBER, Action.COMMUNITIZE_IMAGE, IMAGE, True),
        (OWNER_MEMBER, Action.DEACTIVATE, IMAGE, True),
        (OWNER_READER, Action.MODIFY_IMAGE, IMAGE, False),
        (OWNER_READER, Action.GET_IMAGE, IMAGE, True),
        (STRANGER_MEMBER, Action.MODIFY_IMAGE, IMAGE, False),
        (STRANGER_MEMBER, Action.DEACTIVATE, IMAGE, False),
        (STRANGER_MEMBER, Action.GET_IMAGE, IMAGE, True),
        (STRANGER_MEMBER, Action.DOWNLOAD_IMAGE, IMAGE, True),
        # Glance 33: downloading needs `member`, reading the record only `reader`.
        (STRANGER_READER, Action.DOWNLOAD_IMAGE, IMAGE, False),
        (STRANGER_READER, Action.GET_MEMBERS, SHARED, True),
        (STRANGER_MEMBER, Action.MODIFY_MEMBER, SHARED, True),
        (OWNER_MEMBER, Action.MODIFY_MEMBER, SHARED, False),
        (NO_ROLES, Action.GET_IMAGES, None, False),
        (OWNER_READER, Action.GET_IMAGES, None, True),
        (SERVICE, Action.STORES_INFO_DETAIL, None, True),
        (OWNER_MEMBER, Action.STORES_INFO_DETAIL, None, False),
        # Roles are literal: `member` without `reader` may change its images but not
        # list or show them (Glance 33's recorded list-member-role-only is 403).
        (OWNER_MEMBER, Action.GET_IMAGES, None, False),
        (OWNER_MEMBER, Action.GET_IMAGE, IMAGE, False),
        (OWNER_MEMBER, Action.GET_MEMBERS, SHARED, False),
        (ADMIN, Action.DELETE_IMAGE, IMAGE, True),
        (SYSTEM_ADMIN, Action.GET_IMAGES, None, False),
    ],
)
def test_default_rules(
    context: RequestContext, action: Action, image: Image | None, allowed: bool
) -> None:
    assert BuiltinPolicy().allows(context, action, image) is allowed


def test_a_refusal_names_the_policy_action_as_glance_does() -> None:
    with pytest.raises(Forbidden) as raised:
        authorize(BuiltinPolicy(), STRANGER_MEMBER, Action.MODIFY_IMAGE, IMAGE)
    assert raised.value.message == "You are not authorized to complete modify_image action."


def test_the_target_is_glances_image_target() -> None:
    target = policy_target(STRANGER_READER, Action.GET_MEMBER, SHARED)
    assert target["project_id"] == target["owner"] == "owner"
    assert target["member_id"] == target["member"] == "stranger"
    assert target["visibility"] == "shared"
    assert target["id"] == target["image_id"] == "s"
    assert policy_target(OWNER_READER, Action.GET_MEMBER, SHARED)["member_id"] is None
    assert policy_target(OWNER_READER, Action.GET_IMAGE, IMAGE)["os_distro"] == "cirros"
    assert policy_target(OWNER_READER, Action.GET_IMAGES, None) == {"project_id": "owner"}
    assert policy_target(OWNER_READER, Action.STORES_INFO_DETAIL, None) == {}
