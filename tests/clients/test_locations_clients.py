"""Image locations driven by real clients, against a server with locations shown,
the locations API (2.17) and an http store over the loopback web server
(tests.support.locations).

- python-glanceclient 4.13 (`images.add_location`, `update_location`,
  `delete_locations`: JSON-patch on `/locations`; `add_image_location` and
  `get_image_locations`: the 2.17 API), on both backends; and its `glance` CLI's
  `location-add`, `location-update`, `location-delete` and `add-location` on
  SQLite (each invocation takes about a second; the CLI acts as the service's
  default identity, an admin).
- openstacksdk 4.22 (`add_image_location`, `image_locations`, `Image.locations`).
- python-openstackclient 10.5 has no location command: `image set --location`
  is refused by its own parser (its source keeps a "--location - maybe location
  add?" TODO), and `image show` shows the locations.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.support.clients import BIN, GlanceFactory, SdkFactory, run_in_terminal
from tests.support.identities import Identity
from tests.support.servers import RunningServer
from tests.support.web_source import WebSource

DATA = random.Random(11).randbytes(200_000)
SHA512 = hashlib.sha512(DATA).hexdigest()


@pytest.fixture
def server(locations_server: RunningServer) -> RunningServer:
    return locations_server


@pytest.fixture
def service(project: str) -> Identity:
    return Identity(project, f"cinder-{project[:8]}", ("service", "member", "reader"))


def published(files: WebSource) -> str:
    name = f"{uuid.uuid4().hex}.img"
    files.files[name] = DATA
    return files.url(f"/files/{name}")


def _web(url: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"url": url, "metadata": {**(metadata or {}), "store": "web"}}


def test_glanceclient_adds_updates_and_deletes_locations(
    glance: GlanceFactory, member: Identity, admin: Identity, web_files: WebSource
) -> None:
    client = glance(member)
    image = client.images.create(name="gc-locations", disk_format="raw", container_format="bare")
    first, second = published(web_files), published(web_files)

    added = client.images.add_location(image.id, first, {})
    assert (added.status, added.size) == ("active", len(DATA))
    client.images.add_location(image.id, second, {"mirror": "b"})
    updated = client.images.update_location(image.id, first, {"mirror": "a"})
    assert updated.locations == [_web(first, {"mirror": "a"}), _web(second, {"mirror": "b"})]
    assert updated.direct_url == first

    glance(admin).images.delete_locations(image.id, {first})

    shown = client.images.get(image.id)
    assert shown.locations == [_web(second, {"mirror": "b"})]
    assert b"".join(client.images.data(image.id)) == DATA


def test_glanceclient_uses_the_locations_api(
    glance: GlanceFactory, member: Identity, service: Identity, web_files: WebSource
) -> None:
    client = glance(member)
    image = client.images.create(name="gc-api", disk_format="raw", container_format="bare")
    url = published(web_files)

    client.images.add_image_location(
        image.id, url, {"os_hash_algo": "sha512", "os_hash_value": SHA512}
    )

    deadline = time.monotonic() + 60
    while client.images.get(image.id).status == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    shown = client.images.get(image.id)
    assert (shown.status, shown.os_hash_value, shown.size) == ("active", SHA512, len(DATA))
    assert list(glance(service).images.get_image_locations(image.id)) == [_web(url)]


def test_openstacksdk_adds_and_lists_locations(
    sdk: SdkFactory, member: Identity, service: Identity, web_files: WebSource
) -> None:
    conn = sdk(member)
    image = conn.image.create_image(
        name="sdk-locations", disk_format="raw", container_format="bare", allow_duplicates=True
    )
    url = published(web_files)

    conn.image.add_image_location(image, url)

    deadline = time.monotonic() + 60
    while (found := conn.image.get_image(image.id)).status == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert (found.status, found.size, found.hash_value) == ("active", len(DATA), SHA512)
    assert found.locations == [_web(url)]
    assert found.direct_url == url
    assert conn.image.download_image(image.id).content == DATA
    listed = list(sdk(service).image.image_locations(image.id))
    assert [(location.url, location.metadata) for location in listed] == [(url, {"store": "web"})]


def _glance(server: RunningServer, *args: str) -> str:
    result = run_in_terminal(
        [
            str(BIN / "glance"),
            "--os-image-url",
            server.url,
            "--os-auth-token",
            "x",
            "--os-image-api-version",
            "2",
            *args,
        ]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _new_image(server: RunningServer) -> str:
    body = {"name": "cli-locations", "disk_format": "raw", "container_format": "bare"}
    response = httpx.post(f"{server.url}/v2/images", json=body)
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def _locations(server: RunningServer, image_id: str) -> Any:
    return httpx.get(f"{server.url}/v2/images/{image_id}").json()["locations"]


def test_the_glance_cli_location_commands(
    sqlite_locations_server: RunningServer, web_files: WebSource
) -> None:
    server = sqlite_locations_server
    image_id = _new_image(server)
    first, second = published(web_files), published(web_files)

    _glance(server, "location-add", "--url", first, image_id)
    _glance(server, "location-add", "--url", second, "--metadata", '{"a": "1"}', image_id)
    _glance(server, "location-update", "--url", first, "--metadata", '{"b": "2"}', image_id)
    assert _locations(server, image_id) == [_web(first, {"b": "2"}), _web(second, {"a": "1"})]

    _glance(server, "location-delete", "--url", first, image_id)

    assert _locations(server, image_id) == [_web(second, {"a": "1"})]


def test_the_glance_cli_add_location_command(
    sqlite_locations_server: RunningServer, web_files: WebSource
) -> None:
    server = sqlite_locations_server
    image_id = _new_image(server)
    url = published(web_files)
    validation = json.dumps({"os_hash_algo": "sha512", "os_hash_value": SHA512})

    _glance(server, "add-location", "--url", url, "--validation-data", validation, image_id)

    deadline = time.monotonic() + 60
    while (image := httpx.get(f"{server.url}/v2/images/{image_id}").json())["status"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert (image["status"], image["os_hash_value"], image["locations"]) == (
        "active",
        SHA512,
        [_web(url)],
    )


def test_the_openstack_cli_has_no_location_option_but_shows_them(
    sqlite_locations_server: RunningServer, web_files: WebSource
) -> None:
    server = sqlite_locations_server
    openstack = [str(BIN / "openstack"), "--os-auth-type", "none", "--os-endpoint", server.url]
    image_id = _new_image(server)
    url = published(web_files)

    refused = run_in_terminal([*openstack, "image", "set", "--location", url, image_id])
    assert refused.returncode != 0
    assert "unrecognized arguments: --location" in refused.stderr

    body = [{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}]
    patch = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
    httpx.patch(f"{server.url}/v2/images/{image_id}", json=body, headers=patch)
    shown = run_in_terminal([*openstack, "image", "show", image_id, "-f", "json"])
    assert shown.returncode == 0, shown.stderr
    # openstackclient lists what it does not know among the properties.
    assert json.loads(shown.stdout)["properties"]["locations"] == [_web(url)]
