"""Reading `GET /v2/images` the way a client does: pages, `next` links, errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from tests.support.errors import assert_error

Params = Sequence[tuple[str, str]] | Mapping[str, str]


def _pairs(params: Params) -> list[tuple[str, str | int | float | bool | None]]:
    items = params.items() if isinstance(params, Mapping) else params
    return list(items)


def list_images(client: httpx.Client, params: Params = ()) -> list[dict[str, Any]]:
    """The images on the one page `params` asks for."""
    response = client.get("/v2/images", params=_pairs(params))
    assert response.status_code == 200, response.text
    images: list[dict[str, Any]] = response.json()["images"]
    return images


def list_ids(client: httpx.Client, params: Params = ()) -> list[str]:
    return [image["id"] for image in list_images(client, params)]


def walk_pages(client: httpx.Client, params: Params = ()) -> list[list[str]]:
    """Follow `next` from the first page until there is none: the ids, page by page."""
    response = client.get("/v2/images", params=_pairs(params))
    pages: list[list[str]] = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([image["id"] for image in body["images"]])
        if "next" not in body:
            return pages
        assert len(pages) < 100, "paging does not end"
        response = client.get(body["next"])


def assert_bad_request(response: httpx.Response, message: str) -> None:
    """A 400 carrying exactly `message`, in webob's JSON error format."""
    assert_error(response, 400, message)
