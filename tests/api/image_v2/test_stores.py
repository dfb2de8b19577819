"""Multi-store: store discovery, `X-Image-Meta-Store`, `OpenStack-image-store-ids`, the
`stores` field and `DELETE /v2/stores/{store_id}/{image_id}`.

The test servers have three stores (tests.support.servers.stores_config): `local`, a
file store and the default; `swift` and `s3`, two containers of a real Swift server,
one reached through the Swift API and one through S3. boto3 and swiftclient only look
at what landed there.
"""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity
from tests.support.seeding import set_image_columns
from tests.support.servers import RunningServer, configured_stores
from tests.support.stores import StoreContents
from tests.support.swift import RunningSwift

OCTET = {"Content-Type": "application/octet-stream"}
STORES = ("local", "swift", "s3")


@pytest.fixture
def server(object_store_server: RunningServer) -> RunningServer:
    """The tests here use the `swift` and `s3` stores: servers that have them."""
    return object_store_server


def new_image(api: httpx.Client, disk_format: str = "raw") -> str:
    body = {"name": "stored", "disk_format": disk_format, "container_format": "bare"}
    response = api.post("/v2/images", json=body)
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def upload(api: httpx.Client, image_id: str, data: bytes, store: str | None = None) -> None:
    headers = {**OCTET, **({"X-Image-Meta-Store": store} if store else {})}
    response = api.put(f"/v2/images/{image_id}/file", content=data, headers=headers)
    assert response.status_code == 204, response.text


@pytest.fixture
def contents(server: RunningServer, swift: RunningSwift) -> StoreContents:
    return StoreContents(server, swift)


def test_info_stores_lists_every_store_and_marks_the_default(api: httpx.Client) -> None:
    response = api.get("/v2/info/stores")

    assert response.status_code == 200
    assert response.json() == {
        "stores": [
            {"id": "local", "description": "Local disk", "default": "true"},
            {"id": "swift", "description": "Swift on loopback"},
            {"id": "s3"},
        ]
    }


def test_info_stores_detail_adds_type_weight_and_settings_for_admins(
    http: ClientFactory, admin: Identity, server: RunningServer, swift: RunningSwift
) -> None:
    response = http(admin).get("/v2/info/stores/detail")

    assert response.status_code == 200
    stores = {store["id"]: store for store in response.json()["stores"]}
    options = configured_stores(server)
    assert stores["local"] == {
        "id": "local",
        "description": "Local disk",
        "default": "true",
        "type": "file",
        "weight": 0,
        "properties": {"data_dir": str((server.log.parent / "images").resolve()), "fsync": True},
    }
    assert stores["swift"]["type"] == "swift"
    assert stores["swift"]["weight"] == 10
    assert stores["swift"]["properties"]["container"] == options["swift"]["container"]
    assert stores["s3"]["type"] == "s3"
    assert stores["s3"]["properties"]["bucket"] == options["s3"]["bucket"]
    assert swift.key not in response.text  # credentials never leave the server


def test_info_stores_detail_is_for_admins_only(api: httpx.Client) -> None:
    assert_error(
        api.get("/v2/info/stores/detail"),
        403,
        "You are not authorized to complete stores_info_detail action.",
    )


def test_create_announces_the_stores_an_upload_may_name(api: httpx.Client) -> None:
    response = api.post("/v2/images", json={"name": "x"})

    assert response.status_code == 201
    assert response.headers["OpenStack-image-store-ids"] == "local,swift,s3"
    assert "stores" not in response.json()  # no data yet


@pytest.mark.parametrize("store", STORES)
def test_an_upload_lands_in_the_store_it_names_and_downloads_back(
    api: httpx.Client, contents: StoreContents, store: str
) -> None:
    data = os.urandom(11 * 1024 * 1024 + 5)  # several parts/segments in the object stores
    image_id = new_image(api)

    upload(api, image_id, data, store)

    image = api.get(f"/v2/images/{image_id}").json()
    assert image["stores"] == store
    assert image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert contents.get(store, image_id) == data
    assert [contents.get(other, image_id) for other in STORES if other != store] == [None, None]
    download = api.get(f"/v2/images/{image_id}/file")
    assert download.status_code == 200
    assert download.content == data
    ranged = api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=5242870-5242889"})
    assert ranged.status_code == 206
    assert ranged.content == data[5242870:5242890]
    assert ranged.headers["Content-Range"] == f"bytes 5242870-5242889/{len(data)}"


def test_without_the_header_data_goes_to_the_default_store(
    api: httpx.Client, contents: StoreContents
) -> None:
    image_id = new_image(api)

    upload(api, image_id, b"default store")

    assert api.get(f"/v2/images/{image_id}").json()["stores"] == "local"
    assert contents.get("local", image_id) == b"default store"


def test_a_deactivated_images_stores_are_shown_to_admins_only(
    api: httpx.Client, http: ClientFactory, admin: Identity
) -> None:
    # Glance returns no locations of a deactivated image to non-admins, so its
    # body has no `stores` (recorded Glance 33 exchange get-deactivated).
    image_id = new_image(api)
    upload(api, image_id, b"soon deactivated")
    assert api.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204

    owner_view = api.get(f"/v2/images/{image_id}").json()
    listed = api.get("/v2/images", params={"id": image_id}).json()["images"]
    patched = api.patch(
        f"/v2/images/{image_id}",
        json=[{"op": "add", "path": "/note", "value": "x"}],
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
    ).json()

    assert "stores" not in owner_view
    assert [image.get("stores") for image in listed] == [None]
    assert "stores" not in patched
    assert http(admin).get(f"/v2/images/{image_id}").json()["stores"] == "local"
    assert api.post(f"/v2/images/{image_id}/actions/reactivate").status_code == 204
    assert api.get(f"/v2/images/{image_id}").json()["stores"] == "local"


@pytest.mark.parametrize("store", ["nowhere", "", "LOCAL"])
def test_an_unknown_store_is_400_and_the_image_stays_queued(api: httpx.Client, store: str) -> None:
    image_id = new_image(api)

    response = api.put(
        f"/v2/images/{image_id}/file",
        content=b"data",
        headers={**OCTET, "X-Image-Meta-Store": store},
    )

    assert_error(response, 400, f"Store for identifier {store} not found")
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"


@pytest.mark.parametrize("store", ["swift", "s3"])
def test_deleting_an_image_removes_its_object(
    api: httpx.Client, contents: StoreContents, store: str
) -> None:
    image_id = new_image(api)
    upload(api, image_id, b"to be forgotten", store)

    assert api.delete(f"/v2/images/{image_id}").status_code == 204

    assert contents.get(store, image_id) is None


# -- DELETE /v2/stores/{store_id}/{image_id} ------------------------------------------
# Glance's default policy lets only admins delete a copy (`delete_image_location`).


@pytest.fixture
def operator(http: ClientFactory, admin: Identity) -> httpx.Client:
    return http(admin)


def image_in_two_stores(
    api: httpx.Client, server: RunningServer, contents: StoreContents, data: bytes
) -> str:
    """An active image with copies in `local` and `swift` (the copy placed directly,
    as Glance's copy-image import would)."""
    image_id = new_image(api)
    upload(api, image_id, data, "local")
    contents.put("swift", image_id, data)
    set_image_columns(server, image_id, stores="local,swift")
    return image_id


def test_deleting_one_copy_keeps_the_others(
    api: httpx.Client, operator: httpx.Client, server: RunningServer, contents: StoreContents
) -> None:
    image_id = image_in_two_stores(api, server, contents, b"two copies")

    response = operator.delete(f"/v2/stores/swift/{image_id}")

    assert response.status_code == 204
    assert response.content == b""
    assert api.get(f"/v2/images/{image_id}").json()["stores"] == "local"
    assert contents.get("swift", image_id) is None
    assert contents.get("local", image_id) == b"two copies"
    assert api.get(f"/v2/images/{image_id}/file").content == b"two copies"


def test_the_last_copy_cannot_be_deleted(
    api: httpx.Client, operator: httpx.Client, server: RunningServer, contents: StoreContents
) -> None:
    image_id = image_in_two_stores(api, server, contents, b"last copy")
    assert operator.delete(f"/v2/stores/local/{image_id}").status_code == 204

    response = operator.delete(f"/v2/stores/swift/{image_id}")

    assert_error(
        response,
        403,
        "Cannot delete image data from the only store containing it. Consider deleting the "
        "image instead.",
    )
    assert contents.get("swift", image_id) == b"last copy"
    assert api.get(f"/v2/images/{image_id}/file").content == b"last copy"


def test_a_store_without_a_copy_is_404(
    api: httpx.Client, operator: httpx.Client, server: RunningServer, contents: StoreContents
) -> None:
    image_id = image_in_two_stores(api, server, contents, b"copies")

    response = operator.delete(f"/v2/stores/s3/{image_id}")

    assert_error(response, 404, f"Image {image_id} is not stored in store s3.")


def test_an_unconfigured_store_is_409(api: httpx.Client, operator: httpx.Client) -> None:
    image_id = new_image(api)

    response = operator.delete(f"/v2/stores/nowhere/{image_id}")

    assert_error(response, 409, "The selected store nowhere is not available on this node.")


def test_an_image_without_data_is_409(api: httpx.Client, operator: httpx.Client) -> None:
    image_id = new_image(api)

    response = operator.delete(f"/v2/stores/local/{image_id}")

    assert_error(
        response,
        409,
        "It's not allowed to remove image data from store if image status is not 'active'",
    )


@pytest.mark.parametrize("who", ["stranger", "missing"])
def test_an_image_the_caller_cannot_see_is_404(
    http: ClientFactory, api: httpx.Client, stranger: Identity, who: str
) -> None:
    image_id = new_image(api)
    upload(api, image_id, b"private")
    if who == "missing":
        image_id = "0b8e8c36-3c3a-4f65-9c1e-5f1f5f0f0f0f"

    response = http(stranger).delete(f"/v2/stores/local/{image_id}")

    assert_error(response, 404, f"Failed to find image {image_id}")


@pytest.mark.parametrize("role", ["member", "reader"])
def test_project_users_may_not_delete_copies(
    http: ClientFactory,
    api: httpx.Client,
    member: Identity,
    reader: Identity,
    server: RunningServer,
    contents: StoreContents,
    role: str,
) -> None:
    image_id = image_in_two_stores(api, server, contents, b"guarded")
    caller = member if role == "member" else reader

    response = http(caller).delete(f"/v2/stores/swift/{image_id}")

    assert_error(response, 403, "You are not authorized to complete delete_image_location action.")
    assert api.get(f"/v2/images/{image_id}").json()["stores"] == "local,swift"
    assert contents.get("swift", image_id) == b"guarded"


def test_downloads_read_the_heaviest_store_holding_a_copy(
    api: httpx.Client, server: RunningServer, contents: StoreContents
) -> None:
    """`swift` (weight 10) outweighs `local` (weight 0). The copies differ here only so
    that the test can tell which one was read."""
    image_id = image_in_two_stores(api, server, contents, b"local copy")
    contents.put("swift", image_id, b"swift copy")

    assert api.get(f"/v2/images/{image_id}/file").content == b"swift copy"


def test_a_body_on_delete_from_store_is_400(
    api: httpx.Client, operator: httpx.Client, server: RunningServer, contents: StoreContents
) -> None:
    image_id = image_in_two_stores(api, server, contents, b"kept")

    response = operator.request("DELETE", f"/v2/stores/swift/{image_id}", content=b"{}")

    assert response.status_code == 400
    assert api.get(f"/v2/images/{image_id}").json()["stores"] == "local,swift"
