"""The image cache API (2.14-2.18) of a Glance without a cache: every route answers
404 `Caching via API is not supported at this site.`, as Glance does when no cache is
configured (exchange 238), so clients learn there is no cache rather than that the
paths do not exist. Skylens has no image cache yet (docs/compatibility.md)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from skylens.api.routing import Operation, Resource
from skylens.domain.access import RequestContext
from skylens.domain.errors import CachingNotSupported


async def no_cache(_request: Request, _context: RequestContext) -> Response:
    raise CachingNotSupported()


def cache_resources() -> list[Resource]:
    def answer(method: str, summary: str) -> Operation:
        return Operation(method, no_cache, summary, errors=(401, 404))

    return [
        Resource(
            "/v2/cache",
            [
                answer("GET", "List cached and queued images (no cache: 404)"),
                answer("DELETE", "Clear the cache and its queue (no cache: 404)"),
            ],
            tag="cache",
        ),
        Resource(
            "/v2/cache/nodes/{image_id}",
            [answer("GET", "List the nodes that cache an image (no cache: 404)")],
            tag="cache",
        ),
        Resource(
            "/v2/cache/clean", [answer("POST", "Clean the cache (no cache: 404)")], tag="cache"
        ),
        Resource(
            "/v2/cache/prune", [answer("POST", "Prune the cache (no cache: 404)")], tag="cache"
        ),
        # After the fixed paths: `{image_id}` would match `clean` and `prune`.
        Resource(
            "/v2/cache/{image_id}",
            [
                answer("PUT", "Queue an image for caching (no cache: 404)"),
                answer("DELETE", "Delete an image from the cache (no cache: 404)"),
            ],
            tag="cache",
        ),
    ]
