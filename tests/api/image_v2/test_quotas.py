"""Per-project quotas from configuration, and `GET /v2/info/usage` (API 2.13).

One server per backend, with two worker processes so concurrent requests really
race across processes, configured with

    [quotas]  source = "config", image_count_total = 3, image_count_uploading = 1,
              image_size_total = 2 (MiB); image_stage_total unlimited
    [quotas.projects.<SIZE_ONLY>]  only image_size_total = 2 (MiB) limits it
    [quotas.projects.<STAGE_ONLY>]  only image_stage_total = 2 (MiB) limits it

Every test works in a fresh project (the defaults) or one named in the config,
which it alone uses.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.errors import assert_error, over_limit
from tests.support.identities import Identity, member_of, new_project
from tests.support.imports import settled
from tests.support.servers import RunningServer, dedicated_server

MIB = 1 << 20
SIZE_ONLY = "quota-size-only"
STAGE_ONLY = "quota-stage-only"
UPLOAD_HEADERS = {"Content-Type": "application/octet-stream"}


def _config(directory: Path) -> Path:
    path = directory / "skylens.toml"
    path.write_text(
        "[server]\nworkers = 2\n\n"
        '[quotas]\nsource = "config"\nimage_count_total = 3\nimage_count_uploading = 1\n'
        "image_size_total = 2\n\n"
        f"[quotas.projects.{SIZE_ONLY}]\nimage_count_total = -1\nimage_count_uploading = -1\n"
        f"\n[quotas.projects.{STAGE_ONLY}]\nimage_count_total = -1\n"
        "image_count_uploading = -1\nimage_size_total = -1\nimage_stage_total = 2\n"
    )
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def quota_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    backend = request.param
    data_dir = tmp_path_factory.mktemp(f"quotas-{backend}")
    args = ("--config", str(_config(data_dir)))
    with dedicated_server(data_dir, backend, extra_args=args) as server:
        yield server


@pytest.fixture
def owner() -> Identity:
    return member_of(new_project())


def _client(server: RunningServer, identity: Identity) -> httpx.Client:
    headers = {**identity.headers, "Accept": "application/json"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def _create(api: httpx.Client) -> str:
    response = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def _usage(api: httpx.Client) -> dict[str, dict[str, int]]:
    response = api.get("/v2/info/usage")
    assert response.status_code == 200, response.text
    usage: dict[str, dict[str, int]] = response.json()["usage"]
    return usage


def _count(api: httpx.Client) -> int:
    return len(api.get("/v2/images").json()["images"])


# -- usage ----------------------------------------------------------------------


def test_usage_is_empty_without_a_quota_system(api: httpx.Client) -> None:
    response = api.get("/v2/info/usage")

    assert response.status_code == 200
    assert response.json() == {"usage": {}}


def test_usage_reports_every_resource_with_its_limit(
    quota_server: RunningServer, owner: Identity
) -> None:
    with _client(quota_server, owner) as api:
        assert _usage(api) == {
            "image_size_total": {"limit": 2, "usage": 0},
            "image_stage_total": {"limit": -1, "usage": 0},
            "image_count_total": {"limit": 3, "usage": 0},
            "image_count_uploading": {"limit": 1, "usage": 0},
        }
        image_id = _create(api)
        uploaded = api.put(
            f"/v2/images/{image_id}/file", content=b"x" * (MIB + 1), headers=UPLOAD_HEADERS
        )
        assert uploaded.status_code == 204, uploaded.text
        _create(api)

        usage = _usage(api)

    assert usage["image_count_total"] == {"limit": 3, "usage": 2}
    assert usage["image_size_total"] == {"limit": 2, "usage": 1}  # MiB, rounded down
    assert usage["image_count_uploading"] == {"limit": 1, "usage": 0}


def test_usage_follows_a_project_override(quota_server: RunningServer) -> None:
    with _client(quota_server, member_of(SIZE_ONLY)) as api:
        usage = _usage(api)

    assert usage["image_count_total"]["limit"] == -1
    assert usage["image_count_uploading"]["limit"] == -1
    assert usage["image_size_total"]["limit"] == 2


# -- image_count_total ------------------------------------------------------------


def test_creating_past_image_count_total_is_413_and_a_delete_frees_a_slot(
    quota_server: RunningServer, owner: Identity
) -> None:
    with _client(quota_server, owner) as api:
        images = [_create(api) for _ in range(3)]

        refused = api.post("/v2/images", json={"name": "fourth"})

        assert_error(refused, 413, over_limit(owner.project, "image_count_total", 3, 3, 1))
        assert _count(api) == 3
        assert api.delete(f"/v2/images/{images[0]}").status_code == 204
        assert api.post("/v2/images", json={"name": "fourth"}).status_code == 201
        assert _count(api) == 3


def test_concurrent_creates_never_end_above_image_count_total(
    quota_server: RunningServer, owner: Identity
) -> None:
    attempts = 16
    start = threading.Barrier(attempts)

    def create(_: int) -> int:
        with _client(quota_server, owner) as api:
            start.wait()
            return api.post("/v2/images", json={"name": "racer"}).status_code

    with concurrent.futures.ThreadPoolExecutor(attempts) as pool:
        statuses = list(pool.map(create, range(attempts)))

    assert sorted(statuses) == [201] * 3 + [413] * (attempts - 3)
    with _client(quota_server, owner) as api:
        assert _count(api) == 3
        assert _usage(api)["image_count_total"]["usage"] == 3


def test_an_admin_creating_for_a_project_spends_that_projects_count(
    quota_server: RunningServer, owner: Identity
) -> None:
    admin = Identity(new_project(), "cloud-admin", ("admin", "member", "reader"))
    with _client(quota_server, admin) as api:
        for _ in range(3):
            assert api.post("/v2/images", json={"owner": owner.project}).status_code == 201
        refused = api.post("/v2/images", json={"owner": owner.project})

    assert_error(refused, 413, over_limit(owner.project, "image_count_total", 3, 3, 1))


# -- image_size_total --------------------------------------------------------------


def test_an_upload_that_would_pass_image_size_total_is_413_and_leaves_nothing(
    quota_server: RunningServer, owner: Identity
) -> None:
    with _client(quota_server, owner) as api:
        first, second = _create(api), _create(api)
        fits = api.put(
            f"/v2/images/{first}/file", content=b"a" * (3 * MIB // 2), headers=UPLOAD_HEADERS
        )
        assert fits.status_code == 204, fits.text

        refused = api.put(f"/v2/images/{second}/file", content=b"b" * MIB, headers=UPLOAD_HEADERS)

        assert refused.status_code == 413
        assert (
            "Resource image_size_total is over limit of 2 due to current usage 1"
            in (refused.json()["message"])
        )
        image = api.get(f"/v2/images/{second}").json()
        assert (image["status"], image["size"], image.get("stores")) == ("queued", None, None)
        assert _usage(api)["image_size_total"]["usage"] == 1
        assert (
            api.put(
                f"/v2/images/{second}/file", content=b"b" * (MIB // 4), headers=UPLOAD_HEADERS
            ).status_code
            == 204
        )


def test_an_announced_size_past_the_budget_is_refused_before_any_data(
    quota_server: RunningServer, owner: Identity
) -> None:
    with _client(quota_server, owner) as api:
        image_id = _create(api)
        sent = threading.Event()

        def body() -> Iterator[bytes]:
            sent.set()
            yield b"c" * (3 * MIB)

        refused = api.put(
            f"/v2/images/{image_id}/file",
            content=body(),
            headers={**UPLOAD_HEADERS, "x-openstack-image-size": str(3 * MIB)},
        )

        assert_error(refused, 413, over_limit(owner.project, "image_size_total", 2, 0, 3))
        assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"


def test_concurrent_uploads_never_store_more_than_image_size_total(
    quota_server: RunningServer,
) -> None:
    """Six uploads of 0.6 MiB race for 2 MiB: at most three fit, whatever the timing."""
    with _client(quota_server, member_of(SIZE_ONLY)) as api:
        images = [_create(api) for _ in range(6)]
    size = 6 * MIB // 10
    start = threading.Barrier(len(images))

    def upload(image_id: str) -> int:
        with _client(quota_server, member_of(SIZE_ONLY)) as api:
            start.wait()
            return api.put(
                f"/v2/images/{image_id}/file", content=b"d" * size, headers=UPLOAD_HEADERS
            ).status_code

    with concurrent.futures.ThreadPoolExecutor(len(images)) as pool:
        statuses = list(pool.map(upload, images))

    assert set(statuses) <= {204, 413}
    assert statuses.count(204) == 3  # the budget always takes exactly three
    with _client(quota_server, member_of(SIZE_ONLY)) as api:
        states = [api.get(f"/v2/images/{image_id}").json() for image_id in images]
        assert sum(image["size"] or 0 for image in states) <= 2 * MIB
        for status, image in zip(statuses, states, strict=True):
            assert image["status"] == ("active" if status == 204 else "queued")
        assert _usage(api)["image_size_total"]["usage"] == (3 * size) // MIB


# -- image_count_uploading --------------------------------------------------------------


def test_a_second_upload_while_one_streams_is_413_for_image_count_uploading(
    quota_server: RunningServer, owner: Identity
) -> None:
    with _client(quota_server, owner) as api:
        streaming, waiting = _create(api), _create(api)
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield b"e" * 1024
        release.wait(60)
        yield b"e" * 1024

    def upload_slowly() -> int:
        with _client(quota_server, owner) as api:
            return api.put(
                f"/v2/images/{streaming}/file", content=slow_body(), headers=UPLOAD_HEADERS
            ).status_code

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(upload_slowly)
        with _client(quota_server, owner) as api:
            deadline = time.monotonic() + 30
            while api.get(f"/v2/images/{streaming}").json()["status"] != "saving":
                assert time.monotonic() < deadline, "the first upload never started"
                time.sleep(0.05)
            assert _usage(api)["image_count_uploading"]["usage"] == 1

            refused = api.put(f"/v2/images/{waiting}/file", content=b"f", headers=UPLOAD_HEADERS)

            assert_error(refused, 413, over_limit(owner.project, "image_count_uploading", 1, 2, 0))
            assert api.get(f"/v2/images/{waiting}").json()["status"] == "queued"
            release.set()
            assert slow.result(timeout=60) == 204
            again = api.put(f"/v2/images/{waiting}/file", content=b"f", headers=UPLOAD_HEADERS)
            assert again.status_code == 204, again.text


# -- image_stage_total -----------------------------------------------------------------


def test_staged_bytes_are_charged_to_image_stage_total_until_the_import_ends(
    quota_server: RunningServer,
) -> None:
    with _client(quota_server, member_of(STAGE_ONLY)) as api:
        first, second = _create(api), _create(api)
        staged = api.put(
            f"/v2/images/{first}/stage", content=b"a" * (3 * MIB // 2), headers=UPLOAD_HEADERS
        )
        assert staged.status_code == 204, staged.text
        assert _usage(api)["image_stage_total"] == {"limit": 2, "usage": 1}

        refused = api.put(f"/v2/images/{second}/stage", content=b"b" * MIB, headers=UPLOAD_HEADERS)

        assert refused.status_code == 413
        assert (
            "Resource image_stage_total is over limit of 2 due to current usage 1"
            in refused.json()["message"]
        )
        image = api.get(f"/v2/images/{second}").json()
        assert (image["status"], image["size"]) == ("queued", None)
        imported = api.post(
            f"/v2/images/{first}/import", json={"method": {"name": "glance-direct"}}
        )
        assert imported.status_code == 202, imported.text
        assert settled(api, first)["status"] == "active"
        # The staged bytes are released: they now count as stored image data.
        assert _usage(api)["image_stage_total"] == {"limit": 2, "usage": 0}
        assert _usage(api)["image_size_total"]["usage"] == 1
        again = api.put(f"/v2/images/{second}/stage", content=b"b" * MIB, headers=UPLOAD_HEADERS)
        assert again.status_code == 204, again.text
        assert _usage(api)["image_stage_total"] == {"limit": 2, "usage": 1}
