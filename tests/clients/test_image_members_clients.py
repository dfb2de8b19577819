"""Sharing images through real clients: openstacksdk, python-glanceclient and the
`glance` command."""

from __future__ import annotations

import uuid

import pytest
from glanceclient import exc
from openstack import exceptions

from tests.clients.test_image_data_clients import _glance
from tests.support.clients import GlanceFactory, SdkFactory
from tests.support.identities import Identity, member_of
from tests.support.servers import RunningServer


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_openstacksdk_shares_and_the_member_accepts(
    sdk: SdkFactory, member: Identity, other_project: str
) -> None:
    owner = sdk(member)
    guest = sdk(member_of(other_project))
    image = owner.image.create_image(name=_name("sdk-shared"), visibility="shared")

    added = owner.image.add_member(image, member=other_project)
    before = {i.id for i in guest.image.images()}
    guest.image.update_member(other_project, image, status="accepted")
    after = {i.id for i in guest.image.images()}

    assert (added.member_id, added.status) == (other_project, "pending")
    assert image.id not in before  # pending members do not list it by default
    assert image.id in after
    assert [m.status for m in owner.image.members(image)] == ["accepted"]
    assert owner.image.get_member(other_project, image).status == "accepted"

    owner.image.remove_member(other_project, image, ignore_missing=False)

    assert list(owner.image.members(image)) == []
    with pytest.raises(exceptions.NotFoundException):
        guest.image.get_image(image.id)


def test_openstacksdk_member_errors(sdk: SdkFactory, member: Identity, other_project: str) -> None:
    owner = sdk(member)
    private = owner.image.create_image(name=_name("sdk-private"), visibility="private")
    shared = owner.image.create_image(name=_name("sdk-shared"), visibility="shared")
    owner.image.add_member(shared, member=other_project)

    with pytest.raises(exceptions.ForbiddenException, match="Not allowed to create members"):
        owner.image.add_member(private, member=other_project)
    with pytest.raises(exceptions.ConflictException, match="is duplicated for image"):
        owner.image.add_member(shared, member=other_project)
    with pytest.raises(exceptions.ForbiddenException, match="modify_member"):
        owner.image.update_member(other_project, shared, status="accepted")


def test_glanceclient_member_lifecycle(
    glance: GlanceFactory, member: Identity, other_project: str
) -> None:
    owner = glance(member)
    guest = glance(member_of(other_project))
    image = owner.images.create(name=_name("gc-shared"), visibility="shared")

    created = owner.image_members.create(image.id, other_project)
    guest.image_members.update(image.id, other_project, "rejected")

    assert created.status == "pending"
    assert [(m.member_id, m.status) for m in owner.image_members.list(image.id)] == [
        (other_project, "rejected")
    ]
    assert image.id not in {i.id for i in guest.images.list()}
    assert image.id in {i.id for i in guest.images.list(filters={"member_status": "rejected"})}
    with pytest.raises(exc.HTTPForbidden):
        guest.image_members.delete(image.id, other_project)

    owner.image_members.delete(image.id, other_project)

    assert list(owner.image_members.list(image.id)) == []


def test_glance_cli_member_commands(sqlite_server: RunningServer, other_project: str) -> None:
    code, out, err = _glance(
        sqlite_server, "image-create", "--name", _name("cli-shared"), "--visibility", "shared"
    )
    assert code == 0, err
    image_id = next(
        line.split("|")[2].strip() for line in out.splitlines() if line.startswith("| id ")
    )

    code, out, err = _glance(sqlite_server, "member-create", image_id, other_project)
    assert code == 0, err
    assert other_project in out
    assert "pending" in out

    code, out, err = _glance(sqlite_server, "member-list", "--image-id", image_id)
    assert code == 0, err
    assert other_project in out

    code, out, err = _glance(sqlite_server, "member-delete", image_id, other_project)
    assert code == 0, err
    code, out, err = _glance(sqlite_server, "member-list", "--image-id", image_id)
    assert other_project not in out
