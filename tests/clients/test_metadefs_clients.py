"""The metadefs API driven by real clients: openstacksdk's image proxy, glanceclient's
metadefs managers (what `glance md-*` runs; it validates bodies against the schemas
Skylens serves) and `openstack image metadef ...`."""

from __future__ import annotations

import json
import uuid

from tests.clients.test_openstack_cli import _json, _openstack
from tests.support.clients import GlanceFactory, SdkFactory
from tests.support.identities import admin_of, new_project, reader_of
from tests.support.servers import RunningServer


def _name() -> str:
    return f"Skylens::Client::{uuid.uuid4().hex[:10]}"


def test_openstacksdk_metadef_proxy(sdk: SdkFactory) -> None:
    image = sdk(admin_of(new_project())).image
    name = _name()

    created = image.create_metadef_namespace(
        namespace=name, display_name="SDK", visibility="public", protected=False
    )
    assert created.namespace == name
    assert name in {n.namespace for n in image.metadef_namespaces(resource_types=None)}
    image.update_metadef_namespace(name, namespace=name, display_name="SDK 2", visibility="public")
    assert image.get_metadef_namespace(name).display_name == "SDK 2"

    image.create_metadef_property(name, name="cpu", title="CPU", type="string", enum=["a", "b"])
    assert {p.name for p in image.metadef_properties(name)} == {"cpu"}
    assert image.get_metadef_property("cpu", name).enum == ["a", "b"]

    image.create_metadef_object(
        name, name="Obj", properties={"x": {"title": "X", "type": "integer"}}
    )
    assert [o.name for o in image.metadef_objects(name)] == ["Obj"]
    assert image.get_metadef_object("Obj", name).properties["x"]["type"] == "integer"

    image.create_metadef_resource_type_association(name, name="OS::Glance::Image", prefix="p_")
    assert [a.name for a in image.metadef_resource_type_associations(name)] == ["OS::Glance::Image"]
    assert "OS::Glance::Image" in {t.name for t in image.metadef_resource_types()}

    # Readers of other projects read a public namespace.
    reader = sdk(reader_of(new_project())).image
    assert reader.get_metadef_namespace(name).namespace == name

    image.delete_metadef_resource_type_association("OS::Glance::Image", name)
    image.delete_metadef_object("Obj", name)
    image.delete_metadef_property("cpu", name)
    image.delete_metadef_namespace(name)
    assert name not in {n.namespace for n in image.metadef_namespaces()}


def test_glanceclient_metadefs(glance: GlanceFactory) -> None:
    client = glance(admin_of(new_project()))
    name = _name()

    client.metadefs_namespace.create(namespace=name, visibility="public")
    client.metadefs_property.create(name, name="disk", title="Disk", type="string")
    client.metadefs_object.create(
        name, name="Obj", properties={"y": {"title": "Y", "type": "string"}}
    )
    list(client.metadefs_tag.create_multiple(name, tags=["one", "two"]))  # a generator
    client.metadefs_resource_type.associate(name, name="OS::Cinder::Volume", prefix="v_")

    shown = client.metadefs_namespace.get(name)
    assert shown["namespace"] == name
    assert list(shown["properties"]) == ["disk"]
    assert {t["name"] for t in client.metadefs_tag.list(name)} == {"one", "two"}
    assert [p["name"] for p in client.metadefs_property.list(name)] == ["disk"]
    assert [o["name"] for o in client.metadefs_object.list(name)] == ["Obj"]
    assert name in {n["namespace"] for n in client.metadefs_namespace.list()}
    assert [a["name"] for a in client.metadefs_resource_type.get(name)] == ["OS::Cinder::Volume"]

    client.metadefs_tag.delete_all(name)
    client.metadefs_object.delete_all(name)
    client.metadefs_property.delete_all(name)
    client.metadefs_namespace.delete(name)
    assert name not in {n["namespace"] for n in client.metadefs_namespace.list()}


def test_openstack_image_metadef_commands(sqlite_server: RunningServer) -> None:
    server = sqlite_server
    name = _name()

    created = _json(server, "image", "metadef", "namespace", "create", "--public", name)
    assert created["namespace"] == name
    listed = _json(server, "image", "metadef", "namespace", "list")
    assert name in {row["namespace"] for row in listed}
    prop = json.dumps({"title": "Size", "type": "integer"})
    code, _out, err = _openstack(
        server, "image", "metadef", "property", "create", "--name", "size", "--title", "Size",
        "--type", "integer", "--schema", prop, name,
    )  # fmt: skip
    assert code == 0, err
    properties = _json(server, "image", "metadef", "property", "list", name)
    assert [row["name"] for row in properties] == ["size"]
    shown = _json(server, "image", "metadef", "namespace", "show", name)
    assert shown["namespace"] == name
    code, _out, err = _openstack(server, "image", "metadef", "namespace", "delete", name)
    assert code == 0, err
