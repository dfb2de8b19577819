"""web-download driven by real clients from a loopback web server the test servers
allow: openstacksdk's `import_image(method="web-download", uri=...)`, the `glance`
CLI's `image-create-via-import --import-method web-download --uri`, and the
`openstack` CLI's `image create` + `image import --method web-download --uri`
(python-openstackclient 10.5's `image create --import` has no `--uri`).

The command lines act as the service's default identity, on SQLite only (each
invocation takes about a second); openstacksdk runs on both backends.
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

from tests.support.clients import BIN, SdkFactory, run_in_terminal
from tests.support.identities import Identity
from tests.support.servers import RunningServer
from tests.support.web_source import WebSource

DATA = random.Random(7).randbytes(300_000)
MD5 = hashlib.md5(DATA, usedforsecurity=False).hexdigest()


@pytest.fixture
def server(web_server: RunningServer) -> RunningServer:
    return web_server


def published(files: WebSource) -> str:
    """A new file on the loopback web server; its URI."""
    name = f"{uuid.uuid4().hex}.img"
    files.files[name] = DATA
    return files.url(f"/files/{name}")


def settled(server: RunningServer, image_id: str) -> dict[str, Any]:
    """The image (as the default identity sees it) once it is neither queued nor
    importing: a web-download that has ended."""
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=server.url, timeout=30) as api:
        while time.monotonic() < deadline:
            image: dict[str, Any] = api.get(f"/v2/images/{image_id}").json()
            if image["status"] not in ("queued", "importing"):
                return image
            time.sleep(0.1)
    raise TimeoutError(f"image {image_id} was not imported")


def test_openstacksdk_imports_by_web_download(
    sdk: SdkFactory, member: Identity, web_files: WebSource
) -> None:
    conn = sdk(member)
    image = conn.image.create_image(
        name=f"sdk-web-{uuid.uuid4().hex[:8]}",
        disk_format="raw",
        container_format="bare",
        allow_duplicates=True,
    )

    conn.image.import_image(image, method="web-download", uri=published(web_files))

    deadline = time.monotonic() + 60
    while (found := conn.image.get_image(image.id)).status in ("queued", "importing"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert (found.status, found.checksum, found.size) == ("active", MD5, len(DATA))
    assert conn.image.download_image(image.id).content == DATA
    [task] = list(conn.image.image_tasks(image.id))
    assert task.status == "success"


def _run(*args: str) -> Any:
    result = run_in_terminal(list(args))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_glance_cli_creates_via_web_download_import(
    sqlite_web_server: RunningServer, web_files: WebSource
) -> None:
    server = sqlite_web_server
    name = f"glance-web-{uuid.uuid4().hex[:8]}"

    _run(
        str(BIN / "glance"),
        "--os-image-url",
        server.url,
        "--os-auth-token",
        "x",
        "--os-image-api-version",
        "2",
        "image-create-via-import",
        "--name",
        name,
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--import-method",
        "web-download",
        "--uri",
        published(web_files),
    )

    [listed] = httpx.get(f"{server.url}/v2/images", params={"name": name}).json()["images"]
    image = settled(server, listed["id"])
    assert (image["status"], image["checksum"], image["stores"]) == ("active", MD5, "local")


def test_the_openstack_cli_imports_by_web_download(
    sqlite_web_server: RunningServer, web_files: WebSource
) -> None:
    server = sqlite_web_server
    openstack = [str(BIN / "openstack"), "--os-auth-type", "none", "--os-endpoint", server.url]
    name = f"osc-web-{uuid.uuid4().hex[:8]}"
    created = json.loads(
        _run(*openstack, "image", "create", "--disk-format", "raw", name, "-f", "json")
    )

    _run(
        *openstack,
        "image",
        "import",
        "--method",
        "web-download",
        "--uri",
        published(web_files),
        created["id"],
    )

    image = settled(server, created["id"])
    assert (image["status"], image["checksum"], image["size"]) == ("active", MD5, len(DATA))
