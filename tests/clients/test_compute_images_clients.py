"""openstacksdk's compute proxy (`conn.compute.*images*`) against Skylens's `/v2.1`."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from openstack import exceptions
from openstack.connection import Connection

from tests.support.clients import sdk_compute_connection
from tests.support.identities import Identity
from tests.support.servers import RunningServer

ComputeFactory = Callable[[Identity], Connection]


@pytest.fixture
def compute(server: RunningServer) -> Iterator[ComputeFactory]:
    connections: list[Connection] = []

    def make(identity: Identity) -> Connection:
        connection = sdk_compute_connection(server.url, identity, "2.35")
        connections.append(connection)
        return connection

    yield make
    for connection in connections:
        connection.close()


def _image(conn: Connection, name: str | None = None, **properties: str) -> str:
    # create_image's other keywords are typed; its `**kwargs` (the properties) are Any.
    extra: dict[str, Any] = dict(properties)
    image = conn.image.create_image(
        name=name or f"sdk-{uuid.uuid4().hex[:8]}",
        disk_format="raw",
        container_format="bare",
        allow_duplicates=True,
        **extra,
    )
    return str(image.id)


def test_images_lists_what_the_image_api_created(compute: ComputeFactory, member: Identity) -> None:
    conn = compute(member)
    image_id = _image(conn, os_distro="cirros")

    detailed = {image.id: image for image in conn.compute.images()}
    basic = [image.id for image in conn.compute.images(details=False)]

    assert basic == list(detailed)
    image = detailed[image_id]
    assert image.status == "SAVING"
    assert image.progress == 25
    assert image.min_ram == 0
    assert image.size == 0
    assert image.metadata["os_distro"] == "cirros"


def test_images_pages_through_every_image(compute: ComputeFactory, member: Identity) -> None:
    conn = compute(member)
    name = f"paged-{uuid.uuid4().hex[:8]}"
    created = {_image(conn, name) for _ in range(5)}

    # The session server also holds other tests' public images: list by this name.
    listed = [image.id for image in conn.compute.images(limit=2, name=name)]

    assert len(listed) == len(set(listed))
    assert set(listed) == created


def test_get_image_and_its_filters(compute: ComputeFactory, member: Identity) -> None:
    conn = compute(member)
    image_id = _image(conn, image_type="snapshot")

    image = conn.compute.get_image(image_id)
    by_type = [i.id for i in conn.compute.images(type="snapshot")]

    assert image.id == image_id
    assert image.name.startswith("sdk-")
    assert by_type == [image_id]


def test_metadata_calls_change_image_properties(compute: ComputeFactory, member: Identity) -> None:
    conn = compute(member)
    image_id = _image(conn, kept="yes")

    conn.compute.set_image_metadata(image_id, build_id="virtio", other="1")
    conn.compute.delete_image_metadata(image_id, ["other"])
    fetched = conn.compute.fetch_image_metadata(image_id)

    # openstacksdk's image create adds its own owner_specified.openstack.* properties.
    mine = {k: v for k, v in fetched.metadata.items() if not k.startswith("owner_specified.")}
    assert mine == {"kept": "yes", "build_id": "virtio"}
    through_image_api = conn.image.get_image(image_id)
    assert through_image_api.properties["build_id"] == "virtio"
    assert "other" not in through_image_api.properties


def test_delete_image_and_a_missing_one(compute: ComputeFactory, member: Identity) -> None:
    conn = compute(member)
    image_id = _image(conn)

    conn.compute.delete_image(image_id)

    with pytest.raises(exceptions.NotFoundException):
        conn.compute.get_image(image_id)
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.delete_image(image_id, ignore_missing=False)
    assert conn.image.find_image(image_id) is None


def test_the_routes_are_gone_at_2_36(server: RunningServer, member: Identity) -> None:
    conn = sdk_compute_connection(server.url, member, "2.36")
    try:
        with pytest.raises(exceptions.NotFoundException):
            list(conn.compute.images())
    finally:
        conn.close()
