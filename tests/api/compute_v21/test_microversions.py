"""Compute microversions: the headers read and echoed, the errors, the boundaries
where the Compute API removed the image proxy routes (2.36) and its metadata (2.39)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.images import create_image

STANDARD = "OpenStack-API-Version"
LEGACY = "X-OpenStack-Nova-API-Version"


def _fault(response: httpx.Response, name: str, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == [name]
    assert body[name]["code"] == status
    message: str = body[name]["message"]
    return message


def test_no_header_is_2_1_and_the_version_is_echoed_with_vary(api: httpx.Client) -> None:
    response = api.get("/v2.1/images")

    assert response.status_code == 200
    assert response.headers[STANDARD] == "compute 2.1"
    assert response.headers[LEGACY] == "2.1"
    assert response.headers["vary"] == f"{STANDARD}, {LEGACY}"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({STANDARD: "compute 2.30"}, "2.30"),
        ({LEGACY: "2.12"}, "2.12"),
        ({STANDARD: "volume 3.5, compute 2.7"}, "2.7"),
        ({STANDARD: "COMPUTE 2.3"}, "2.3"),
        ({STANDARD: "compute 2.20", LEGACY: "2.4"}, "2.20"),  # the standard header wins
        ({STANDARD: "volume 3.5", LEGACY: "2.4"}, "2.4"),  # no compute entry: the legacy one
        ({STANDARD: "compute latest"}, "2.96"),
        ({LEGACY: "latest"}, "2.96"),
    ],
)
def test_the_requested_version_is_read_from_either_header(
    api: httpx.Client, headers: dict[str, str], expected: str
) -> None:
    response = api.get("/v2.1", headers=headers)

    assert response.status_code == 200
    assert response.headers[STANDARD] == f"compute {expected}"
    assert response.headers[LEGACY] == expected


@pytest.mark.parametrize("version", ["2", "2.x", "02.1", "2.01", "v2.1", "2.1.1", "Latest"])
def test_a_malformed_version_is_400(api: httpx.Client, version: str) -> None:
    response = api.get("/v2.1/images", headers={STANDARD: f"compute {version}"})

    message = _fault(response, "badRequest", 400)
    assert message == (
        f"API Version String {version} is of invalid format. Must be of format MajorNum.MinorNum."
    )
    assert STANDARD not in response.headers


@pytest.mark.parametrize(
    "version",
    ["2.0", "2.97", "3.0", "1.1", "2.1000000000", f"2.{'9' * 5000}", f"{'1' * 5000}.1"],
    ids=lambda version: version[:16],
)
def test_a_version_out_of_range_is_406(api: httpx.Client, version: str) -> None:
    """Numbers too long for `int` (5000 digits: a 500 before authentication) too."""
    response = api.get("/v2.1/images", headers={LEGACY: version})

    message = _fault(response, "computeFault", 406)
    assert message == (
        f"Version {version} is not supported by the API. Minimum is 2.1 and maximum is 2.96."
    )


@pytest.mark.parametrize(
    ("version", "status"), [("2.1", 200), ("2.35", 200), ("2.36", 404), ("latest", 404)]
)
def test_image_routes_end_at_2_35(api: httpx.Client, version: str, status: int) -> None:
    image_id = create_image(api, name="bounded")["id"]
    headers = {STANDARD: f"compute {version}"}

    for path in ("/v2.1/images", "/v2.1/images/detail", f"/v2.1/images/{image_id}"):
        response = api.get(path, headers=headers)
        assert response.status_code == status, (path, response.text)
        assert "compute " in response.headers[STANDARD]
        if status == 404:
            assert _fault(response, "itemNotFound", 404) == "The resource could not be found."
    deleted = api.delete(f"/v2.1/images/{image_id}", headers=headers)
    assert deleted.status_code == (204 if status == 200 else 404)


@pytest.mark.parametrize(
    ("version", "status"), [("2.35", 200), ("2.36", 200), ("2.38", 200), ("2.39", 404)]
)
def test_image_metadata_routes_end_at_2_38(api: httpx.Client, version: str, status: int) -> None:
    image_id = create_image(api, name="meta", os_distro="debian")["id"]
    headers = {LEGACY: version}
    base = f"/v2.1/images/{image_id}/metadata"

    responses = [
        api.get(base, headers=headers),
        api.post(base, json={"metadata": {"a": "1"}}, headers=headers),
        api.put(base, json={"metadata": {"os_distro": "debian", "a": "1"}}, headers=headers),
        api.get(f"{base}/a", headers=headers),
        api.put(f"{base}/a", json={"meta": {"a": "2"}}, headers=headers),
    ]
    for response in responses:
        assert response.status_code == status, response.text
        assert response.headers[LEGACY] == version
    assert api.delete(f"{base}/a", headers=headers).status_code == (204 if status == 200 else 404)


def test_version_document_is_served_without_authentication(http: ClientFactory) -> None:
    client = http()

    for path in ("/v2.1", "/v2.1/"):
        response = client.get(path)
        assert response.status_code == 200
        version = response.json()["version"]
        assert version["id"] == "v2.1"
        assert version["status"] == "CURRENT"
        assert version["min_version"] == "2.1"
        assert version["version"] == "2.96"
        assert version["links"][0]["rel"] == "self"
        assert version["links"][0]["href"].endswith("/v2.1/")
        assert version["media-types"] == [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ]


def test_unknown_compute_paths_answer_compute_faults(api: httpx.Client) -> None:
    response = api.get("/v2.1/servers")

    assert _fault(response, "itemNotFound", 404) == "The resource could not be found."


def test_an_unsupported_method_is_405_with_allow(api: httpx.Client) -> None:
    response = api.post("/v2.1/images", json={})

    _fault(response, "badMethod", 405)
    assert response.headers["allow"] == "GET"
