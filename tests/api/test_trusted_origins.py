"""Trusted-headers mode refuses what a browser could send for another site (issue 18,
item 6): a foreign `Origin` (cross-site requests) and a `Host` that is not a loopback
name (DNS rebinding). Requests from other clients, which send no `Origin`, keep
working, with any Content-Type on create as in Glance (recorded exchanges 039/040)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.errors import assert_error
from tests.support.identities import Identity
from tests.support.servers import RunningServer, dedicated_server

FOREIGN_ORIGIN = (
    "Requests from other web origins are refused in trusted-headers mode: the Origin "
    "header must be this service's own origin or one in server.allowed_origins."
)
FOREIGN_HOST = (
    "The Host header does not name this service: in trusted-headers mode it answers to "
    "loopback names (localhost, 127.0.0.1, [::1]) and to the names in "
    "server.allowed_hosts only."
)


def _exists(server: RunningServer, name: str) -> bool:
    """Is there an image of this name (asked as the default identity, an admin)?"""
    response = httpx.get(f"{server.url}/v2/images", params={"name": name})
    assert response.status_code == 200, response.text
    return bool(response.json()["images"])


def _post_text(
    server: RunningServer, name: str, headers: dict[str, str], identity: Identity | None = None
) -> httpx.Response:
    """What a web page's form can send: a text/plain POST, no identity headers."""
    sent = {"Content-Type": "text/plain", "Accept": "application/json", **headers}
    if identity is not None:
        sent |= identity.headers
    return httpx.post(f"{server.url}/v2/images", content=f'{{"name": "{name}"}}', headers=sent)


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://localhost:8000", "http://127.0.0.1", "null"]
)
def test_a_cross_site_create_is_refused_and_creates_nothing(
    server: RunningServer, origin: str
) -> None:
    """A page's form posting to the loopback port, as the default identity (an admin)."""
    name = f"csrf-{uuid.uuid4().hex[:8]}"

    response = _post_text(server, name, {"Origin": origin})

    assert_error(response, 403, FOREIGN_ORIGIN)
    assert response.headers["x-openstack-request-id"].startswith("req-")
    assert not _exists(server, name)


def test_a_page_of_the_service_itself_may_call_it(server: RunningServer, member: Identity) -> None:
    name = f"same-origin-{uuid.uuid4().hex[:8]}"

    response = _post_text(server, name, {"Origin": server.url}, member)

    assert response.status_code == 201, response.text
    assert _exists(server, name)


def test_any_content_type_is_still_accepted_without_an_origin(
    server: RunningServer, member: Identity
) -> None:
    response = _post_text(server, f"plain-{uuid.uuid4().hex[:8]}", {}, member)

    assert response.status_code == 201, response.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.nip.io"])
def test_a_host_that_is_not_loopback_is_refused(server: RunningServer, host: str) -> None:
    """DNS rebinding: a page at evil.example, resolved to 127.0.0.1 after it loaded."""
    response = httpx.get(
        f"{server.url}/v2/images",
        headers={"Host": host.format(port=server.port), "Accept": "application/json"},
    )

    assert_error(response, 403, FOREIGN_HOST)


@pytest.mark.parametrize(
    "host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "LOCALHOST"]
)
def test_loopback_names_are_served(server: RunningServer, host: str) -> None:
    response = httpx.get(f"{server.url}/v2/images", headers={"Host": host.format(port=server.port)})

    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def allowing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("allowed-names")
    with dedicated_server(
        data_dir,
        "sqlite",
        extra_env={
            "SKYLENS_SERVER_ALLOWED_HOSTS": "images.internal",
            "SKYLENS_SERVER_ALLOWED_ORIGINS": "https://console.example",
            "SKYLENS_SERVER_PUBLIC_ENDPOINT": "https://images.example.com",
        },
    ) as running:
        yield running


@pytest.mark.parametrize(
    ("host", "origin", "status"),
    [
        ("images.internal:9292", None, 200),
        ("images.example.com", None, 200),  # public_endpoint's host
        ("127.0.0.1", "https://console.example", 200),
        ("127.0.0.1", "https://console.example:443", 200),
        ("127.0.0.1", "https://images.example.com", 200),  # public_endpoint's origin
        ("127.0.0.1", "http://console.example", 403),
        ("other.internal", None, 403),
    ],
)
def test_configured_hosts_and_origins_are_served(
    allowing_server: RunningServer, host: str, origin: str | None, status: int
) -> None:
    headers = {"Host": host} | ({"Origin": origin} if origin else {})

    response = httpx.get(f"{allowing_server.url}/healthcheck", headers=headers)

    assert response.status_code == status, response.text
