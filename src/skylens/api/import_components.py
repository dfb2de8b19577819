"""The composition root's import parts: the import methods and plugins, the staging
store, the task runner, and the limits every ingest shares. Like components.py, a
module that wires adapters (the fetcher, qemu-img, stores) to services."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from skylens.api.offload import Offload
from skylens.auth.catalogue import KeystoneCatalogue
from skylens.auth.keystone import ServiceCredentials
from skylens.config import ConfigError, Settings
from skylens.db.repository import SqlImageRepository
from skylens.db.tasks import SqlTaskRepository
from skylens.domain.stores import ConfiguredStore
from skylens.domain.tasks import IMPORT_TASK
from skylens.domain.uris import UriFilter
from skylens.inspection.formats import OsloFormatInspector
from skylens.inspection.qemu_img import QemuImg
from skylens.remote.http import FetchOptions, HttpFetcher
from skylens.services.glance_download import GlanceDownload
from skylens.services.image_data import UploadLimits
from skylens.services.import_methods import (
    COPY_IMAGE,
    GLANCE_DIRECT,
    GLANCE_DOWNLOAD,
    WEB_DOWNLOAD,
    CopyImage,
    GlanceDirect,
    ImportMethod,
    WebDownload,
)
from skylens.services.import_plugins import (
    Conversion,
    DataPlugin,
    Decompression,
    ImportPlugins,
    MetadataInjection,
)
from skylens.services.import_run import ImportHandler
from skylens.services.quotas import QuotaService
from skylens.services.tasks import RunnerSettings, TaskHandler, TaskOutcomes, TaskRunner
from skylens.storage.keys import image_data_key, staging_key
from skylens.storage.registry import InvalidStoreSettings, build_store

log = logging.getLogger(__name__)

# The name of the built-in staging store (Glance's reserved store name).
STAGING_STORE = "os_glance_staging_store"


def task_runner(
    settings: Settings,
    repository: SqlImageRepository,
    tasks: SqlTaskRepository,
    stores: dict[str, ConfiguredStore],
    methods: dict[str, ImportMethod],
    quotas: QuotaService,
    worker: str,
    offloads: tuple[Offload, Offload, Offload],
    outcomes: TaskOutcomes,
    plugins: ImportPlugins,
    running: Callable[[int], None] = lambda _count: None,
    others: Mapping[str, TaskHandler] = {},
) -> TaskRunner:
    """The runner of import tasks, and of `others` (task type -> handler)."""
    database, storage, ingest_jobs = offloads  # as ImageDataService's
    handler = ImportHandler(
        repository,
        methods,
        stores,
        image_data_key,
        OsloFormatInspector,
        upload_limits(settings),
        quotas,
        database=database,
        storage=storage,
        ingest_jobs=ingest_jobs,
        plugins=plugins,
    )
    options = settings.tasks
    return TaskRunner(
        tasks,
        {IMPORT_TASK: handler, **others},
        RunnerSettings(
            holder=worker,
            lease_seconds=options.lease_seconds,
            poll_seconds=options.poll_seconds,
            concurrency=options.concurrency,
            max_attempts=options.max_attempts,
            time_to_live=dt.timedelta(hours=options.time_to_live_hours),
        ),
        database=database,
        outcomes=outcomes,
        running=running,
    )


def import_methods(
    settings: Settings,
    stores: dict[str, ConfiguredStore],
    staging: ConfiguredStore,
    credentials: ServiceCredentials | None = None,
) -> dict[str, ImportMethod]:
    """The registry of import methods: the enabled ones, by name. glance-download
    needs the callers' service catalogues: with `credentials` (auth.mode = "keystone")
    only; otherwise it is left out, as a Glance with the method disabled."""
    available: dict[str, Callable[[], ImportMethod]] = {
        GLANCE_DIRECT: lambda: GlanceDirect(staging.blob, staging_key),
        WEB_DOWNLOAD: lambda: web_download(settings),
        COPY_IMAGE: lambda: CopyImage(stores, image_data_key),
        GLANCE_DOWNLOAD: lambda: glance_download(settings, credentials),
    }
    methods = {}
    for name in settings.images.enabled_import_methods:
        if name not in available:
            raise ConfigError(
                f"images.enabled_import_methods: {name!r} is not available "
                f"(available: {', '.join(available)})"
            )
        if name == GLANCE_DOWNLOAD and credentials is None:
            log.warning(
                'glance-download stays disabled: it needs auth.mode = "keystone" (it finds '
                "the other region in the caller's service catalogue)"
            )
            continue
        methods[name] = available[name]()
    return methods


def glance_download(settings: Settings, credentials: ServiceCredentials | None) -> GlanceDownload:
    """glance-download: the catalogue read with the caller's token, through Keystone;
    the remote image service fetched as web-download fetches ([import_filtering],
    [web_download])."""
    assert credentials is not None
    return GlanceDownload(
        KeystoneCatalogue(credentials),
        _fetcher(settings),
        settings.images.image_size_cap,
        settings.glance_download_properties.extra_properties,
    )


def import_plugins(settings: Settings) -> ImportPlugins:
    """The enabled import plugins ([image_import] plugins), in their configured order."""
    enabled = settings.image_import.plugins
    data: list[DataPlugin] = []
    for name in enabled:
        if name == "image_decompression":
            data.append(Decompression(settings.images.image_size_cap))
        elif name == "image_conversion":
            output = settings.image_conversion.output_format
            cap = settings.images.image_size_cap
            data.append(Conversion(output, OsloFormatInspector, QemuImg(), cap))
    injection = None
    if "inject_image_metadata" in enabled:
        options = settings.inject_metadata_properties
        injection = MetadataInjection(
            options.inject, frozenset(role.lower() for role in options.ignore_user_roles)
        )
    return ImportPlugins(tuple(data), injection, Path(settings.data_dir) / "import-work")


def web_download(settings: Settings) -> WebDownload:
    """web-download: the URI filter ([import_filtering]) checks requests, and the
    fetcher ([web_download]) fetches through the same filter."""
    return WebDownload(_uri_filter(settings), _fetcher(settings), settings.images.image_size_cap)


def location_fetcher(settings: Settings) -> HttpFetcher:
    """What the http stores fetch location URLs with: web-download's filter and
    fetcher settings, so a location reaches nothing a web-download could not."""
    return _fetcher(settings)


def location_filter(settings: Settings) -> UriFilter:
    """What a location URL must pass before anything is fetched: web-download's filter
    ([import_filtering]), which the http stores' fetcher applies again."""
    return _uri_filter(settings)


def _uri_filter(settings: Settings) -> UriFilter:
    return UriFilter(**dataclasses.asdict(settings.import_filtering))  # the same options


def _fetcher(settings: Settings) -> HttpFetcher:
    download = settings.web_download
    options = FetchOptions(
        connect_timeout=download.connect_timeout_seconds,
        read_timeout=download.read_timeout_seconds,
        max_redirects=download.max_redirects,
        max_resumes=download.max_resumes,
        cafile=download.cafile,
    )
    try:
        return HttpFetcher(_uri_filter(settings), options)
    except OSError as error:  # the CA bundle
        raise ConfigError(f"web_download.cafile: {error}") from error


def staging_store(settings: Settings) -> ConfiguredStore:
    """Where staged import data waits: the [stores] table `storage.staging_store`
    names, or a file store under the data directory."""
    name = settings.storage.staging_store
    if not name:
        root = str(Path(settings.data_dir) / "staging")
        return build_store(STAGING_STORE, {"kind": "file", "root": root})
    options = settings.store_settings().get(name)
    if options is None:
        raise ConfigError(f"storage.staging_store {name!r} names no [stores.{name}] table")
    try:
        return build_store(name, options)
    except InvalidStoreSettings as error:
        raise ConfigError(str(error)) from error


def upload_limits(settings: Settings) -> UploadLimits:
    return UploadLimits(
        size_cap=settings.images.image_size_cap,
        hash_algo=settings.images.hashing_algorithm,
        verify_disk_format=settings.images.verify_disk_format,
        lease_renewal_seconds=min(60.0, settings.storage.sweep_grace_seconds / 3),
        max_uploads=settings.server.max_uploads,
    )
