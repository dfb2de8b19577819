"""Every authenticated operation of the route table is 401 without credentials.

The table is read from the app `skylens serve` builds (the same settings as the server
under test), so an operation added later is walked too; the requests go to a real
server in tokens mode and in Keystone mode. The Image API answers Glance's error body,
the Compute proxy Nova's fault.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from skylens.api.routing import Operation, PublicOperation, ResourceEndpoint
from tests.support.errors import assert_error
from tests.support.keystone import RunningKeystone
from tests.support.routes import ServedRoute, served_routes
from tests.support.servers import RunningServer, skylens_server

UNAUTHORIZED = (
    "This server could not verify that you are authorized to access the document you "
    "requested. Either you supplied the wrong credentials (e.g., bad password), or your "
    "browser does not understand how to supply the credentials required."
)
PATH_VALUES = {
    "image_id": str(uuid.uuid4()),
    "project_id": "alpha",
    "member_id": "beta",
    "tag": "a-tag",
    "key": "a-key",
    "store_id": "a-store",
    "namespace": "a-namespace",
    "resource_type": "a-resource-type",
    "property": "a-property",
    "object": "an-object",
    "task_id": str(uuid.uuid4()),
}
TOKENS = '[[token]]\nname = "alpha"\ntoken = "alpha-token-0000000000001"\nproject = "alpha"\n'
DISCOVERY = {
    "/",
    "/versions",
    "/healthcheck",
    "/healthcheck/ready",
    "/metrics",
    "/openapi.json",
    "/v2.1",
    "/v2.1/",
}


@pytest.fixture(scope="module")
def tokens_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    token_file = tmp_path_factory.mktemp("token-file") / "tokens.toml"
    token_file.write_text(TOKENS)
    return {"SKYLENS_AUTH_MODE": "tokens", "SKYLENS_AUTH_TOKEN_FILE": str(token_file)}


@pytest.fixture(scope="module")
def keystone_env(keystone: RunningKeystone) -> dict[str, str]:
    return {
        "SKYLENS_AUTH_MODE": "keystone",
        "SKYLENS_KEYSTONE_AUTH_URL": keystone.auth_url,
        "SKYLENS_KEYSTONE_USERNAME": keystone.service_user,
        "SKYLENS_KEYSTONE_PASSWORD": keystone.passwords[keystone.service_user],
        "SKYLENS_KEYSTONE_PROJECT_NAME": keystone.service_project,
    }


@pytest.fixture(scope="module")
def tokens_server(
    tmp_path_factory: pytest.TempPathFactory, tokens_env: dict[str, str]
) -> Iterator[RunningServer]:
    yield from _server(tmp_path_factory.mktemp("tokens"), tokens_env)


@pytest.fixture(scope="module")
def keystone_server(
    tmp_path_factory: pytest.TempPathFactory, keystone_env: dict[str, str]
) -> Iterator[RunningServer]:
    yield from _server(tmp_path_factory.mktemp("keystone"), keystone_env)


def _server(data_dir: Path, env: dict[str, str]) -> Iterator[RunningServer]:
    with skylens_server(data_dir, f"sqlite:///{data_dir / 'skylens.db'}", "sqlite", env) as server:
        yield server


def operations(served: list[ServedRoute]) -> Iterator[tuple[ServedRoute, Operation]]:
    """Every authenticated operation; every route is a resource (so it authenticates in
    dispatch), and only discovery and service documents are public."""
    for entry in served:
        endpoint = entry.route.endpoint
        assert isinstance(endpoint, ResourceEndpoint), entry.route.path
        for operation in endpoint.resource.operations:
            if isinstance(operation, PublicOperation):
                assert entry.route.path in DISCOVERY, entry.route.path
            else:
                yield entry, operation


def anonymous_request(client: httpx.Client, path: str, operation: Operation) -> httpx.Response:
    """The operation without credentials, but otherwise as a client would send it (the
    media type it accepts), so that no precheck answers first."""
    headers = {"Accept": "application/json"}
    body = None
    if operation.request_media_type is not None:
        headers["Content-Type"] = operation.request_media_type.split(",")[0].strip()
        body = b"[]" if "json" in headers["Content-Type"] else b"data"
    return client.request(
        operation.method, path.format(**PATH_VALUES), headers=headers, content=body
    )


def walk(server: RunningServer, served: list[ServedRoute], challenge: str | None) -> int:
    """Check every authenticated operation; return how many there were."""
    walked = 0
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for entry, operation in operations(served):
            where = f"{operation.method} {entry.route.path}"
            response = anonymous_request(client, entry.route.path, operation)
            if entry.surface == "compute":
                assert response.status_code == 401, (where, response.text)
                assert response.json() == {
                    "unauthorized": {"code": 401, "message": UNAUTHORIZED}
                }, where
            else:
                assert response.status_code == 401, (where, response.text)
                assert_error(response, 401, UNAUTHORIZED)
            assert response.headers.get("WWW-Authenticate") == challenge, where
            walked += 1
    return walked


def test_every_authenticated_operation_is_401_without_a_token_in_tokens_mode(
    tokens_server: RunningServer, tokens_env: dict[str, str], tmp_path: Path
) -> None:
    served = served_routes(tmp_path, tokens_env)

    walked = walk(tokens_server, served, challenge=None)

    assert walked == sum(1 for _ in operations(served))
    assert walked > 40  # both surfaces: the Image API and the Compute proxy


def test_every_authenticated_operation_is_401_without_a_token_in_keystone_mode(
    keystone_server: RunningServer,
    keystone_env: dict[str, str],
    keystone: RunningKeystone,
    tmp_path: Path,
) -> None:
    served = served_routes(tmp_path, keystone_env)

    walked = walk(keystone_server, served, challenge=f'Keystone uri="{keystone.auth_url}"')

    assert walked > 40


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("PATCH", "/v2/images/{image_id}", "application/json"),
        ("PUT", "/v2/images/{image_id}/file", "application/json"),
    ],
)
def test_a_wrong_media_type_is_415_before_401_as_in_glance(
    tokens_server: RunningServer, method: str, path: str, content_type: str
) -> None:
    response = httpx.request(
        method,
        tokens_server.url + path.format(**PATH_VALUES),
        headers={"Accept": "application/json", "Content-Type": content_type},
        content=b"[]",
    )

    assert response.status_code == 415, response.text


def test_a_compute_route_past_its_microversion_is_404_before_401(
    tokens_server: RunningServer,
) -> None:
    response = httpx.get(
        f"{tokens_server.url}/v2.1/images",
        headers={"Accept": "application/json", "OpenStack-API-Version": "compute 2.36"},
    )

    assert response.status_code == 404, response.text
    assert response.json()["itemNotFound"]["code"] == 404
