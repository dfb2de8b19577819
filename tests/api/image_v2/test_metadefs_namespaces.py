"""/v2/metadefs/namespaces over HTTP: Glance's bodies, statuses, texts and policy."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.identities import Identity, admin_of, member_of, new_project, reader_of

NS = "/v2/metadefs/namespaces"
EXCHANGES = Path(__file__).resolve().parents[2] / "data" / "glance-33-exchanges"


def unique(prefix: str = "Skylens::Test") -> str:
    return f"{prefix}::{uuid.uuid4().hex[:12]}"


def message(response: httpx.Response) -> str:
    text: str = response.json()["message"]
    return text.split("<br /><br />")[0]


def full_namespace(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "namespace": name,
        "display_name": "Test namespace",
        "description": "For the tests",
        "visibility": "public",
        "resource_type_associations": [
            {"name": "OS::Glance::Image", "prefix": "hw_"},
            {"name": "OS::Nova::Flavor", "prefix": "hw:"},
        ],
        "properties": {
            "cpu_policy": {"title": "CPU policy", "type": "string", "enum": ["shared", "dedicated"]}
        },
        "objects": [
            {
                "name": "Memory",
                "description": "Memory backing",
                "required": ["mem_page_size"],
                "properties": {"mem_page_size": {"title": "Page size", "type": "string"}},
            }
        ],
        "tags": [{"name": "alpha"}, {"name": "beta"}],
        **extra,
    }


@pytest.fixture
def admin_api(http: ClientFactory, admin: Identity) -> httpx.Client:
    return http(admin)


def create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(NS, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_admin_creates_shows_and_deletes_a_namespace_with_contents(
    admin_api: httpx.Client,
) -> None:
    name = unique()
    response = admin_api.post(NS, json=full_namespace(name))

    assert response.status_code == 201
    assert response.headers["location"].endswith(f"{NS}/{name}")
    shown = admin_api.get(f"{NS}/{name}").json()
    assert shown["namespace"] == name
    assert shown["visibility"] == "public"
    assert shown["protected"] is False
    assert shown["self"] == f"{NS}/{name}"
    assert shown["schema"] == "/v2/schemas/metadefs/namespace"
    assert shown["properties"]["cpu_policy"]["enum"] == ["shared", "dedicated"]
    assert [o["name"] for o in shown["objects"]] == ["Memory"]
    assert shown["objects"][0]["self"] == f"{NS}/{name}/objects/Memory"
    assert shown["tags"] == [{"name": "alpha"}, {"name": "beta"}]
    assert {a["name"]: a["prefix"] for a in shown["resource_type_associations"]} == {
        "OS::Glance::Image": "hw_",
        "OS::Nova::Flavor": "hw:",
    }
    assert admin_api.delete(f"{NS}/{name}").status_code == 204
    gone = admin_api.get(f"{NS}/{name}")
    assert gone.status_code == 404
    assert message(gone) == f"Metadata definition namespace={name} was not found."


def test_create_echoes_the_contents_as_the_request_gave_them(admin_api: httpx.Client) -> None:
    name = unique()
    body = full_namespace(name)

    created = create(admin_api, body)

    # Glance 33 answers with the stored namespace and the request's own contents:
    # associations and objects without timestamps, objects without links.
    for key in ("resource_type_associations", "properties", "objects", "tags"):
        assert created[key] == body[key], key
    assert created["owner"]
    assert created["created_at"] == created["updated_at"]
    assert created["self"] == f"{NS}/{name}"
    assert created["schema"] == "/v2/schemas/metadefs/namespace"
    shown = admin_api.get(f"{NS}/{name}").json()
    assert "created_at" in shown["objects"][0]
    assert "self" in shown["objects"][0]


def test_show_with_a_resource_type_prefixes_the_property_names(admin_api: httpx.Client) -> None:
    name = unique()
    create(admin_api, full_namespace(name))

    shown = admin_api.get(f"{NS}/{name}", params={"resource_type": "OS::Nova::Flavor"}).json()

    assert list(shown["properties"]) == ["hw:cpu_policy"]
    assert list(shown["objects"][0]["properties"]) == ["hw:mem_page_size"]
    assert shown["objects"][0]["required"] == ["hw:mem_page_size"]


def test_update_replaces_the_attributes_and_can_rename(admin_api: httpx.Client) -> None:
    name, renamed = unique(), unique()
    created = create(admin_api, full_namespace(name, protected=True))

    response = admin_api.put(f"{NS}/{name}", json={"namespace": renamed, "visibility": "public"})

    assert response.status_code == 200
    body = response.json()
    assert body["namespace"] == renamed
    assert "display_name" not in body  # left out: cleared, as in Glance
    assert body["protected"] is False
    assert body["created_at"] == created["created_at"]
    assert admin_api.get(f"{NS}/{renamed}").json()["properties"]
    assert admin_api.get(f"{NS}/{name}").status_code == 404


def test_rename_onto_another_namespace_is_409(admin_api: httpx.Client) -> None:
    first, second = unique(), unique()
    create(admin_api, {"namespace": first})
    create(admin_api, {"namespace": second})

    response = admin_api.put(f"{NS}/{first}", json={"namespace": second})

    assert response.status_code == 409
    assert message(response) == (
        "Invalid update. It would result in a duplicate metadata definition namespace "
        f"with the same name of {second}"
    )


def test_a_duplicate_namespace_is_409(admin_api: httpx.Client) -> None:
    name = unique()
    create(admin_api, {"namespace": name})

    response = admin_api.post(NS, json={"namespace": name})

    assert response.status_code == 409
    assert message(response) == f"The metadata definition namespace={name} already exists."


@pytest.mark.parametrize("attribute", ["self", "schema", "created_at", "updated_at"])
def test_read_only_attributes_are_403(admin_api: httpx.Client, attribute: str) -> None:
    response = admin_api.post(NS, json={"namespace": unique(), attribute: "x"})

    assert response.status_code == 403
    assert message(response) == f"Attribute '{attribute}' is read-only."


@pytest.mark.parametrize(
    "body",
    [{}, {"namespace": "x" * 81}, {"namespace": "n", "visibility": "shared"}, {"namespace": 1}],
)
def test_a_body_the_schema_refuses_is_400(admin_api: httpx.Client, body: dict[str, Any]) -> None:
    response = admin_api.post(NS, json=body)

    assert response.status_code == 400
    assert message(response).startswith("Provided object does not match schema 'namespace': ")


def test_a_protected_namespace_and_its_contents_are_not_deletable(
    admin_api: httpx.Client,
) -> None:
    name = unique()
    create(admin_api, full_namespace(name, protected=True))
    refusal = f"Metadata definition namespace {name} is protected and cannot be deleted."

    for path in ("", "/objects", "/properties", "/tags"):
        response = admin_api.delete(f"{NS}/{name}{path}")
        assert response.status_code == 403, path
        assert message(response) == refusal


def test_delete_all_objects_properties_and_tags(admin_api: httpx.Client) -> None:
    name = unique()
    create(admin_api, full_namespace(name))

    for path in ("/objects", "/properties", "/tags"):
        assert admin_api.delete(f"{NS}/{name}{path}").status_code == 204

    shown = admin_api.get(f"{NS}/{name}").json()
    assert not {"objects", "properties", "tags"} & set(shown)
    assert len(shown["resource_type_associations"]) == 2


# -- listing ---------------------------------------------------------------------------------


def test_list_filters_by_visibility_and_resource_type(admin_api: httpx.Client) -> None:
    kind = unique("OS::Skylens::Kind")
    public, private = unique(), unique()
    association = [{"name": kind, "prefix": "k_"}]
    create(admin_api, {"namespace": public, "visibility": "public",
                       "resource_type_associations": association})  # fmt: skip
    create(admin_api, {"namespace": private, "resource_type_associations": association})

    by_type = admin_api.get(NS, params={"resource_types": kind}).json()
    assert {n["namespace"] for n in by_type["namespaces"]} == {public, private}
    assert by_type["namespaces"][0]["resource_type_associations"][0]["name"] == kind
    only_private = admin_api.get(NS, params={"resource_types": kind, "visibility": "private"})
    assert [n["namespace"] for n in only_private.json()["namespaces"]] == [private]
    assert by_type["schema"] == "/v2/schemas/metadefs/namespaces"
    assert by_type["first"].startswith(f"{NS}?")


def test_list_pages_with_limit_and_marker(admin_api: httpx.Client) -> None:
    kind = unique("OS::Skylens::Kind")
    names = sorted(unique() for _ in range(3))
    for name in names:
        create(admin_api, {"namespace": name, "resource_type_associations": [{"name": kind}]})
    params = {"resource_types": kind, "sort_key": "namespace", "sort_dir": "asc", "limit": "2"}

    first = admin_api.get(NS, params=params).json()
    second = admin_api.get(NS, params={**params, "marker": names[1]}).json()

    assert [n["namespace"] for n in first["namespaces"]] == names[:2]
    assert "marker=" in first["next"]
    assert [n["namespace"] for n in second["namespaces"]] == names[2:]
    assert "next" not in second


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"sort_dir": "up"}, "Invalid sort direction: up"),
        ({"visibility": "shared"}, "Invalid visibility value: shared"),
        ({"limit": "x"}, "limit param must be an integer"),
        ({"limit": "-1"}, "limit param must be positive"),
        ({"sort_key": "nope"}, "Invalid sort key: nope"),
    ],
)
def test_bad_list_parameters_are_400(
    admin_api: httpx.Client, params: dict[str, str], text: str
) -> None:
    response = admin_api.get(NS, params=params)

    assert response.status_code == 400
    assert message(response) == text


def test_an_unknown_marker_is_404(admin_api: httpx.Client) -> None:
    response = admin_api.get(NS, params={"marker": "no-such-namespace"})

    assert response.status_code == 404
    assert message(response) == "Metadata definition namespace=no-such-namespace was not found."


def test_a_marker_the_caller_may_not_see_is_403(
    http: ClientFactory, admin_api: httpx.Client
) -> None:
    name = unique()
    create(admin_api, {"namespace": name, "owner": new_project()})

    response = http(reader_of(new_project())).get(NS, params={"marker": name})

    # Glance's database layer refuses it before the list runs.
    assert response.status_code == 403
    assert message(response) == (
        f"Forbidding request, metadata definition namespace={name} is not visible."
    )


# -- policy -------------------------------------------------------------------------------------


def test_only_admins_write(http: ClientFactory, admin_api: httpx.Client) -> None:
    name = unique()
    create(admin_api, full_namespace(name))
    member = http(member_of(new_project()))

    refused = member.post(NS, json={"namespace": unique()})
    assert refused.status_code == 403
    assert message(refused) == "You are not authorized to complete add_metadef_namespace action."
    writes = [
        member.put(f"{NS}/{name}", json={"namespace": name}),
        member.delete(f"{NS}/{name}"),
        member.delete(f"{NS}/{name}/objects"),
        member.delete(f"{NS}/{name}/properties"),
        member.delete(f"{NS}/{name}/tags"),
    ]
    assert [r.status_code for r in writes] == [403] * 5
    assert message(writes[0]) == (
        "You are not authorized to complete modify_metadef_namespace action."
    )
    assert message(writes[1]) == (
        "You are not authorized to complete delete_metadef_namespace action."
    )


def test_a_private_namespace_is_hidden_from_other_projects(
    http: ClientFactory, admin_api: httpx.Client
) -> None:
    owner = new_project()
    name = unique()
    create(admin_api, {"namespace": name, "owner": owner})
    stranger = http(member_of(new_project()))

    shown = stranger.get(f"{NS}/{name}")
    assert shown.status_code == 404
    assert message(shown) == "The resource could not be found."
    listed = stranger.get(NS, params={"limit": "1000"}).json()["namespaces"]
    assert name not in {n["namespace"] for n in listed}
    deleted = stranger.delete(f"{NS}/{name}")
    assert deleted.status_code == 404
    assert message(deleted) == f"Namespace {name} not found"
    # Its owner's readers see it.
    owners = http(reader_of(owner))
    assert owners.get(f"{NS}/{name}").status_code == 200
    marker = owners.get(NS, params={"sort_key": "namespace", "sort_dir": "asc", "marker": name})
    assert marker.status_code == 200


def test_reading_needs_the_reader_role(http: ClientFactory, admin_api: httpx.Client) -> None:
    name = unique()
    create(admin_api, {"namespace": name, "visibility": "public"})
    no_reader = http(Identity(new_project(), "someone", ("member",)))

    # Glance turns a refusal into 404 when the caller could not even read a namespace.
    listed = no_reader.get(NS)
    assert listed.status_code == 404
    assert message(listed) == "The resource could not be found."
    assert no_reader.get(f"{NS}/{name}").status_code == 404
    assert http(reader_of(new_project())).get(f"{NS}/{name}").status_code == 200


def test_admins_of_any_project_see_everything(http: ClientFactory) -> None:
    name = unique()
    create(http(admin_of(new_project())), {"namespace": name})  # private, its project's

    assert http(admin_of(new_project())).get(f"{NS}/{name}").status_code == 200


# -- schemas -----------------------------------------------------------------------------------


def _without_descriptions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [_without_descriptions(v) for v in value]
    return value


def test_the_namespace_schema_is_glances(api: httpx.Client) -> None:
    recorded = json.loads((EXCHANGES / "013-schema-metadefs-namespace.json").read_text())

    served = api.get("/v2/schemas/metadefs/namespace").json()

    assert _without_descriptions(served) == _without_descriptions(recorded["response"]["body"])


@pytest.mark.parametrize(
    ("path", "name", "listed"),
    [
        ("namespaces", "namespaces", "namespaces"),
        ("resource_type", "resource_type_association", None),
        ("resource_types", "resource_type_associations", "resource_type_associations"),
        ("property", "property", None),
        ("properties", "properties", "properties"),
        ("object", "object", None),
        ("objects", "objects", "objects"),
        ("tag", "tag", None),
        ("tags", "tags", "tags"),
    ],
)
def test_every_metadefs_schema_is_served(
    api: httpx.Client, path: str, name: str, listed: str | None
) -> None:
    response = api.get(f"/v2/schemas/metadefs/{path}")

    assert response.status_code == 200
    assert response.json()["name"] == name
    if listed:
        assert listed in response.json()["properties"]
