"""Multi-store through real clients: python-glanceclient (library and `glance`),
openstacksdk and the `openstack` command.

The servers have the stores `local` (file, default), `swift` and `s3` (a real Swift
server, through its Swift and S3 APIs). What landed is checked in the stores directly.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from pathlib import Path

import httpx
import pytest
from glanceclient import exc
from openstack.image.v2.image import Image

from tests.clients.test_image_data_clients import _glance, _openstack, _table
from tests.support.clients import GlanceFactory, SdkFactory
from tests.support.identities import Identity
from tests.support.seeding import set_image_columns
from tests.support.servers import RunningServer
from tests.support.stores import StoreContents
from tests.support.swift import RunningSwift

MIB = 1 << 20


@pytest.fixture
def server(object_store_server: RunningServer) -> RunningServer:
    """The tests here use the `swift` and `s3` stores: servers that have them."""
    return object_store_server


@pytest.fixture
def contents(server: RunningServer, swift: RunningSwift) -> StoreContents:
    return StoreContents(server, swift)


def test_glanceclient_lists_stores_and_uploads_to_the_one_named(
    glance: GlanceFactory, member: Identity, contents: StoreContents
) -> None:
    client = glance(member)
    data = os.urandom(6 * MIB + 1)

    stores = client.images.get_stores_info()["stores"]
    image = client.images.create(
        name=f"to-swift-{uuid.uuid4().hex[:8]}", disk_format="raw", container_format="bare"
    )
    client.images.upload(image.id, io.BytesIO(data), backend="swift")

    assert [store["id"] for store in stores] == ["local", "swift", "s3"]
    assert [store.get("default") for store in stores] == ["true", None, None]
    stored = client.images.get(image.id)
    assert stored.stores == "swift"
    assert stored.os_hash_value == hashlib.sha512(data).hexdigest()
    assert contents.get("swift", image.id) == data
    assert b"".join(client.images.data(image.id)) == data  # verified against os_hash_value


def test_glanceclient_refuses_to_delete_the_last_copy(
    glance: GlanceFactory, member: Identity, admin: Identity
) -> None:
    owner = glance(member)
    image = owner.images.create(
        name=f"one-copy-{uuid.uuid4().hex[:8]}", disk_format="raw", container_format="bare"
    )
    owner.images.upload(image.id, io.BytesIO(b"only copy"), backend="s3")

    with pytest.raises(exc.HTTPForbidden) as refused:
        glance(admin).images.delete_from_store("s3", image.id)

    assert "Cannot delete image data from the only store containing it" in str(refused.value)


def test_glanceclient_stores_detail_is_for_admins(
    glance: GlanceFactory, member: Identity, admin: Identity
) -> None:
    detail = glance(admin).images.get_stores_info_detail()["stores"]

    assert {store["id"]: store["type"] for store in detail} == {
        "local": "file",
        "swift": "swift",
        "s3": "s3",
    }
    with pytest.raises(exc.HTTPForbidden):
        glance(member).images.get_stores_info_detail()


def test_openstacksdk_lists_stores_and_deletes_one_copy(
    sdk: SdkFactory,
    member: Identity,
    admin: Identity,
    server: RunningServer,
    contents: StoreContents,
    tmp_path: Path,
) -> None:
    owner = sdk(member)
    source = tmp_path / "disk.raw"
    source.write_bytes(os.urandom(2 * MIB))
    image = owner.create_image(
        f"sdk-stores-{uuid.uuid4().hex[:8]}",
        filename=str(source),
        disk_format="raw",
        container_format="bare",
        wait=True,
    )
    assert isinstance(image, Image)
    contents.put("swift", image.id, source.read_bytes())  # as copy-image would
    set_image_columns(server, image.id, stores="local,swift")

    assert [store.id for store in owner.image.stores()] == ["local", "swift", "s3"]
    assert [store.is_default for store in owner.image.stores()] == [True, None, None]
    sdk(admin).image.delete_image(image.id, store="swift")

    assert owner.image.get(f"/images/{image.id}").json()["stores"] == "local"
    assert contents.get("swift", image.id) is None
    target = tmp_path / "saved.raw"
    owner.download_image(image.id, output_path=str(target))  # checks os_hash_value
    assert target.read_bytes() == source.read_bytes()


# -- the command lines (SQLite only) -----------------------------------------


def test_glance_cli_stores_info_and_create_with_store(
    sqlite_object_store_server: RunningServer, swift: RunningSwift, tmp_path: Path
) -> None:
    contents = StoreContents(sqlite_object_store_server, swift)
    source = tmp_path / "image.raw"
    source.write_bytes(os.urandom(MIB + 3))

    code, out, err = _glance(sqlite_object_store_server, "stores-info")
    assert code == 0, err
    assert "local" in out
    assert "swift" in out

    code, out, err = _glance(
        sqlite_object_store_server,
        "image-create",
        "--file",
        str(source),
        "--store",
        "s3",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--name",
        f"cli-s3-{uuid.uuid4().hex[:8]}",
    )
    assert code == 0, err
    created = _table(out)
    assert created["stores"] == "s3"
    assert contents.get("s3", created["id"]) == source.read_bytes()

    code, _out, err = _glance(
        sqlite_object_store_server, "stores-delete", "--store", "s3", created["id"]
    )
    assert code == 1
    assert "Cannot delete image data from the only store containing it" in err


def test_openstack_cli_deletes_one_copy(
    sqlite_object_store_server: RunningServer, swift: RunningSwift, tmp_path: Path
) -> None:
    contents = StoreContents(sqlite_object_store_server, swift)
    source = tmp_path / "image.raw"
    source.write_bytes(os.urandom(MIB))
    name = f"osc-copies-{uuid.uuid4().hex[:8]}"
    code, _out, err = _openstack(
        sqlite_object_store_server,
        *("image", "create", "--disk-format", "raw", "--container-format", "bare"),
        *("--file", str(source), name),
    )
    assert code == 0, err
    code, image_id, err = _openstack(
        sqlite_object_store_server, "image", "show", "-c", "id", "-f", "value", name
    )
    assert code == 0, err
    image_id = image_id.strip()
    contents.put("s3", image_id, source.read_bytes())
    set_image_columns(sqlite_object_store_server, image_id, stores="local,s3")

    code, _out, err = _openstack(
        sqlite_object_store_server, "image", "delete", "--store", "local", image_id
    )

    assert code == 0, err
    assert contents.get("local", image_id) is None
    assert (
        httpx.get(f"{sqlite_object_store_server.url}/v2/images/{image_id}").json()["stores"] == "s3"
    )
    assert contents.get("s3", image_id) == source.read_bytes()
