"""The composition root: the only place that wires adapters to services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp

from skylens.api.compute_v21 import errors as compute_errors
from skylens.api.compute_v21.images import ComputeImageHandlers
from skylens.api.compute_v21.microversions import Microversions
from skylens.api.compute_v21.routes import ComputeMount
from skylens.api.compute_v21.routes import image_resources as compute_image_resources
from skylens.api.compute_v21.routes import version_resources as compute_version_resources
from skylens.api.errors import MethodNotImplemented, RouteNotFound, error_response, handle_error
from skylens.api.image_v2.data import DataHandlers
from skylens.api.image_v2.images import ImageHandlers
from skylens.api.image_v2.ims import ImsProfile
from skylens.api.image_v2.members import MemberHandlers, member_resources
from skylens.api.image_v2.query import ListLimits
from skylens.api.image_v2.routes import image_resources, schema_resources
from skylens.api.image_v2.schemas import ImageSchemas, load_schemas
from skylens.api.image_v2.stores import StoreHandlers, store_resources
from skylens.api.image_v2.usage import UsageHandlers, usage_resources
from skylens.api.middleware import ClientGoneMiddleware, RequestIdMiddleware
from skylens.api.offload import InThreads, OnTheLoop
from skylens.api.openapi import openapi_document
from skylens.api.responses import json_response
from skylens.api.routing import IMPLEMENTED_METHODS, Operation, Resource
from skylens.api.versions import (
    UNVERSIONED_PREFIXES,
    VersionNegotiation,
    allowed_prefixes,
    version_resources,
)
from skylens.auth.keystone import KeystoneAuthenticator, ServiceCredentials
from skylens.auth.keystone_limits import KeystoneLimits
from skylens.auth.tokens import InvalidTokenFile, StaticTokenAuthenticator
from skylens.auth.trusted_headers import TrustedHeadersAuthenticator
from skylens.config import ConfigError, Settings
from skylens.db.engine import create_engine, reads_may_wait, upgrade
from skylens.db.repository import SqlImageRepository
from skylens.domain.changes import ImageLimits
from skylens.domain.errors import SkylensError
from skylens.domain.policy import BuiltinPolicy
from skylens.domain.ports import Authenticator, Policy, PropertyProtections
from skylens.domain.quotas import ConfiguredLimits, LimitSource, NoLimits
from skylens.domain.quotas import Resource as QuotaResource
from skylens.domain.stores import ConfiguredStore
from skylens.inspection.formats import OsloFormatInspector
from skylens.policy.protections import InvalidProtectionsFile, ProtectionsFile
from skylens.services.image_data import DataPolicy, ImageDataService
from skylens.services.images import ImageService
from skylens.services.members import MemberService
from skylens.services.quotas import QuotaService
from skylens.services.sweep import OrphanSweep
from skylens.storage.keys import image_data_key, image_id_of_key
from skylens.storage.registry import InvalidStoreSettings, build_stores

log = logging.getLogger("skylens")

_VERSIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "versions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "status": {"type": "string"},
                    "links": {"type": "array"},
                },
            },
        }
    },
}


def create_app(settings: Settings, engine: sa.Engine | None = None) -> ASGIApp:
    """Build the whole service from settings (and optionally a ready engine)."""
    engine = engine or create_engine(settings.database_url, pool_size=settings.database.pool_size)
    if settings.database.auto_upgrade:
        upgrade(engine)
    limits = ImageLimits(
        properties=settings.images.property_quota,
        tags=settings.images.tag_quota,
        members=settings.images.member_quota,
    )
    repository = SqlImageRepository(engine)
    policy = _policy(settings)
    quotas = QuotaService(repository, _limit_source(settings))
    service = ImageService(repository, limits, policy, quotas, protections=_protections(settings))
    # One thread per pooled connection: more would only queue for connections.
    threads = InThreads(anyio.CapacityLimiter(settings.database.pool_size))
    schemas = load_schemas(ims_profile=settings.images.ims_profile)
    stores = configured_stores(settings)
    handlers = ImageHandlers(
        service=service,
        schemas=schemas,
        authenticator=_authenticator(settings),
        list_limits=ListLimits(
            default=settings.images.limit_param_default,
            maximum=settings.images.api_limit_max,
        ),
        reads=threads if reads_may_wait(engine) else OnTheLoop(),
        writes=threads,
        public_endpoint=settings.server.public_endpoint,
        store_ids=tuple(stores),
        ims=ImsProfile(schemas.image) if settings.images.ims_profile else None,
    )
    data_service = _data_service(settings, service, repository, stores, policy, quotas)
    data = DataHandlers(
        service=data_service,
        authenticator=handlers.authenticator,
        reads=handlers.reads,
        writes=handlers.writes,
    )
    store_handlers = StoreHandlers(
        service=data_service, authenticator=handlers.authenticator, writes=handlers.writes
    )
    member_handlers = MemberHandlers(
        service=MemberService(service, repository, settings.images.member_quota, policy),
        authenticator=handlers.authenticator,
        reads=handlers.reads,
        writes=handlers.writes,
    )
    usage_handlers = UsageHandlers(
        service=quotas, authenticator=handlers.authenticator, reads=threads
    )
    resources = [
        *version_resources(settings.server.public_endpoint),
        *schema_resources(schemas, handlers.authenticator),
        *image_resources(handlers, data),
        *member_resources(member_handlers),
        *store_resources(store_handlers),
        *usage_resources(usage_handlers),
    ]
    compute = (
        _compute_resources(
            settings,
            ComputeImageHandlers(
                images=service,
                data=data_service,
                authenticator=handlers.authenticator,
                reads=handlers.reads,
                writes=handlers.writes,
                prefix=settings.compute.prefix,
                max_limit=settings.images.api_limit_max,
                public_endpoint=settings.server.public_endpoint,
            ),
        )
        if settings.compute.enabled
        else []
    )
    resources.extend(_service_resources(engine, [*resources, *compute], schemas))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            # Glance's router: an unknown method is 501 even where no route matches.
            if request.method not in IMPLEMENTED_METHODS:
                return await handle_error(request, MethodNotImplemented(request.method))
            return await handle_error(request, RouteNotFound())
        return error_response(request, exc.status_code, str(exc.detail))

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error serving %s %s", request.method, request.url.path)
        return error_response(
            request,
            500,
            "The server has either erred or is incapable of performing the requested operation.",
        )

    sweep = orphan_sweep(settings, repository, stores)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        sweeping = asyncio.create_task(
            _sweep_periodically(sweep, settings.storage.sweep_interval_seconds)
        )
        try:
            yield
        finally:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping

    app = Starlette(
        lifespan=lifespan,
        routes=[resource.route() for resource in resources],
        middleware=[Middleware(ClientGoneMiddleware)],
        exception_handlers={
            SkylensError: handle_error,
            HTTPException: http_error,
            Exception: unexpected_error,
        },
    )
    app.state.engine = engine
    served: ASGIApp = VersionNegotiation(app, settings.server.public_endpoint)
    if compute:
        served = ComputeMount(served, _compute_app(compute), settings.compute.prefix)
    return RequestIdMiddleware(served)


def _compute_resources(settings: Settings, handlers: ComputeImageHandlers) -> list[Resource]:
    _check_compute_prefix(settings.compute.prefix)
    return [
        *compute_version_resources(settings.compute.prefix, settings.server.public_endpoint),
        *compute_image_resources(handlers),
    ]


def _compute_app(resources: list[Resource]) -> ASGIApp:
    """The Compute API v2.1 image proxy: its own routes, error format and microversions."""
    app = Starlette(
        routes=[resource.route() for resource in resources],
        middleware=[Middleware(ClientGoneMiddleware)],
        exception_handlers={
            SkylensError: compute_errors.handle_error,
            HTTPException: compute_errors.http_error,
            Exception: compute_errors.unexpected_error,
        },
    )
    return Microversions(app, compute_errors.render)


def _check_compute_prefix(prefix: str) -> None:
    """Empty, or `/segment[/...]` whose first segment the Image API does not own."""
    if not prefix:
        return
    first = prefix.lstrip("/").split("/", 1)[0]
    owned = {*allowed_prefixes(), "versions", *(p.lstrip("/") for p in UNVERSIONED_PREFIXES)}
    if (
        not prefix.startswith("/")
        or prefix.endswith("/")
        or "//" in prefix
        or any(c in prefix for c in "{}?#")
        or first in owned
    ):
        raise ConfigError(
            f"compute.prefix {prefix!r}: must be empty or a path like /compute, "
            "outside the Image API's own paths"
        )


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


def orphan_sweep(
    settings: Settings,
    repository: SqlImageRepository | None = None,
    stores: dict[str, ConfiguredStore] | None = None,
) -> OrphanSweep:
    """The sweep a server runs periodically, and `skylens sweep` runs once."""
    if repository is None:
        repository = SqlImageRepository(create_engine(settings.database_url, pool_size=1))
    return OrphanSweep(
        repository,
        configured_stores(settings) if stores is None else stores,
        image_id_of_key,
        settings.storage.sweep_grace_seconds,
    )


def configured_stores(settings: Settings) -> dict[str, ConfiguredStore]:
    try:
        stores = build_stores(settings.store_settings())
    except InvalidStoreSettings as error:
        raise ConfigError(str(error)) from error
    if settings.storage.default_store not in stores:
        raise ConfigError(
            f"storage.default_store {settings.storage.default_store!r} names no store "
            f"(configured: {', '.join(stores)})"
        )
    return stores


def _data_service(
    settings: Settings,
    images: ImageService,
    repository: SqlImageRepository,
    stores: dict[str, ConfiguredStore],
    policy: Policy,
    quotas: QuotaService,
) -> ImageDataService:
    return ImageDataService(
        images=images,
        repository=repository,
        stores=stores,
        default_store=settings.storage.default_store,
        key_of=image_data_key,
        inspector=OsloFormatInspector,
        policy=DataPolicy(
            size_cap=settings.images.image_size_cap,
            hash_algo=settings.images.hashing_algorithm,
            verify_disk_format=settings.images.verify_disk_format,
            lease_renewal_seconds=min(60.0, settings.storage.sweep_grace_seconds / 3),
            max_uploads=settings.server.max_uploads,
        ),
        access=policy,
        quotas=quotas,
    )


def _policy(settings: Settings) -> Policy:
    """Glance's defaults in plain Python (proven equal to oslo.policy's reading of
    them), or oslo.policy itself when a policy file overrides them."""
    if not settings.auth.policy_file:
        return BuiltinPolicy()
    # Imported only when used: oslo.policy and oslo.config cost ~7 MiB of every worker.
    from skylens.policy.oslo import InvalidPolicyFile, OsloPolicy

    try:
        return OsloPolicy(settings.auth.policy_file)
    except (OSError, InvalidPolicyFile) as error:
        raise ConfigError(f"auth.policy_file: {error}") from error


def _limit_source(settings: Settings) -> LimitSource:
    quotas = settings.quotas
    if quotas.source == "none":
        return NoLimits()
    if quotas.source == "config":
        defaults = {resource: getattr(quotas, resource.value) for resource in QuotaResource}
        return ConfiguredLimits(
            defaults,
            {
                project: _project_limits(project, table)
                for project, table in quotas.projects.items()
            },
        )
    if quotas.source == "keystone":
        if not settings.keystone.endpoint_id:
            raise ConfigError('quotas.source = "keystone" needs keystone.endpoint_id')
        return KeystoneLimits(
            _service_credentials(settings, 'quotas.source = "keystone"'),
            settings.keystone.endpoint_id,
            cache_seconds=quotas.cache_seconds,
        )
    raise ConfigError(
        f"unknown quotas.source {quotas.source!r} (supported: none, config, keystone)"
    )


def _project_limits(project: str, table: dict[str, Any]) -> dict[QuotaResource, int]:
    names = {resource.value: resource for resource in QuotaResource}
    limits = {}
    for name, value in table.items():
        if name not in names:
            raise ConfigError(
                f"quotas.projects.{project}.{name}: unknown resource (known: {', '.join(names)})"
            )
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"quotas.projects.{project}.{name}: not an integer: {value!r}")
        limits[names[name]] = value
    return limits


def _protections(settings: Settings) -> PropertyProtections | None:
    """Glance's property protections (roles format) from their file, if one is set."""
    rule_format = settings.images.property_protection_rule_format
    if rule_format == "policies":
        raise ConfigError(
            'images.property_protection_rule_format = "policies" is not supported: '
            'only "roles" is (name the roles in the protections file itself)'
        )
    if rule_format != "roles":
        raise ConfigError(
            f"unknown images.property_protection_rule_format {rule_format!r} (supported: roles)"
        )
    if not settings.images.property_protection_file:
        return None
    try:
        return ProtectionsFile(settings.images.property_protection_file)
    except (OSError, InvalidProtectionsFile) as error:
        raise ConfigError(f"images.property_protection_file: {error}") from error


def _authenticator(settings: Settings) -> Authenticator:
    mode = settings.auth.mode
    if mode == "trusted-headers":
        return TrustedHeadersAuthenticator(
            default_project=settings.auth.default_project,
            default_user=settings.auth.default_user,
            default_roles=settings.auth.default_roles,
        )
    if mode == "tokens":
        if not settings.auth.token_file:
            raise ConfigError('auth.mode = "tokens" needs auth.token_file')
        try:
            return StaticTokenAuthenticator(settings.auth.token_file)
        except (OSError, InvalidTokenFile) as error:
            raise ConfigError(f"auth.token_file: {error}") from error
    if mode == "keystone":
        keystone = settings.keystone
        return KeystoneAuthenticator(
            _service_credentials(settings, 'auth.mode = "keystone"'),
            www_authenticate_uri=keystone.www_authenticate_uri,
            cache_seconds=keystone.cache_seconds,
        )
    raise ConfigError(f"unknown auth.mode {mode!r} (supported: trusted-headers, tokens, keystone)")


def _service_credentials(settings: Settings, needed_by: str) -> ServiceCredentials:
    """The service user's [keystone] credentials, which `needed_by` (an option) needs."""
    keystone = settings.keystone
    missing = [name for name in ("auth_url", "username", "password") if not getattr(keystone, name)]
    if missing:
        raise ConfigError(f"{needed_by} needs " + ", ".join(f"keystone.{m}" for m in missing))
    return ServiceCredentials(
        auth_url=keystone.auth_url,
        username=keystone.username,
        password=keystone.password,
        project_name=keystone.project_name,
        user_domain_name=keystone.user_domain_name,
        project_domain_name=keystone.project_domain_name,
        cafile=keystone.cafile,
        insecure=keystone.insecure,
        timeout=keystone.timeout_seconds,
    )


def check_settings(settings: Settings) -> None:
    """Refuse settings only the app can judge, before `serve` starts any worker
    (a worker failing at start would be restarted for ever)."""
    _authenticator(settings)
    _policy(settings)
    _limit_source(settings)
    _protections(settings)
    configured_stores(settings)
    _check_compute_prefix(settings.compute.prefix)
    if settings.storage.sweep_grace_seconds < 1:
        raise ConfigError("storage.sweep_grace_seconds must be at least 1")


def _service_resources(
    engine: sa.Engine, api: list[Resource], schemas: ImageSchemas
) -> list[Resource]:
    """/healthcheck and /openapi.json; the document describes every route, itself included."""

    def database_answers() -> bool:
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            log.exception("healthcheck: the database does not answer")
            return False
        return True

    async def healthcheck(_request: Request) -> Response:
        if await run_in_threadpool(database_answers):
            return PlainTextResponse("OK")
        return PlainTextResponse("database unavailable", status_code=503)

    async def openapi(_request: Request) -> Response:
        return json_response(document)

    service = [
        Resource(
            "/healthcheck",
            [
                Operation(
                    "GET",
                    healthcheck,
                    "Report whether the service can serve requests",
                    errors=(503,),
                    authenticated=False,
                )
            ],
            tag="service",
        ),
        Resource(
            "/openapi.json",
            [Operation("GET", openapi, "This OpenAPI document", authenticated=False)],
            tag="service",
        ),
    ]
    named = {schema.name: schema.document for schema in schemas.all()}
    named["versions"] = _VERSIONS_SCHEMA
    document = openapi_document([*api, *service], named)
    return service
