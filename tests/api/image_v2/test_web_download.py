"""web-download through the real server: `POST /v2/images/{id}/import` with
`{"method": {"name": "web-download", "uri": ...}}` fetched from a loopback web server
(tests.support.web_source) that this module's servers allow explicitly; resumed
drops, failing sources, and every SSRF spelling refused before anything connects.

Glance's flow: queued → importing → active; a failure sends the image back to queued
with its stores in `os_glance_failed_import` and the reason in the task's message.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.image_v2.test_import import imported, new_image, stage, start_import
from tests.conftest import ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity
from tests.support.servers import RunningServer
from tests.support.web_download import MAX_RESUMES
from tests.support.web_source import WebSource

DATA = random.Random(33).randbytes(2 << 20)
REFUSED = "URI for web-download does not pass filtering: {uri}"


@pytest.fixture
def server(web_server: RunningServer) -> RunningServer:
    """This module's servers: web-download allowed from `web_files` (127.0.0.1:port)."""
    return web_server


def published(files: WebSource, data: bytes = DATA) -> str:
    """A new file on the web server; its name."""
    name = f"{uuid.uuid4().hex}.img"
    files.files[name] = data
    return name


def web_import(api: httpx.Client, image_id: str, uri: str, **body: Any) -> httpx.Response:
    return start_import(api, image_id, method={"name": "web-download", "uri": uri}, **body)


def requests_for(files: WebSource, name: str) -> list[str | None]:
    """The `Range` of each request the web server got for file `name`."""
    return [seen.range for seen in files.requests if f"/{name}" in seen.path]


def the_task(api: httpx.Client, image_id: str) -> dict[str, Any]:
    [task] = api.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    result: dict[str, Any] = task
    return result


def assert_failed_back_to_queued(api: httpx.Client, image_id: str, message: str) -> None:
    image = imported(api, image_id)
    assert (image["status"], image["size"], image["checksum"]) == ("queued", None, None)
    assert image["os_glance_failed_import"] == "local"
    assert image["os_glance_importing_to_stores"] == ""
    assert "stores" not in image
    task = the_task(api, image_id)
    assert (task["status"], task["message"]) == ("failure", message)


def test_web_download_imports_the_source_into_the_default_store(
    api: httpx.Client, web_files: WebSource
) -> None:
    name = published(web_files)
    image_id = new_image(api)
    uri = web_files.url(f"/files/{name}")

    response = web_import(api, image_id, uri)

    assert response.status_code == 202
    assert response.content == b""
    image = imported(api, image_id)
    assert (image["status"], image["stores"]) == ("active", "local")
    assert (image["size"], image["virtual_size"]) == (len(DATA), len(DATA))
    assert image["checksum"] == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert (image["os_glance_importing_to_stores"], image["os_glance_failed_import"]) == ("", "")
    assert api.get(f"/v2/images/{image_id}/file").content == DATA
    task = the_task(api, image_id)
    assert task["status"] == "success"
    assert task["input"]["import_req"] == {"method": {"name": "web-download", "uri": uri}}
    assert requests_for(web_files, name) == [None]  # fetched once, whole


def test_web_download_to_several_stores(api: httpx.Client, web_files: WebSource) -> None:
    name = published(web_files)
    image_id = new_image(api)

    web_import(api, image_id, web_files.url(f"/files/{name}"), stores=["local", "cheap"])

    image = imported(api, image_id)
    assert (image["status"], image["stores"]) == ("active", "local,cheap")
    assert requests_for(web_files, name) == [None]  # one fetch feeds every store


def test_a_dropped_connection_is_resumed_with_the_same_bytes(
    api: httpx.Client, web_files: WebSource
) -> None:
    name = published(web_files)
    image_id = new_image(api)
    drop = 800_000  # every response breaks after this many bytes: two resumes

    web_import(api, image_id, web_files.url(f"/files/{name}?drop={drop}"))

    image = imported(api, image_id)
    assert image["status"] == "active"
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert api.get(f"/v2/images/{image_id}/file").content == DATA
    assert requests_for(web_files, name) == [None, f"bytes={drop}-", f"bytes={2 * drop}-"]


def test_a_source_that_answers_an_error_fails_the_import(
    api: httpx.Client, web_files: WebSource
) -> None:
    image_id = new_image(api)
    uri = web_files.url("/files/nothing-here.img")

    assert web_import(api, image_id, uri).status_code == 202

    assert_failed_back_to_queued(
        api, image_id, f"Error: Could not fetch {uri}: the server answered 404"
    )


def test_a_drop_that_cannot_be_resumed_fails_the_import(
    api: httpx.Client, web_files: WebSource
) -> None:
    name = published(web_files)
    image_id = new_image(api)
    uri = web_files.url(f"/files/{name}?drop=100000&ranges=no")

    web_import(api, image_id, uri)

    assert_failed_back_to_queued(
        api,
        image_id,
        f"Error: Could not fetch {uri}: the connection failed and could not be resumed",
    )
    assert api.get(f"/v2/images/{image_id}/file").status_code == 204


def test_the_image_is_importing_while_the_source_sends_then_queued_when_it_stalls(
    api: httpx.Client, web_files: WebSource
) -> None:
    name = published(web_files)
    image_id = new_image(api)
    uri = web_files.url(f"/files/{name}?stall=1000")

    web_import(api, image_id, uri)

    # The source sends 1000 bytes, then nothing (each resume the same) until the
    # read timeout: the import is still running.
    during = api.get(f"/v2/images/{image_id}").json()
    assert during["status"] == "importing"
    assert during["os_glance_importing_to_stores"] == "local"
    assert during["os_glance_import_task"] == the_task(api, image_id)["id"]
    assert_failed_back_to_queued(
        api,
        image_id,
        f"Error: Could not fetch {uri}: the connection failed and could not be resumed",
    )
    assert len(requests_for(web_files, name)) == 1 + MAX_RESUMES


def test_a_failed_web_download_can_be_tried_again(api: httpx.Client, web_files: WebSource) -> None:
    image_id = new_image(api)
    name = f"{uuid.uuid4().hex}.img"
    web_import(api, image_id, web_files.url(f"/files/{name}"))
    assert imported(api, image_id)["status"] == "queued"
    web_files.files[name] = DATA

    assert web_import(api, image_id, web_files.url(f"/files/{name}")).status_code == 202

    image = imported(api, image_id)
    assert (image["status"], image["os_glance_failed_import"]) == ("active", "")


def test_web_download_needs_a_queued_image(api: httpx.Client, web_files: WebSource) -> None:
    image_id = new_image(api)
    stage(api, image_id)

    assert_error(
        web_import(api, image_id, web_files.url("/files/a.img")),
        409,
        "Image needs to be in 'queued' state to use 'web-download' method",
    )


@pytest.mark.parametrize("uri", [None, "", 5, "ftp://127.0.0.1/x.img", "http://user@127.0.0.1/"])
def test_a_missing_or_malformed_uri_is_400(api: httpx.Client, uri: Any) -> None:
    image_id = new_image(api)
    method: dict[str, Any] = {"name": "web-download"}
    if uri is not None:
        method["uri"] = uri

    response = start_import(api, image_id, method=method)

    assert_error(response, 400, REFUSED.format(uri=uri))
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert api.get(f"/v2/images/{image_id}/tasks").json()["tasks"] == []


# Spellings of addresses inside the deployment: loopback (other than the one
# 127.0.0.1 the test config allows), link-local and the metadata service, private
# ranges, and the decimal, octal, hexadecimal, short and IPv6-mapped spellings.
INSIDE = [
    "http://127.0.0.2:{port}/files/a.img",
    "http://[::1]:{port}/files/a.img",
    "http://[::ffff:127.0.0.1]:{port}/files/a.img",
    "http://[::ffff:7f00:1]:{port}/files/a.img",
    "http://2130706433:{port}/files/a.img",
    "http://0177.0.0.1:{port}/files/a.img",
    "http://0x7f.0.0.1:{port}/files/a.img",
    "http://127.1:{port}/files/a.img",
    "http://0.0.0.0:{port}/files/a.img",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/x.img",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://10.0.0.1/x.img",
    "http://172.16.0.1/x.img",
    "http://192.168.0.1/x.img",
    "http://[fd00::1]/x.img",
    "http://100.64.0.1/x.img",
]


@pytest.mark.parametrize("spelling", INSIDE)
def test_addresses_inside_the_deployment_are_refused_before_any_connection(
    api: httpx.Client, web_files: WebSource, spelling: str
) -> None:
    uri = spelling.format(port=web_files.port)
    image_id = new_image(api)
    connections = web_files.connections

    response = web_import(api, image_id, uri)

    assert_error(response, 400, REFUSED.format(uri=uri))
    assert web_files.connections == connections
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"


@pytest.mark.parametrize(
    "target",
    [
        "http://localhost:{port}/files/{name}",
        "http://127.0.0.2:{port}/files/{name}",
        "http://[::1]:{port}/files/{name}",
        "http://[::ffff:127.0.0.1]:{port}/files/{name}",
        "http://2130706433:{port}/files/{name}",
        "http://0177.0.0.1:{port}/files/{name}",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/{name}",
        "http://127.0.0.1:8/files/{name}",  # an allowed host on a port that is not
        "file:///etc/passwd",
    ],
)
def test_a_redirect_inside_the_deployment_fails_the_task_before_connecting(
    api: httpx.Client, web_files: WebSource, target: str
) -> None:
    name = published(web_files)
    inside = target.format(port=web_files.port, name=name)
    uri = web_files.url(f"/redirect?{httpx.QueryParams({'to': inside})}")
    image_id = new_image(api)
    connections = web_files.connections

    assert web_import(api, image_id, uri).status_code == 202

    assert_failed_back_to_queued(
        api,
        image_id,
        f"Error: Could not fetch {uri}: it leads to a URI or an address that does not "
        "pass filtering",
    )
    assert web_files.connections == connections + 1  # the redirect, and nothing after it
    assert requests_for(web_files, name) == []


# The default filter ([import_filtering] left alone): the shared session servers.
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize(
    "spelling", ["http://127.0.0.1:{port}/files/a.img", "http://localhost:{port}/a.img", *INSIDE]
)
def test_the_default_filter_refuses_the_test_web_server_in_every_spelling(
    request: pytest.FixtureRequest,
    web_files: WebSource,
    member: Identity,
    backend: str,
    spelling: str,
) -> None:
    default: RunningServer = request.getfixturevalue(f"{backend}_server")
    uri = spelling.format(port=web_files.port)
    connections = web_files.connections
    headers = {**member.headers, "Accept": "application/json"}
    with httpx.Client(base_url=default.url, headers=headers, timeout=30) as api:
        image_id = new_image(api)

        response = web_import(api, image_id, uri)

        assert_error(response, 400, REFUSED.format(uri=uri))
    assert web_files.connections == connections


@pytest.fixture
def default_api(sqlite_server: RunningServer, member: Identity) -> Iterator[httpx.Client]:
    """A member on a server with the default filter (a shared session server)."""
    headers = {**member.headers, "Accept": "application/json"}
    with httpx.Client(base_url=sqlite_server.url, headers=headers, timeout=30) as api:
        yield api


def test_the_default_filter_refuses_a_name_that_resolves_to_loopback_without_telling(
    default_api: httpx.Client,
) -> None:
    # The request has no DNS, and port 80 is allowed: `localhost` passes; the task
    # resolves it, to loopback, and connects to nothing.
    uri = "http://localhost/x.img"
    image_id = new_image(default_api)

    assert web_import(default_api, image_id, uri).status_code == 202

    assert_failed_back_to_queued(
        default_api,
        image_id,
        f"Error: Could not fetch {uri}: it leads to a URI or an address that does not "
        "pass filtering",
    )
    message = the_task(default_api, image_id)["message"]
    assert "127.0.0.1" not in message
    assert "::1" not in message


def test_a_source_that_cannot_be_reached_fails_the_import(default_api: httpx.Client) -> None:
    uri = "http://nowhere.invalid/x.img"  # RFC 6761: never resolves
    image_id = new_image(default_api)

    assert web_import(default_api, image_id, uri).status_code == 202

    assert_failed_back_to_queued(
        default_api, image_id, f"Error: Could not fetch {uri}: the source could not be reached"
    )


def test_a_reader_may_not_web_download(
    http: ClientFactory, reader: Identity, api: httpx.Client, web_files: WebSource
) -> None:
    image_id = new_image(api)

    assert_error(
        web_import(http(reader), image_id, web_files.url("/files/a.img")),
        403,
        "You are not authorized to complete modify_image action.",
    )
