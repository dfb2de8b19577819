"""Route groups: the same route answers a path as with Starlette's plain list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import BaseRoute, Match, Route, Router

from skylens.api.routing import RouteGroup, grouped
from tests.support.routes import served_routes


async def _endpoint(scope: object, receive: object, send: object) -> None:
    raise AssertionError("never called: only matching is tested")


def _route(path: str) -> Route:
    return Route(path, _endpoint, methods=None, name=path)


def _chosen(routes: list[BaseRoute], path: str) -> str | None:
    """The path template of the route a router of `routes` sends `path` to."""
    scope = {"type": "http", "path": path, "root_path": "", "method": "GET"}
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            chosen = child_scope.get("skylens.route", route)
            assert isinstance(chosen, Route)
            return chosen.path
    return None


def _sample(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x-1", template)


def test_every_served_path_reaches_the_route_it_reached_before(tmp_path: Path) -> None:
    routes = [served.route for served in served_routes(tmp_path) if served.surface == "image"]
    plain: list[BaseRoute] = list(routes)
    groups = grouped(routes)
    assert len(groups) < len(routes) / 3
    samples = {_sample(route.path) for route in routes}
    samples |= {"/v2/images-x", "/v2/images/", "/v2/images/a/b/c/d", "/nowhere", "/", "/v2"}
    for path in sorted(samples):
        assert _chosen(groups, path) == _chosen(plain, path), path


def test_a_route_with_an_early_parameter_keeps_its_place() -> None:
    """`/v2/{anything}` comes before `/v2/images` here, so it must keep answering
    `/v2/images`: the group opened before it is closed, not joined by later routes."""
    routes = [_route("/v2/images/{id}"), _route("/v2/{anything}"), _route("/v2/images")]
    groups = grouped(routes)
    assert [type(entry) for entry in groups] == [RouteGroup, Route, RouteGroup]
    assert _chosen(groups, "/v2/images") == "/v2/{anything}"
    assert _chosen(groups, "/v2/images/7") == "/v2/images/{id}"


@pytest.mark.parametrize(
    ("template", "prefix"),
    [
        ("/v2/images/{image_id}/file", "/v2/images"),
        ("/v2/schemas/image", "/v2/schemas"),
        ("/versions", "/versions"),
        ("/", "/"),
        ("/v2.1/{project_id}/images", None),
        ("/v2/images{suffix}", None),
    ],
)
def test_the_prefix_of_a_group_is_what_every_matching_path_starts_with(
    template: str, prefix: str | None
) -> None:
    [entry] = grouped([_route(template)])
    if prefix is None:
        assert isinstance(entry, Route)
    else:
        assert isinstance(entry, RouteGroup)
        assert entry.prefix == prefix


def test_a_group_finds_routes_by_name_as_a_router_does() -> None:
    router = Router(routes=grouped([_route("/v2/images/{image_id}")]))
    assert router.url_path_for("/v2/images/{image_id}", image_id="7") == "/v2/images/7"
