"""The image cache API (2.14-2.18), as Glance 33's `cached_images` controller.

With a cache (`image_cache.dir`), the routes act on this node's cache (`ImageCache`).
Without one (`NoCache`), each route checks its policy as Glance does and then answers
404 `Caching via API is not supported at this site.` (exchange 238), so clients learn
there is no cache rather than that the paths do not exist.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from skylens.api.offload import Offload
from skylens.api.responses import empty, json_response, no_content
from skylens.api.routing import Handler, Operation, Resource
from skylens.domain.access import RequestContext
from skylens.domain.cache import CachedImage
from skylens.services.image_cache import CacheApi

CLEAR_TARGET = "x-image-cache-clear-target"


def cached_image_view(entry: CachedImage) -> dict[str, object]:
    """One `cached_images` entry, as Glance's centralized_db driver formats it."""
    return {
        "image_id": entry.image_id,
        "last_accessed": _epoch(entry.last_accessed),
        "last_modified": _epoch(entry.last_modified),
        "size": entry.size,
        "hits": entry.hits,
        "checksum": entry.checksum,
    }


def _epoch(value: dt.datetime) -> float:
    """Seconds since the epoch of a naive UTC datetime (whatever the host's zone)."""
    return value.replace(tzinfo=dt.UTC).timestamp()


@dataclasses.dataclass(frozen=True)
class CacheHandlers:
    cache: CacheApi
    offload: Offload

    async def state(self, _request: Request, context: RequestContext) -> Response:
        state = await self.offload(self.cache.state, context)
        return json_response(
            {
                "cached_images": [cached_image_view(entry) for entry in state.cached],
                "queued_images": list(state.queued),
            }
        )

    async def queue(self, request: Request, context: RequestContext) -> Response:
        await self.offload(self.cache.queue, context, request.path_params["image_id"])
        return empty(202)

    async def delete(self, request: Request, context: RequestContext) -> Response:
        await self.offload(self.cache.delete, context, request.path_params["image_id"])
        return no_content()

    async def clear(self, request: Request, context: RequestContext) -> Response:
        await self.offload(self.cache.clear, context, request.headers.get(CLEAR_TARGET, ""))
        return no_content()

    async def clean(self, _request: Request, context: RequestContext) -> Response:
        await self.offload(self.cache.clean, context)
        return empty(200)

    async def prune(self, _request: Request, context: RequestContext) -> Response:
        pruned = await self.offload(self.cache.prune, context)
        return json_response(
            {"total_files_pruned": pruned.files, "total_bytes_pruned": pruned.bytes}
        )

    async def nodes(self, request: Request, context: RequestContext) -> Response:
        nodes = await self.offload(self.cache.nodes, context, request.path_params["image_id"])
        return json_response(nodes)


def cache_resources(handlers: CacheHandlers) -> list[Resource]:
    def answer(
        method: str, handler: Callable[[CacheHandlers], Handler], summary: str, success: int = 200
    ) -> Operation:
        errors = (400, 401, 403, 404)
        return Operation(method, handler(handlers), summary, success=success, errors=errors)

    return [
        Resource(
            "/v2/cache",
            [
                answer("GET", lambda h: h.state, "List cached and queued images"),
                answer("DELETE", lambda h: h.clear, "Clear the cache and its queue", 204),
            ],
            tag="cache",
        ),
        Resource(
            "/v2/cache/nodes/{image_id}",
            [answer("GET", lambda h: h.nodes, "List the nodes that cache an image")],
            tag="cache",
        ),
        Resource(
            "/v2/cache/clean", [answer("POST", lambda h: h.clean, "Clean the cache")], tag="cache"
        ),
        Resource(
            "/v2/cache/prune", [answer("POST", lambda h: h.prune, "Prune the cache")], tag="cache"
        ),
        # After the fixed paths: `{image_id}` would match `clean` and `prune`.
        Resource(
            "/v2/cache/{image_id}",
            [
                answer("PUT", lambda h: h.queue, "Queue an image for caching", 202),
                answer(
                    "DELETE", lambda h: h.delete, "Delete an image from the cache and queue", 204
                ),
            ],
            tag="cache",
        ),
    ]
