"""/v2.1/images/{id}/metadata[/{key}]: metadata is the image's extra properties."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.identities import Identity
from tests.support.images import create_image, show_image


def _fault(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    (body,) = response.json().values()
    assert body["code"] == status
    return dict(body)


def _meta_path(image_id: str, key: str = "") -> str:
    return f"/v2.1/images/{image_id}/metadata" + (f"/{key}" if key else "")


def test_list_shows_the_extra_properties_only(api: httpx.Client) -> None:
    image_id = create_image(api, name="n", min_ram=1, os_distro="arch", hw_rng="on")["id"]

    response = api.get(_meta_path(image_id))

    assert response.status_code == 200
    assert response.json() == {"metadata": {"os_distro": "arch", "hw_rng": "on"}}


def test_post_merges_and_answers_the_whole_metadata(api: httpx.Client) -> None:
    image_id = create_image(api, os_distro="arch", kept="yes")["id"]

    response = api.post(
        _meta_path(image_id), json={"metadata": {"os_distro": "debian", "added": "1"}}
    )

    assert response.status_code == 200
    expected = {"os_distro": "debian", "kept": "yes", "added": "1"}
    assert response.json() == {"metadata": expected}
    image = show_image(api, image_id)
    assert {key: image[key] for key in expected} == expected


def test_put_replaces_all_and_answers_the_body(api: httpx.Client) -> None:
    image_id = create_image(api, os_distro="arch", dropped="yes")["id"]

    response = api.put(_meta_path(image_id), json={"metadata": {"only": "this"}})

    assert response.status_code == 200
    assert response.json() == {"metadata": {"only": "this"}}
    image = show_image(api, image_id)
    assert image["only"] == "this"
    assert "os_distro" not in image
    assert "dropped" not in image


def test_put_with_an_empty_object_clears_the_metadata(api: httpx.Client) -> None:
    image_id = create_image(api, a="1", b="2")["id"]

    assert api.put(_meta_path(image_id), json={"metadata": {}}).status_code == 200

    assert api.get(_meta_path(image_id)).json() == {"metadata": {}}


def test_show_put_and_delete_one_item(api: httpx.Client) -> None:
    image_id = create_image(api, os_distro="arch")["id"]

    assert api.get(_meta_path(image_id, "os_distro")).json() == {"meta": {"os_distro": "arch"}}
    put = api.put(_meta_path(image_id, "new"), json={"meta": {"new": "v"}})
    assert put.status_code == 200
    assert put.json() == {"meta": {"new": "v"}}
    assert show_image(api, image_id)["new"] == "v"

    deleted = api.delete(_meta_path(image_id, "new"))

    assert deleted.status_code == 204
    assert "new" not in show_image(api, image_id)


def test_a_missing_item_is_404(api: httpx.Client) -> None:
    image_id = create_image(api)["id"]

    shown = _fault(api.get(_meta_path(image_id, "nope")), 404)
    deleted = _fault(api.delete(_meta_path(image_id, "nope")), 404)

    assert shown["message"] == "The resource could not be found."
    assert deleted["message"] == "Invalid metadata key"


@pytest.mark.parametrize(
    "body",
    [
        {"meta": {"other": "v"}},
    ],
)
def test_put_item_whose_key_is_not_the_urls_is_400(api: httpx.Client, body: Any) -> None:
    image_id = create_image(api)["id"]

    fault = _fault(api.put(_meta_path(image_id, "key"), json=body), 400)

    assert fault["message"] == "Request body and URI mismatch"


@pytest.mark.parametrize(
    "body",
    [
        {"meta": {"key": "v", "other": "w"}},
        {"meta": {}},
        {"meta": {"key": 1}},
        {"meta": "key"},
        {"metadata": {"key": "v"}},
        None,
    ],
)
def test_put_item_needs_exactly_one_string_item(api: httpx.Client, body: Any) -> None:
    image_id = create_image(api)["id"]

    _fault(api.put(_meta_path(image_id, "key"), json=body), 400)


@pytest.mark.parametrize(
    "body",
    [
        {"metadata": {"bad/key": "v"}},
        {"metadata": {"": "v"}},
        {"metadata": {"k" * 256: "v"}},
        {"metadata": {"key": "v" * 256}},
        {"metadata": {"key": None}},
        {"metadata": {"key": 1}},
        {"metadata": []},
        {"metadata": {}, "extra": 1},
        {"meta": {"key": "v"}},
        [],
    ],
)
def test_invalid_metadata_bodies_are_400(api: httpx.Client, body: Any) -> None:
    image_id = create_image(api)["id"]

    for method in ("POST", "PUT"):
        fault = _fault(api.request(method, _meta_path(image_id), json=body), 400)
        assert fault["message"]


def test_keys_of_255_characters_and_every_allowed_character_are_accepted(
    api: httpx.Client,
) -> None:
    image_id = create_image(api)["id"]
    items = {"k" * 255: "v" * 255, "a-Z_0:9. x": "spaces allowed"}

    response = api.post(_meta_path(image_id), json={"metadata": items})

    assert response.status_code == 200
    assert response.json()["metadata"] == items


def test_malformed_json_is_400(api: httpx.Client) -> None:
    image_id = create_image(api)["id"]

    response = api.post(
        _meta_path(image_id), content=b"{", headers={"Content-Type": "application/json"}
    )

    assert _fault(response, 400)["message"] == "Malformed request body"


@pytest.mark.parametrize("key", ["name", "visibility", "min_ram", "id", "status", "os_glance_x"])
def test_core_attributes_are_not_metadata(api: httpx.Client, key: str) -> None:
    image_id = create_image(api, name="kept")["id"]

    response = api.post(_meta_path(image_id), json={"metadata": {key: "x"}})

    assert list(response.json()) == ["forbidden"]
    assert show_image(api, image_id)["name"] == "kept"


def test_more_items_than_the_property_quota_is_403(api: httpx.Client) -> None:
    image_id = create_image(api)["id"]
    items = {f"k{i}": "v" for i in range(129)}

    response = api.post(_meta_path(image_id), json={"metadata": items})

    assert _fault(response, 403)["message"] == "Image metadata limit exceeded"
    assert api.get(_meta_path(image_id)).json() == {"metadata": {}}
    at_quota = {f"k{i}": "v" for i in range(128)}
    assert api.put(_meta_path(image_id), json={"metadata": at_quota}).status_code == 200


def test_the_image_api_reports_the_same_quota_with_its_own_status(api: httpx.Client) -> None:
    image_id = create_image(api, **{f"k{i}": "v" for i in range(128)})["id"]

    compute = api.put(_meta_path(image_id, "one_more"), json={"meta": {"one_more": "v"}})
    image_api = api.patch(
        f"/v2/images/{image_id}",
        json=[{"op": "add", "path": "/one_more", "value": "v"}],
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
    )

    assert _fault(compute, 403)["message"] == "Image metadata limit exceeded"
    assert image_api.status_code == 413


def test_a_reader_cannot_change_metadata(
    api: httpx.Client, http: ClientFactory, reader: Identity
) -> None:
    image_id = create_image(api, a="1")["id"]
    as_reader = http(reader)

    assert as_reader.get(_meta_path(image_id)).status_code == 200
    for response in (
        as_reader.post(_meta_path(image_id), json={"metadata": {"b": "2"}}),
        as_reader.put(_meta_path(image_id), json={"metadata": {}}),
        as_reader.put(_meta_path(image_id, "a"), json={"meta": {"a": "2"}}),
        as_reader.delete(_meta_path(image_id, "a")),
    ):
        assert list(response.json()) == ["forbidden"], response.text
    assert api.get(_meta_path(image_id)).json() == {"metadata": {"a": "1"}}


def test_another_projects_image_is_not_found(
    api: httpx.Client, http: ClientFactory, stranger: Identity
) -> None:
    image_id = create_image(api, visibility="private")["id"]

    response = http(stranger).post(_meta_path(image_id), json={"metadata": {"x": "y"}})

    assert _fault(response, 404)["message"] == "Image not found."


def test_metadata_written_through_compute_is_an_image_property(api: httpx.Client) -> None:
    image_id = create_image(api)["id"]
    api.put(
        _meta_path(image_id, "hw_qemu_guest_agent"), json={"meta": {"hw_qemu_guest_agent": "yes"}}
    )

    listed = api.get("/v2/images", params={"hw_qemu_guest_agent": "yes"}).json()["images"]
    compute = api.get(f"/v2.1/images/{image_id}").json()["image"]

    assert [image["id"] for image in listed] == [image_id]
    assert listed[0]["hw_qemu_guest_agent"] == "yes"
    assert compute["metadata"] == {"hw_qemu_guest_agent": "yes"}
