"""Property protection rules: which caller may do what to which extra property."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from skylens.domain.access import RequestContext
from skylens.domain.changes import Change, ChangeOp, apply_changes
from skylens.domain.errors import PropertyNotFound, PropertyProtected, ReservedAttribute
from skylens.domain.images import Image, ImageStatus, Visibility
from skylens.domain.protections import (
    PropertyOperation,
    PropertyRule,
    PropertyRules,
    restore_hidden,
)

NOW = dt.datetime(2026, 1, 1, 12, 0, 0)
C, R, U, D = (PropertyOperation(op) for op in ("create", "read", "update", "delete"))


def rule(pattern: str, **roles: str) -> PropertyRule:
    """`roles` maps an operation to its comma-separated roles; unnamed: nobody."""
    return PropertyRule(
        re.compile(pattern),
        {
            PropertyOperation(op): frozenset(r.strip() for r in value.split(",") if r.strip())
            for op, value in roles.items()
        },
    )


def caller(*roles: str) -> RequestContext:
    return RequestContext.create("p", "u", roles)


RULES = PropertyRules(
    [
        rule("^x_billing_", create="admin", read="admin,member", update="admin", delete="admin"),
        rule("^x_open", create="@", read="@", update="@", delete="@"),
        rule("^x_sealed", create="!", read="!", update="!", delete="!"),
        rule("^x_", create="member", read="reader", update="member", delete="member"),
        rule("_ops$", create="ops", read="ops", update="ops", delete="ops"),
    ]
)


@pytest.mark.parametrize(
    ("roles", "name", "operation", "allowed"),
    [
        # The first section whose pattern is found in the name decides.
        (("admin",), "x_billing_code", C, True),
        (("member",), "x_billing_code", C, False),  # ^x_ would allow it, but comes later
        (("member",), "x_billing_code", R, True),
        (("reader",), "x_billing_code", R, False),
        # Roles are literal, as in Glance: no role implies another here (Keystone
        # tokens already carry the implied ones).
        (("admin",), "x_team", R, False),
        (("member",), "x_team", R, False),
        (("member", "reader"), "x_team", R, True),
        (("reader",), "x_team", U, False),
        # `@` is anyone, even with no role at all; `!` is no one, admins included.
        ((), "x_open_data", D, True),
        (("admin",), "x_sealed_key", R, False),
        # A search anywhere in the name, not a match of the whole name.
        (("ops",), "build_ops", R, True),
        (("ops",), "build_ops_x", R, False),
        # No section matches: nobody, admins included.
        (("admin",), "os_distro", R, False),
        (("admin",), "os_distro", C, False),
    ],
)
def test_rules_decide_by_the_first_matching_section(
    roles: tuple[str, ...], name: str, operation: PropertyOperation, allowed: bool
) -> None:
    assert RULES.allows(caller(*roles), name, operation) is allowed


def test_roles_are_compared_without_case() -> None:
    rules = PropertyRules([rule(".*", read="member")])

    assert rules.allows(RequestContext.create("p", "u", ["Member"]), "anything", R)


def test_an_operation_a_section_leaves_empty_is_allowed_to_nobody() -> None:
    rules = PropertyRules([rule(".*", read="@")])

    assert rules.allows(caller(), "k", R)
    assert not rules.allows(caller("admin"), "k", C)


def test_no_rules_at_all_allow_everything() -> None:
    assert PropertyRules([]).allows(caller(), "anything", D)


def test_any_and_no_one_together_are_refused() -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        rule(".*", read="@,!")


def test_a_refusal_is_worded_as_a_reserved_attribute() -> None:
    with pytest.raises(PropertyProtected) as refused:
        RULES.check(caller("member"), "x_billing_code", C)

    assert isinstance(refused.value, ReservedAttribute)
    assert refused.value.message == "Attribute 'x_billing_code' is reserved."


def image(**properties: str | None) -> Image:
    return Image(
        id="i",
        owner="p",
        status=ImageStatus.QUEUED,
        visibility=Visibility.SHARED,
        created_at=NOW,
        updated_at=NOW,
        properties=properties,
    )


def test_shown_leaves_out_what_the_caller_may_not_read() -> None:
    stored = image(x_billing_code="42", x_team="blue", os_distro="ubuntu")

    assert RULES.shown(caller("member", "reader"), stored).properties == {
        "x_billing_code": "42",
        "x_team": "blue",
    }
    assert RULES.shown(caller("reader"), stored).properties == {"x_team": "blue"}


def test_shown_returns_the_very_image_when_nothing_is_hidden() -> None:
    stored = image(x_team="blue")

    assert RULES.shown(caller("reader"), stored) is stored


def patch(stored: Image, context: RequestContext, *changes: Change) -> Image:
    """What the service does: change the caller's view, then put back what it hid."""
    shown = RULES.shown(context, stored)
    guard = lambda name, operation: RULES.check(context, name, operation)  # noqa: E731
    changed = apply_changes(shown, changes, NOW, guard=guard)
    return restore_hidden(changed, stored, shown)


def test_add_of_a_new_property_needs_create_and_of_an_existing_one_update() -> None:
    stored = image(x_team="blue")
    reader, member = caller("reader"), caller("member")

    with pytest.raises(PropertyProtected, match="x_new"):
        patch(stored, reader, Change(ChangeOp.ADD, "x_new", "v"))
    with pytest.raises(PropertyProtected, match="x_team"):
        patch(stored, reader, Change(ChangeOp.ADD, "x_team", "red"))
    changed = patch(
        stored, member, Change(ChangeOp.ADD, "x_new", "v"), Change(ChangeOp.ADD, "x_team", "red")
    )
    assert changed.properties == {"x_team": "red", "x_new": "v"}


def test_remove_needs_delete() -> None:
    stored = image(x_billing_code="42")

    with pytest.raises(PropertyProtected, match="x_billing_code"):
        patch(stored, caller("member"), Change(ChangeOp.REMOVE, "x_billing_code"))
    assert (
        patch(stored, caller("admin"), Change(ChangeOp.REMOVE, "x_billing_code")).properties == {}
    )


def test_a_property_the_caller_cannot_read_is_absent_to_it() -> None:
    stored = image(x_billing_code="42", x_team="blue")
    reader = caller("reader")

    for op in (ChangeOp.REPLACE, ChangeOp.REMOVE):
        with pytest.raises(PropertyNotFound, match=r"Property x_billing_code does not exist\."):
            patch(stored, reader, Change(op, "x_billing_code", "0"))


def test_properties_hidden_from_the_caller_survive_its_changes() -> None:
    stored = image(x_billing_code="42", x_team="blue")

    changed = patch(
        stored,
        caller("reader", "member"),
        Change(ChangeOp.REPLACE, "x_team", "red"),
        Change(ChangeOp.REPLACE, "name", "renamed"),
    )

    assert changed.name == "renamed"
    assert changed.properties == {"x_billing_code": "42", "x_team": "red"}


def test_the_guard_sees_operations_in_patch_order() -> None:
    seen: list[tuple[str, PropertyOperation]] = []

    apply_changes(
        image(a="1"),
        [
            Change(ChangeOp.REPLACE, "a", "2"),
            Change(ChangeOp.ADD, "b", "1"),
            Change(ChangeOp.ADD, "b", "2"),
            Change(ChangeOp.REMOVE, "a"),
            Change(ChangeOp.REPLACE, "name", "core attributes are never guarded"),
        ],
        NOW,
        guard=lambda name, operation: seen.append((name, operation)),
    )

    assert seen == [("a", U), ("b", C), ("b", U), ("a", D)]
