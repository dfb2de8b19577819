"""The metadefs API driven by the real command lines, on SQLite and PostgreSQL:
every `glance md-*` command, and the `openstack image metadef ...` commands for
objects, resource types and tags that the installed openstackclient offers.

The CLIs send no identity headers: the test servers take them as an admin of the
`default` project (Skylens's trusted-headers defaults), as an operator runs them.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.clients.test_glanceclient import _glance_cli, _table
from tests.clients.test_openstack_cli import _json, _ok
from tests.support.servers import RunningServer


def _name() -> str:
    return f"Skylens::Cli::{uuid.uuid4().hex[:10]}"


def _glance(server: RunningServer, *args: str) -> str:
    code, out, err = _glance_cli(server, *args)
    assert code == 0, f"glance {' '.join(args)}: {err}"
    return out


def _rows(output: str) -> list[list[str]]:
    """The body rows of a glance list table (the header row left out)."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in output.splitlines()
        if line.startswith("|")
    ]
    return rows[1:]


def test_glance_md_namespace_commands(server: RunningServer, tmp_path: Path) -> None:
    name = _name()

    created = _table(
        _glance(
            server, "md-namespace-create", name, "--display-name", "CLI", "--visibility", "public",
            "--description", "From glance",
        )
    )  # fmt: skip
    assert created["namespace"] == name
    assert created["visibility"] == "public"
    assert name in {row[0] for row in _rows(_glance(server, "md-namespace-list"))}
    _glance(server, "md-namespace-update", name, "--display-name", "CLI 2")
    shown = _table(_glance(server, "md-namespace-show", name))
    assert shown["display_name"] == "CLI 2"
    _glance(server, "md-resource-type-associate", name, "--name", "OS::Glance::Image")
    assert "OS::Glance::Image" in _glance(server, "md-namespace-resource-type-list", name)
    _glance(server, "md-namespace-delete", name)
    code, _out, err = _glance_cli(server, "md-namespace-show", name)
    assert code != 0
    assert "404" in err

    imported = _name()
    document = {
        "namespace": imported,
        "visibility": "public",
        "properties": {"speed": {"title": "Speed", "type": "integer"}},
        "objects": [{"name": "Disk", "properties": {"bus": {"title": "Bus", "type": "string"}}}],
        "tags": [{"name": "fast"}],
    }
    path = tmp_path / "namespace.json"
    path.write_text(json.dumps(document))
    _glance(server, "md-namespace-import", "--file", str(path))
    assert _table(_glance(server, "md-namespace-show", imported))["namespace"] == imported
    assert [row[0] for row in _rows(_glance(server, "md-property-list", imported))] == ["speed"]
    for kind in ("objects", "properties", "tags"):
        _glance(server, f"md-namespace-{kind}-delete", imported)
    assert _rows(_glance(server, "md-property-list", imported)) == []
    _glance(server, "md-namespace-delete", imported)


def test_glance_md_property_object_tag_and_resource_type_commands(server: RunningServer) -> None:
    name = _name()
    _glance(server, "md-namespace-create", name, "--visibility", "public")

    schema = json.dumps({"type": "string", "enum": ["a", "b"]})
    _glance(
        server, "md-property-create", name, "--name", "letter", "--title", "Letter",
        "--schema", schema, "--type", "string",
    )  # fmt: skip
    assert [row[0] for row in _rows(_glance(server, "md-property-list", name))] == ["letter"]
    assert _table(_glance(server, "md-property-show", name, "letter"))["title"] == "Letter"
    _glance(server, "md-property-update", name, "letter", "--title", "Letter 2")
    assert _table(_glance(server, "md-property-show", name, "letter"))["title"] == "Letter 2"

    object_schema = json.dumps({"properties": {"cores": {"title": "Cores", "type": "integer"}}})
    _glance(server, "md-object-create", name, "--name", "CPU", "--schema", object_schema)
    assert [row[0] for row in _rows(_glance(server, "md-object-list", name))] == ["CPU"]
    assert _table(_glance(server, "md-object-show", name, "CPU"))["name"] == "CPU"
    _glance(server, "md-object-update", name, "CPU", "--name", "Processor")
    cores = _table(_glance(server, "md-object-property-show", name, "Processor", "cores"))
    assert cores["type"] == "integer"

    # (Not `--append`: glanceclient then sends a boolean header and fails itself.)
    _glance(server, "md-tag-create-multiple", name, "--names", "alpha,beta,gamma")
    _glance(server, "md-tag-create", name, "--name", "epsilon")
    assert _table(_glance(server, "md-tag-show", name, "beta"))["name"] == "beta"
    _glance(server, "md-tag-update", name, "gamma", "--name", "delta")
    _glance(server, "md-tag-delete", name, "alpha")
    tags = {row[0] for row in _rows(_glance(server, "md-tag-list", name))}
    assert tags == {"beta", "delta", "epsilon"}

    _glance(
        server, "md-resource-type-associate", name, "--name", "OS::Nova::Flavor",
        "--prefix", "cli:",
    )  # fmt: skip
    assert "OS::Nova::Flavor" in {row[0] for row in _rows(_glance(server, "md-resource-type-list"))}
    assert "cli:" in _glance(server, "md-namespace-resource-type-list", name)
    _glance(server, "md-resource-type-deassociate", name, "OS::Nova::Flavor")
    assert "OS::Nova::Flavor" not in _glance(server, "md-namespace-resource-type-list", name)

    _glance(server, "md-object-delete", name, "Processor")
    _glance(server, "md-property-delete", name, "letter")
    assert _rows(_glance(server, "md-object-list", name)) == []
    assert _rows(_glance(server, "md-property-list", name)) == []
    _glance(server, "md-namespace-delete", name)


def test_openstack_image_metadef_object_resource_type_and_tag_commands(
    server: RunningServer,
) -> None:
    name = _name()
    _json(server, "image", "metadef", "namespace", "create", "--public", name)

    created = _json(server, "image", "metadef", "object", "create", "--namespace", name, "Disk")
    assert created["name"] == "Disk"
    assert [row["name"] for row in _json(server, "image", "metadef", "object", "list", name)] == [
        "Disk"
    ]
    assert _json(server, "image", "metadef", "object", "show", name, "Disk")["name"] == "Disk"
    _ok(server, "image", "metadef", "object", "update", name, "Disk", "--name", "Volume")
    assert _json(server, "image", "metadef", "object", "show", name, "Volume")["name"] == "Volume"
    _ok(server, "image", "metadef", "object", "delete", name, "Volume")
    assert _json(server, "image", "metadef", "object", "list", name) == []

    association = _json(
        server, "image", "metadef", "resource", "type", "association", "create",
        "--properties-target", "image", name, "OS::Cinder::Volume",
    )  # fmt: skip
    assert association["name"] == "OS::Cinder::Volume"
    listed = _json(server, "image", "metadef", "resource", "type", "association", "list", name)
    assert [row["Name"] for row in listed] == ["OS::Cinder::Volume"]
    types = _json(server, "image", "metadef", "resource", "type", "list")
    assert "OS::Cinder::Volume" in {row["Name"] for row in types}
    _ok(server, "image", "metadef", "resource", "type", "association", "delete", name,
        "OS::Cinder::Volume")  # fmt: skip
    assert _json(server, "image", "metadef", "resource", "type", "association", "list", name) == []

    _ok(server, "image", "metadef", "namespace", "set", name, "--tag", "one", "--tag", "two")
    shown = _json(server, "image", "metadef", "namespace", "show", name)
    assert {tag["name"] for tag in shown["tags"]} == {"one", "two"}
    _ok(server, "image", "metadef", "namespace", "unset", name, "--tag", "one")
    shown = _json(server, "image", "metadef", "namespace", "show", name)
    assert [tag["name"] for tag in shown["tags"]] == ["two"]
    _ok(server, "image", "metadef", "namespace", "unset", name, "--all-tags")
    # (openstackclient shows the SDK's empty `tags` column for a namespace without tags.)
    assert not _json(server, "image", "metadef", "namespace", "show", name)["tags"]
    _ok(server, "image", "metadef", "namespace", "delete", name)
