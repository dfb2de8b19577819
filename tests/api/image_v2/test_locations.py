"""Image locations through the real server, with locations shown
(`show_multiple_locations`, `show_image_direct_url`), the locations API (2.17) and an
http store `web` over the loopback web server of files (tests.support.locations):
JSON-patch on `/locations` with Glance's 2.4+ rules, `POST`/`GET .../locations`,
downloads through the http store, `?prefer=` and the `Content-Range` request header.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.image_v2.test_import import new_image
from tests.conftest import ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity
from tests.support.servers import RunningServer
from tests.support.web_source import WebSource

DATA = random.Random(17).randbytes(1 << 20)
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def server(locations_server: RunningServer) -> RunningServer:
    return locations_server


@pytest.fixture
def service(project: str) -> Identity:
    """Nova or Cinder: the `service` role (in the image owner's project)."""
    return Identity(project, f"nova-{project[:8]}", ("service", "member", "reader"))


def published(files: WebSource, data: bytes = DATA) -> str:
    name = f"{uuid.uuid4().hex}.img"
    files.files[name] = data
    return files.url(f"/files/{name}")


def patch(api: httpx.Client, image_id: str, *operations: dict[str, Any]) -> httpx.Response:
    return api.patch(f"/v2/images/{image_id}", json=list(operations), headers=PATCH)


def add(url: str, position: str = "-", **metadata: Any) -> dict[str, Any]:
    return {
        "op": "add",
        "path": f"/locations/{position}",
        "value": {"url": url, "metadata": metadata},
    }


def located(api: httpx.Client, url: str) -> str:
    """A new image whose only location is `url` (active)."""
    image_id = new_image(api)
    response = patch(api, image_id, add(url))
    assert response.status_code == 200, response.text
    return image_id


def uploaded_and_located(api: httpx.Client, files: WebSource) -> tuple[str, str]:
    """A new image with its data in `local` and a copy at a URL; its id and the URL."""
    image_id = new_image(api)
    assert api.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET).status_code == 204
    url = published(files)
    assert patch(api, image_id, add(url)).status_code == 200
    return image_id, url


def test_adding_a_location_to_a_queued_image_activates_it(
    api: httpx.Client, web_files: WebSource
) -> None:
    url = published(web_files)
    image_id = new_image(api)

    response = patch(api, image_id, add(url))

    assert response.status_code == 200, response.text
    image = response.json()
    assert image["status"] == "active"
    assert image["size"] == len(DATA)
    assert image["locations"] == [{"url": url, "metadata": {"store": "web"}}]
    assert image["direct_url"] == url
    assert image["stores"] == "web"
    assert api.get(f"/v2/images/{image_id}").json()["locations"] == image["locations"]
    download = api.get(f"/v2/images/{image_id}/file")
    assert (download.status_code, download.content) == (200, DATA)


def test_a_ranged_download_asks_the_location_for_the_range(
    api: httpx.Client, web_files: WebSource
) -> None:
    url = published(web_files)
    image_id = located(api, url)
    name = url.rsplit("/", 1)[1]

    response = api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=1000-1999"})

    assert response.status_code == 206
    assert response.content == DATA[1000:2000]
    assert response.headers["Content-Range"] == f"bytes 1000-1999/{len(DATA)}"
    seen = [r.range for r in web_files.requests if name in r.path]
    assert seen[-1] == "bytes=1000-"


def test_the_deprecated_content_range_request_header_is_honoured(
    api: httpx.Client, web_files: WebSource
) -> None:
    image_id = located(api, published(web_files))

    response = api.get(f"/v2/images/{image_id}/file", headers={"Content-Range": "bytes 1-4/*"})
    assert (response.status_code, response.content) == (206, DATA[1:5])
    assert response.headers["Content-Range"] == f"bytes 1-4/{len(DATA)}"
    beyond = f"bytes {len(DATA)}-{len(DATA) + 5}/*"
    refused = api.get(f"/v2/images/{image_id}/file", headers={"Content-Range": beyond})
    assert refused.status_code == 416
    garbled = api.get(f"/v2/images/{image_id}/file", headers={"Content-Range": "bytes=1-4"})
    assert garbled.status_code == 416


def test_an_uploaded_image_shows_its_own_copy_as_a_location(
    api: httpx.Client, web_files: WebSource
) -> None:
    image_id = new_image(api)
    assert api.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET).status_code == 204

    image = api.get(f"/v2/images/{image_id}").json()

    [own] = image["locations"]
    assert own["metadata"] == {"store": "local"}
    assert own["url"].startswith("file:///")
    assert own["url"].endswith(image_id)
    assert Path(urlsplit(own["url"]).path).read_bytes() == DATA
    assert image["direct_url"] == own["url"]


def test_a_second_location_then_removing_the_own_copy_deletes_its_data(
    http: ClientFactory, admin: Identity, web_files: WebSource, server: RunningServer
) -> None:
    api = http(admin)
    image_id = new_image(api)
    api.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET)
    url = published(web_files)

    added = patch(api, image_id, add(url, kind="mirror"))
    assert added.status_code == 200, added.text
    own = added.json()["locations"][0]
    assert added.json()["locations"][1] == {
        "url": url,
        "metadata": {"kind": "mirror", "store": "web"},
    }
    assert added.json()["stores"] == "local,web"

    removed = patch(api, image_id, {"op": "remove", "path": "/locations/0"})

    assert removed.status_code == 200, removed.text
    assert removed.json()["locations"] == [
        {"url": url, "metadata": {"kind": "mirror", "store": "web"}}
    ]
    assert removed.json()["stores"] == "web"
    assert not Path(urlsplit(own["url"]).path).exists()
    assert api.get(f"/v2/images/{image_id}/file").content == DATA


def test_removing_the_last_location_is_forbidden(
    http: ClientFactory, admin: Identity, web_files: WebSource
) -> None:
    api = http(admin)
    image_id = located(api, published(web_files))

    response = patch(api, image_id, {"op": "remove", "path": "/locations/0"})

    assert_error(response, 403, "Cannot remove last location in the image.")


def test_removing_a_location_is_for_admins(api: httpx.Client, web_files: WebSource) -> None:
    image_id = located(api, published(web_files))
    patch(api, image_id, add(published(web_files)))

    response = patch(api, image_id, {"op": "remove", "path": "/locations/0"})

    assert_error(response, 403, "You are not authorized to complete delete_image_location action.")


def test_positions_outside_the_list_are_refused(
    http: ClientFactory, admin: Identity, web_files: WebSource
) -> None:
    api = http(admin)
    image_id = located(api, published(web_files))
    patch(api, image_id, add(published(web_files)))

    assert_error(
        patch(api, image_id, {"op": "remove", "path": "/locations/2"}),
        400,
        "Invalid position for removing a location.",
    )
    assert_error(
        patch(api, image_id, {"op": "remove", "path": "/locations/x"}),
        400,
        "Invalid position for removing a location.",
    )
    assert_error(
        patch(api, image_id, add(published(web_files), position="x")),
        400,
        "Invalid position for adding a location.",
    )
    assert_error(
        patch(api, image_id, {"op": "add", "path": "/locations", "value": {}}),
        400,
        "Invalid JSON pointer for this resource: '/locations'",
    )


def test_a_duplicate_location_is_refused(api: httpx.Client, web_files: WebSource) -> None:
    url = published(web_files)
    image_id = located(api, url)

    assert_error(patch(api, image_id, add(url)), 400, f"The location {url} already exists")


def test_a_url_no_store_serves_is_an_invalid_location(
    api: httpx.Client, web_files: WebSource
) -> None:
    image_id = new_image(api)
    for url in (
        "file:///etc/passwd",
        "ftp://example.com/image",
        "http://169.254.169.254/latest/meta-data",  # refused by the URI filter
        web_files.url("/files/missing.img"),  # 404
    ):
        assert_error(patch(api, image_id, add(url)), 400, "Invalid location")
    wrong_store = add(published(web_files), store="cheap")
    assert_error(patch(api, image_id, wrong_store), 400, "Invalid location")
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"


def test_locations_of_a_deactivated_image_cannot_be_added(
    api: httpx.Client, web_files: WebSource
) -> None:
    image_id = located(api, published(web_files))
    api.post(f"/v2/images/{image_id}/actions/deactivate")

    assert_error(
        patch(api, image_id, add(published(web_files))),
        409,
        "It's not allowed to add locations if image status is deactivated.",
    )


def test_replace_sets_the_locations_of_a_queued_image_with_validation_data(
    api: httpx.Client, web_files: WebSource
) -> None:
    url = published(web_files)
    image_id = new_image(api)
    validation = {"os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(DATA).hexdigest()}
    value = [{"url": url, "metadata": {}, "validation_data": validation}]

    response = patch(api, image_id, {"op": "replace", "path": "/locations", "value": value})

    assert response.status_code == 200, response.text
    image = response.json()
    assert (image["status"], image["os_hash_value"]) == ("active", validation["os_hash_value"])
    assert image["os_hash_algo"] == "sha512"
    assert image["locations"] == [{"url": url, "metadata": {"store": "web"}}]


def test_replace_changes_metadata_only_and_never_empties(
    api: httpx.Client, web_files: WebSource
) -> None:
    url = published(web_files)
    image_id = located(api, url)

    updated = patch(
        api,
        image_id,
        {"op": "replace", "path": "/locations", "value": [{"url": url, "metadata": {"a": "b"}}]},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["locations"] == [{"url": url, "metadata": {"a": "b", "store": "web"}}]
    other = [{"url": published(web_files), "metadata": {}}]
    response = patch(api, image_id, {"op": "replace", "path": "/locations", "value": other})
    assert response.status_code == 400
    assert "Original locations is not empty" in response.json()["message"]
    emptied = patch(api, image_id, {"op": "replace", "path": "/locations", "value": []})
    assert_error(emptied, 403, "Cannot set locations to empty list.")


def test_validation_data_must_fit_the_image(api: httpx.Client, web_files: WebSource) -> None:
    image_id = new_image(api)
    wrong_algo = {"os_hash_algo": "sha256", "os_hash_value": hashlib.sha256(DATA).hexdigest()}
    operation = add(published(web_files))
    operation["value"]["validation_data"] = wrong_algo

    assert_error(patch(api, image_id, operation), 409, "os_hash_algo must be sha512, not sha256")
    operation["value"]["validation_data"] = {"os_hash_algo": "sha512", "os_hash_value": "zz"}
    assert_error(
        patch(api, image_id, operation), 409, "os_hash_value (zz) is not a valid hexadecimal value"
    )


def test_prefer_chooses_the_copy_served(
    http: ClientFactory, admin: Identity, web_files: WebSource
) -> None:
    api = http(admin)
    image_id, url = uploaded_and_located(api, web_files)
    name = url.rsplit("/", 1)[1]
    before = sum(name in r.path for r in web_files.requests)

    # web (weight 1) is heavier than local (0): read from the web server.
    assert api.get(f"/v2/images/{image_id}/file").content == DATA
    assert sum(name in r.path for r in web_files.requests) == before + 1
    # cheap holds no copy: the next preferred store that does, local.
    preferred = api.get(f"/v2/images/{image_id}/file", params={"prefer": "cheap, local"})
    assert preferred.content == DATA
    assert sum(name in r.path for r in web_files.requests) == before + 1
    unknown = api.get(f"/v2/images/{image_id}/file", params={"prefer": "nowhere"})
    assert_error(unknown, 400, "Store 'nowhere' is not configured.")


def test_uploads_to_the_http_store_are_refused(api: httpx.Client) -> None:
    image_id = new_image(api)

    response = api.put(
        f"/v2/images/{image_id}/file", content=DATA, headers={**OCTET, "X-Image-Meta-Store": "web"}
    )

    assert response.status_code == 410
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"


# -- the locations API (2.17) ----------------------------------------------------


def finished(api: httpx.Client, image_id: str) -> dict[str, Any]:
    """The image once its location task has ended."""
    for _ in range(300):
        tasks = api.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        if tasks and tasks[0]["status"] in ("success", "failure"):
            image: dict[str, Any] = api.get(f"/v2/images/{image_id}").json()
            image["task"] = tasks[0]
            return image
        time.sleep(0.1)
    raise AssertionError("the location task did not end")


def test_post_locations_computes_the_hashes_and_activates(
    api: httpx.Client, web_files: WebSource
) -> None:
    url = published(web_files)
    image_id = new_image(api)
    validation = {"os_hash_algo": "sha256", "os_hash_value": hashlib.sha256(DATA).hexdigest()}

    response = api.post(
        f"/v2/images/{image_id}/locations", json={"url": url, "validation_data": validation}
    )

    assert (response.status_code, response.content) == (202, b"")
    image = finished(api, image_id)
    assert image["task"]["status"] == "success", image["task"]["message"]
    assert image["status"] == "active"
    assert image["size"] == len(DATA)
    assert image["checksum"] == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert image["virtual_size"] == len(DATA)
    assert image["locations"] == [{"url": url, "metadata": {"store": "web"}}]
    assert "os_glance_import_task" not in image


def test_post_locations_with_a_wrong_hash_leaves_the_image_queued(
    api: httpx.Client, web_files: WebSource
) -> None:
    image_id = new_image(api)
    validation = {"os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(b"other").hexdigest()}

    api.post(
        f"/v2/images/{image_id}/locations",
        json={"url": published(web_files), "validation_data": validation},
    )

    image = finished(api, image_id)
    assert image["task"]["status"] == "failure"
    assert "does not match" in image["task"]["message"]
    assert (image["status"], image["locations"], image["size"]) == ("queued", [], None)
    assert "os_glance_import_task" not in image


@pytest.mark.parametrize("algo", ["md5", "sha512", "sha1"])
def test_post_locations_checks_validation_data_in_any_algorithm(
    api: httpx.Client, web_files: WebSource, algo: str
) -> None:
    """md5 and sha512 (the service's) are digests the ingest computes anyway; sha1 is
    computed besides, in the same pass. Upper-case hex matches as lower-case."""
    url = published(web_files)
    right = hashlib.new(algo, DATA, usedforsecurity=False).hexdigest().upper()
    wrong = hashlib.new(algo, b"other", usedforsecurity=False).hexdigest()
    accepted, refused = new_image(api), new_image(api)

    for image_id, value in ((accepted, right), (refused, wrong)):
        validation = {"os_hash_algo": algo, "os_hash_value": value}
        response = api.post(
            f"/v2/images/{image_id}/locations", json={"url": url, "validation_data": validation}
        )
        assert response.status_code == 202, response.text

    image = finished(api, accepted)
    assert image["task"]["status"] == "success", image["task"]["message"]
    assert (image["status"], image["os_hash_algo"]) == ("active", "sha512")
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    failed = finished(api, refused)
    assert failed["task"]["status"] == "failure"
    assert "does not match" in failed["task"]["message"]
    assert (failed["status"], failed["locations"]) == ("queued", [])


def test_post_locations_refusals(
    http: ClientFactory, member: Identity, service: Identity, web_files: WebSource
) -> None:
    api = http(member)
    image_id = new_image(api)
    url = published(web_files)
    path = f"/v2/images/{image_id}/locations"

    assert http(service).post(path, json={"url": "file:///etc/passwd"}).status_code == 202
    other = new_image(api)
    refused = api.post(f"/v2/images/{other}/locations", json={"url": "file:///etc/passwd"})
    assert_error(refused, 403, "http store must be enabled to use location API by normal user.")
    missing = api.post(f"/v2/images/{other}/locations", json={})
    assert missing.status_code == 400
    assert "'url' is a required property" in missing.json()["message"]
    lonely = api.post(
        f"/v2/images/{other}/locations",
        json={"url": url, "validation_data": {"os_hash_value": "ab"}},
    )
    assert lonely.status_code == 400
    bad_hex = api.post(
        f"/v2/images/{other}/locations",
        json={"url": url, "validation_data": {"os_hash_algo": "md5", "os_hash_value": "xy"}},
    )
    assert_error(bad_hex, 400, "os_hash_value (xy) is not a valid hexadecimal value")
    active = located(api, published(web_files))
    assert_error(
        api.post(f"/v2/images/{active}/locations", json={"url": url}),
        409,
        "It's not allowed to add locations if image status is active.",
    )
    assert api.post(f"/v2/images/{uuid.uuid4()}/locations", json={"url": url}).status_code == 404


def test_get_locations_is_for_the_service_role(
    http: ClientFactory, member: Identity, service: Identity, web_files: WebSource
) -> None:
    url = published(web_files)
    image_id = located(http(member), url)
    path = f"/v2/images/{image_id}/locations"

    assert_error(
        http(member).get(path),
        403,
        "You are not authorized to complete fetch_image_location action.",
    )
    response = http(service).get(path)
    assert response.status_code == 200
    assert response.json() == [{"url": url, "metadata": {"store": "web"}}]


def test_the_versions_document_lists_2_17(api: httpx.Client) -> None:
    versions = {v["id"]: v["status"] for v in api.get("/versions").json()["versions"]}

    assert versions["v2.17"] == "CURRENT"
    assert versions["v2.15"] == "SUPPORTED"
    assert api.get("/v2.17/images").status_code == 200


def test_more_locations_than_the_quota_are_refused(api: httpx.Client, web_files: WebSource) -> None:
    first = published(web_files)
    image_id = located(api, first)
    for _ in range(9):  # the default images.location_quota, 10
        assert patch(api, image_id, add(published(web_files))).status_code == 200

    # The quota first, as in Glance: before the URL or a duplicate is looked at.
    for url in (published(web_files), "ftp://example.com/image", first):
        assert_error(
            patch(api, image_id, add(url)),
            413,
            "The limit has been exceeded on the number of allowed image locations. "
            "Attempted: 11, Maximum: 10",
        )


def requests_for(files: WebSource, urls: list[str]) -> dict[str, int]:
    """How many requests for each of `urls` reached the web source."""
    names = {url: url.rsplit("/", 1)[1] for url in urls}
    return {url: sum(name in seen.path for seen in files.requests) for url, name in names.items()}


def test_an_over_quota_patch_fetches_no_url(api: httpx.Client, web_files: WebSource) -> None:
    urls = [published(web_files) for _ in range(11)]  # the quota is 10
    image_id = new_image(api)

    added = patch(api, image_id, *(add(url) for url in urls))
    value = [{"url": url, "metadata": {}} for url in urls]
    replaced = patch(api, image_id, {"op": "replace", "path": "/locations", "value": value})

    for response in (added, replaced):
        assert_error(
            response,
            413,
            "The limit has been exceeded on the number of allowed image locations. "
            "Attempted: 11, Maximum: 10",
        )
    assert requests_for(web_files, urls) == dict.fromkeys(urls, 0)
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"


def test_a_patch_of_several_locations_reads_each_url_once(
    api: httpx.Client, web_files: WebSource
) -> None:
    urls = [published(web_files) for _ in range(3)]
    image_id = new_image(api)

    response = patch(api, image_id, *(add(url) for url in urls))

    assert response.status_code == 200, response.text
    image = response.json()
    assert (image["status"], image["size"]) == ("active", len(DATA))
    assert [location["url"] for location in image["locations"]] == urls
    assert requests_for(web_files, urls) == dict.fromkeys(urls, 1)


def test_every_rule_without_network_refuses_before_an_earlier_url_is_read(
    api: httpx.Client, web_files: WebSource
) -> None:
    """Unlike Glance, which reads each new location's URL as it comes to it (and so
    answers these with the missing file's 400 "Invalid location"), a PATCH is refused
    for its later changes' rules before any URL is read."""
    missing = web_files.url(f"/files/{uuid.uuid4().hex}.img")
    image_id = new_image(api)
    over_quota = [add(missing), *(add(published(web_files)) for _ in range(10))]
    unknown_property = [add(missing), {"op": "remove", "path": "/no_such_property"}]

    assert patch(api, image_id, *over_quota).status_code == 413
    assert_error(
        patch(api, image_id, *unknown_property),
        409,
        "Property no_such_property does not exist.",
        detail=True,
    )
    assert requests_for(web_files, [missing]) == {missing: 0}
    assert_error(patch(api, image_id, add(missing)), 400, "Invalid location")
    assert requests_for(web_files, [missing]) == {missing: 1}


def test_a_location_added_and_removed_in_one_patch_is_never_read(
    http: ClientFactory, admin: Identity, web_files: WebSource
) -> None:
    api = http(admin)
    kept, dropped = published(web_files), published(web_files)
    image_id = located(api, kept)

    response = patch(api, image_id, add(dropped), {"op": "remove", "path": "/locations/1"})

    assert response.status_code == 200, response.text
    assert response.json()["locations"] == [{"url": kept, "metadata": {"store": "web"}}]
    assert requests_for(web_files, [kept, dropped]) == {kept: 1, dropped: 0}


def test_deleting_from_the_http_store_drops_the_url(
    http: ClientFactory, admin: Identity, web_files: WebSource
) -> None:
    api = http(admin)
    image_id, url = uploaded_and_located(api, web_files)

    response = api.delete(f"/v2/stores/web/{image_id}")

    assert response.status_code == 204
    image = api.get(f"/v2/images/{image_id}").json()
    assert (image["stores"], len(image["locations"])) == ("local", 1)
    assert web_files.files[url.rsplit("/", 1)[1]] == DATA  # the web server's file stays
    only = api.delete(f"/v2/stores/local/{image_id}")
    assert_error(
        only,
        403,
        "Cannot delete image data from the only store containing it. Consider deleting the "
        "image instead.",
    )


def test_post_locations_policy_and_lock_paths(
    http: ClientFactory,
    member: Identity,
    reader: Identity,
    stranger: Identity,
    service: Identity,
    web_files: WebSource,
) -> None:
    api = http(member)
    image_id = new_image(api)
    path = f"/v2/images/{image_id}/locations"
    url = published(web_files)

    assert_error(
        http(reader).post(path, json={"url": url}),
        403,
        "You are not authorized to complete add_image_location action.",
    )
    assert http(stranger).post(path, json={"url": url}).status_code == 404
    assert http(stranger).get(path).status_code == 404
    # A big enough source keeps the first task busy while the second asks.
    slow = published(web_files, DATA * 64)
    assert api.post(path, json={"url": slow}).status_code == 202
    second = api.post(path, json={"url": url})
    assert second.status_code == 409, second.text
    # Locked to the first task; or, if that one already ended, active.
    assert second.json()["message"].split("<br")[0] in (
        "Image has active task",  # Glance's `_enforce_import_lock`, as for an import
        "It's not allowed to add locations if image status is active.",
    )
    finished(api, image_id)


def test_validation_data_must_match_an_active_images_hashes(
    api: httpx.Client, web_files: WebSource
) -> None:
    image_id = new_image(api)
    api.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET)
    operation = add(published(web_files))
    other = {"os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(b"x").hexdigest()}
    operation["value"]["validation_data"] = other

    assert_error(
        patch(api, image_id, operation), 409, "os_hash_value is already set with a different value"
    )
    same = {"os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(DATA).hexdigest()}
    operation["value"]["validation_data"] = same
    assert patch(api, image_id, operation).status_code == 200


def test_deleting_a_copy_checks_get_image_location_first(
    http: ClientFactory, admin: Identity, stranger: Identity
) -> None:
    api = http(admin)
    image_id = new_image(api, visibility="public")
    api.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET)

    response = http(stranger).delete(f"/v2/stores/local/{image_id}")

    assert_error(response, 403, "You are not authorized to complete get_image_location action.")


def test_a_reader_cannot_make_the_service_fetch_a_url(
    http: ClientFactory, member: Identity, reader: Identity, web_files: WebSource
) -> None:
    image_id = new_image(http(member))
    url = published(web_files)
    name = url.rsplit("/", 1)[1]

    response = patch(http(reader), image_id, add(url))

    assert_error(response, 403, "You are not authorized to complete modify_image action.")
    assert not [seen for seen in web_files.requests if name in seen.path]
