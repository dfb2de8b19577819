"""openstacksdk's image proxy (`conn.image.*`) against the running service."""

from __future__ import annotations

import urllib.parse
import uuid
from typing import Any

import pytest
from openstack import exceptions
from openstack.image.v2.image import Image

from tests.support.clients import ImageV2Connection, SdkFactory
from tests.support.identities import Identity, admin_of, new_project
from tests.support.seeding import activate
from tests.support.servers import RunningServer


def _create(conn: ImageV2Connection, name: str | None = None, **attrs: Any) -> Image:
    """The low-level create (no data), allowing duplicate names as tests need."""
    image: Image = conn.image.create_image(
        name=name or f"sdk-{uuid.uuid4().hex[:8]}",
        disk_format=attrs.pop("disk_format", "qcow2"),
        container_format=attrs.pop("container_format", "bare"),
        allow_duplicates=True,
        **attrs,
    )
    return image


def test_create_then_get_round_trips_every_attribute(sdk: SdkFactory, member: Identity) -> None:
    conn = sdk(member)

    created = _create(
        conn,
        "cirros",
        tags=["small", "test"],
        min_ram=128,
        visibility="private",
        os_distro="cirros",
        build="2024.1",
        meta={"os_hidden": True, "protected": True},
    )
    fetched = conn.image.get_image(created.id)

    for image in (created, fetched):
        assert image.name == "cirros"
        assert image.status == "queued"
        assert image.owner == member.project
        assert image.visibility == "private"
        assert image.disk_format == "qcow2"
        assert image.container_format == "bare"
        assert image.min_ram == 128
        assert image.min_disk == 0
        assert image.is_hidden is True
        assert image.is_protected is True
        assert image.os_distro == "cirros"
        assert image.properties["build"] == "2024.1"
        assert sorted(image.tags) == ["small", "test"]
        assert image.size is None
        assert image.checksum is None
        assert image.created_at.endswith("Z")
    assert fetched.file == f"/v2/images/{created.id}/file"
    assert fetched.schema == "/v2/schemas/image"
    conn.image.update_image(created, is_protected=False)


def test_find_image_by_name_and_by_id(sdk: SdkFactory, member: Identity) -> None:
    conn = sdk(member)
    name = f"findme-{uuid.uuid4().hex[:8]}"
    image = _create(conn, name)

    by_name = conn.image.find_image(name)
    by_id = conn.image.find_image(image.id)

    assert by_name is not None
    assert by_name.id == image.id
    assert by_id is not None
    assert by_id.name == name
    assert conn.image.find_image(f"missing-{uuid.uuid4().hex}") is None
    with pytest.raises(exceptions.ResourceNotFound):
        conn.image.find_image(str(uuid.uuid4()), ignore_missing=False)


def test_find_image_refuses_an_ambiguous_name(sdk: SdkFactory, member: Identity) -> None:
    conn = sdk(member)
    name = f"twin-{uuid.uuid4().hex[:8]}"
    _create(conn, name)
    _create(conn, name)

    with pytest.raises(exceptions.DuplicateResource):
        conn.image.find_image(name)


def test_images_follows_next_links_across_pages(sdk: SdkFactory, member: Identity) -> None:
    conn = sdk(member)
    requested: list[str] = []
    conn.session.session.hooks["response"].append(
        lambda response, *args, **kwargs: requested.append(response.url)
    )
    tag = uuid.uuid4().hex
    created = {_create(conn, f"page-{index}", tags=[tag]).id for index in range(5)}
    requested.clear()

    listed = [image.id for image in conn.image.images(tag=tag, limit=2)]

    assert sorted(listed) == sorted(created)
    pages = [urllib.parse.urlparse(url) for url in requested if "/v2/images" in url]
    assert len(pages) >= 3, requested
    for page in pages:
        query = urllib.parse.parse_qs(page.query)
        assert query["tag"] == [tag]
        assert query["limit"] == ["2"]
    assert all("marker" in urllib.parse.parse_qs(page.query) for page in pages[1:])


def test_images_filters_and_sorts(sdk: SdkFactory, member: Identity) -> None:
    conn = sdk(member)
    tag = uuid.uuid4().hex
    _create(conn, "alpha", tags=[tag], visibility="private")
    _create(conn, "beta", tags=[tag], disk_format="raw")
    _create(conn, "gamma", tags=[tag], meta={"os_hidden": True})

    def names(**query: Any) -> list[str]:
        return [image.name for image in conn.image.images(tag=tag, **query)]

    assert names(sort_key="name", sort_dir="asc") == ["alpha", "beta"]
    assert names(sort="name:desc") == ["beta", "alpha"]
    assert names(visibility="private") == ["alpha"]
    assert names(name="beta") == ["beta"]
    assert names(status="queued", owner=member.project, sort_key="name") == ["beta", "alpha"]
    assert names(is_hidden=True) == ["gamma"]
    assert names(status="active") == []


def test_update_image_sets_and_removes_properties(sdk: SdkFactory, member: Identity) -> None:
    conn = sdk(member)
    image = conn.image.get_image(_create(conn, "before", keep="yes", drop="soon").id)

    updated = conn.image.update_image(
        image,
        name="after",
        min_disk=3,
        properties={**image.properties, "added": "new"},
    )
    assert updated.name == "after"
    assert updated.min_disk == 3
    assert updated.properties["added"] == "new"

    assert conn.image.update_image_properties(updated, extra="1")
    props = dict(conn.image.get_image(image.id).properties)
    assert props["keep"] == "yes"
    assert props["extra"] == "1"
    del props["drop"]
    conn.image.update_image(updated, properties=props)

    final = conn.image.get_image(image.id)
    assert "drop" not in final.properties
    assert final.properties["keep"] == "yes"
    assert final.properties["added"] == "new"
    assert final.properties["extra"] == "1"
    assert final.name == "after"


def test_update_image_rejects_an_invalid_value(sdk: SdkFactory, member: Identity) -> None:
    conn = sdk(member)
    image = _create(conn)

    with pytest.raises(exceptions.BadRequestException) as raised:
        conn.image.update_image(image, os_distro=None)

    assert raised.value.status_code == 400
    # The SDK sends `Accept:` empty, so the message comes as text/plain, as from Glance.
    assert raised.value.response is not None
    assert "os_distro" in raised.value.response.text


def test_add_and_remove_tags(sdk: SdkFactory, member: Identity) -> None:
    conn = sdk(member)
    image = _create(conn, tags=["keep"])

    conn.image.add_tag(image, "fresh")
    conn.image.add_tag(image, "fresh")
    assert sorted(conn.image.get_image(image.id).tags) == ["fresh", "keep"]

    conn.image.remove_tag(image, "keep")
    assert conn.image.get_image(image.id).tags == ["fresh"]
    with pytest.raises(exceptions.ResourceNotFound):
        conn.image.remove_tag(image, "keep")


def test_delete_image(sdk: SdkFactory, member: Identity) -> None:
    conn = sdk(member)
    image = _create(conn)

    conn.image.delete_image(image, ignore_missing=False)

    with pytest.raises(exceptions.ResourceNotFound):
        conn.image.get_image(image.id)
    with pytest.raises(exceptions.ResourceNotFound):
        conn.image.delete_image(image.id, ignore_missing=False)
    conn.image.delete_image(image.id)  # ignore_missing=True: no error


def test_deactivate_and_reactivate(
    sdk: SdkFactory, member: Identity, server: RunningServer
) -> None:
    conn = sdk(member)
    image = _create(conn)
    activate(server, image.id)

    conn.image.deactivate_image(image)
    assert conn.image.get_image(image.id).status == "deactivated"
    conn.image.deactivate_image(image.id)  # already deactivated: fine, as in Glance
    conn.image.reactivate_image(image)

    active = conn.image.get_image(image.id)
    assert active.status == "active"
    assert active.size == 0
    assert active.hash_algo == "sha512"


def test_deactivate_leaves_a_queued_image_queued(sdk: SdkFactory, member: Identity) -> None:
    conn = sdk(member)
    image = _create(conn)

    # The SDK ignores the answer to image actions (Glance's 403 is checked with
    # glanceclient); the image must simply stay as it was.
    conn.image.deactivate_image(image)

    assert conn.image.get_image(image.id).status == "queued"


def test_error_mapping(
    sdk: SdkFactory, member: Identity, reader: Identity, stranger: Identity
) -> None:
    conn = sdk(member)
    image = _create(conn, visibility="private", meta={"protected": True})

    with pytest.raises(exceptions.ResourceNotFound) as missing:
        conn.image.get_image(str(uuid.uuid4()))
    assert missing.value.status_code == 404
    with pytest.raises(exceptions.ConflictException):
        _create(conn, id=image.id)
    with pytest.raises(exceptions.ForbiddenException):
        conn.image.delete_image(image, ignore_missing=False)
    with pytest.raises(exceptions.ForbiddenException):
        _create(conn, visibility="public")
    with pytest.raises(exceptions.ForbiddenException):
        _create(sdk(reader))
    with pytest.raises(exceptions.ForbiddenException):
        conn.image.update_image(image.id, owner=new_project())
    with pytest.raises(exceptions.ResourceNotFound):
        sdk(stranger).image.get_image(image.id)
    with pytest.raises(exceptions.ResourceNotFound):
        sdk(stranger).image.update_image(image.id, name="mine")
    conn.image.update_image(image, is_protected=False)


def test_admin_sees_other_projects_and_members_cannot_change_public_images(
    sdk: SdkFactory, member: Identity
) -> None:
    admin = sdk(admin_of(new_project()))
    public = _create(admin, visibility="public")
    private = _create(sdk(member), visibility="private")

    assert admin.image.get_image(private.id).owner == member.project
    assert sdk(member).image.get_image(public.id).visibility == "public"
    with pytest.raises(exceptions.ForbiddenException):
        sdk(member).image.update_image(public.id, name="mine")
    admin.image.delete_image(public, ignore_missing=False)
