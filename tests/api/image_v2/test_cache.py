"""The image cache API on a service without an image cache: every route answers as a
Glance without a cache does (exchange 238), after authentication and, as in Glance's
controller, after the route's policy (and the image, for the routes naming one)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity
from tests.support.image_cache import CACHE_ROUTES

NO_CACHE = "Caching via API is not supported at this site."


def _image(api: httpx.Client) -> str:
    body = {"disk_format": "raw", "container_format": "bare"}
    image_id: str = api.post("/v2/images", json=body).json()["id"]
    return image_id


@pytest.mark.parametrize(("method", "path", "_action"), CACHE_ROUTES)
def test_every_cache_route_says_caching_is_not_supported(
    http: ClientFactory, admin: Identity, method: str, path: str, _action: str
) -> None:
    api = http(admin)
    response = api.request(method, path.format(id=_image(api)))

    assert_error(response, 404, NO_CACHE)


@pytest.mark.parametrize(("method", "path", "action"), CACHE_ROUTES)
def test_the_policy_is_checked_first(
    http: ClientFactory, member: Identity, method: str, path: str, action: str
) -> None:
    api = http(member)
    response = api.request(method, path.format(id=_image(api)))

    assert_error(response, 403, f"You are not authorized to complete {action} action.")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_an_unknown_image_is_404_before_anything(
    http: ClientFactory, admin: Identity, method: str
) -> None:
    missing = str(uuid.uuid4())

    response = http(admin).request(method, f"/v2/cache/{missing}")

    assert_error(response, 404, f"Image {missing} not found.")


def test_the_cache_routes_keep_glances_405_for_other_methods(
    http: ClientFactory, admin: Identity
) -> None:
    assert http(admin).post("/v2/cache").status_code == 405
