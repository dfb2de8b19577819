"""auth.mode = "tokens": a real server behind a static token file, driven with raw
HTTP, python-glanceclient, openstacksdk and the `openstack` command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openstack
import pytest
from glanceclient import Client as GlanceClient
from keystoneauth1 import session, token_endpoint

from tests.support.clients import BIN, run_in_terminal
from tests.support.errors import assert_error
from tests.support.servers import RunningServer, skylens_server

ALPHA_MEMBER = "alpha-member-token-000001"
ALPHA_READER = "alpha-reader-token-000002"
BETA_MEMBER = "beta-member-token-0000003"
OPERATOR = "operator-admin-token-00004"
ALPHA_MEMBER_ONLY = "alpha-member-only-token-6"
UNAUTHORIZED = (
    "This server could not verify that you are authorized to access the document you "
    "requested. Either you supplied the wrong credentials (e.g., bad password), or your "
    "browser does not understand how to supply the credentials required."
)


def tokens_toml(*entries: tuple[str, str, str]) -> str:
    return "".join(
        f'[[token]]\nname = "{project}-{token[:5]}"\ntoken = "{token}"\nproject = "{project}"\n'
        f'user = "{project}-user"\nroles = [{roles}]\n'
        for token, project, roles in entries
    )


FILE = tokens_toml(
    (ALPHA_MEMBER, "alpha", '"member", "reader"'),
    (ALPHA_READER, "alpha", '"reader"'),
    (BETA_MEMBER, "beta", '"member", "reader"'),
    (OPERATOR, "ops", '"admin"'),
    (ALPHA_MEMBER_ONLY, "alpha", '"member"'),
)


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("tokens")
    (data_dir / "tokens.toml").write_text(FILE)
    with skylens_server(
        data_dir,
        f"sqlite:///{data_dir / 'skylens.db'}",
        "sqlite",
        extra_env={
            "SKYLENS_AUTH_MODE": "tokens",
            "SKYLENS_AUTH_TOKEN_FILE": str(data_dir / "tokens.toml"),
        },
    ) as running:
        yield running


def client(server: RunningServer, token: str | None = None, **headers: str) -> httpx.Client:
    sent = {"Accept": "application/json", **headers}
    if token is not None:
        sent["X-Auth-Token"] = token
    return httpx.Client(base_url=server.url, headers=sent, timeout=30)


@pytest.mark.parametrize("token", [None, "", "not-a-listed-token-at-all"])
def test_requests_without_a_listed_token_are_401(token_server: RunningServer, token: str) -> None:
    with client(token_server, token) as anonymous:
        response = anonymous.get("/v2/images")

    assert_error(response, 401, UNAUTHORIZED)


def test_discovery_and_health_need_no_token(token_server: RunningServer) -> None:
    with client(token_server) as anonymous:
        assert anonymous.get("/versions").status_code == 200
        assert anonymous.get("/healthcheck").status_code == 200


@pytest.mark.parametrize("path", ["/v2.1/images", "/v2.1/alpha/images/detail"])
def test_the_compute_routes_need_a_token_too(token_server: RunningServer, path: str) -> None:
    with client(token_server) as anonymous:
        refused = anonymous.get(path)
    with client(token_server, ALPHA_READER) as reader:
        served = reader.get(path)

    assert refused.status_code == 401
    assert refused.json()["unauthorized"]["code"] == 401  # a Compute fault
    assert served.status_code == 200, served.text
    assert "images" in served.json()


def test_a_token_is_its_projects_identity_and_headers_cannot_add_roles(
    token_server: RunningServer,
) -> None:
    with client(token_server, ALPHA_MEMBER) as member:
        created = member.post("/v2/images", json={"name": "alpha-image", "visibility": "private"})
    with client(token_server, BETA_MEMBER, **{"X-Roles": "admin", "X-Project-Id": "alpha"}) as beta:
        hidden = beta.get(f"/v2/images/{created.json()['id']}")
    with client(token_server, ALPHA_READER) as reader:
        refused = reader.post("/v2/images", json={"name": "nope"})

    assert created.status_code == 201
    assert created.json()["owner"] == "alpha"
    assert hidden.status_code == 404  # the trusted headers mean nothing in this mode
    assert_error(refused, 403, "You are not authorized to complete add_image action.")


def test_listed_roles_are_taken_literally(token_server: RunningServer) -> None:
    # Nothing implies `reader` here (no Keystone): Glance 33's get_images needs it.
    with client(token_server, ALPHA_MEMBER_ONLY) as member_only:
        created = member_only.post("/v2/images", json={"name": "member-only"})
        listed = member_only.get("/v2/images")

    assert created.status_code == 201, created.text  # add_image needs `member` only
    assert_error(listed, 403, "You are not authorized to complete get_images action.")


def test_editing_the_file_changes_who_gets_in(token_server: RunningServer) -> None:
    path = token_server.log.parent / "tokens.toml"
    added = "gamma-member-token-00005"
    try:
        path.write_text(tokens_toml((added, "gamma", '"member", "reader"')))
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
        deadline = time.monotonic() + 10
        with client(token_server, added) as gamma:
            while gamma.get("/v2/images").status_code != 200:
                assert time.monotonic() < deadline, "the new token was never accepted"
                time.sleep(0.2)
        with client(token_server, ALPHA_MEMBER) as removed:
            assert removed.get("/v2/images").status_code == 401
    finally:
        path.write_text(FILE)
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
        time.sleep(1.2)
    assert OPERATOR not in token_server.log.read_text()


def test_glanceclient_and_openstacksdk_authenticate_with_the_token(
    token_server: RunningServer,
) -> None:
    glance = GlanceClient("2", endpoint=token_server.url, token=ALPHA_MEMBER)
    sdk = openstack.connection.Connection(
        session=session.Session(auth=token_endpoint.Token(token_server.url, ALPHA_MEMBER)),
        image_endpoint_override=token_server.url,
        image_api_version="2",
    )

    image = glance.images.create(name="from-glanceclient", visibility="private")
    seen = {found.id for found in sdk.image.images()}

    assert image.owner == "alpha"
    assert image.id in seen


def test_the_openstack_command_with_a_token(token_server: RunningServer) -> None:
    result = run_in_terminal(
        [
            str(BIN / "openstack"),
            # With a bare token the endpoint names the API version: no discovery happens.
            *("--os-auth-type", "admin_token", "--os-endpoint", f"{token_server.url}/v2"),
            *("--os-token", OPERATOR, "image", "create", "--private", "cli-token-image"),
            *("-f", "value", "-c", "owner"),
        ]
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ops"


def test_origin_and_host_are_not_checked_with_tokens(token_server: RunningServer) -> None:
    """The token is the defence here: a page cannot send it, whatever its origin."""
    headers = {"Origin": "https://evil.example", "Host": "evil.example"}
    with client(token_server, ALPHA_READER, **headers) as reader:
        response = reader.get("/v2/images")

    assert response.status_code == 200, response.text


def _status_becomes(server: RunningServer, token: str, status: int) -> None:
    """Wait (10 s at most) until the server answers `status` to this token."""
    deadline = time.monotonic() + 10
    with client(server, token) as api:
        while api.get("/v2/images").status_code != status:
            assert time.monotonic() < deadline, f"never {status}"
            time.sleep(0.2)


def test_deleting_the_file_revokes_every_token(token_server: RunningServer) -> None:
    path = token_server.log.parent / "tokens.toml"
    try:
        path.unlink()
        _status_becomes(token_server, OPERATOR, 401)
        with client(token_server, ALPHA_MEMBER) as member:
            assert_error(member.get("/v2/images"), 401, UNAUTHORIZED)
        assert f"token file {path} is gone" in token_server.log.read_text()
    finally:
        path.write_text(FILE)
    _status_becomes(token_server, OPERATOR, 200)


def test_an_entry_without_a_project_stops_serve(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text('[[token]]\nname = "nobody"\ntoken = "token-of-no-project-0000"\n')
    clean = {key: value for key, value in os.environ.items() if not key.startswith("SKYLENS_")}

    result = subprocess.run(
        [sys.executable, "-m", "skylens.cli.main", "serve", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "SKYLENS_AUTH_MODE": "tokens", "SKYLENS_AUTH_TOKEN_FILE": str(path)},
        check=False,
    )

    assert result.returncode == 2
    assert "token entry nobody: project is required" in result.stderr
    assert "token-of-no-project-0000" not in result.stderr
