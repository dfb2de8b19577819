"""Many writers on one image at once: each waits its turn, none is refused, none is lost.

Issue 18 item 20: on PostgreSQL an optimistic retry gave up on up to 27 of 90
racing operations with 409 "is being changed by other requests; try again".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import ClientFactory
from tests.support.identities import Identity
from tests.support.images import create_image, patch_image, show_image

WRITERS = 90


def all_at_once(
    clients: list[httpx.Client], write: Callable[[httpx.Client, int], httpx.Response]
) -> list[tuple[int, str]]:
    """Run `write(client, index)` on every client in its own thread, released together;
    the (status, body) of each, in order."""
    start = threading.Barrier(len(clients))

    def one(index: int) -> tuple[int, str]:
        start.wait()
        response = write(clients[index], index)
        return response.status_code, response.text

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        return list(pool.map(one, range(len(clients))))


def test_90_concurrent_patches_each_adding_a_property_all_succeed_and_all_stay(
    http: ClientFactory, member: Identity, api: httpx.Client
) -> None:
    image = create_image(api, name="raced")
    clients = [http(member) for _ in range(WRITERS)]

    def add(client: httpx.Client, index: int) -> httpx.Response:
        operation = {"op": "add", "path": f"/racer_{index}", "value": str(index)}
        return patch_image(client, image["id"], [operation])

    answers = all_at_once(clients, add)

    assert [status for status, _ in answers] == [200] * WRITERS, [
        body for status, body in answers if status != 200
    ]
    final = show_image(api, image["id"])
    assert {key: value for key, value in final.items() if key.startswith("racer_")} == {
        f"racer_{index}": str(index) for index in range(WRITERS)
    }


def test_concurrent_patches_tag_adds_and_member_adds_all_succeed(
    http: ClientFactory, member: Identity, api: httpx.Client
) -> None:
    image = create_image(api, name="raced", visibility="shared")
    clients = [http(member) for _ in range(WRITERS)]

    def write(client: httpx.Client, index: int) -> httpx.Response:
        kind = index % 3
        if kind == 0:
            operation = {"op": "add", "path": f"/racer_{index}", "value": str(index)}
            return patch_image(client, image["id"], [operation])
        if kind == 1:
            return client.put(f"/v2/images/{image['id']}/tags/tag_{index}")
        return client.post(f"/v2/images/{image['id']}/members", json={"member": f"m{index}"})

    answers = all_at_once(clients, write)

    expected = [(200, 204, 200)[index % 3] for index in range(WRITERS)]
    assert [status for status, _ in answers] == expected, [
        body for (status, body), want in zip(answers, expected, strict=True) if status != want
    ]
    final: dict[str, Any] = show_image(api, image["id"])
    assert {key for key in final if key.startswith("racer_")} == {
        f"racer_{index}" for index in range(0, WRITERS, 3)
    }
    assert set(final["tags"]) == {f"tag_{index}" for index in range(1, WRITERS, 3)}
    members = api.get(f"/v2/images/{image['id']}/members").json()["members"]
    assert {entry["member_id"] for entry in members} == {
        f"m{index}" for index in range(2, WRITERS, 3)
    }
