"""The Keystone test server is a real Keystone: real tokens, roles, revocation, catalogue."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from typing import Any

import httpx
import pytest
from keystoneauth1 import exceptions as ksa_exceptions

from tests.support.clients import BIN
from tests.support.keystone import RunningKeystone

# What each user's token carries: its project and its roles, implied ones included
# (admin implies manager, which implies member, which implies reader).
WORLD = [
    ("alpha-member", "alpha", {"member", "reader"}),
    ("alpha-reader", "alpha", {"reader"}),
    ("beta-member", "beta", {"member", "reader"}),
    ("beta-reader", "beta", {"reader"}),
    ("admin", "admin", {"admin", "manager", "member", "reader"}),
    ("admin", "alpha", {"admin", "manager", "member", "reader"}),
    ("admin", "beta", {"admin", "manager", "member", "reader"}),
    ("skylens", "service", {"service", "admin", "manager", "member", "reader"}),
]


def _validate(keystone: RunningKeystone, token: str) -> httpx.Response:
    """GET /v3/auth/tokens as the image service's own user, as Skylens validates a token."""
    return httpx.get(
        f"{keystone.auth_url}/auth/tokens",
        headers={"X-Auth-Token": keystone.token("skylens"), "X-Subject-Token": token},
        timeout=30,
    )


def _body(keystone: RunningKeystone, token: str) -> dict[str, Any]:
    response = _validate(keystone, token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["token"]
    return body


@pytest.mark.parametrize(("user", "project", "roles"), WORLD)
def test_a_token_validates_with_its_project_and_roles(
    keystone: RunningKeystone, user: str, project: str, roles: set[str]
) -> None:
    token = _body(keystone, keystone.token(user, project))
    assert token["user"]["id"] == keystone.users[user]
    assert token["user"]["name"] == user
    assert token["project"]["id"] == keystone.projects[project]
    assert token["project"]["name"] == project
    assert token["project"]["domain"]["id"] == keystone.domain
    assert {role["name"] for role in token["roles"]} == roles
    assert "password" in token["methods"]


def test_the_admin_session_is_scoped_to_the_system(keystone: RunningKeystone) -> None:
    with contextlib.closing(keystone.admin_session()) as admin:
        issued = admin.get_token()
        assert issued is not None
        token = _body(keystone, issued)
    assert token["system"] == {"all": True}
    assert "project" not in token
    assert {role["name"] for role in token["roles"]} == {"admin", "manager", "member", "reader"}


def test_a_user_gets_no_token_for_a_project_it_is_not_in(keystone: RunningKeystone) -> None:
    with pytest.raises(ksa_exceptions.Unauthorized):
        keystone.token("alpha-member", "beta")
    with pytest.raises(ksa_exceptions.Unauthorized):
        keystone.token("beta-reader", "alpha")


def test_a_wrong_password_gets_no_token(keystone: RunningKeystone) -> None:
    response = httpx.post(
        f"{keystone.auth_url}/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "alpha-member",
                            "domain": {"id": keystone.domain},
                            "password": "not-the-password",
                        }
                    },
                }
            }
        },
        timeout=30,
    )
    assert response.status_code == 401


def test_a_revoked_token_stops_validating(keystone: RunningKeystone) -> None:
    token = keystone.token("alpha-member")
    other = keystone.token("alpha-member")
    assert _validate(keystone, token).status_code == 200

    keystone.revoke(token)

    assert _validate(keystone, token).status_code == 404
    # Another token of the same user still validates. (Whether Keystone's own API still
    # takes the revoked token depends on its in-memory cache: not what Skylens asks.)
    assert _validate(keystone, other).status_code == 200


@pytest.mark.parametrize("token", ["", "not-a-token", "gAAAAA" + "x" * 180])
def test_an_invalid_token_does_not_validate(keystone: RunningKeystone, token: str) -> None:
    if token:
        assert _validate(keystone, token).status_code == 404
    projects = f"{keystone.auth_url}/auth/projects"
    assert httpx.get(projects, headers={"X-Auth-Token": token}).status_code == 401


def test_the_catalogue_lists_the_image_endpoint_that_was_set(keystone: RunningKeystone) -> None:
    # A region of its own, as every Skylens server in a session should have.
    region = f"test-{uuid.uuid4().hex[:8]}"
    keystone.set_image_endpoint("http://127.0.0.1:1/first", region)
    keystone.set_image_endpoint("http://127.0.0.1:1/second", region)  # the last one wins

    catalogue = _body(keystone, keystone.token("beta-reader"))["catalog"]
    by_type = {service["type"]: service for service in catalogue}
    image = [e for e in by_type["image"]["endpoints"] if e["region_id"] == region]
    assert [(e["interface"], e["url"]) for e in image] == [("public", "http://127.0.0.1:1/second")]
    identity = by_type["identity"]["endpoints"]
    # Bootstrap's three in RegionOne, and a public one in each region made since.
    assert {(e["interface"], e["url"]) for e in identity if e["region_id"] == keystone.region} == {
        (interface, keystone.url) for interface in ("public", "internal", "admin")
    }
    assert [(e["interface"], e["url"]) for e in identity if e["region_id"] == region] == [
        ("public", keystone.url)
    ]

    # openstacksdk finds it from the catalogue, as it would to reach Skylens.
    connection = keystone.connection("alpha-member", region=region)
    try:
        found = connection.session.get_endpoint(
            service_type="image", interface="public", region_name=region
        )
        assert found == "http://127.0.0.1:1/second"
        assert connection.current_project_id == keystone.projects["alpha"]
    finally:
        connection.close()


def test_the_openstack_cli_signs_in_with_a_password(keystone: RunningKeystone) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OS_")}
    env.update(keystone.openstack_env("beta-member"))
    result = subprocess.run(
        [str(BIN / "openstack"), "token", "issue", "-f", "json"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)
    assert issued["project_id"] == keystone.projects["beta"]
    assert issued["user_id"] == keystone.users["beta-member"]
    assert _body(keystone, issued["id"])["project"]["name"] == "beta"


def test_it_runs_from_its_own_directory_and_process_group(keystone: RunningKeystone) -> None:
    assert os.getpgid(keystone.pid) == keystone.pid
    assert (keystone.root / "keystone.db").is_file()
    assert sorted(os.listdir(keystone.root / "fernet-keys")) == ["0", "1"]
    assert "Listening at: " + keystone.url in keystone.log.read_text()
