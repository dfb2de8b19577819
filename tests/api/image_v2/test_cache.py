"""The image cache API on a service without an image cache: every route answers as a
Glance without a cache does (exchange 238), after authentication."""

from __future__ import annotations

import pytest

from tests.conftest import ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity

NO_CACHE = "Caching via API is not supported at this site."
IMAGE = "0f4ad3b8-5c1e-4f53-9a9c-3c1d2b7e6a10"  # any id: there is no cache to look in


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/cache"),
        ("DELETE", "/v2/cache"),
        ("PUT", f"/v2/cache/{IMAGE}"),
        ("DELETE", f"/v2/cache/{IMAGE}"),
        ("GET", f"/v2/cache/nodes/{IMAGE}"),
        ("POST", "/v2/cache/clean"),
        ("POST", "/v2/cache/prune"),
    ],
)
def test_every_cache_route_says_caching_is_not_supported(
    http: ClientFactory, admin: Identity, method: str, path: str
) -> None:
    response = http(admin).request(method, path)

    assert_error(response, 404, NO_CACHE)


def test_the_cache_routes_keep_glances_405_for_other_methods(
    http: ClientFactory, admin: Identity
) -> None:
    assert http(admin).post("/v2/cache").status_code == 405
