"""Settings, read once at start-up and passed explicitly; no module-level state.

Sources, lowest precedence first: built-in defaults, a TOML file, `SKYLENS_*`
environment variables, then command-line flags. docs/configuration.md lists
every option.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
import types
import typing
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

ENV_PREFIX = "SKYLENS_"


class ConfigError(Exception):
    """The configuration is invalid; the message says which option and why.

    Not a `SkylensError`: no client ever sees it (see skylens.domain.errors). The
    CLI prints it as one line, `skylens: <label>: <message>`, and exits 2."""

    label = "configuration error"


class LogLevel(StrEnum):
    """uvicorn's log levels (`server.log_level`)."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


class LogFormat(StrEnum):
    """How log lines are written (`server.log_format`)."""

    TEXT = "text"  # time level logger [request id] message
    JSON = "json"  # one JSON object per line


class AuthMode(StrEnum):
    """Where a request's identity comes from (`auth.mode`)."""

    TRUSTED_HEADERS = "trusted-headers"  # headers set by a trusted caller (development)
    TOKENS = "tokens"  # a file of static tokens
    KEYSTONE = "keystone"  # tokens validated by Keystone


class QuotaSource(StrEnum):
    """Where per-project limits come from (`quotas.source`)."""

    NONE = "none"  # no limits, as Glance without use_keystone_limits
    CONFIG = "config"  # the [quotas] section
    KEYSTONE = "keystone"  # Keystone's unified limits of `keystone.endpoint_id`


class ProtectionRuleFormat(StrEnum):
    """How a property protections file names who may do what
    (`images.property_protection_rule_format`)."""

    ROLES = "roles"


# Glance's unified-limit resources, the options of [quotas] and its project tables.
QUOTA_RESOURCES = (
    "image_size_total",
    "image_stage_total",
    "image_count_total",
    "image_count_uploading",
)
# The schemes `database.url` may have: the embedded SQLite, PostgreSQL through psycopg.
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
# Values Glance accepts that Skylens refuses, and why.
_REFUSED = {
    ("images.property_protection_rule_format", "policies"): (
        'only "roles" is (name the roles in the protections file itself)'
    ),
}


def default_data_dir(environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "skylens")


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 9292
    workers: int = 1
    # Base URL for absolute links (Location, versions) when behind a proxy.
    public_endpoint: str = ""
    log_level: LogLevel = LogLevel.INFO
    log_format: LogFormat = LogFormat.TEXT
    # One line per request on the `skylens.access` logger.
    access_log: bool = True
    # Largest JSON request body, in bytes (oslo.middleware's max_request_body_size);
    # image data is bounded by images.image_size_cap instead.
    max_request_body_size: int = 114688
    # auth.mode = "trusted-headers": host names (besides loopback ones and
    # public_endpoint's) that requests may name in `Host`; "*" for any.
    allowed_hosts: tuple[str, ...] = ()
    # ... and web origins (besides the service's own) whose pages may call it; "*" for any.
    allowed_origins: tuple[str, ...] = ()
    # The protocol's zero-copy download and receive-into upload paths.
    fast_paths: bool = True
    # Request heads: longer or more is refused (414 for the request line, else 431).
    max_request_line_bytes: int = 16 << 10
    max_header_line_bytes: int = 16 << 10
    max_header_bytes: int = 64 << 10
    max_header_count: int = 100
    # A request head must arrive within this; a body must not pause longer than this.
    header_timeout_seconds: int = 20
    body_read_timeout_seconds: int = 60
    # Client connections per worker process; 0: min(1000, what the descriptor limit
    # leaves room for).
    max_connections: int = 0
    # Uploads a worker process receives at once; more get 503 with Retry-After.
    max_uploads: int = 32
    # On a stop, how long requests in flight (uploads) may take to finish; then
    # they are cut off (an upload's image goes back to queued).
    shutdown_timeout_seconds: int = 30
    # Longest a readiness check (GET /healthcheck/ready) waits for each dependency.
    readiness_timeout_seconds: int = 5
    # Where Prometheus scrapes the metrics (no credentials; they name no project,
    # user or image); empty: no metrics endpoint.
    metrics_path: str = "/metrics"
    # 0: the metrics are served on the API's port. Otherwise on this port of
    # metrics_host, by the `serve` process (every worker's values), and not on the API's.
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class DatabaseSettings:
    # Empty: an SQLite file `skylens.db` in the data directory.
    url: str = ""
    pool_size: int = 10
    # Longest a statement may run before the database cancels it (the request then
    # gets 503); 0: no limit. Migrations are never cut short.
    statement_timeout_ms: int = 10000
    # Run migrations at `serve` start. Always safe for the embedded SQLite; for a
    # shared PostgreSQL prefer `skylens db upgrade` from one place.
    auto_upgrade: bool = True


@dataclasses.dataclass(frozen=True)
class ImageSettings:
    property_quota: int = 128
    tag_quota: int = 128
    member_quota: int = 128
    # Characters in one extra property's value (negative: unlimited).
    property_value_max_length: int = 65535
    # Operations in one PATCH request (negative: unlimited).
    patch_operations_max: int = 256
    limit_param_default: int = 25
    api_limit_max: int = 1000
    # The most one list request may ask for (400 beyond): each sort key, tag and
    # property filter is a term of the statement the request becomes.
    list_parameters_max: int = 128
    list_sort_keys_max: int = 50
    list_tags_max: int = 20
    list_property_filters_max: int = 50
    # Largest image data accepted, in bytes; enforced while the bytes stream in.
    image_size_cap: int = 1 << 40
    # Secure hash recorded as os_hash_algo/os_hash_value (any hashlib name).
    hashing_algorithm: str = "sha512"
    # Refuse data whose detected format differs from the image's disk_format.
    verify_disk_format: bool = True
    # Glance's property protections: an INI file of property-name patterns and the
    # roles that may create/read/update/delete them; empty: no protections.
    property_protection_file: str = ""
    # Only Glance's "roles" format is supported ("policies" is refused).
    property_protection_rule_format: ProtectionRuleFormat = ProtectionRuleFormat.ROLES
    # The Huawei Cloud IMS profile of GET /v2/images (docs/compatibility.md):
    # its `__` filters and attributes, image types and `X-Api-Version`.
    ims_profile: bool = False
    # The interoperable import methods served (`GET /v2/info/import`); any other is
    # refused as Glance refuses a disabled one. Known: glance-direct, web-download
    # (what it may fetch: [import_filtering]), copy-image, glance-download (only with
    # auth.mode = "keystone": it finds the other region in the caller's catalogue;
    # otherwise it stays disabled). Glance 33's default.
    enabled_import_methods: tuple[str, ...] = ("glance-direct", "web-download", "copy-image")
    # Glance's show_multiple_locations: image bodies show `locations`, which PATCH
    # may add to, replace and remove from, and the locations API (2.17,
    # `POST`/`GET /v2/images/{id}/locations`) is served. Off, as in Glance: locations
    # name where data lives (OSSN-0065, OSSN-0090).
    show_multiple_locations: bool = False
    # Glance's show_image_direct_url: image bodies show `direct_url`, the URL of the
    # first location.
    show_image_direct_url: bool = False
    # The locations API of Image API 2.17 (`POST`/`GET /v2/images/{id}/locations`),
    # advertised in the versions document; off, those paths are 404 as in a Skylens
    # without it.
    locations_api: bool = False
    # Glance's do_secure_hash: an image given a location with `POST .../locations`
    # is read in the background and activated only once its checksum, secure hash
    # (matching `validation_data`, if given) and format are known and safe.
    do_secure_hash: bool = True
    # Glance's image_location_quota: most locations per image (negative: unlimited).
    location_quota: int = 10


@dataclasses.dataclass(frozen=True)
class StorageSettings:
    # The store uploads go to when they name none (`X-Image-Meta-Store`).
    default_store: str = "local"
    # Leftovers of uploads that saw no write for this long belong to a dead process.
    sweep_grace_seconds: int = 3600
    # How often each server process sweeps its stores; 0 sweeps only at start-up,
    # negative never (run `skylens sweep` from one place instead).
    sweep_interval_seconds: int = 3600
    # Threads per worker process that run the stores' blocking calls of uploads and
    # deletions (creating a write, committing, aborting, deleting).
    io_threads: int = 32
    # Where `PUT /v2/images/{id}/stage` puts data until it is imported: empty, a file
    # store under `<data_dir>/staging`; or the name of a [stores.<name>] table, which
    # is then reserved for staging (shared between hosts if S3 or Swift).
    staging_store: str = ""


@dataclasses.dataclass(frozen=True)
class TaskSettings:
    """The import tasks each server process runs, claimed from the shared database."""

    # A worker renews its lease on a running task every third of this; a task whose
    # lease lapsed belongs to a dead worker, and another takes it over.
    lease_seconds: int = 60
    # How often an idle worker looks for tasks created by other processes.
    poll_seconds: int = 5
    # Tasks one server process runs at once (0: none; the process only creates them).
    concurrency: int = 2
    # Claims of one task (takeovers included) before it is failed for good.
    max_attempts: int = 3
    # How long a finished task is kept (Glance's task_time_to_live), in hours.
    time_to_live_hours: int = 48


@dataclasses.dataclass(frozen=True)
class ImageCacheSettings:
    """The node's image cache, in front of the stores without local files (S3, Swift,
    HTTP). Glance's image_cache_dir, image_cache_max_size, image_cache_stall_time and
    worker_self_reference_url."""

    # The cache directory; empty: no cache (the cache API answers 404).
    dir: str = ""
    # Bytes the cache may hold; beyond, least recently accessed images go first.
    max_size: int = 10 << 30
    # A fill that saw no write for this long, and whose process is gone, is removed.
    stall_time_seconds: int = 86400
    # This node's name in the shared cache index (`GET /v2/cache/nodes/{id}` lists
    # them); empty: the host name. Every process of a node (its workers) shares it,
    # and the directory.
    node_reference: str = ""
    # How often an idle node looks for images queued for it (`PUT /v2/cache/{id}`
    # wakes the process that received it at once).
    poll_seconds: float = 5.0

    def node(self) -> str:
        return self.node_reference or socket.gethostname()


def default_stores() -> dict[str, dict[str, Any]]:
    """With no [stores.*] tables: one file store under the data directory."""
    return {"local": {"kind": "file"}}


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    mode: AuthMode = AuthMode.TRUSTED_HEADERS
    # Identity for requests that carry no identity headers (trusted-headers mode).
    default_project: str = "default"
    default_user: str = "default"
    default_roles: tuple[str, ...] = ("admin", "member", "reader")
    # Trusted headers let any caller claim any identity: loopback only unless set.
    allow_remote_trusted_headers: bool = False
    # mode = "tokens": the TOML file of static tokens (skylens.auth.tokens).
    token_file: str = ""
    # A policy file in Glance's format (YAML or JSON); empty: Glance's defaults.
    policy_file: str = ""


@dataclasses.dataclass(frozen=True)
class KeystoneSettings:
    """mode = "keystone": where tokens are validated, and as whom."""

    auth_url: str = ""  # e.g. https://keystone.example.com/v3
    username: str = ""
    password: str = ""
    project_name: str = "service"
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    # Sent in `WWW-Authenticate: Keystone uri="..."` with every 401; default auth_url.
    www_authenticate_uri: str = ""
    # How long a validated token is trusted without asking Keystone again.
    cache_seconds: int = 300
    # How long a refused token is refused without asking Keystone again.
    negative_cache_seconds: int = 10
    # Tokens validated at once by each worker, on threads of their own.
    validation_threads: int = 8
    cafile: str = ""
    insecure: bool = False
    timeout_seconds: int = 10
    # quotas.source = "keystone": the image endpoint whose limits apply (Glance's
    # [oslo_limit] endpoint_id).
    endpoint_id: str = ""


@dataclasses.dataclass(frozen=True)
class QuotaSettings:
    """Per-project limits of Glance's four unified-limit resources."""

    source: QuotaSource = QuotaSource.NONE
    # source = "config": every project's limits (-1: unlimited; sizes in MiB) ...
    image_count_total: int = -1
    image_count_uploading: int = -1
    image_size_total: int = -1
    image_stage_total: int = -1
    # ... and [quotas.projects.<project id>] tables overriding them per project.
    projects: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    # source = "keystone": how long limits read from Keystone are used.
    cache_seconds: int = 60


@dataclasses.dataclass(frozen=True)
class ComputeSettings:
    """The Compute API v2.1 image proxy (`/v2.1/images`), served from the catalogue."""

    enabled: bool = True
    # The path before `/v2.1`: empty serves `/v2.1/...` (which then is no longer the
    # Image API's `v2.1` alias); e.g. "/compute" serves `/compute/v2.1/...`.
    prefix: str = ""


@dataclasses.dataclass(frozen=True)
class ImportFilteringSettings:
    """Which web sources web-download may fetch: Glance's [import_filtering_opts]
    (a non-empty allowed_* list wins over its disallowed_* one), and beyond Glance no
    loopback, link-local, private, multicast or reserved address unless allowed."""

    allowed_schemes: tuple[str, ...] = ("http", "https")
    disallowed_schemes: tuple[str, ...] = ()
    # Hosts as the URI names them (a name, or an address); a host listed here may
    # be or resolve to any address, loopback and private ones included.
    allowed_hosts: tuple[str, ...] = ()
    disallowed_hosts: tuple[str, ...] = ()
    # Checked when the URI names a port, as in Glance.
    allowed_ports: tuple[int, ...] = (80, 443)
    disallowed_ports: tuple[int, ...] = ()
    # Allow 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7 (an internal mirror).
    allow_private_networks: bool = False


@dataclasses.dataclass(frozen=True)
class WebDownloadSettings:
    """How web-download fetches what the filter lets through."""

    # Longest wait to resolve the host, and for each connection attempt.
    connect_timeout_seconds: float = 30.0
    # Longest wait for the next bytes of a response (headers or body).
    read_timeout_seconds: float = 60.0
    max_redirects: int = 5
    # Reconnections with `Range` after a connection drops or stalls mid-body.
    max_resumes: int = 5
    # CA bundle for https sources; empty: the system's.
    cafile: str = ""


@dataclasses.dataclass(frozen=True)
class GlanceDownloadPropertiesSettings:
    """Glance's [glance_download_properties]: which properties of the source image
    glance-download sets on the image, by prefix of their names (never os_glance_*)."""

    extra_properties: tuple[str, ...] = (
        "hw_",
        "trait:",
        "os_distro",
        "os_secure_boot",
        "os_type",
    )


@dataclasses.dataclass(frozen=True)
class ImageImportSettings:
    """Glance's [image_import_opts]: the plugins every import (copy-image excepted)
    runs, in this order: image_decompression, image_conversion, inject_image_metadata."""

    plugins: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ImageConversionSettings:
    """Glance's [image_conversion]: the format the image_conversion plugin converts to."""

    output_format: str = "raw"  # qcow2, raw or vmdk


@dataclasses.dataclass(frozen=True)
class InjectMetadataSettings:
    """Glance's [inject_metadata_properties]: what the inject_image_metadata plugin sets
    on the images imported by a user who has none of `ignore_user_roles`."""

    ignore_user_roles: tuple[str, ...] = ("admin",)
    inject: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class MetadefSettings:
    """The metadata definitions catalogue (`/v2/metadefs`)."""

    # Load the shipped catalogue (or `catalogue_dir`'s) when a database has never had
    # one loaded; `skylens metadefs unload` is then not undone by a restart.
    load_on_first_start: bool = True
    # A directory of Glance-format namespace files to load instead of the shipped ones.
    catalogue_dir: str = ""


@dataclasses.dataclass(frozen=True)
class CorsSettings:
    """Cross-origin access for web pages (Glance's [cors], oslo.middleware's options)."""

    # Origins (`https://console.example.com`) whose pages may call the API; empty:
    # none (off); "*": any.
    allowed_origins: tuple[str, ...] = ()
    allow_credentials: bool = True
    # Seconds a browser may cache a preflight's answer.
    max_age: int = 3600
    # Glance's defaults (glance.common.config's set_cors_middleware_defaults).
    allow_methods: tuple[str, ...] = ("GET", "PUT", "POST", "DELETE", "PATCH")
    allow_headers: tuple[str, ...] = (
        "Content-MD5",
        "X-Image-Meta-Checksum",
        "X-Storage-Token",
        "Accept-Encoding",
        "X-Auth-Token",
        "X-Identity-Status",
        "X-Roles",
        "X-Service-Catalog",
        "X-User-Id",
        "X-Tenant-Id",
        "X-OpenStack-Request-ID",
    )
    expose_headers: tuple[str, ...] = (
        "X-Image-Meta-Checksum",
        "X-Auth-Token",
        "X-Subject-Token",
        "X-Service-Token",
        "X-OpenStack-Request-ID",
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    data_dir: str = dataclasses.field(default_factory=lambda: default_data_dir(os.environ))
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    images: ImageSettings = ImageSettings()
    auth: AuthSettings = AuthSettings()
    keystone: KeystoneSettings = KeystoneSettings()
    storage: StorageSettings = StorageSettings()
    quotas: QuotaSettings = QuotaSettings()
    compute: ComputeSettings = ComputeSettings()
    import_filtering: ImportFilteringSettings = ImportFilteringSettings()
    web_download: WebDownloadSettings = WebDownloadSettings()
    glance_download_properties: GlanceDownloadPropertiesSettings = (
        GlanceDownloadPropertiesSettings()
    )
    image_import: ImageImportSettings = ImageImportSettings()
    image_conversion: ImageConversionSettings = ImageConversionSettings()
    inject_metadata_properties: InjectMetadataSettings = InjectMetadataSettings()
    tasks: TaskSettings = TaskSettings()
    image_cache: ImageCacheSettings = ImageCacheSettings()
    metadefs: MetadefSettings = MetadefSettings()
    cors: CorsSettings = CorsSettings()
    # Store name -> its options ([stores.<name>] tables); see skylens.storage.registry.
    stores: dict[str, dict[str, Any]] = dataclasses.field(default_factory=default_stores)

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{Path(self.data_dir) / 'skylens.db'}"

    def store_settings(self) -> dict[str, dict[str, Any]]:
        """The stores' options, a file store's `root` defaulting to `<data_dir>/images`."""
        resolved = {}
        for name, options in self.stores.items():
            resolved[name] = dict(options)
            if options.get("kind") == "file":
                resolved[name].setdefault("root", str(Path(self.data_dir) / "images"))
        return resolved


def load(
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from the file, the environment and dotted-key overrides.

    `overrides` keys look like "server.port" or "data_dir"; None values are ignored.
    """
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get(f"{ENV_PREFIX}CONFIG") or None
    values: dict[str, Any] = {}
    if config_file:
        try:
            with open(config_file, "rb") as handle:
                values = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"cannot read config file {config_file}: {error}") from error
    for key, raw in environ.items():
        if key.startswith(ENV_PREFIX) and key != f"{ENV_PREFIX}CONFIG":
            _set_env(values, key[len(ENV_PREFIX) :].lower(), raw)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            *sections, name = dotted.split(".")
            target = values
            for section in sections:
                target = target.setdefault(section, {})
            target[name] = value
    values.setdefault("data_dir", default_data_dir(environ))
    settings: Settings = _build(Settings, values, "")
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    """What no single option can say: the options one choice needs, and the limits."""
    auth, quotas = settings.auth, settings.quotas
    if auth.mode is AuthMode.TOKENS and not auth.token_file:
        raise ConfigError('auth.mode = "tokens" needs auth.token_file')
    if auth.mode is AuthMode.KEYSTONE:
        _check_service_credentials(settings.keystone, 'auth.mode = "keystone"')
    if quotas.source is QuotaSource.KEYSTONE:
        if not settings.keystone.endpoint_id:
            raise ConfigError('quotas.source = "keystone" needs keystone.endpoint_id')
        _check_service_credentials(settings.keystone, 'quotas.source = "keystone"')
    for project, table in quotas.projects.items():
        for name, value in table.items():
            option = f"quotas.projects.{project}.{name}"
            if name not in QUOTA_RESOURCES:
                known = ", ".join(QUOTA_RESOURCES)
                raise ConfigError(f"{option}: unknown resource (known: {known})")
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{option}: not an integer: {value!r}")
    if settings.database.url:
        scheme, separator, _ = settings.database.url.partition("://")
        if not separator or scheme.lower() not in DATABASE_SCHEMES:
            # Never the URL itself: it may hold a password.
            named = f"scheme {scheme!r}" if separator else "a URL without a scheme"
            raise ConfigError(
                f"database.url: unsupported {named} (supported: {', '.join(DATABASE_SCHEMES)})"
            )
    if auth.mode is AuthMode.TRUSTED_HEADERS and not auth.default_project:
        raise ConfigError("auth.default_project must name a project")
    for option, value in (
        ("server.workers", settings.server.workers),
        ("server.max_uploads", settings.server.max_uploads),
        ("server.header_timeout_seconds", settings.server.header_timeout_seconds),
        ("server.body_read_timeout_seconds", settings.server.body_read_timeout_seconds),
        ("database.pool_size", settings.database.pool_size),
        ("storage.sweep_grace_seconds", settings.storage.sweep_grace_seconds),
        ("server.max_request_body_size", settings.server.max_request_body_size),
        ("keystone.validation_threads", settings.keystone.validation_threads),
        ("storage.io_threads", settings.storage.io_threads),
        ("tasks.lease_seconds", settings.tasks.lease_seconds),
        ("tasks.max_attempts", settings.tasks.max_attempts),
        ("tasks.time_to_live_hours", settings.tasks.time_to_live_hours),
        ("server.readiness_timeout_seconds", settings.server.readiness_timeout_seconds),
        ("server.shutdown_timeout_seconds", settings.server.shutdown_timeout_seconds),
    ):
        if value < 1:
            raise ConfigError(f"{option} must be at least 1")
    cache = settings.image_cache
    if cache.max_size < 0 or cache.stall_time_seconds < 1 or cache.poll_seconds <= 0:
        raise ConfigError(
            "image_cache.max_size must be >= 0, image_cache.stall_time_seconds >= 1 "
            "and image_cache.poll_seconds > 0"
        )
    if len(cache.node()) > 255:
        raise ConfigError("image_cache.node_reference: at most 255 characters")
    if settings.tasks.concurrency < 0 or settings.tasks.poll_seconds <= 0:
        raise ConfigError("tasks.concurrency must be >= 0 and tasks.poll_seconds > 0")
    _check_metrics_port(settings.server)
    _check_web_download(settings)
    _check_import_plugins(settings)


def _check_metrics_port(server: ServerSettings) -> None:
    if not 0 <= server.metrics_port <= 65535:
        raise ConfigError(f"server.metrics_port must be 0 to 65535, not {server.metrics_port}")
    if server.metrics_port and server.metrics_port == server.port:
        raise ConfigError("server.metrics_port must differ from server.port (0: on the API's port)")
    if server.metrics_port and not server.metrics_path:
        raise ConfigError("server.metrics_port needs server.metrics_path (empty: no metrics)")


# Glance's plugin names (glance/async_/flows/plugins), and the conversion targets.
IMPORT_PLUGINS = ("image_decompression", "image_conversion", "inject_image_metadata", "no_op")
CONVERSION_FORMATS = ("qcow2", "raw", "vmdk")


def _check_import_plugins(settings: Settings) -> None:
    for name in settings.image_import.plugins:
        if name not in IMPORT_PLUGINS:
            known = ", ".join(IMPORT_PLUGINS)
            raise ConfigError(f"image_import.plugins: unknown plugin {name!r} (known: {known})")
    if settings.image_conversion.output_format not in CONVERSION_FORMATS:
        raise ConfigError(
            "image_conversion.output_format must be one of " + ", ".join(CONVERSION_FORMATS)
        )
    for prefix in settings.glance_download_properties.extra_properties:
        if not 0 < len(prefix) <= 255 or prefix.startswith("os_glance"):
            raise ConfigError(
                f"glance_download_properties.extra_properties: {prefix!r} is not a prefix "
                "of properties an import may set (1 to 255 characters, not os_glance)"
            )
    for key in settings.inject_metadata_properties.inject:
        if not 0 < len(key) <= 255 or key.startswith("os_glance"):
            raise ConfigError(
                f"inject_metadata_properties.inject: {key!r} is not a property an import "
                "may set (1 to 255 characters, not in the os_glance namespace)"
            )


def _check_web_download(settings: Settings) -> None:
    filtering, download = settings.import_filtering, settings.web_download
    for option, ports in (
        ("import_filtering.allowed_ports", filtering.allowed_ports),
        ("import_filtering.disallowed_ports", filtering.disallowed_ports),
    ):
        if any(not 0 < port < 65536 for port in ports):
            raise ConfigError(f"{option}: ports are 1 to 65535")
    for option, seconds in (
        ("web_download.connect_timeout_seconds", download.connect_timeout_seconds),
        ("web_download.read_timeout_seconds", download.read_timeout_seconds),
    ):
        if not seconds > 0:
            raise ConfigError(f"{option} must be more than 0")
    for option, count in (
        ("web_download.max_redirects", download.max_redirects),
        ("web_download.max_resumes", download.max_resumes),
    ):
        if count < 0:
            raise ConfigError(f"{option} must be at least 0")


def _check_service_credentials(keystone: KeystoneSettings, needed_by: str) -> None:
    """The service user's [keystone] credentials, which `needed_by` (an option) needs."""
    missing = [name for name in ("auth_url", "username", "password") if not getattr(keystone, name)]
    if missing:
        raise ConfigError(f"{needed_by} needs " + ", ".join(f"keystone.{m}" for m in missing))


def _set_env(values: dict[str, Any], key: str, raw: str) -> None:
    """Take SKYLENS_<SECTION>_<OPTION> and SKYLENS_<OPTION>; ignore other names."""
    fields = {field.name: field for field in dataclasses.fields(Settings)}
    hints = typing.get_type_hints(Settings)
    if key in fields and not _is_section(fields[key]):
        values[key] = raw
        return
    sections = [name for name, field in fields.items() if _is_section(field)]
    for section in sections:  # a section's name may hold "_" (web_download)
        name = key.removeprefix(f"{section}_")
        options = {option.name for option in dataclasses.fields(hints[section])}
        if name != key and name in options:
            values.setdefault(section, {})[name] = raw


def _is_section(field: dataclasses.Field[Any]) -> bool:
    return dataclasses.is_dataclass(field.default)


def _build(cls: type[Any], values: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"[{prefix.rstrip('.')}] must be a table")
    known = {field.name: field for field in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown option(s): {', '.join(prefix + k for k in sorted(unknown))}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, field in known.items():
        if name not in values:
            continue
        if _is_section(field):
            kwargs[name] = _build(hints[name], values[name], f"{prefix}{name}.")
        else:
            kwargs[name] = _convert(hints[name], values[name], prefix + name)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, option: str) -> Any:
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return _choice(hint, value, option)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if hint is int:
            if isinstance(value, bool):
                raise ValueError(f"not an integer: {value!r}")
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError(f"not a number: {value!r}")
            return float(value)
        if hint is str:
            if not isinstance(value, str | int | float):
                raise ValueError(f"not a string: {value!r}")
            return str(value)
        if typing.get_origin(hint) is dict and typing.get_args(hint) == (str, str):
            return _strings(value, option)
        if typing.get_origin(hint) is dict:
            return _tables(value, option)
        if typing.get_origin(hint) is tuple or isinstance(hint, types.GenericAlias):
            items = value.split(",") if isinstance(value, str) else list(value)
            texts = tuple(str(item).strip() for item in items if str(item).strip())
            if typing.get_args(hint)[:1] == (int,):
                return tuple(int(text) for text in texts)
            return texts
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid value for {option}: {error}") from error
    raise ConfigError(f"unsupported option type for {option}")


def _choice(enum: type[StrEnum], value: Any, option: str) -> StrEnum:
    """One of `enum`'s values, spelt exactly."""
    if isinstance(value, str) and value in {member.value for member in enum}:
        return enum(value)
    refused = _REFUSED.get((option, value)) if isinstance(value, str) else None
    if refused is not None:
        raise ConfigError(f'{option} = "{value}" is not supported: {refused}')
    supported = ", ".join(member.value for member in enum)
    raise ConfigError(f"unknown {option} {value!r} (supported: {supported})")


def _strings(value: Any, option: str) -> dict[str, str]:
    """A table of strings (`inject = { os_distro = "ubuntu" }`)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{option} must be a table")
    return {str(key): str(item) for key, item in value.items()}


def _tables(value: Any, option: str) -> dict[str, dict[str, Any]]:
    """A table of tables (`[stores.<name>]`), given only in the config file."""
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"[{option}] must hold at least one [{option}.<name>] table")
    tables = {}
    for name, options in value.items():
        if not isinstance(options, Mapping):
            raise ValueError(f"{option}.{name} must be a table")
        tables[str(name)] = dict(options)
    return tables
