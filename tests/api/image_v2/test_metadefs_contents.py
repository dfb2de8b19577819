"""A namespace's properties, objects, tags and resource types over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.image_v2.test_metadefs_namespaces import NS, create, full_namespace, message, unique
from tests.conftest import ClientFactory
from tests.support.identities import Identity, member_of, new_project, reader_of


@pytest.fixture
def admin_api(http: ClientFactory, admin: Identity) -> httpx.Client:
    return http(admin)


@pytest.fixture
def namespace(admin_api: httpx.Client) -> str:
    name = unique()
    create(admin_api, full_namespace(name))
    return name


PROPERTY = {"name": "watchdog", "title": "Watchdog", "type": "string", "enum": ["reset", "none"]}


# -- properties ---------------------------------------------------------------------------------


def test_property_crud(admin_api: httpx.Client, namespace: str) -> None:
    path = f"{NS}/{namespace}/properties"

    created = admin_api.post(path, json=PROPERTY)
    assert created.status_code == 201
    assert created.json() == PROPERTY
    assert admin_api.get(f"{path}/watchdog").json() == PROPERTY
    listed = admin_api.get(path).json()["properties"]
    assert set(listed) == {"cpu_policy", "watchdog"}
    assert "name" not in listed["watchdog"]
    renamed = admin_api.put(f"{path}/watchdog", json={**PROPERTY, "name": "wd", "title": "WD"})
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "WD"
    assert admin_api.get(f"{path}/watchdog").status_code == 404
    assert admin_api.delete(f"{path}/wd").status_code == 204
    missing = admin_api.get(f"{path}/wd")
    assert missing.status_code == 404
    assert message(missing) == (
        f"The metadata definition property with name=wd was not found in namespace={namespace}."
    )


def test_property_conflicts_and_validation(admin_api: httpx.Client, namespace: str) -> None:
    path = f"{NS}/{namespace}/properties"

    duplicate = admin_api.post(path, json={**PROPERTY, "name": "cpu_policy"})
    assert duplicate.status_code == 409
    assert message(duplicate) == (
        "A metadata definition property with name=cpu_policy already exists in "
        f"namespace={namespace}."
    )
    untitled = admin_api.post(path, json={"name": "x", "type": "string"})
    assert untitled.status_code == 400
    assert message(untitled).startswith("Provided object does not match schema 'property': ")
    read_only = admin_api.post(path, json={**PROPERTY, "created_at": "now"})
    assert read_only.status_code == 403


def test_a_property_by_its_prefixed_name(admin_api: httpx.Client, namespace: str) -> None:
    path = f"{NS}/{namespace}/properties"

    shown = admin_api.get(f"{path}/hw:cpu_policy", params={"resource_type": "OS::Nova::Flavor"})
    assert shown.status_code == 200
    assert shown.json()["name"] == "hw:cpu_policy"
    unprefixed = admin_api.get(f"{path}/cpu_policy", params={"resource_type": "OS::Nova::Flavor"})
    assert unprefixed.status_code == 404
    assert message(unprefixed) == (
        "Property cpu_policy does not start with the expected resource type association "
        "prefix of 'hw:'."
    )


def test_a_protected_namespace_keeps_its_contents(admin_api: httpx.Client) -> None:
    name = unique()
    create(admin_api, full_namespace(name, protected=True))

    answers = {
        "property": admin_api.delete(f"{NS}/{name}/properties/cpu_policy"),
        "object": admin_api.delete(f"{NS}/{name}/objects/Memory"),
        "tag": admin_api.delete(f"{NS}/{name}/tags/alpha"),
        "resource-type-association": admin_api.delete(
            f"{NS}/{name}/resource_types/OS::Nova::Flavor"
        ),
    }

    assert {kind: r.status_code for kind, r in answers.items()} == dict.fromkeys(answers, 403)
    assert message(answers["tag"]) == (
        "Metadata definition tag alpha is protected and cannot be deleted."
    )
    assert message(answers["resource-type-association"]) == (
        "Metadata definition resource-type-association OS::Nova::Flavor is protected "
        "and cannot be deleted."
    )


# -- objects ------------------------------------------------------------------------------------


def test_object_crud(admin_api: httpx.Client, namespace: str) -> None:
    path = f"{NS}/{namespace}/objects"
    body: dict[str, Any] = {
        "name": "CPU",
        "description": "Pinning",
        "required": ["threads"],
        "properties": {"threads": {"title": "Threads", "type": "integer", "minimum": 1}},
    }

    created = admin_api.post(path, json=body)
    assert created.status_code == 201
    assert created.json()["self"] == f"{path}/CPU"
    assert created.json()["schema"] == "/v2/schemas/metadefs/object"
    shown = admin_api.get(f"{path}/CPU").json()
    assert shown["properties"] == body["properties"]
    assert shown["required"] == ["threads"]
    listed = admin_api.get(path).json()
    assert {o["name"] for o in listed["objects"]} == {"CPU", "Memory"}
    assert listed["schema"] == "v2/schemas/metadefs/objects"
    updated = admin_api.put(f"{path}/CPU", json={"name": "Processor"})
    assert updated.status_code == 200
    assert updated.json()["properties"] == {}
    assert updated.json()["created_at"] == created.json()["created_at"]
    duplicate = admin_api.post(path, json={"name": "Memory"})
    assert duplicate.status_code == 409
    assert message(duplicate) == (
        f"A metadata definition object with name=Memory already exists in namespace={namespace}."
    )
    assert admin_api.delete(f"{path}/Processor").status_code == 204
    missing = admin_api.delete(f"{path}/Processor")
    assert missing.status_code == 404
    assert message(missing) == (
        f"The metadata definition object with name=Processor was not found in "
        f"namespace={namespace}."
    )


def test_objects_of_a_missing_namespace(admin_api: httpx.Client) -> None:
    response = admin_api.get(f"{NS}/nothing-here/objects")

    assert response.status_code == 404
    assert message(response) == "Metadata definition namespace=nothing-here was not found."


# -- tags ---------------------------------------------------------------------------------------


def test_tags_replace_append_and_conflicts(admin_api: httpx.Client, namespace: str) -> None:
    path = f"{NS}/{namespace}/tags"

    replaced = admin_api.post(path, json={"tags": [{"name": "one"}, {"name": "two"}]})
    assert replaced.status_code == 201
    assert replaced.json() == {"tags": [{"name": "one"}, {"name": "two"}]}
    names = {t["name"] for t in admin_api.get(path).json()["tags"]}
    assert names == {"one", "two"}  # alpha and beta went
    appended = admin_api.post(
        path, json={"tags": [{"name": "three"}]}, headers={"X-Openstack-Append": "True"}
    )
    assert appended.status_code == 201
    assert {t["name"] for t in admin_api.get(path).json()["tags"]} == {"one", "two", "three"}
    twice = admin_api.post(path, json={"tags": [{"name": "x"}, {"name": "x"}]})
    assert twice.status_code == 409
    assert message(twice).startswith("A metadata tag with name=x already exists in namespace=")
    assert {t["name"] for t in admin_api.get(path).json()["tags"]} == {"one", "two", "three"}
    shape = admin_api.post(path, json={"tags": ["bare"]})
    assert shape.status_code == 400


def test_one_tag_crud(admin_api: httpx.Client, namespace: str) -> None:
    path = f"{NS}/{namespace}/tags"

    created = admin_api.post(f"{path}/gamma")
    assert created.status_code == 201
    assert set(created.json()) == {"name", "created_at", "updated_at"}
    assert admin_api.post(f"{path}/gamma").status_code == 409
    assert admin_api.get(f"{path}/gamma").json()["name"] == "gamma"
    renamed = admin_api.put(f"{path}/gamma", json={"name": "delta"})
    assert renamed.json()["name"] == "delta"
    assert admin_api.delete(f"{path}/delta").status_code == 204
    missing = admin_api.get(f"{path}/delta")
    assert missing.status_code == 404
    assert message(missing) == (
        f"The metadata definition tag with name=delta was not found in namespace={namespace}."
    )
    assert admin_api.post(f"{path}/{'t' * 81}").status_code == 400


def test_tags_page(admin_api: httpx.Client, namespace: str) -> None:
    path = f"{NS}/{namespace}/tags"
    admin_api.post(path, json={"tags": [{"name": n} for n in ("a", "b", "c")]})
    params = {"sort_key": "name", "sort_dir": "asc", "limit": "2"}

    first = admin_api.get(path, params=params).json()["tags"]
    rest = admin_api.get(path, params={**params, "marker": "b"}).json()["tags"]

    assert first == [{"name": "a"}, {"name": "b"}]
    assert rest == [{"name": "c"}]


# -- resource types ---------------------------------------------------------------------------


def test_resource_types_and_associations(admin_api: httpx.Client, namespace: str) -> None:
    path = f"{NS}/{namespace}/resource_types"
    kind = unique("OS::Skylens::Kind")

    created = admin_api.post(path, json={"name": kind, "prefix": "s_", "properties_target": "t"})
    assert created.status_code == 201
    assert created.json()["prefix"] == "s_"
    listed = admin_api.get(path).json()["resource_type_associations"]
    assert {a["name"] for a in listed} == {"OS::Glance::Image", "OS::Nova::Flavor", kind}
    types = admin_api.get("/v2/metadefs/resource_types").json()["resource_types"]
    assert kind in {t["name"] for t in types}
    assert set(types[0]) == {"name", "created_at", "updated_at"}
    duplicate = admin_api.post(path, json={"name": kind})
    assert duplicate.status_code == 409
    assert message(duplicate) == (
        f"The metadata definition resource-type association of resource-type={kind} to "
        f"namespace={namespace} already exists."
    )
    assert admin_api.delete(f"{path}/{kind}").status_code == 204
    missing = admin_api.delete(f"{path}/{kind}")
    assert missing.status_code == 404
    assert message(missing) == f"Failed to find resource type {kind} to delete"


# -- policy on contents ---------------------------------------------------------------------


def test_readers_read_and_cannot_write_contents(http: ClientFactory, namespace: str) -> None:
    reader = http(reader_of(new_project()))
    base = f"{NS}/{namespace}"

    reads = [
        reader.get(f"{base}/properties"),
        reader.get(f"{base}/properties/cpu_policy"),
        reader.get(f"{base}/objects"),
        reader.get(f"{base}/objects/Memory"),
        reader.get(f"{base}/tags"),
        reader.get(f"{base}/tags/alpha"),
        reader.get(f"{base}/resource_types"),
        reader.get("/v2/metadefs/resource_types"),
    ]
    writes = {
        "add_metadef_property": reader.post(f"{base}/properties", json=PROPERTY),
        "modify_metadef_property": reader.put(f"{base}/properties/cpu_policy", json=PROPERTY),
        "remove_metadef_property": reader.delete(f"{base}/properties/cpu_policy"),
        "add_metadef_object": reader.post(f"{base}/objects", json={"name": "o"}),
        "modify_metadef_object": reader.put(f"{base}/objects/Memory", json={"name": "o"}),
        "delete_metadef_object": reader.delete(f"{base}/objects/Memory"),
        "add_metadef_tag": reader.post(f"{base}/tags/t"),
        "add_metadef_tags": reader.post(f"{base}/tags", json={"tags": []}),
        "modify_metadef_tag": reader.put(f"{base}/tags/alpha", json={"name": "t"}),
        "delete_metadef_tag": reader.delete(f"{base}/tags/alpha"),
        "add_metadef_resource_type_association": reader.post(
            f"{base}/resource_types", json={"name": "OS::Cinder::Volume"}
        ),
        "remove_metadef_resource_type_association": reader.delete(
            f"{base}/resource_types/OS::Nova::Flavor"
        ),
    }

    assert [r.status_code for r in reads] == [200] * len(reads)
    for rule, response in writes.items():
        assert response.status_code == 403, rule
        assert message(response) == f"You are not authorized to complete {rule} action."


def test_contents_of_a_private_namespace_are_hidden(
    http: ClientFactory, admin_api: httpx.Client
) -> None:
    name = unique()
    create(admin_api, {**full_namespace(name), "visibility": "private", "owner": new_project()})
    stranger = http(member_of(new_project()))

    for path in ("properties", "properties/cpu_policy", "tags", "tags/alpha", "resource_types"):
        response = stranger.get(f"{NS}/{name}/{path}")
        assert response.status_code == 404, path
        assert message(response) == f"Namespace {name} not found"
    assert stranger.get(f"{NS}/{name}/objects").status_code == 404
