"""oslo.policy over Glance's rules, and the twin test for the built-in fast path.

House rule 7: `BuiltinPolicy` (plain Python) and oslo.policy's evaluation of
Glance's default check strings agree over every combination of roles, scope,
caller project, image owner, visibility and action; and likewise for every metadef
rule over every namespace owner and visibility.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
import time
from pathlib import Path

import pytest

from skylens.domain.access import Action, RequestContext
from skylens.domain.images import Image, ImageStatus, Visibility
from skylens.domain.metadefs import (
    METADEF_CHECK_STRINGS,
    MetadefAction,
    Namespace,
    NamespaceVisibility,
)
from skylens.domain.policy import BuiltinPolicy
from skylens.policy_files.oslo import InvalidPolicyFile, OsloPolicy

NOW = dt.datetime(2026, 1, 1)
ROLES = ("admin", "member", "reader", "service")
PROJECTS = ("owner", "other", None)

IMAGES: tuple[Image | None, ...] = (
    None,
    *(
        Image(
            id=f"{owner}-{visibility.value}",
            owner=owner,
            status=ImageStatus.ACTIVE,
            visibility=visibility,
            created_at=NOW,
            updated_at=NOW,
        )
        for owner, visibility in itertools.product(PROJECTS, Visibility)
    ),
)


def contexts() -> list[RequestContext]:
    """Every literal role set (no implied roles, so each role counts on its own)."""
    found = []
    for count in range(len(ROLES) + 1):
        for roles in itertools.combinations(ROLES, count):
            for project, scope in itertools.product(PROJECTS, ("project", "domain", "system")):
                found.append(RequestContext(project, "user", frozenset(roles), scope))
    return found


def test_the_builtin_policy_agrees_with_oslo_policy_on_glances_defaults() -> None:
    builtin, oslo = BuiltinPolicy(), OsloPolicy()
    cases = list(itertools.product(contexts(), IMAGES, Action))

    disagreements = [
        (action.value, context, image and image.id)
        for context, image, action in cases
        if builtin.allows(context, action, image) is not oslo.allows(context, action, image)
    ]

    assert len(cases) > 30_000
    assert disagreements == []


NAMESPACES: tuple[Namespace | None, ...] = (
    None,
    *(
        Namespace(f"ns-{owner}-{visibility.value}", None, None, visibility, False, owner, NOW, NOW)
        for owner, visibility in itertools.product(PROJECTS, NamespaceVisibility)
    ),
)


def test_the_builtin_policy_agrees_with_oslo_policy_on_glances_metadef_defaults() -> None:
    builtin, oslo = BuiltinPolicy(), OsloPolicy()
    cases = list(itertools.product(contexts(), NAMESPACES, MetadefAction))

    disagreements = [
        (action.value, context, namespace and namespace.namespace)
        for context, namespace, action in cases
        if builtin.allows_metadef(context, action, namespace)
        is not oslo.allows_metadef(context, action, namespace)
    ]

    assert len(cases) > 25_000
    assert disagreements == []


def test_the_metadef_defaults_are_glances_strings() -> None:
    assert METADEF_CHECK_STRINGS[MetadefAction.ADD_NAMESPACE] == "rule:metadef_admin"
    assert METADEF_CHECK_STRINGS[MetadefAction.GET_NAMESPACE] == (
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s"
        " or 'public':%(visibility)s))"
    )
    assert METADEF_CHECK_STRINGS[MetadefAction.GET_NAMESPACES] == (
        "rule:context_is_admin or (role:reader and project_id:%(project_id)s)"
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


MEMBER = RequestContext.create("owner", "u", ["member"])
STRANGER = RequestContext.create("other", "u", ["member"])
ADMIN = RequestContext.create("admin-project", "u", ["admin"])
PRIVATE = IMAGES[1 + list(Visibility).index(Visibility.PRIVATE)]


def test_a_policy_file_overrides_rules_by_name_and_may_add_its_own(tmp_path: Path) -> None:
    policy = OsloPolicy(
        _write(
            tmp_path / "policy.yaml",
            '"owner_only": "project_id:%(project_id)s"\n'
            '"publicize_image": "role:member and rule:owner_only"\n'
            '"delete_image": "rule:context_is_admin"\n'
            '"modify_image": "role:member and \'cirros\':%(os_distro)s"\n',
        )
    )
    assert policy.allows(MEMBER, Action.PUBLICIZE_IMAGE, PRIVATE)
    assert not policy.allows(STRANGER, Action.PUBLICIZE_IMAGE, PRIVATE)
    assert not policy.allows(MEMBER, Action.DELETE_IMAGE, PRIVATE)
    assert policy.allows(ADMIN, Action.DELETE_IMAGE, PRIVATE)
    assert policy.allows(MEMBER, Action.DEACTIVATE, PRIVATE)  # untouched: Glance's default
    assert PRIVATE is not None
    cirros = dataclasses.replace(PRIVATE, properties={"os_distro": "cirros"})
    assert policy.allows(STRANGER, Action.MODIFY_IMAGE, cirros)
    assert not policy.allows(STRANGER, Action.MODIFY_IMAGE, PRIVATE)  # no such property


def test_a_policy_file_overrides_metadef_rules_too(tmp_path: Path) -> None:
    private = NAMESPACES[1 + list(NamespaceVisibility).index(NamespaceVisibility.PRIVATE)]
    policy = OsloPolicy(
        _write(
            tmp_path / "policy.yaml",
            '"metadef_admin": "role:admin or role:member"\n"get_metadef_namespaces": "!"\n',
        )
    )
    assert policy.allows_metadef(MEMBER, MetadefAction.ADD_NAMESPACE)
    assert policy.allows_metadef(MEMBER, MetadefAction.DELETE_TAG, private)
    assert not policy.allows_metadef(ADMIN, MetadefAction.GET_NAMESPACES)
    assert not BuiltinPolicy().allows_metadef(MEMBER, MetadefAction.ADD_NAMESPACE)


def test_json_is_read_as_well(tmp_path: Path) -> None:
    policy = OsloPolicy(_write(tmp_path / "policy.json", '{"get_images": "!"}'))
    assert not policy.allows(ADMIN, Action.GET_IMAGES)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("get_images: [role:admin\n", "neither YAML nor JSON"),
        ("- role:admin\n", "a map of rule name to check string"),
        ("get_images: 1\n", "must be a string"),
        ('get_images: "role:admin or"\n', "cannot parse check string"),
        ('get_images: "(role:admin"\n', "cannot parse check string"),
        ('get_images: "project_id:%(project_id"\n', "bad target reference"),
        ('get_images: "rule:no_such_rule"\n', "no_such_rule"),
        ('a: "rule:b"\nb: "rule:a"\n', "cycle"),
    ],
)
def test_a_broken_policy_file_is_refused(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(InvalidPolicyFile, match=says):
        OsloPolicy(_write(tmp_path / "policy.yaml", text))


def test_the_file_is_re_read_when_it_changes_and_a_broken_one_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path / "policy.yaml", '"get_images": "!"\n')
    policy = OsloPolicy(path)
    assert not policy.allows(ADMIN, Action.GET_IMAGES)
    _write(path, '"get_images": "@"\n')
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    deadline = time.monotonic() + 5
    while not policy.allows(MEMBER, Action.GET_IMAGES) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert policy.allows(MEMBER, Action.GET_IMAGES)
    _write(path, '"get_images": "role:admin or"\n')
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    time.sleep(1.1)
    assert policy.allows(MEMBER, Action.GET_IMAGES)  # the previous rules stay in force
    assert "not reloaded, its previous version stays in force" in caplog.text
