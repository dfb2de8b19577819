"""python-glanceclient v2, as a library and as the `glance` command.

The library fetches /v2/schemas/image and validates every image it builds
against it with warlock, so these tests also prove the published schema works.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from glanceclient import exc
from glanceclient.v2.client import Client

from tests.support.clients import BIN, GlanceFactory, run_in_terminal
from tests.support.identities import Identity
from tests.support.seeding import activate
from tests.support.servers import RunningServer


def _create(client: Client, **attrs: Any) -> Any:
    attrs.setdefault("name", f"glance-{uuid.uuid4().hex[:8]}")
    return client.images.create(**attrs)


def test_create_then_get(glance: GlanceFactory, member: Identity) -> None:
    client = glance(member)

    created = _create(
        client,
        name="cirros",
        disk_format="qcow2",
        container_format="bare",
        visibility="private",
        min_ram=64,
        tags=["small"],
        os_distro="cirros",
        build="2024.1",
    )
    fetched = client.images.get(created.id)

    for image in (created, fetched):
        assert image.name == "cirros"
        assert image.status == "queued"
        assert image.owner == member.project
        assert image.visibility == "private"
        assert image.disk_format == "qcow2"
        assert image.min_ram == 64
        assert image.tags == ["small"]
        assert image.os_distro == "cirros"
        assert image["build"] == "2024.1"
        assert image.size is None


def test_the_published_schema_validates_on_the_client(
    glance: GlanceFactory, member: Identity
) -> None:
    client = glance(member)

    with pytest.raises(TypeError, match="disk_format"):
        _create(client, disk_format="floppy")
    with pytest.raises(TypeError, match="min_ram"):
        _create(client, min_ram="lots")

    schema = client.schemas.get("image")
    assert schema.name == "image"
    assert schema.is_base_property("disk_format")
    assert schema.is_core_property("os_distro")
    assert not schema.is_base_property("os_distro")
    assert not schema.is_core_property("build")
    assert "qcow2" in schema.raw()["properties"]["disk_format"]["enum"]


def test_list_pages_with_page_size_and_filters(glance: GlanceFactory, member: Identity) -> None:
    client = glance(member)
    requested: list[str] = []
    client.http_client.session.hooks["response"].append(
        lambda response, *args, **kwargs: requested.append(response.url)
    )
    tag = uuid.uuid4().hex
    created = [_create(client, name=f"page-{index}", tags=[tag]).id for index in range(4)]
    _create(client, name="page-raw", tags=[tag], disk_format="raw")
    requested.clear()

    listed = [image.id for image in client.images.list(page_size=2, filters={"tag": [tag]})]

    assert len(listed) == 5
    assert set(created) < set(listed)
    assert len([url for url in requested if "/v2/images?" in url]) == 3  # 2 + 2 + 1
    assert all(f"tag={tag}" in url for url in requested if "/v2/images?" in url)

    def names(**kwargs: Any) -> list[str]:
        filters = {"tag": [tag], **kwargs.pop("filters", {})}
        return [image.name for image in client.images.list(filters=filters, **kwargs)]

    assert names(filters={"disk_format": "raw"}) == ["page-raw"]
    assert names(sort_key="name", sort_dir="asc", limit=3) == ["page-0", "page-1", "page-2"]
    assert names(sort="name:desc", page_size=4)[0] == "page-raw"
    assert names(filters={"owner": member.project, "status": "active"}) == []


def test_update_sets_and_removes_properties(glance: GlanceFactory, member: Identity) -> None:
    client = glance(member)
    image = _create(client, keep="yes", drop="soon")

    updated = client.images.update(
        image.id, remove_props=["drop"], name="renamed", added="new", min_disk=2
    )

    fetched = client.images.get(image.id)
    for result in (updated, fetched):
        assert result.name == "renamed"
        assert result.min_disk == 2
        assert result["keep"] == "yes"
        assert result["added"] == "new"
        assert "drop" not in result


def test_tags(glance: GlanceFactory, member: Identity) -> None:
    client = glance(member)
    image = _create(client, tags=["old"])

    client.image_tags.update(image.id, "new")
    client.image_tags.delete(image.id, "old")

    assert client.images.get(image.id).tags == ["new"]
    with pytest.raises(exc.HTTPNotFound):
        client.image_tags.delete(image.id, "old")


def test_delete(glance: GlanceFactory, member: Identity) -> None:
    client = glance(member)
    image = _create(client)

    client.images.delete(image.id)

    with pytest.raises(exc.HTTPNotFound):
        client.images.get(image.id)
    with pytest.raises(exc.HTTPNotFound):
        client.images.delete(image.id)


def test_deactivate_and_reactivate(
    glance: GlanceFactory, member: Identity, server: RunningServer
) -> None:
    client = glance(member)
    image = _create(client)
    with pytest.raises(exc.HTTPForbidden):
        client.images.deactivate(image.id)
    activate(server, image.id)

    client.images.deactivate(image.id)
    assert client.images.get(image.id).status == "deactivated"
    client.images.reactivate(image.id)
    assert client.images.get(image.id).status == "active"


def test_error_mapping(
    glance: GlanceFactory, member: Identity, reader: Identity, stranger: Identity
) -> None:
    client = glance(member)
    image = _create(client, visibility="private", protected=True)

    with pytest.raises(exc.HTTPNotFound):
        client.images.get(str(uuid.uuid4()))
    with pytest.raises(exc.HTTPConflict):
        _create(client, id=image.id)
    with pytest.raises(exc.HTTPForbidden):
        client.images.delete(image.id)
    with pytest.raises(exc.HTTPForbidden):
        _create(glance(reader))
    with pytest.raises(exc.HTTPForbidden):
        _create(client, visibility="public")
    with pytest.raises(exc.HTTPBadRequest):
        next(client.images.list(filters={"size_min": "big"}))
    with pytest.raises(exc.HTTPNotFound):
        glance(stranger).images.get(image.id)
    client.images.update(image.id, protected=False)


# -- the `glance` command: no identity headers, so the service's default admin.
# On SQLite only: the command runs the library tested above on both backends.


def _glance_cli(server: RunningServer, *args: str) -> tuple[int, str, str]:
    # stdin is a terminal: otherwise image-create would upload stdin as image data.
    result = run_in_terminal(
        [str(BIN / "glance"), "--os-image-url", server.url, "--os-auth-token", "x", *args]
    )
    return result.returncode, result.stdout, result.stderr


def _table(output: str) -> dict[str, str]:
    """The Property | Value rows of glance's pretty table."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2:
            rows[cells[0]] = cells[1]
    return rows


def test_glance_cli_image_life_cycle(sqlite_server: RunningServer) -> None:
    server = sqlite_server
    name = f"cli-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex

    code, out, err = _glance_cli(
        server,
        "image-create",
        "--name",
        name,
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--property",
        "foo=bar",
    )
    assert code == 0, err
    created = _table(out)
    assert created["name"] == name
    assert created["owner"] == "default"
    assert created["foo"] == "bar"
    assert created["status"] == "queued"
    image_id = created["id"]

    code, out, err = _glance_cli(
        server, "image-update", image_id, "--property", "baz=q", "--remove-property", "foo"
    )
    assert code == 0, err
    assert _table(out)["baz"] == "q"
    assert "foo" not in _table(out)

    code, out, err = _glance_cli(server, "image-tag-update", image_id, tag)
    assert code == 0, err

    code, out, err = _glance_cli(server, "image-list", "--tag", tag)
    assert code == 0, err
    assert image_id in out
    assert name in out

    code, out, err = _glance_cli(server, "image-show", image_id)
    assert code == 0, err
    shown = _table(out)
    assert shown["name"] == name
    assert tag in shown["tags"]

    code, out, err = _glance_cli(server, "image-delete", image_id)
    assert code == 0, err
    code, out, err = _glance_cli(server, "image-show", image_id)
    assert code == 1
    assert "404" in err
