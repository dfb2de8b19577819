"""Who may do what: Glance's secure-RBAC defaults, as data."""

from __future__ import annotations

import datetime as dt

import pytest

from skylens.domain.access import Action, RequestContext, authorize, is_allowed
from skylens.domain.errors import Forbidden
from skylens.domain.images import Image, ImageStatus, Visibility

NOW = dt.datetime(2026, 1, 1)
IMAGE = Image(
    id="i", owner="owner", status=ImageStatus.ACTIVE, visibility=Visibility.PUBLIC,
    created_at=NOW, updated_at=NOW,
)  # fmt: skip

ADMIN = RequestContext.create("elsewhere", "u", ["admin"])
OWNER_MEMBER = RequestContext.create("owner", "u", ["member"])
OWNER_READER = RequestContext.create("owner", "u", ["reader"])
STRANGER_MEMBER = RequestContext.create("stranger", "u", ["member"])
NO_ROLES = RequestContext.create("owner", "u", [])


def test_roles_imply_each_other_as_keystone_defaults_do() -> None:
    assert ADMIN.roles == {"admin", "member", "reader"}
    assert OWNER_MEMBER.roles == {"member", "reader"}
    assert RequestContext.create("p", "u", [" Member ", ""]).roles == {"member", "reader"}


@pytest.mark.parametrize(
    ("context", "action", "allowed"),
    [
        (ADMIN, Action.PUBLICIZE_IMAGE, True),
        (OWNER_MEMBER, Action.PUBLICIZE_IMAGE, False),
        (OWNER_MEMBER, Action.MODIFY_IMAGE, True),
        (OWNER_MEMBER, Action.DELETE_IMAGE, True),
        (OWNER_MEMBER, Action.COMMUNITIZE_IMAGE, True),
        (OWNER_MEMBER, Action.DEACTIVATE, True),
        (OWNER_READER, Action.MODIFY_IMAGE, False),
        (OWNER_READER, Action.GET_IMAGE, True),
        (STRANGER_MEMBER, Action.MODIFY_IMAGE, False),
        (STRANGER_MEMBER, Action.DEACTIVATE, False),
        (STRANGER_MEMBER, Action.GET_IMAGE, True),
        (NO_ROLES, Action.GET_IMAGES, False),
        (ADMIN, Action.DELETE_IMAGE, True),
    ],
)
def test_default_rules(context: RequestContext, action: Action, allowed: bool) -> None:
    assert is_allowed(context, action, IMAGE) is allowed


def test_a_refusal_names_the_policy_action_as_glance_does() -> None:
    with pytest.raises(Forbidden) as raised:
        authorize(STRANGER_MEMBER, Action.MODIFY_IMAGE, IMAGE)
    assert raised.value.message == "You are not authorized to complete modify_image action."
