"""`skylens serve | sweep | db upgrade | db downgrade | db current | config check |
images stuck | --version`."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging.config
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skylens import __version__
from skylens.cli.checks import config_check_command
from skylens.cli.metadefs import add_metadefs_commands
from skylens.cli.stuck import add_images_commands
from skylens.config import ConfigError, Settings, load
from skylens.logs import log_config

if TYPE_CHECKING:
    from skylens.server.options import ServerOptions

_SETTINGS_ENV = "SKYLENS_INTERNAL_RESOLVED_SETTINGS"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        settings = load(
            args.config,
            overrides={
                "data_dir": getattr(args, "data_dir", None),
                "server.host": getattr(args, "host", None),
                "server.port": getattr(args, "port", None),
                "server.workers": getattr(args, "workers", None),
                "database.url": getattr(args, "database_url", None),
            },
        )
        # serve's uvicorn applies the same in every worker process.
        logging.config.dictConfig(log_config(settings.server.log_level, settings.server.log_format))
        # A command's positional arguments (`positionals`) follow the settings.
        given = [getattr(args, name) for name in getattr(args, "positionals", ())]
        result: int = args.handler(settings, *given)
    except ConfigError as error:  # a database that cannot be used too (DatabaseSetupError)
        print(f"skylens: {error.label}: {error}", file=sys.stderr)
        return 2
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skylens", description="An OpenStack image service.")
    parser.add_argument("--version", action="version", version=f"skylens {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API server")
    _common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 9292)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.set_defaults(handler=serve_command)

    sweep = commands.add_parser(
        "sweep", help="remove leftover image data now (servers also sweep periodically)"
    )
    _common(sweep)
    sweep.set_defaults(handler=sweep_command)

    database = commands.add_parser("db", help="database administration")
    db_commands = database.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="apply all migrations")
    _common(db_upgrade)
    db_upgrade.set_defaults(handler=db_upgrade_command)
    db_downgrade = db_commands.add_parser(
        "downgrade",
        help="undo migrations down to REVISION (default: the previous one; base: empty)",
        description=(
            "Undo migrations down to REVISION: a revision id, `base` (no tables), or "
            "-N (N steps back). Data in what is removed is lost. Stop every server first."
        ),
    )
    db_downgrade.add_argument("revision", metavar="REVISION", nargs="?", default="-1")
    _common(db_downgrade)
    db_downgrade.set_defaults(handler=db_downgrade_command, positionals=("revision",))
    db_current = db_commands.add_parser("current", help="print the schema revision")
    _common(db_current)
    db_current.set_defaults(handler=db_current_command)

    config = commands.add_parser("config", help="configuration administration")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = config_commands.add_parser(
        "check",
        help="print the resolved settings (secrets hidden) and test the database, "
        "stores and Keystone",
    )
    _common(check)
    check.set_defaults(handler=config_check_command)
    add_images_commands(commands, _common)
    add_metadefs_commands(commands, _common)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file (or SKYLENS_CONFIG)")
    parser.add_argument("--data-dir", help="directory for the embedded database and images")
    parser.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql://host/db")


def db_upgrade_command(settings: Settings) -> int:
    from skylens.db.engine import create_engine, current_revision, setup_errors, upgrade

    with setup_errors(settings.database_url):
        engine = create_engine(settings.database_url, pool_size=1)
        upgrade(engine)
        print(f"database at revision {current_revision(engine)}")
    return 0


def db_downgrade_command(settings: Settings, revision: str) -> int:
    from skylens.db.engine import create_engine, current_revision, downgrade, setup_errors

    with setup_errors(settings.database_url):
        engine = create_engine(settings.database_url, pool_size=1)
        downgrade(engine, revision)
        print(f"database at revision {current_revision(engine) or 'none (empty)'}")
    return 0


def db_current_command(settings: Settings) -> int:
    from skylens.db.engine import create_engine, current_revision, setup_errors

    with setup_errors(settings.database_url):
        print(current_revision(create_engine(settings.database_url, pool_size=1)) or "empty")
    return 0


def sweep_command(settings: Settings) -> int:
    from skylens.api.components import orphan_sweep
    from skylens.db.engine import check_schema, create_engine

    # The sweep reports what fails as it goes; a database it cannot use at all is
    # one line and exit 2, as for every command.
    check_schema(create_engine(settings.database_url, pool_size=1))
    result = orphan_sweep(settings).run()
    state = "FAILED (see the log)" if result.released_failed else "ok"
    print(f"uploads: {state}; {result.released} abandoned upload(s) back to queued")
    for report in result.stores:
        state = "FAILED (see the log)" if report.failed else "ok"
        print(
            f"store {report.store}: {state}; removed {report.uncommitted} unfinished "
            f"upload(s), {report.orphans} orphaned blob(s)"
        )
    return 1 if result.failed else 0


def serve_command(settings: Settings) -> int:
    # Before anything imports prometheus_client, which reads it once.
    metrics_dir = _metrics_directory(settings)
    try:
        return _serve(settings)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_directory(settings: Settings) -> Path | None:
    """This run's directory for the workers' metrics files (prometheus_client's
    multiprocess mode), `<data_dir>/metrics/<pid>`, in `PROMETHEUS_MULTIPROC_DIR`.
    Left-overs of runs no longer alive (killed, not stopped) are removed; another
    `serve` on the same data directory keeps its own."""
    if not settings.server.metrics_path:
        return None
    runs = Path(settings.data_dir) / "metrics"
    if runs.is_dir():
        for run in runs.iterdir():
            if not (run.name.isdigit() and _alive(int(run.name))):
                shutil.rmtree(run, ignore_errors=True)
    directory = runs / str(os.getpid())
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _serve(settings: Settings) -> int:
    from skylens.api.components import check_settings
    from skylens.db.engine import redacted
    from skylens.server.launch import http_serving

    _check_exposure(settings)
    check_settings(settings)
    serving = http_serving(server_options(settings))
    _prepare_database(settings)
    # Migrations ran once here; the workers must not race to run them again.
    resolved = dataclasses.replace(
        settings, database=dataclasses.replace(settings.database, auto_upgrade=False)
    )
    os.environ[_SETTINGS_ENV] = json.dumps(dataclasses.asdict(resolved))
    print(
        f"skylens {__version__} serving on http://{_url_host(settings.server.host)}:"
        f"{settings.server.port} (database {redacted(settings.database_url)}; "
        f"{serving.summary})",
        file=sys.stderr,
    )
    if serving.warning is not None:
        print(f"skylens: warning: {serving.warning}", file=sys.stderr)
    with _metrics_server(settings):
        _run_uvicorn(settings, serving.uvicorn_options)
    return 0


@contextlib.contextmanager
def _metrics_server(settings: Settings) -> Iterator[None]:
    """With `server.metrics_port`, this process answers the scrapes on that port, from
    a thread, for as long as the workers run."""
    server = settings.server
    if not (server.metrics_port and server.metrics_path):
        yield
        return
    from skylens.api.metrics import MetricsServer

    metrics = MetricsServer(server.metrics_host, server.metrics_port, server.metrics_path)
    metrics.start()
    print(
        f"skylens metrics on http://{_url_host(server.metrics_host)}:{server.metrics_port}"
        f"{server.metrics_path}",
        file=sys.stderr,
    )
    try:
        yield
    finally:
        metrics.stop()


def _run_uvicorn(settings: Settings, uvicorn_options: dict[str, Any]) -> None:
    import uvicorn

    uvicorn.run(
        "skylens.cli.main:worker_app",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=settings.server.workers,
        log_level=settings.server.log_level,
        log_config=log_config(settings.server.log_level, settings.server.log_format),
        access_log=False,  # Skylens's own access line replaces uvicorn's
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=settings.server.shutdown_timeout_seconds,
        loop="uvloop",
        **uvicorn_options,
    )


def _prepare_database(settings: Settings) -> None:
    """Migrate the database (`database.auto_upgrade`), or refuse one that is not at
    this release's schema; either way, one that cannot be used stops `serve`."""
    from skylens.db.engine import check_schema, create_engine, setup_errors, upgrade

    with setup_errors(settings.database_url):
        engine = create_engine(settings.database_url, pool_size=1)
        if settings.database.auto_upgrade:
            upgrade(engine)
    check_schema(engine)
    engine.dispose()


def server_options(settings: Settings) -> ServerOptions:
    """The server layer's options from `[server]` (the options of the same names);
    ConfigError names a bad one."""
    from skylens.server.options import ServerOptions, connection_cap, descriptor_limit

    names = [field.name for field in dataclasses.fields(ServerOptions)]
    values = {name: getattr(settings.server, name) for name in names}
    for name, value in values.items():
        if not isinstance(value, bool) and name != "max_connections" and value < 1:
            raise ConfigError(f"invalid value for server.{name}: must be at least 1, not {value}")
    if settings.server.max_uploads < 1:
        raise ConfigError("invalid value for server.max_uploads: must be at least 1")
    try:
        values["max_connections"] = connection_cap(values["max_connections"], descriptor_limit())
    except ValueError as error:
        raise ConfigError(f"invalid value for server.max_connections: {error}") from None
    return ServerOptions(**values)


def worker_app() -> Any:
    """The ASGI app of one worker process, built from the settings `serve` resolved."""
    from skylens.api.app import create_app

    raw = json.loads(os.environ[_SETTINGS_ENV])
    return create_app(load(environ={}, overrides=_flatten(raw)))


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _check_exposure(settings: Settings) -> None:
    """Trusted identity headers are only safe where nobody else can connect."""
    if settings.auth.mode != "trusted-headers" or settings.auth.allow_remote_trusted_headers:
        return
    from skylens.api.middleware import is_loopback

    if not is_loopback(settings.server.host):
        raise ConfigError(
            f"auth.mode = trusted-headers lets any client claim any identity; refusing to "
            f"listen on {settings.server.host}. Listen on 127.0.0.1, use another auth.mode, "
            f"or set auth.allow_remote_trusted_headers = true if a trusted proxy sets them."
        )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


if __name__ == "__main__":
    sys.exit(main())
