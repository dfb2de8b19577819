"""compute.prefix: the proxy moves under a prefix and `/v2.1/...` is the Image API's
again; the prefix's root lists the Compute version. Without a prefix, `/v2.1` is the
Compute API's and the Image API keeps every other version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from skylens.api.components import check_settings
from skylens.config import ConfigError, load
from tests.support.identities import member_of, new_project
from tests.support.servers import RunningServer, skylens_server


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("compute-prefix")
    url = f"sqlite:///{data_dir / 'skylens.db'}"
    env = {"SKYLENS_COMPUTE_PREFIX": "/compute"}
    with skylens_server(data_dir, url, "sqlite", extra_env=env) as server:
        yield server


@pytest.fixture
def client(prefixed: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=prefixed.url, headers=member_of(new_project()).headers) as c:
        yield c


def test_under_a_prefix_both_apis_keep_their_v2_1(
    client: httpx.Client, prefixed: RunningServer
) -> None:
    created = client.post("/v2/images", json={"name": "both"})
    assert created.status_code == 201
    image_id = created.json()["id"]

    image_api = client.get(f"/v2.1/images/{image_id}")
    compute = client.get(f"/compute/v2.1/images/{image_id}")

    assert image_api.json()["id"] == image_id
    assert "OpenStack-API-Version" not in image_api.headers
    assert compute.json()["image"]["id"] == image_id
    assert compute.headers["OpenStack-API-Version"] == "compute 2.1"
    links = compute.json()["image"]["links"]
    assert links[0]["href"] == f"{prefixed.url}/compute/v2.1/images/{image_id}"
    assert links[1]["href"] == f"{prefixed.url}/compute/images/{image_id}"


def test_the_prefix_root_lists_the_compute_version(
    client: httpx.Client, prefixed: RunningServer
) -> None:
    for path in ("/compute", "/compute/"):
        response = client.get(path)
        assert response.status_code == 200
        (version,) = response.json()["versions"]
        assert version["id"] == "v2.1"
        assert version["links"] == [{"rel": "self", "href": f"{prefixed.url}/compute/v2.1/"}]
    # The service root stays the Image API's version list.
    assert client.get("/").status_code == 300


def test_without_a_prefix_the_root_is_the_image_apis(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/")

    assert response.status_code == 300
    assert {v["id"] for v in response.json()["versions"]} >= {"v2.0", "v2.8"}


@pytest.mark.parametrize(
    "prefix", ["compute", "/compute/", "/v2", "/v2.1", "/versions", "/healthcheck", "/a//b"]
)
def test_a_prefix_the_image_api_owns_or_malformed_is_refused(tmp_path: Path, prefix: str) -> None:
    settings = load(environ={}, overrides={"data_dir": str(tmp_path), "compute.prefix": prefix})

    with pytest.raises(ConfigError, match=r"compute\.prefix"):
        check_settings(settings)
