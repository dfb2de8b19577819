"""A policy file in Glance's format overrides Glance's rules, over real HTTP.

One server per backend and per file form (YAML, JSON), each started with
`auth.policy_file` naming a file that:
(a) lets project members publicize their images,
(b) lets only admins delete images,
(c) defines a rule of its own (`owner_only`) that other rules reference;
(d) lets project members create metadef namespaces (Glance's rules cover metadefs too).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.errors import assert_error
from tests.support.identities import Identity, admin_of, member_of, new_project
from tests.support.servers import RunningServer, dedicated_server

RULES = {
    "owner_only": "project_id:%(project_id)s",
    "publicize_image": "rule:context_is_admin or (role:member and rule:owner_only)",
    "delete_image": "rule:context_is_admin",
    "modify_image": "rule:context_is_admin or (role:member and rule:owner_only)",
    "add_metadef_namespace": "rule:context_is_admin or (role:member and rule:owner_only)",
}


def _policy_file(directory: Path, form: str) -> Path:
    if form == "json":
        path = directory / "policy.json"
        path.write_text(json.dumps(RULES, indent=2))
    else:
        path = directory / "policy.yaml"
        path.write_text(
            "# Glance's policy.yaml format\n"
            + "".join(f'"{name}": "{check}"\n' for name, check in RULES.items())
        )
    return path


@pytest.fixture(
    scope="module",
    params=[("sqlite", "yaml"), ("sqlite", "json"), ("postgresql", "yaml"), ("postgresql", "json")],
    ids=lambda param: "-".join(param),
)
def policy_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    backend, form = request.param
    data_dir = tmp_path_factory.mktemp(f"policy-{backend}-{form}")
    env = {"SKYLENS_AUTH_POLICY_FILE": str(_policy_file(data_dir, form))}
    with dedicated_server(data_dir, backend, extra_env=env) as server:
        yield server


@pytest.fixture
def client(policy_server: RunningServer) -> Iterator[httpx.Client]:
    # Plain HTTP on loopback: no TLS trust store to load.
    with httpx.Client(base_url=policy_server.url, timeout=30, verify=False) as http:  # noqa: S501
        yield http


def _as(identity: Identity) -> dict[str, str]:
    return {**identity.headers, "Accept": "application/json"}


def _create(client: httpx.Client, identity: Identity, **body: object) -> str:
    response = client.post("/v2/images", json={"name": "p", **body}, headers=_as(identity))
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def _publicize(client: httpx.Client, identity: Identity, image_id: str) -> httpx.Response:
    return client.patch(
        f"/v2/images/{image_id}",
        json=[{"op": "replace", "path": "/visibility", "value": "public"}],
        headers={**_as(identity), "Content-Type": "application/openstack-images-v2.1-json-patch"},
    )


def test_a_project_member_may_publicize_its_own_image(client: httpx.Client) -> None:
    owner = member_of(new_project())
    image_id = _create(client, owner)

    response = _publicize(client, owner, image_id)

    assert response.status_code == 200, response.text
    assert response.json()["visibility"] == "public"
    created = client.post("/v2/images", json={"visibility": "public"}, headers=_as(owner))
    assert created.status_code == 201, created.text


def test_the_custom_rule_keeps_other_projects_out(client: httpx.Client) -> None:
    owner, stranger = member_of(new_project()), member_of(new_project())
    image_id = _create(client, owner, visibility="community")

    response = _publicize(client, stranger, image_id)

    # The stranger may see a community image; modify_image, through owner_only, refuses.
    assert_error(response, 403, "You are not authorized to complete modify_image action.")


def test_only_admins_may_delete_images(client: httpx.Client) -> None:
    owner = member_of(new_project())
    image_id = _create(client, owner)

    refused = client.delete(f"/v2/images/{image_id}", headers=_as(owner))
    assert_error(refused, 403, "You are not authorized to complete delete_image action.")

    deleted = client.delete(f"/v2/images/{image_id}", headers=_as(admin_of(new_project())))
    assert deleted.status_code == 204


def test_rules_the_file_leaves_alone_keep_glances_defaults(client: httpx.Client) -> None:
    owner = member_of(new_project())
    image_id = _create(client, owner)

    response = client.post(f"/v2/images/{image_id}/actions/deactivate", headers=_as(owner))
    # Glance's default allows the owner's member; the image has no data yet.
    assert_error(response, 403, "Not allowed to deactivate image in status 'queued'")
    stranger = member_of(new_project())
    listed = client.get("/v2/images", headers=_as(stranger))
    assert listed.status_code == 200


def test_a_project_member_may_create_a_metadef_namespace(client: httpx.Client) -> None:
    project = new_project()
    owner = member_of(project)
    name = f"Skylens::Policy::{project[:12]}"

    created = client.post("/v2/metadefs/namespaces", json={"namespace": name}, headers=_as(owner))

    assert created.status_code == 201, created.text
    assert created.json()["owner"] == project
    assert client.get(f"/v2/metadefs/namespaces/{name}", headers=_as(owner)).status_code == 200
    # The rules the file leaves alone keep Glance's defaults: deleting needs an admin.
    refused = client.delete(f"/v2/metadefs/namespaces/{name}", headers=_as(owner))
    assert_error(
        refused, 403, "You are not authorized to complete delete_metadef_namespace action."
    )
    admin = admin_of(new_project())
    deleted = client.delete(f"/v2/metadefs/namespaces/{name}", headers=_as(admin))
    assert deleted.status_code == 204
