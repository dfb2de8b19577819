"""The composition root: the ASGI app, built from settings.

`skylens.api.components` builds the parts (adapters wired to services); each API
surface's factory builds its resources from them; this module mounts the
surfaces, their error handlers and the service's own endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from skylens.api.components import (
    Components,
    check_compute_prefix,
    check_metrics_path,
    components,
)
from skylens.api.compute_v21.routes import ComputeMount, compute_v21_app, compute_v21_resources
from skylens.api.cors import Cors, CorsPolicy
from skylens.api.errors import MethodNotImplemented, RouteNotFound, error_response, handle_error
from skylens.api.health import health_resources
from skylens.api.image_v2.routes import image_v2_resources
from skylens.api.image_v2.schemas import ImageSchemas, load_schemas
from skylens.api.listing import ListLimits
from skylens.api.metrics import Metrics
from skylens.api.middleware import (
    AccessLog,
    ClientGoneMiddleware,
    InFlight,
    RequestIdMiddleware,
    TrustedOrigins,
)
from skylens.api.openapi import openapi_document
from skylens.api.requests import RefuseNul, RequestLimits, install_limits
from skylens.api.responses import json_response
from skylens.api.routing import IMPLEMENTED_METHODS, PublicOperation, Resource, grouped
from skylens.api.versions import (
    VERSIONS_SCHEMA,
    VersionNegotiation,
    Versions,
    image_api_versions,
    version_resources,
)
from skylens.config import AuthMode, Settings
from skylens.db.engine import close_database, create_engine, upgrade
from skylens.domain.errors import SkylensError
from skylens.services.sweep import OrphanSweep

log = logging.getLogger("skylens")


def create_app(settings: Settings, engine: sa.Engine | None = None) -> ASGIApp:
    """Build the whole service from settings (and optionally a ready engine)."""
    engine = engine or create_engine(
        settings.database_url,
        pool_size=settings.database.pool_size,
        statement_timeout_ms=settings.database.statement_timeout_ms,
    )
    if settings.database.auto_upgrade:
        upgrade(engine)
    check_metrics_path(settings.server.metrics_path)
    metrics = Metrics() if settings.server.metrics_path else None
    parts = components(settings, engine, metrics.observers() if metrics else None)
    if metrics is not None:
        metrics.watch_connections(engine, parts.read_pool)
    schemas = load_schemas(ims_profile=settings.images.ims_profile)
    image_api = _image_api(settings, parts, schemas)
    compute_api = _compute_api(settings, parts) if settings.compute.enabled else []
    # On server.metrics_port, `skylens serve` serves them itself (MetricsServer).
    metrics_here = metrics is not None and not settings.server.metrics_port
    if metrics is not None and metrics_here:
        image_api.append(metrics.resource(settings.server.metrics_path))
    image_api += service_resources(
        parts, [*image_api, *compute_api], schemas, settings.server.readiness_timeout_seconds
    )
    limits = RequestLimits(
        body_bytes=settings.server.max_request_body_size,
        patch_operations=settings.images.patch_operations_max,
    )
    in_flight = InFlight()
    close_reads = None if parts.read_pool is None else parts.read_pool.close
    closing = _Closing(engine, in_flight, close_reads)
    image_app = _image_app(image_api, parts, settings, limits, closing)
    own_paths = (settings.server.metrics_path,) if metrics_here else ()
    versions = _versions(settings)
    served: ASGIApp = VersionNegotiation(
        image_app, settings.server.public_endpoint, own_paths, versions
    )
    if compute_api:
        compute_app = compute_v21_app(compute_api, parts.authenticator, limits)
        served = ComputeMount(served, compute_app, settings.compute.prefix)
    cors = settings.cors
    if settings.auth.mode == AuthMode.TRUSTED_HEADERS:
        server = settings.server
        # The pages CORS lets call the API are allowed origins here too.
        origins = (*server.allowed_origins, *cors.allowed_origins)
        served = TrustedOrigins(served, server.allowed_hosts, origins, server.public_endpoint)
    served = Cors(served, CorsPolicy(**dataclasses.asdict(cors)))
    return RequestIdMiddleware(
        AccessLog(
            served,
            enabled=settings.server.access_log,
            observers=[metrics.observe] if metrics else [],
            in_flight=in_flight,
        )
    )


def _list_limits(settings: Settings) -> ListLimits:
    images = settings.images
    return ListLimits(
        default=images.limit_param_default,
        maximum=images.api_limit_max,
        parameters=images.list_parameters_max,
        sort_keys=images.list_sort_keys_max,
        tags=images.list_tags_max,
        property_filters=images.list_property_filters_max,
    )


def _versions(settings: Settings) -> Versions:
    """The versions listed and negotiated: the cache's and the locations API's."""
    return image_api_versions(
        cache=bool(settings.image_cache.dir), locations_api=settings.images.locations_api
    )


def _image_api(settings: Settings, parts: Components, schemas: ImageSchemas) -> list[Resource]:
    images = settings.images
    list_limits = _list_limits(settings)
    return [
        *version_resources(settings.server.public_endpoint, _versions(settings)),
        *image_v2_resources(
            parts.use_cases,
            schemas,
            list_limits=list_limits,
            public_endpoint=settings.server.public_endpoint,
            store_ids=tuple(parts.stores),
            ims_profile=images.ims_profile,
        ),
    ]


def _compute_api(settings: Settings, parts: Components) -> list[Resource]:
    check_compute_prefix(settings.compute.prefix)
    return compute_v21_resources(
        parts.use_cases,
        prefix=settings.compute.prefix,
        list_limits=_list_limits(settings),
        public_endpoint=settings.server.public_endpoint,
    )


def _image_app(
    resources: list[Resource],
    parts: Components,
    settings: Settings,
    limits: RequestLimits,
    closing: _Closing,
) -> ASGIApp:
    """The Image API's app, with Glance's error bodies; its lifespan runs the sweep
    and closes the database."""
    app = Starlette(
        lifespan=_lifespan(parts, settings.storage.sweep_interval_seconds, closing),
        routes=grouped(resource.route(parts.authenticator) for resource in resources),
        middleware=[Middleware(ClientGoneMiddleware)],
        exception_handlers={
            SkylensError: handle_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
    )
    # Glance's router matches paths exactly: `GET /v2/images/` (an empty image id) is
    # 404, never a redirect to the list (which DELETE would then answer with 405).
    app.router.redirect_slashes = False
    install_limits(app, limits)
    return RefuseNul(app, handle_error)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        # Glance's router: an unknown method is 501 even where no route matches.
        if request.method not in IMPLEMENTED_METHODS:
            return await handle_error(request, MethodNotImplemented(request.method))
        return await handle_error(request, RouteNotFound())
    return error_response(request, exc.status_code, str(exc.detail))


async def _unexpected_error(request: Request, _exc: Exception) -> Response:
    log.exception("unhandled error serving %s %s", request.method, request.url.path)
    return error_response(
        request,
        500,
        "The server has either erred or is incapable of performing the requested operation.",
    )


# After uvicorn's graceful shutdown timeout has cut requests off, how long they get
# to undo what they started (abort a write, put an image back) before the database
# closes.
_UNDO_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class _Closing:
    """What a worker's stop closes: its requests, then its database."""

    engine: sa.Engine
    in_flight: InFlight
    close_reads: Callable[[], Awaitable[None]] | None


def _lifespan(
    parts: Components, interval: float, closing: _Closing
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """The lifespan: the orphan sweep and the task runner, for as long as the app runs."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        running = [
            asyncio.create_task(_sweep_periodically(parts.sweep, interval)),
            asyncio.create_task(parts.runner.run_forever()),
        ]
        if parts.use_cases.cache is not None:
            running.append(asyncio.create_task(parts.use_cases.cache.run_forever()))
        try:
            yield
        finally:
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if not await closing.in_flight.drained(_UNDO_SECONDS):
                log.warning("%d request(s) still running at exit", closing.in_flight.count)
            if closing.close_reads is not None:
                await closing.close_reads()
            await asyncio.to_thread(close_database, closing.engine)

    return lifespan


async def _sweep_periodically(sweep: OrphanSweep, interval: float) -> None:
    """At start-up, then every `interval` seconds (never again if 0; not even at
    start-up if negative: with many processes, `skylens sweep` from one place)."""
    if interval < 0:
        return
    while True:
        await asyncio.to_thread(sweep.run)
        if interval <= 0:
            return
        await asyncio.sleep(interval)


def service_resources(
    parts: Components, api: list[Resource], schemas: ImageSchemas, readiness_timeout: float
) -> list[Resource]:
    """/healthcheck (liveness), /healthcheck/ready (readiness) and /openapi.json; the
    document describes every route, itself included."""

    async def openapi(_request: Request) -> Response:
        return json_response(document)

    service = [
        *health_resources(parts.checks, readiness_timeout),
        Resource(
            "/openapi.json",
            [PublicOperation("GET", openapi, "This OpenAPI document")],
            tag="service",
        ),
    ]
    named = {schema.name: schema.document for schema in schemas.all()}
    named["versions"] = VERSIONS_SCHEMA
    document = openapi_document([*api, *service], named)
    return service
