"""The `openstack image ...` commands (python-openstackclient) without Keystone.

The command line cannot send identity headers, so it acts as the service's
default identity (project `default`, admin). Each invocation takes about a
second, so one test walks the whole life cycle, on SQLite only: the command
speaks through openstacksdk, whose requests test_openstacksdk runs on both
backends.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.support.clients import BIN, run_in_terminal
from tests.support.servers import RunningServer


def _openstack(server: RunningServer, *args: str) -> tuple[int, str, str]:
    # stdin is a terminal: otherwise `image create` would upload stdin as image data.
    result = run_in_terminal(
        [str(BIN / "openstack"), "--os-auth-type", "none", "--os-endpoint", server.url, *args]
    )
    return result.returncode, result.stdout, result.stderr


def _json(server: RunningServer, *args: str) -> Any:
    code, out, err = _openstack(server, *args, "-f", "json")
    assert code == 0, err
    return json.loads(out)


def _ok(server: RunningServer, *args: str) -> None:
    code, _out, err = _openstack(server, *args)
    assert code == 0, err


def test_openstack_image_life_cycle(sqlite_server: RunningServer) -> None:
    server = sqlite_server
    name = f"osc-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex

    created = _json(
        server,
        "image",
        "create",
        "--disk-format",
        "qcow2",
        "--private",
        "--min-ram",
        "64",
        "--property",
        "foo=bar",
        "--tag",
        "first",
        name,
    )
    assert created["name"] == name
    assert created["status"] == "queued"
    assert created["owner"] == "default"
    assert created["visibility"] == "private"
    assert created["disk_format"] == "qcow2"
    assert created["min_ram"] == 64
    assert created["properties"]["foo"] == "bar"
    assert created["tags"] == ["first"]
    image_id = created["id"]

    _ok(
        server, "image", "set", "--name", f"{name}-2", "--property", "baz=q", "--tag", tag, image_id
    )
    _ok(server, "image", "unset", "--property", "foo", "--tag", "first", image_id)

    shown = _json(server, "image", "show", image_id)
    assert shown["name"] == f"{name}-2"
    assert shown["properties"]["baz"] == "q"
    assert "foo" not in shown["properties"]
    assert shown["tags"] == [tag]

    listed = _json(server, "image", "list", "--tag", tag, "--property", "baz=q", "--long")
    assert [(row["ID"], row["Name"], row["Visibility"]) for row in listed] == [
        (image_id, f"{name}-2", "private")
    ]
    assert listed[0]["Tags"] == [tag]

    _ok(server, "image", "delete", image_id)
    code, _out, err = _openstack(server, "image", "show", image_id)
    assert code == 1
    assert f"No Image found for {image_id}" in err
