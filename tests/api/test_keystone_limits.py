"""quotas.source = "keystone": limits from a REAL Keystone's unified limits
(tests/support/keystone.py), as Glance reads them through oslo.limit.

This module's Skylens has an image endpoint of its own in a region of its own, and
registers (as the system admin) default limits for that region:

    image_count_total 2, image_count_uploading 1, image_size_total 1 (MiB)

and none for image_stage_total, which is then 0: like oslo.limit, Skylens fails
closed. Project `beta` gets image_count_total 4 of its own. Limits are read
again after QUOTA_CACHE_SECONDS.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from glanceclient.v2.client import Client as GlanceClient

from tests.api.test_keystone_auth import client, keystone_env
from tests.support.clients import BIN, run_in_terminal
from tests.support.errors import assert_error, over_limit
from tests.support.keystone import RunningKeystone
from tests.support.servers import RunningServer, skylens_server

MIB = 1 << 20
QUOTA_CACHE_SECONDS = 1
UPLOAD = {"Content-Type": "application/octet-stream"}
DEFAULTS = {"image_count_total": 2, "image_count_uploading": 1, "image_size_total": 1}


@contextlib.contextmanager
def _system_admin(keystone: RunningKeystone) -> Iterator[httpx.Client]:
    """Keystone's API as the system admin, who alone may set limits."""
    with contextlib.closing(keystone.admin_session()) as session:
        token = session.get_token()
        assert token is not None
        headers = {"X-Auth-Token": token}
        with httpx.Client(base_url=keystone.auth_url + "/", headers=headers, timeout=30) as api:
            yield api


@pytest.fixture(scope="module")
def region() -> str:
    return f"limits-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def endpoint_id(keystone: RunningKeystone, region: str) -> str:
    """The region's image endpoint (its URL is set once the server runs), with the
    region's registered limits and beta's project limit."""
    keystone.set_image_endpoint("http://127.0.0.1:9", region)
    service = keystone.image_service_id
    with _system_admin(keystone) as admin:
        endpoints = admin.get("endpoints", params={"service_id": service}).json()["endpoints"]
        (endpoint,) = [e for e in endpoints if e["region_id"] == region]
        registered = [
            {"service_id": service, "region_id": region, "resource_name": name, "default_limit": n}
            for name, n in DEFAULTS.items()
        ]
        made = admin.post("registered_limits", json={"registered_limits": registered})
        assert made.status_code == 201, made.text
        _set_project_limit(admin, keystone, region, "beta", "image_count_total", 4)
    identifier: str = endpoint["id"]
    return identifier


def _set_project_limit(
    admin: httpx.Client,
    keystone: RunningKeystone,
    region: str,
    project: str,
    resource: str,
    limit: int,
) -> None:
    query = {
        "service_id": keystone.image_service_id,
        "region_id": region,
        "project_id": keystone.projects[project],
        "resource_name": resource,
    }
    existing = admin.get("limits", params=query).json()["limits"]
    if existing:
        changed = admin.patch(
            f"limits/{existing[0]['id']}", json={"limit": {"resource_limit": limit}}
        )
        assert changed.status_code == 200, changed.text
        return
    made = admin.post("limits", json={"limits": [{**query, "resource_limit": limit}]})
    assert made.status_code == 201, made.text


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory,
    keystone: RunningKeystone,
    region: str,
    endpoint_id: str,
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("keystone-limits")
    env = {
        **keystone_env(keystone),
        "SKYLENS_QUOTAS_SOURCE": "keystone",
        "SKYLENS_QUOTAS_CACHE_SECONDS": str(QUOTA_CACHE_SECONDS),
        "SKYLENS_KEYSTONE_ENDPOINT_ID": endpoint_id,
    }
    url = f"sqlite:///{data_dir / 'skylens.db'}"
    with skylens_server(data_dir, url, "sqlite", extra_env=env) as server:
        keystone.set_image_endpoint(server.url, region)
        yield server


def test_usage_shows_keystones_limits_through_glanceclient(
    limited: RunningServer, keystone: RunningKeystone
) -> None:
    alpha = GlanceClient(endpoint=limited.url, token=keystone.token("alpha-member"))
    beta = GlanceClient(endpoint=limited.url, token=keystone.token("beta-member"))

    assert alpha.info.get_usage() == {
        "image_size_total": {"limit": 1, "usage": 0},
        "image_stage_total": {"limit": 0, "usage": 0},  # none registered: fails closed
        "image_count_total": {"limit": 2, "usage": 0},
        "image_count_uploading": {"limit": 1, "usage": 0},
    }
    assert beta.info.get_usage()["image_count_total"] == {"limit": 4, "usage": 0}


def test_the_glance_usage_command(limited: RunningServer, keystone: RunningKeystone) -> None:
    token = keystone.token("alpha-reader")
    result = run_in_terminal(
        [str(BIN / "glance"), "--os-image-url", limited.url, "--os-auth-token", token, "usage"]
    )

    assert result.returncode == 0, result.stderr
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines() if "|" in line}
    assert {"image_size_total", "image_count_total", "image_count_uploading"} <= set(rows)
    assert rows["image_count_total"].split("|")[2].strip() == "2"


def test_image_count_total_from_keystone_is_enforced(
    limited: RunningServer, keystone: RunningKeystone
) -> None:
    with client(limited, keystone.token("alpha-member")) as member:
        statuses = [member.post("/v2/images", json={"name": "a"}).status_code for _ in range(2)]
        refused = member.post("/v2/images", json={"name": "a"})

    assert statuses == [201, 201]
    project = keystone.projects["alpha"]
    assert_error(refused, 413, over_limit(project, "image_count_total", 2, 2, 1))


def test_a_lowered_size_limit_refuses_the_next_upload_before_any_data(
    limited: RunningServer, keystone: RunningKeystone, region: str
) -> None:
    with client(limited, keystone.token("beta-member")) as member:
        first, second = (
            member.post(
                "/v2/images", json={"disk_format": "raw", "container_format": "bare"}
            ).json()["id"]
            for _ in range(2)
        )
        filled = member.put(f"/v2/images/{first}/file", content=b"x" * MIB, headers=UPLOAD)
        assert filled.status_code == 204, filled.text
        with _system_admin(keystone) as admin:
            _set_project_limit(admin, keystone, region, "beta", "image_size_total", 0)
        time.sleep(QUOTA_CACHE_SECONDS + 0.5)

        refused = member.put(f"/v2/images/{second}/file", content=b"y", headers=UPLOAD)

        project = keystone.projects["beta"]
        assert_error(refused, 413, over_limit(project, "image_size_total", 0, 1, 0))
        assert member.get(f"/v2/images/{second}").json()["status"] == "queued"
        assert member.get("/v2/info/usage").json()["usage"]["image_size_total"] == {
            "limit": 0,
            "usage": 1,
        }


def test_limits_keystone_cannot_give_are_503(tmp_path: Path, keystone: RunningKeystone) -> None:
    env = {
        **keystone_env(keystone),
        "SKYLENS_QUOTAS_SOURCE": "keystone",
        "SKYLENS_KEYSTONE_ENDPOINT_ID": "no-such-endpoint",
    }
    url = f"sqlite:///{tmp_path / 'skylens.db'}"
    with (
        skylens_server(tmp_path, url, "sqlite", extra_env=env) as server,
        client(server, keystone.token("alpha-member")) as member,
    ):
        created = member.post("/v2/images", json={"name": "a"})
        usage = member.get("/v2/info/usage")
        listed = member.get("/v2/images")

    unavailable = "The Keystone service is temporarily unavailable."
    assert_error(created, 503, unavailable)
    assert_error(usage, 503, unavailable)
    assert listed.status_code == 200  # only writes that claim quota need the limits
