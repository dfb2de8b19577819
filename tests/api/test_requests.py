"""Bounds on what one request may send (issue 18, items 2 and 9), on both surfaces.

JSON bodies stop at `server.max_request_body_size` (112 KiB) with oslo.middleware's
413, whether the body announces its length or comes chunked, and no string a client
sends may hold a NUL character, which PostgreSQL cannot store: 400 on every backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.errors import assert_error
from tests.support.images import create_image
from tests.support.servers import RunningServer

LIMIT = 114688
PATCH = "application/openstack-images-v2.1-json-patch"
TOO_LARGE = f"Request is too large. Larger than max_request_body_size ({LIMIT})."
TOO_LARGE_CHUNKED = f"Request is too large. Larger than {LIMIT}."


def _body_of(size: int) -> bytes:
    """A create body of exactly `size` bytes: properties of 1,000 characters and one
    shorter, each well under the property value limit."""
    properties: dict[str, str] = {}
    while len(orjson.dumps(properties)) < size - 1100:
        properties[f"p{len(properties):03d}"] = "v" * 1000
    rest = size - len(orjson.dumps({**properties, "last": ""}))
    properties["last"] = "v" * rest
    body = orjson.dumps(properties)
    assert len(body) == size
    return body


def _chunks(body: bytes, size: int = 16384) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_body_of_exactly_the_limit_is_read(api: httpx.Client) -> None:
    response = api.post(
        "/v2/images", content=_body_of(LIMIT), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 201, response.text


def test_a_longer_body_is_413_before_it_is_read(api: httpx.Client) -> None:
    response = api.post(
        "/v2/images", content=_body_of(LIMIT + 1), headers={"Content-Type": "application/json"}
    )

    assert_error(response, 413, TOO_LARGE)


def test_a_chunked_body_is_413_once_it_passes_the_limit(api: httpx.Client) -> None:
    response = api.post(
        "/v2/images",
        content=_chunks(_body_of(LIMIT + 1)),
        headers={"Content-Type": "application/json"},
    )

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, TOO_LARGE_CHUNKED)


def test_patch_member_and_action_bodies_are_bounded_too(api: httpx.Client) -> None:
    image_id = create_image(api)["id"]
    large = orjson.dumps([{"op": "add", "path": "/x", "value": "v" * LIMIT}])

    patch = api.patch(f"/v2/images/{image_id}", content=large, headers={"Content-Type": PATCH})
    member = api.post(f"/v2/images/{image_id}/members", content=large)
    action = api.post(f"/v2/images/{image_id}/actions/deactivate", content=_chunks(large))

    assert_error(patch, 413, TOO_LARGE)
    assert_error(member, 413, TOO_LARGE)
    assert_error(action, 413, TOO_LARGE_CHUNKED)


def test_a_compute_metadata_body_is_bounded_with_a_compute_fault(api: httpx.Client) -> None:
    image_id = create_image(api)["id"]
    body = orjson.dumps({"metadata": {"k": "v" * LIMIT}})

    response = api.post(f"/v2.1/images/{image_id}/metadata", content=body)

    assert response.status_code == 413
    assert response.json() == {"overLimit": {"code": 413, "message": TOO_LARGE}}


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_huge_chunked_body_never_grows_the_worker(
    api: httpx.Client, server: RunningServer
) -> None:
    """Before the cap, the whole body was buffered (twice) before the 400."""
    before = _peak_rss_kib(server.pid)
    block = b"[" + b" " * (1 << 20)

    def body() -> Iterator[bytes]:
        for _ in range(96):  # 96 MiB
            yield block

    response = api.post("/v2/images", content=body(), headers={"Content-Type": "application/json"})

    assert_error(response, 413, TOO_LARGE_CHUNKED)
    assert _peak_rss_kib(server.pid) - before < 64 * 1024


# -- NUL characters ----------------------------------------------------------------


@pytest.fixture
def image_id(api: httpx.Client) -> str:
    image: dict[str, Any] = create_image(api, os_distro="arch")
    return str(image["id"])


def _requests(image_id: str) -> list[tuple[str, str, Any, dict[str, str]]]:
    """(method, path, JSON body or None, headers): every kind of string a client names."""
    json = {"Content-Type": "application/json"}
    patch = {"Content-Type": PATCH}
    meta = f"/v2.1/images/{image_id}/metadata"
    return [
        ("GET", "/v2/images/%00", None, {}),
        ("GET", f"/v2/images/{image_id}%00", None, {}),
        ("DELETE", f"/v2/images/{image_id}%00", None, {}),
        ("GET", "/v2/images?name=a%00b", None, {}),
        ("GET", "/v2/images?marker=%00", None, {}),
        ("GET", "/v2/images?tag=a%00", None, {}),
        ("GET", "/v2/images?x%00=1", None, {}),
        ("GET", "/v2/images?os_distro=arch%00", None, {}),
        ("PUT", f"/v2/images/{image_id}/tags/a%00", None, {}),
        ("POST", "/v2/images", {"name": "a\x00"}, json),
        ("POST", "/v2/images", {"tags": ["a\x00"]}, json),
        ("POST", "/v2/images", {"x\x00": "v"}, json),
        ("POST", "/v2/images", {"x": "v\x00"}, json),
        ("PATCH", f"/v2/images/{image_id}", [{"op": "add", "path": "/x\x00", "value": "v"}], patch),
        ("PATCH", f"/v2/images/{image_id}", [{"op": "add", "path": "/x", "value": "\x00"}], patch),
        ("POST", f"/v2/images/{image_id}/members", {"member": "p\x00"}, json),
        ("GET", f"/v2/images/{image_id}/members/p%00", None, {}),
        ("PUT", f"/v2/images/{image_id}/members/p", {"status": "accepted\x00"}, json),
        ("GET", "/v2.1/images?name=a%00", None, {}),
        ("GET", f"/v2.1/images/{image_id}%00", None, {}),
        ("POST", meta, {"metadata": {"k": "v\x00"}}, json),
        ("PUT", f"{meta}/k%00", {"meta": {"k\x00": "v"}}, json),
        ("PUT", f"{meta}/k", {"meta": {"k": "\x00"}}, json),
    ]


KINDS = len(_requests(""))


@pytest.mark.parametrize("kind", range(KINDS))
def test_a_nul_character_anywhere_is_400(api: httpx.Client, image_id: str, kind: int) -> None:
    method, path, body, headers = _requests(image_id)[kind]
    content = None if body is None else orjson.dumps(body)

    response = api.request(method, path, content=content, headers=headers)

    where = "URL" if body is None or "%00" in path else "body"
    message = f"The request {where} can't contain NUL characters."
    if path.startswith("/v2.1"):
        assert response.status_code == 400, response.text
        assert response.json() == {"badRequest": {"code": 400, "message": message}}
    else:
        assert_error(response, 400, message)
    image = api.get(f"/v2/images/{image_id}").json()
    assert image["os_distro"] == "arch"
    assert "x" not in image
    assert image["tags"] == []


def test_other_control_characters_are_kept_as_glance_keeps_them(api: httpx.Client) -> None:
    created = create_image(api, name="tab\there", description="line\nbreak\x1f")

    assert (created["name"], created["description"]) == ("tab\there", "line\nbreak\x1f")
    assert (
        api.get("/v2/images", params={"name": "tab\there"}).json()["images"][0]["id"]
        == (created["id"])
    )


def test_an_escaped_percent_sign_is_not_a_nul(api: httpx.Client) -> None:
    """`%2500` is the text `%00`, not a NUL: an ordinary (unknown) id, so 404."""
    response = api.get(f"/v2/images/{uuid.uuid4()}%2500")

    assert response.status_code == 404
