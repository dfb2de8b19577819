"""The service's parts, built from settings: the adapters (database, stores,
authentication, policy, limits) wired to the services. With `skylens.api.app`, the
composition root: the only modules that choose implementations.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import anyio
import sqlalchemy as sa

from skylens.api.health import Check, NotReady
from skylens.api.import_components import (
    import_methods,
    import_plugins,
    location_fetcher,
    location_filter,
    staging_store,
    task_runner,
    upload_limits,
)
from skylens.api.metadef_files import first_start_catalogue
from skylens.api.offload import InThreads, Offload, database_threads
from skylens.api.use_cases import UseCases
from skylens.api.versions import UNVERSIONED_PREFIXES, allowed_prefixes, image_api_versions
from skylens.auth.keystone import KeystoneAuthenticator, ServiceCredentials, keystone_answers
from skylens.auth.keystone_limits import KeystoneLimits
from skylens.auth.tokens import InvalidTokenFile, StaticTokenAuthenticator
from skylens.auth.trusted_headers import TrustedHeadersAuthenticator
from skylens.config import AuthMode, ConfigError, QuotaSource, Settings
from skylens.db.cache import SqlCacheIndex
from skylens.db.engine import (
    create_engine,
    head_revision,
    is_past_revision,
    revision_of,
    upgrade,
)
from skylens.db.metadefs import SqlMetadefRepository
from skylens.db.reads import ConnectionPool, PostgresImageReads, conninfo_of
from skylens.db.repository import SqlImageRepository
from skylens.db.tasks import SqlTaskRepository
from skylens.domain.changes import ImageLimits
from skylens.domain.errors import IdentityUnavailable, StorageUnavailable
from skylens.domain.policy import BuiltinPolicy
from skylens.domain.ports import Authenticator, Policy, PropertyProtections
from skylens.domain.quotas import ConfiguredLimits, LimitSource, NoLimits
from skylens.domain.quotas import Resource as QuotaResource
from skylens.domain.stores import ConfiguredStore, StagingArea
from skylens.inspection.formats import OsloFormatInspector
from skylens.policy_files.protections import InvalidProtectionsFile, ProtectionsFile
from skylens.services.image_cache import CacheLimits, ImageCache, NoCache
from skylens.services.image_data import ImageDataService
from skylens.services.images import ImageService
from skylens.services.imports import ImportService
from skylens.services.location_import import LocationImport
from skylens.services.locations import LOCATION_IMPORT_TASK, LocationOptions, LocationService
from skylens.services.members import MemberService
from skylens.services.metadefs import MetadefService
from skylens.services.quotas import QuotaService
from skylens.services.reads import OffloadedReads
from skylens.services.staging import StagingService
from skylens.services.sweep import OrphanSweep
from skylens.services.tasks import TaskOutcomes, TaskRunner, TaskService
from skylens.storage.cache_dir import CacheDirectory
from skylens.storage.keys import (
    image_data_key,
    image_id_of_key,
    image_id_of_staging_key,
    staging_key,
)
from skylens.storage.registry import InvalidStoreSettings, build_stores


def _ignore(*_args: object) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class Observers:
    """What the services tell the metrics: the uploads this process receives and the
    tasks it runs (their counts, at each change), and each task's end (its type and
    outcome)."""

    uploads_under_way: Callable[[int], None] = _ignore
    task_outcomes: TaskOutcomes = _ignore
    tasks_under_way: Callable[[int], None] = _ignore
    cache_lookups: Callable[[str], None] = _ignore  # "hit" or "miss", per download


@dataclasses.dataclass(frozen=True)
class Components:
    use_cases: UseCases
    authenticator: Authenticator
    stores: dict[str, ConfiguredStore]
    sweep: OrphanSweep
    runner: TaskRunner
    checks: tuple[Check, ...]  # readiness
    # What show and list await on PostgreSQL (closed at exit); None on SQLite.
    read_pool: ConnectionPool | None = None


def components(
    settings: Settings, engine: sa.Engine, observers: Observers | None = None
) -> Components:
    """Every part of the service, on `engine`'s database."""
    observers = observers or Observers()
    repository = SqlImageRepository(engine)
    policy = _policy(settings)
    quotas = QuotaService(repository, _limit_source(settings))
    images = settings.images
    limits = ImageLimits(
        properties=images.property_quota,
        tags=images.tag_quota,
        members=images.member_quota,
        property_value_length=images.property_value_max_length,
    )
    # Reads and everything else on threads of their own, within the pool's connections
    # (more threads would only queue for connections): a queue of writes (90 PATCHes
    # of one image wait their turn on its row) never holds up a list or a show.
    read_threads, write_threads = database_threads(settings.database.pool_size)
    reads = InThreads(anyio.CapacityLimiter(read_threads))
    threads = InThreads(anyio.CapacityLimiter(write_threads))
    # On PostgreSQL, shows and lists run on the event loop over psycopg's async
    # connections (no thread hop); SQLite's stay on the read threads.
    read_pool = _read_pool(settings, engine)
    image_reads = (
        OffloadedReads(repository, reads) if read_pool is None else PostgresImageReads(read_pool)
    )
    service = ImageService(
        repository, limits, policy, quotas, protections=_protections(settings), reads=image_reads
    )
    stores = configured_stores(settings)
    storage = InThreads(anyio.CapacityLimiter(settings.storage.io_threads))
    # An upload, a staging or an import runs at most two ingest jobs at once (its two
    # streams); a worker runs `max_uploads` uploads and `tasks.concurrency` imports.
    ingest_jobs = InThreads(
        anyio.CapacityLimiter(2 * (settings.server.max_uploads + settings.tasks.concurrency))
    )
    staging = staging_store(settings)
    # This process, as task and upload leases name it.
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    data = _data_service(
        settings,
        service,
        repository,
        stores,
        policy,
        quotas,
        threads,
        storage,
        ingest_jobs,
        staging=_staging_area(staging),
        uploads_under_way=observers.uploads_under_way,
        holder=worker,
    )
    methods = import_methods(settings, stores, staging, _catalogue_credentials(settings))
    plugins = import_plugins(settings)  # one set: the runner's, and the request's injection
    task_repository = SqlTaskRepository(engine)
    locations = LocationService(
        service,
        repository,
        task_repository,
        stores,
        image_data_key,
        policy,
        LocationOptions(
            shown=images.show_multiple_locations,
            direct_url=images.show_image_direct_url,
            api=images.locations_api,
            do_secure_hash=images.do_secure_hash,
            quota=images.location_quota,
        ),
        hash_algo=images.hashing_algorithm,
        uri_filter=location_filter(settings),
        database=threads,
        storage=storage,
        creator=worker,
        lease_seconds=settings.tasks.lease_seconds,
    )
    location_import = LocationImport(
        repository,
        locations,
        stores,
        OsloFormatInspector,
        upload_limits(settings),
        do_secure_hash=images.do_secure_hash,
        database=threads,
        storage=storage,
        ingest_jobs=ingest_jobs,
    )
    runner = task_runner(
        settings,
        repository,
        task_repository,
        stores,
        methods,
        quotas,
        worker,
        (threads, storage, ingest_jobs),
        observers.task_outcomes,
        plugins,
        observers.tasks_under_way,
        {LOCATION_IMPORT_TASK: location_import},
    )
    cache = image_cache(settings, engine, service, data, repository, policy, observers)
    use_cases = UseCases(
        images=service,
        data=data,
        members=MemberService(service, repository, images.member_quota, policy),
        quotas=quotas,
        imports=ImportService(
            service,
            repository,
            task_repository,
            methods,
            stores,
            settings.storage.default_store,
            policy,
            quotas,
            creator=worker,
            lease_seconds=settings.tasks.lease_seconds,
            injection=plugins.injection,
        ),
        staging=StagingService(
            service,
            repository,
            staging.blob,
            staging_key,
            OsloFormatInspector,
            upload_limits(settings),
            quotas,
            host=socket.gethostname(),
            database=threads,
            storage=storage,
            ingest_jobs=ingest_jobs,
            holder=worker,
        ),
        tasks=TaskService(task_repository, policy),
        locations=locations,
        wake_runner=runner.wake,
        metadefs=metadef_service(settings, engine, policy=policy),
        reads=reads,
        writes=threads,
        cache=cache,
        cache_api=cache or NoCache(service, policy),
    )
    return Components(
        use_cases=use_cases,
        authenticator=_authenticator(settings),
        stores=stores,
        sweep=orphan_sweep(settings, repository, stores, staging),
        runner=runner,
        checks=readiness_checks(settings, engine, stores),
        read_pool=read_pool,
    )


def _read_pool(settings: Settings, engine: sa.Engine) -> ConnectionPool | None:
    """On PostgreSQL, the connections show and list await (the engine's pool size
    again); None on SQLite, whose reads run on the engine's threads."""
    if engine.dialect.name != "postgresql":
        return None
    return ConnectionPool(
        conninfo_of(engine.url),
        settings.database.pool_size,
        statement_timeout_ms=settings.database.statement_timeout_ms,
    )


def image_cache(
    settings: Settings,
    engine: sa.Engine,
    images: ImageService,
    data: ImageDataService,
    repository: SqlImageRepository,
    policy: Policy,
    observers: Observers,
) -> ImageCache | None:
    """The node's image cache (`[image_cache]`), or None without a directory."""
    cache = settings.image_cache
    if not cache.dir:
        return None
    try:
        files = CacheDirectory(Path(cache.dir))
    except OSError as error:
        raise ConfigError(f"image_cache.dir: {error}") from error
    return ImageCache(
        cache.node(),
        files,
        SqlCacheIndex(engine),
        images,
        data,
        repository,
        policy,
        CacheLimits(cache.max_size, cache.stall_time_seconds, cache.poll_seconds),
        lookups=observers.cache_lookups,
    )


def metadef_service(
    settings: Settings,
    engine: sa.Engine | None = None,
    *,
    policy: Policy | None = None,
    first_start: bool = True,
) -> MetadefService:
    """The metadefs service, deciding its rules with the images' `policy` (the
    configured one if not given); on a database that never had a catalogue, it loads
    one (unless `first_start` is false: `skylens metadefs` manages the catalogue)."""
    if engine is None:
        engine = create_engine(settings.database_url, pool_size=1)
        if settings.database.auto_upgrade:
            upgrade(engine)
    service = MetadefService(SqlMetadefRepository(engine), policy or _policy(settings))
    if first_start and settings.metadefs.load_on_first_start:
        service.load_catalogue_once(first_start_catalogue(settings.metadefs.catalogue_dir))
    return service


# What readiness asks a store for: a key nothing ever writes. The answer "no such
# blob" proves the store reachable and the credentials accepted.
_PROBE_KEY = "skylens-readiness-probe"


def readiness_checks(
    settings: Settings, engine: sa.Engine, stores: dict[str, ConfiguredStore]
) -> tuple[Check, ...]:
    """The database (reachable, at this release's schema), every store, and Keystone
    when it authenticates requests or serves limits."""

    def database() -> None:
        try:
            with engine.connect() as connection:
                current = revision_of(connection)
        except (sa.exc.SQLAlchemyError, OSError) as error:
            raise NotReady("unreachable", f"the database does not answer: {error}") from None
        # A revision this release does not know is a newer release's: migrations
        # only add (docs/development.md), so this release still works on it and a
        # schema upgrade can roll host by host.
        if current != head_revision() and is_past_revision(current):
            raise NotReady(f"schema at revision {current or 'none'}, expected {head_revision()}")

    def store(blob: ConfiguredStore) -> Callable[[], None]:
        def run() -> None:
            try:
                blob.blob.size(_PROBE_KEY)
            except StorageUnavailable as error:
                raise NotReady("unreachable", error.reason) from None

        return run

    checks = [Check("database", database)]
    checks += [Check(f"store {name}", store(blob)) for name, blob in stores.items()]
    if settings.auth.mode is AuthMode.KEYSTONE or settings.quotas.source is QuotaSource.KEYSTONE:
        credentials = service_credentials(settings)

        def keystone() -> None:
            try:
                keystone_answers(credentials)
            except IdentityUnavailable:
                raise NotReady("unreachable") from None

        checks.append(Check("keystone", keystone))
    return tuple(checks)


def check_settings(settings: Settings) -> None:
    """Refuse settings only the app can judge (files to read, stores to build, paths
    the surfaces own), before `serve` starts any worker (a worker failing at start
    would be restarted for ever). `skylens.config` has checked everything else."""
    _authenticator(settings)
    _policy(settings)
    _protections(settings)
    stores = configured_stores(settings)
    import_methods(settings, stores, staging_store(settings), _catalogue_credentials(settings))
    check_compute_prefix(settings.compute.prefix)
    check_metrics_path(settings.server.metrics_path)


def check_compute_prefix(prefix: str) -> None:
    """Empty, or `/segment[/...]` whose first segment the Image API does not own."""
    if not _outside_image_api(prefix):
        raise ConfigError(
            f"compute.prefix {prefix!r}: must be empty or a path like /compute, "
            "outside the Image API's own paths"
        )


def check_metrics_path(path: str) -> None:
    """Empty (no metrics endpoint), or a path outside the Image API's own."""
    if not _outside_image_api(path):
        raise ConfigError(
            f"server.metrics_path {path!r}: must be empty or a path like /metrics, "
            "outside the Image API's own paths"
        )


def _outside_image_api(path: str) -> bool:
    """Empty, or `/segment[/...]` whose first segment the Image API does not own."""
    if not path:
        return True
    first = path.lstrip("/").split("/", 1)[0]
    owned = {
        # every version any setting serves
        *allowed_prefixes(image_api_versions(cache=True)),
        *allowed_prefixes(image_api_versions(locations_api=True)),
        "versions",
        *(p.lstrip("/") for p in UNVERSIONED_PREFIXES),
    }
    return not (
        not path.startswith("/")
        or path.endswith("/")
        or "//" in path
        or any(c in path for c in "{}?#")
        or first in owned
    )


def orphan_sweep(
    settings: Settings,
    repository: SqlImageRepository | None = None,
    stores: dict[str, ConfiguredStore] | None = None,
    staging: ConfiguredStore | None = None,
) -> OrphanSweep:
    """The sweep a server runs periodically, and `skylens sweep` runs once: the
    image stores and the staging store."""
    if repository is None:
        repository = SqlImageRepository(create_engine(settings.database_url, pool_size=1))
    return OrphanSweep(
        repository,
        configured_stores(settings) if stores is None else stores,
        image_data_key,
        image_id_of_key,
        settings.storage.sweep_grace_seconds,
        staging=_staging_area(staging_store(settings) if staging is None else staging),
    )


def _staging_area(staging: ConfiguredStore) -> StagingArea:
    return StagingArea(staging, staging_key, image_id_of_staging_key)


def configured_stores(settings: Settings) -> dict[str, ConfiguredStore]:
    """The stores image data may live in (the staging store, reserved, is not one)."""
    options = settings.store_settings()
    options.pop(settings.storage.staging_store, None)
    try:
        stores = build_stores(options, location_fetcher(settings))
    except InvalidStoreSettings as error:
        raise ConfigError(str(error)) from error
    default = stores.get(settings.storage.default_store)
    if default is None:
        raise ConfigError(
            f"storage.default_store {settings.storage.default_store!r} names no store "
            f"(configured: {', '.join(stores)})"
        )
    if default.key_of_url is not None:
        raise ConfigError(
            f"storage.default_store {default.id!r} is an http store, which is read-only"
        )
    return stores


def _data_service(
    settings: Settings,
    images: ImageService,
    repository: SqlImageRepository,
    stores: dict[str, ConfiguredStore],
    policy: Policy,
    quotas: QuotaService,
    database: Offload,
    storage: Offload,
    ingest_jobs: Offload,
    *,
    staging: StagingArea,
    uploads_under_way: Callable[[int], None],
    holder: str,
) -> ImageDataService:
    return ImageDataService(
        images=images,
        repository=repository,
        stores=stores,
        default_store=settings.storage.default_store,
        key_of=image_data_key,
        inspector=OsloFormatInspector,
        limits=upload_limits(settings),
        access=policy,
        quotas=quotas,
        database=database,
        storage=storage,
        ingest_jobs=ingest_jobs,
        staging=staging,
        uploads_under_way=uploads_under_way,
        holder=holder,
    )


def _policy(settings: Settings) -> Policy:
    """Glance's defaults in plain Python (proven equal to oslo.policy's reading of
    them), or oslo.policy itself when a policy file overrides them."""
    if not settings.auth.policy_file:
        return BuiltinPolicy()
    # Imported only when used: oslo.policy and oslo.config cost ~7 MiB of every worker.
    from skylens.policy_files.oslo import InvalidPolicyFile, OsloPolicy

    try:
        return OsloPolicy(settings.auth.policy_file)
    except (OSError, InvalidPolicyFile) as error:
        raise ConfigError(f"auth.policy_file: {error}") from error


def _limit_source(settings: Settings) -> LimitSource:
    quotas = settings.quotas
    match quotas.source:
        case QuotaSource.NONE:
            return NoLimits()
        case QuotaSource.CONFIG:
            defaults = {resource: getattr(quotas, resource.value) for resource in QuotaResource}
            projects = {
                project: {QuotaResource(name): value for name, value in table.items()}
                for project, table in quotas.projects.items()
            }
            return ConfiguredLimits(defaults, projects)
        case QuotaSource.KEYSTONE:
            return KeystoneLimits(
                service_credentials(settings),
                settings.keystone.endpoint_id,
                cache_seconds=quotas.cache_seconds,
            )


def _protections(settings: Settings) -> PropertyProtections | None:
    """Glance's property protections (roles format) from their file, if one is set."""
    if not settings.images.property_protection_file:
        return None
    try:
        return ProtectionsFile(settings.images.property_protection_file)
    except (OSError, InvalidProtectionsFile) as error:
        raise ConfigError(f"images.property_protection_file: {error}") from error


def _authenticator(settings: Settings) -> Authenticator:
    auth = settings.auth
    match auth.mode:
        case AuthMode.TRUSTED_HEADERS:
            return TrustedHeadersAuthenticator(
                default_project=auth.default_project,
                default_user=auth.default_user,
                default_roles=auth.default_roles,
            )
        case AuthMode.TOKENS:
            try:
                return StaticTokenAuthenticator(auth.token_file)
            except (OSError, InvalidTokenFile) as error:
                raise ConfigError(f"auth.token_file: {error}") from error
        case AuthMode.KEYSTONE:
            return KeystoneAuthenticator(
                service_credentials(settings),
                www_authenticate_uri=settings.keystone.www_authenticate_uri,
                cache_seconds=settings.keystone.cache_seconds,
                negative_cache_seconds=settings.keystone.negative_cache_seconds,
                validation_threads=settings.keystone.validation_threads,
            )


def _catalogue_credentials(settings: Settings) -> ServiceCredentials | None:
    """How to read the callers' service catalogues (glance-download): only callers
    with Keystone tokens have one."""
    if settings.auth.mode is not AuthMode.KEYSTONE:
        return None
    return service_credentials(settings)


def service_credentials(settings: Settings) -> ServiceCredentials:
    """The service user's [keystone] credentials (`skylens.config` checked that the
    options which need them have them)."""
    keystone = settings.keystone
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
