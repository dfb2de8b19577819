"""glance-download through real servers and a real Keystone: a second Skylens is the
image service of region `RegionTwo` in the test Keystone's catalogue, and the Skylens
under test (on SQLite and on PostgreSQL, in a region of its own) imports its images
as the caller, driven by the `glance` command, openstacksdk and raw HTTP.

Glance's flow: the request is checked (400 for missing or malformed fields, after the
image's status and formats), then the task finds the region in the caller's catalogue,
reads the remote image (it must be active), downloads its data and sets its formats
and the properties [glance_download_properties] names; a failure sends the image back
to queued. Without Keystone the method is disabled, whatever the configuration says.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import sqlalchemy as sa

from skylens.db.tables import tasks
from tests.api.image_v2.test_import import imported
from tests.api.image_v2.test_import import new_image as queued_image
from tests.api.test_keystone_auth import keystone_env
from tests.support.clients import BIN, ImageV2Connection, run_in_terminal
from tests.support.errors import assert_error
from tests.support.keystone import RunningKeystone
from tests.support.servers import (
    RunningServer,
    dedicated_server,
    file_stores_config,
    postgres_database,
    skylens_server,
)

REGION_TWO = "RegionTwo"
METHODS = ["glance-direct", "web-download", "copy-image", "glance-download"]
OCTET = {"Content-Type": "application/octet-stream"}
DATA = random.Random(12).randbytes(3 << 20)
COPIED = {
    "hw_disk_bus": "scsi",
    "hw_qemu_guest_agent": "yes",
    "os_distro": "cirros",
    "os_type": "linux",
    "trait:CUSTOM_FAST": "required",
}
NOT_COPIED = {"custom_label": "stays-remote", "os_version": "0.6"}


@pytest.fixture(scope="module")
def region_two(
    tmp_path_factory: pytest.TempPathFactory, keystone: RunningKeystone
) -> Iterator[RunningServer]:
    """The other region's image service: a Skylens in the catalogue as RegionTwo."""
    data_dir = tmp_path_factory.mktemp("region-two")
    with dedicated_server(data_dir, "sqlite", extra_env=keystone_env(keystone)) as server:
        keystone.set_image_endpoint(server.url, REGION_TWO)
        yield server


def downloading_config(data_dir: Path, remote: RunningServer) -> Path:
    """Two file stores, glance-download enabled, and the import filter letting the
    task reach the other region's service (on loopback, as this test deployment says)."""
    config = file_stores_config(data_dir)
    lines = [
        "[images]",
        f"enabled_import_methods = {json.dumps(METHODS)}",
        "[import_filtering]",
        'allowed_hosts = ["127.0.0.1"]',
        f"allowed_ports = [{remote.port}]",
        "[tasks]",
        "poll_seconds = 1",
    ]
    config.write_text(config.read_text() + "\n".join(lines) + "\n")
    return config


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def here(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    keystone: RunningKeystone,
    region_two: RunningServer,
) -> Iterator[tuple[RunningServer, str]]:
    """The server under test, and its own region in the catalogue."""
    backend = request.param
    data_dir = tmp_path_factory.mktemp(f"here-{backend}")
    config = downloading_config(data_dir, region_two)
    with dedicated_server(
        data_dir, backend, extra_env=keystone_env(keystone), extra_args=("--config", str(config))
    ) as server:
        region = f"here-{uuid.uuid4().hex[:8]}"
        keystone.set_image_endpoint(server.url, region)
        yield server, region


@pytest.fixture
def server(here: tuple[RunningServer, str]) -> RunningServer:
    return here[0]


def client(server: RunningServer, token: str) -> httpx.Client:
    headers = {"Accept": "application/json", "X-Auth-Token": token}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def alpha_token(keystone: RunningKeystone) -> str:
    return keystone.token("alpha-member")


@pytest.fixture
def api(server: RunningServer, alpha_token: str) -> Iterator[httpx.Client]:
    with client(server, alpha_token) as api:
        yield api


@pytest.fixture
def remote(region_two: RunningServer, alpha_token: str) -> Iterator[httpx.Client]:
    with client(region_two, alpha_token) as remote:
        yield remote


def remote_image(remote: httpx.Client, data: bytes | None = DATA) -> dict[str, Any]:
    """An image of alpha's in RegionTwo, with properties to copy and not to; active
    with `data`, or queued without."""
    body = {
        "name": "far-away",
        "disk_format": "raw",
        "container_format": "bare",
        **COPIED,
        **NOT_COPIED,
    }
    created = remote.post("/v2/images", json=body)
    assert created.status_code == 201, created.text
    image: dict[str, Any] = created.json()
    if data is not None:
        uploaded = remote.put(f"/v2/images/{image['id']}/file", content=data, headers=OCTET)
        assert uploaded.status_code == 204, uploaded.text
        image = remote.get(f"/v2/images/{image['id']}").json()
    return image


def new_image(api: httpx.Client, **body: Any) -> str:
    """A queued image to import into; its formats are the remote image's once imported."""
    return queued_image(api, **{"disk_format": "qcow2", "container_format": "ovf", **body})


def download(api: httpx.Client, image_id: str, remote_id: str, **fields: Any) -> httpx.Response:
    method = {"name": "glance-download", "glance_image_id": remote_id, **fields}
    method.setdefault("glance_region", REGION_TWO)
    return api.post(f"/v2/images/{image_id}/import", json={"method": method})


def the_task(api: httpx.Client, image_id: str) -> dict[str, Any]:
    [task] = api.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    result: dict[str, Any] = task
    return result


def assert_copied(api: httpx.Client, image_id: str, source: dict[str, Any]) -> None:
    """The image has the source's data, formats and the properties Glance copies."""
    image = imported(api, image_id)
    assert (image["status"], image["stores"]) == ("active", "local")
    assert (image["disk_format"], image["container_format"]) == ("raw", "bare")
    assert image["size"] == len(DATA)
    assert image["checksum"] == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    assert image["checksum"] == source["checksum"]
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert image["os_hash_value"] == source["os_hash_value"]
    assert {key: image.get(key) for key in COPIED} == COPIED
    assert not set(NOT_COPIED) & set(image)
    assert (image["os_glance_importing_to_stores"], image["os_glance_failed_import"]) == ("", "")
    assert api.get(f"/v2/images/{image_id}/file").content == DATA


def glance(keystone: RunningKeystone, region: str, *args: str) -> str:
    """The `glance` command as alpha-member, finding the service in `region`."""
    env = keystone.openstack_env("alpha-member", region=region)
    options = [f"--os-{key[3:].lower().replace('_', '-')}={value}" for key, value in env.items()]
    options = [
        option.replace("--os-interface", "--os-endpoint-type")
        for option in options
        if not option.startswith("--os-identity-api")
    ]
    result = run_in_terminal([str(BIN / "glance"), *options, *args])
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_failed_back_to_queued(api: httpx.Client, image_id: str, message: str) -> None:
    image = imported(api, image_id)
    assert (image["status"], image["size"], image["checksum"]) == ("queued", None, None)
    assert (image["disk_format"], image["container_format"]) == ("qcow2", "ovf")
    assert image["os_glance_failed_import"] == "local"
    assert image["os_glance_importing_to_stores"] == ""
    assert not set(COPIED) & set(image)
    task = the_task(api, image_id)
    assert (task["status"], task["message"]) == ("failure", message)


# -- the method works --------------------------------------------------------------------


def test_info_import_lists_glance_download(api: httpx.Client) -> None:
    assert api.get("/v2/info/import").json()["import-methods"]["value"] == METHODS


def test_the_glance_command_imports_an_image_of_the_other_region(
    api: httpx.Client, remote: httpx.Client, keystone: RunningKeystone, here: Any
) -> None:
    source = remote_image(remote)
    image_id = new_image(api)

    glance(
        keystone,
        here[1],
        "image-import",
        "--import-method",
        "glance-download",
        "--remote-region",
        REGION_TWO,
        "--remote-image-id",
        source["id"],
        image_id,
    )

    assert_copied(api, image_id, source)
    task = the_task(api, image_id)
    assert task["status"] == "success"
    assert task["input"]["import_req"] == {
        "method": {
            "name": "glance-download",
            "glance_region": REGION_TWO,
            "glance_image_id": source["id"],
            "glance_service_interface": "public",  # Glance's default, filled in
        }
    }


def test_openstacksdk_imports_an_image_of_the_other_region(
    api: httpx.Client, remote: httpx.Client, keystone: RunningKeystone, here: Any
) -> None:
    source = remote_image(remote)
    connection = cast(ImageV2Connection, keystone.connection("alpha-member", region=here[1]))
    image = connection.image.create_image(name="sdk", disk_format="qcow2", container_format="ovf")

    connection.image.import_image(
        image,
        method="glance-download",
        remote_region=REGION_TWO.lower(),  # regions compare without case, as in Glance
        remote_image_id=source["id"],
        remote_service_interface="public",  # openstacksdk sends the region only with it
    )

    assert_copied(api, image.id, source)


def test_the_task_keeps_the_callers_token_only_while_it_runs(
    api: httpx.Client, remote: httpx.Client, server: RunningServer, alpha_token: str
) -> None:
    source = remote_image(remote)
    image_id = new_image(api)

    assert download(api, image_id, source["id"]).status_code == 202

    imported(api, image_id)
    assert alpha_token not in api.get(f"/v2/images/{image_id}/tasks").text
    engine = sa.create_engine(server.database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            kept = connection.execute(
                sa.select(tasks.c.auth_token).where(tasks.c.image_id == image_id)
            ).scalar_one()
    finally:
        engine.dispose()
    assert kept is None


def test_a_task_one_server_created_is_run_by_another_as_the_caller(
    tmp_path: Path,
    keystone: RunningKeystone,
    region_two: RunningServer,
    remote: httpx.Client,
    alpha_token: str,
) -> None:
    """Two servers share PostgreSQL and the store; the one asked runs no tasks
    (`tasks.concurrency = 0`), so the other runs the import, with the caller's token it
    found with the task."""

    def config(name: str, concurrency: int) -> tuple[str, str]:
        path = tmp_path / f"{name}.toml"
        lines = [
            "[images]",
            f"enabled_import_methods = {json.dumps(METHODS)}",
            "[import_filtering]",
            'allowed_hosts = ["127.0.0.1"]',
            f"allowed_ports = [{region_two.port}]",
            "[tasks]",
            "poll_seconds = 1",
            f"concurrency = {concurrency}",
            "[stores.local]",
            'kind = "file"',
            f"root = {json.dumps(str(tmp_path / 'local'))}",
        ]
        path.write_text("\n".join(lines) + "\n")
        return "--config", str(path)

    source = remote_image(remote)
    env = keystone_env(keystone)
    with (
        postgres_database(f"skylens_gd_{uuid.uuid4().hex[:8]}") as url,
        skylens_server(
            tmp_path / "asked", url, "postgresql", extra_env=env, extra_args=config("asked", 0)
        ) as asked,
        skylens_server(
            tmp_path / "worker", url, "postgresql", extra_env=env, extra_args=config("worker", 1)
        ),
        client(asked, alpha_token) as api,
    ):
        image_id = new_image(api)

        assert download(api, image_id, source["id"]).status_code == 202

        assert_copied(api, image_id, source)
        assert the_task(api, image_id)["status"] == "success"


# -- refused requests (raw HTTP) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"glance_region": None},
            "'glance_region' needs to be set for glance-download import method",
        ),
        (
            {"glance_image_id": None},
            "'glance_image_id' needs to be set for glance-download import method",
        ),
        (
            {"glance_image_id": "not-a-uuid"},
            "Remote image id does not look like a UUID: not-a-uuid",
        ),
        ({"glance_image_id": 17}, "Remote image id does not look like a UUID: 17"),
        ({"glance_region": ["RegionTwo"]}, "'glance_region' must be a string"),
        ({"glance_service_interface": 1}, "'glance_service_interface' must be a string"),
    ],
)
def test_missing_or_malformed_fields_are_400(
    api: httpx.Client, fields: dict[str, Any], message: str
) -> None:
    method: dict[str, Any] = {
        "name": "glance-download",
        "glance_region": REGION_TWO,
        "glance_image_id": str(uuid.uuid4()),
        **fields,
    }
    method = {key: value for key, value in method.items() if value is not None}
    image_id = new_image(api)

    response = api.post(f"/v2/images/{image_id}/import", json={"method": method})

    assert_error(response, 400, message)
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert api.get(f"/v2/images/{image_id}/tasks").json()["tasks"] == []


def test_the_region_is_checked_before_the_image_id(api: httpx.Client) -> None:
    image_id = new_image(api)

    response = api.post(
        f"/v2/images/{image_id}/import", json={"method": {"name": "glance-download"}}
    )

    assert_error(response, 400, "'glance_region' needs to be set for glance-download import method")


def test_the_image_must_be_queued(api: httpx.Client) -> None:
    active = new_image(api, disk_format="raw", container_format="bare")
    assert api.put(f"/v2/images/{active}/file", content=b"x", headers=OCTET).status_code == 204
    staged = new_image(api, disk_format="raw", container_format="bare")
    assert api.put(f"/v2/images/{staged}/stage", content=b"x", headers=OCTET).status_code == 204

    # The image's status and formats come before the method's fields, as in Glance.
    assert_error(
        download(api, active, "nope"), 409, "Image with status active cannot be target for import"
    )
    assert_error(
        download(api, staged, "nope"),
        409,
        "Image needs to be in 'queued' state to use 'glance-download' method",
    )


def test_the_formats_must_be_set_first(api: httpx.Client) -> None:
    image_id = new_image(api, container_format=None)

    response = download(api, image_id, "nope")

    assert_error(response, 409, "'container_format' needs to be set before import")


def test_fields_are_checked_before_policy_and_a_reader_may_not_import(
    server: RunningServer, api: httpx.Client, keystone: RunningKeystone
) -> None:
    image_id = new_image(api)
    with client(server, keystone.token("alpha-reader")) as reader:
        malformed = download(reader, image_id, "nope")
        refused = download(reader, image_id, str(uuid.uuid4()))

    assert_error(malformed, 400, "Remote image id does not look like a UUID: nope")
    assert refused.status_code == 403


def test_another_projects_image_is_404(
    server: RunningServer, api: httpx.Client, keystone: RunningKeystone
) -> None:
    image_id = new_image(api)
    with client(server, keystone.token("beta-member")) as beta:
        response = download(beta, image_id, str(uuid.uuid4()))

    assert response.status_code == 404


def test_no_token_is_401(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, headers={"Accept": "application/json"}) as anonymous:
        response = anonymous.post(
            f"/v2/images/{uuid.uuid4()}/import", json={"method": {"name": "glance-download"}}
        )

    assert response.status_code == 401


# -- tasks that fail: the image goes back to queued --------------------------------------


def test_a_region_not_in_the_catalogue_fails_the_task(
    api: httpx.Client, remote: httpx.Client
) -> None:
    source = remote_image(remote)
    image_id = new_image(api)

    assert download(api, image_id, source["id"], glance_region="Atlantis").status_code == 202

    assert_failed_back_to_queued(
        api, image_id, "Error: public glance endpoint not found for region Atlantis"
    )


def test_an_interface_the_region_lacks_fails_the_task(
    api: httpx.Client, remote: httpx.Client
) -> None:
    source = remote_image(remote)
    image_id = new_image(api)

    response = download(api, image_id, source["id"], glance_service_interface="internal")

    assert response.status_code == 202
    assert_failed_back_to_queued(
        api, image_id, f"Error: internal glance endpoint not found for region {REGION_TWO}"
    )


def test_a_remote_image_that_is_not_active_fails_the_task(
    api: httpx.Client, remote: httpx.Client
) -> None:
    source = remote_image(remote, data=None)
    image_id = new_image(api)

    assert download(api, image_id, source["id"]).status_code == 202

    assert_failed_back_to_queued(
        api, image_id, "Error: Source image status should be active instead of queued"
    )


def test_a_remote_image_the_caller_may_not_see_fails_the_task(
    server: RunningServer,
    remote: httpx.Client,
    region_two: RunningServer,
    keystone: RunningKeystone,
) -> None:
    source = remote_image(remote)  # alpha's, private
    with client(server, keystone.token("beta-member")) as beta:
        image_id = new_image(beta)

        assert download(beta, image_id, source["id"]).status_code == 202

        url = f"{region_two.url}/v2/images/{source['id']}"
        assert_failed_back_to_queued(
            beta, image_id, f"Error: Could not fetch {url}: the server answered 404"
        )


def test_a_remote_service_the_filter_refuses_fails_the_task(
    api: httpx.Client,
    remote: httpx.Client,
    region_two: RunningServer,
    keystone: RunningKeystone,
) -> None:
    """The catalogue names RegionTwo's service as `localhost`, which the import filter
    does not allow (only 127.0.0.1): nothing is fetched from it."""
    region = f"filtered-{uuid.uuid4().hex[:8]}"
    keystone.set_image_endpoint(f"http://localhost:{region_two.port}", region)
    source = remote_image(remote)
    image_id = new_image(api)

    assert download(api, image_id, source["id"], glance_region=region).status_code == 202

    url = f"http://localhost:{region_two.port}/v2/images/{source['id']}"
    assert_failed_back_to_queued(
        api, image_id, f"Error: Processed URI for glance-download does not pass filtering: {url}"
    )


# -- without Keystone, the method is disabled --------------------------------------------


def test_without_keystone_glance_download_is_disabled(tmp_path: Path) -> None:
    config = tmp_path / "skylens.toml"
    config.write_text(f"[images]\nenabled_import_methods = {json.dumps(METHODS)}\n")
    with (
        dedicated_server(tmp_path, "sqlite", extra_args=("--config", str(config))) as server,
        httpx.Client(base_url=server.url, headers={"Accept": "application/json"}) as api,
    ):
        image_id = new_image(api)
        info = api.get("/v2/info/import").json()["import-methods"]["value"]
        response = download(api, image_id, str(uuid.uuid4()))

    assert info == METHODS[:3]
    assert_error(response, 400, "Unknown import method name 'glance-download'.")
    assert "glance-download stays disabled" in server.log.read_text()
