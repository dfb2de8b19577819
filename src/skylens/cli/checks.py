"""`skylens config check`: the settings as resolved, secrets hidden, then every
dependency tried the way the service will use it.

One line per check (`ok` or `FAIL`, the check's name, what was found); the exit
status is 0 when every check passed and 1 otherwise. Unlike readiness, which
unauthenticated callers read, these lines are for the operator: they name
endpoints and carry the driver's own words.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from skylens.config import AuthMode, QuotaSource, Settings

HIDDEN = "***"
# Option names whose values are credentials, wherever they appear (a store's
# `secret_key` or Swift `key`, Keystone's `password`...).
_SECRET_NAMES = frozenset({"password", "secret", "secret_key", "key", "token", "credentials"})
_SECRET_SUFFIXES = ("_password", "_secret", "_token", "_secret_key")


def config_check_command(settings: Settings) -> int:
    out = sys.stdout
    out.write("# settings (secrets hidden)\n")
    for name, value in resolved_settings(settings):
        out.write(f"{name} = {toml_value(value)}\n")
    out.write("# checks\n")
    results = [_report(out, name, run) for name, run in _checks(settings)]
    failed = results.count(False)
    out.write(f"{len(results) - failed} of {len(results)} checks passed\n")
    return 1 if failed else 0


def resolved_settings(settings: Settings) -> Iterator[tuple[str, Any]]:
    """Every option as `section.name`, the values as the service uses them (the
    database URL and the file stores' roots filled in), credentials hidden."""
    values = dataclasses.asdict(settings)
    values["database"]["url"] = settings.database_url
    values["stores"] = settings.store_settings()
    yield from _flatten(values, "")


def _flatten(values: dict[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for key in sorted(values):
        value = values[key]
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", hide_secret(key, value)


def hide_secret(name: str, value: Any) -> Any:
    """`value` with any credential in it hidden: the whole value for an option
    named like a secret, the password of a URL."""
    lowered = name.lower()
    if value and (lowered in _SECRET_NAMES or lowered.endswith(_SECRET_SUFFIXES)):
        return HIDDEN
    if isinstance(value, str) and "@" in value and "://" in value:
        return _url_without_password(value)
    if isinstance(value, list | tuple):
        return type(value)(hide_secret("", item) for item in value)
    return value


def _url_without_password(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return HIDDEN
    if password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{HIDDEN}@{host}"))


def toml_value(value: Any) -> str:
    """`value` as it would be written in the configuration file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, StrEnum):
        return json.dumps(value.value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + inner + "}" if inner else "{}"
    return json.dumps(str(value))


class CheckFailed(Exception):
    """What a check found wrong, in one line."""


Check = tuple[str, Callable[[], str]]


def _report(out: TextIO, name: str, run: Callable[[], str]) -> bool:
    # Loaded by then (`_checks` imports the components): no cost to the CLI's start.
    from skylens.db.engine import first_line

    try:
        found = run()
    except CheckFailed as failure:
        out.write(f"FAIL  {name}: {failure}\n")
        return False
    except Exception as error:  # a check must never stop the others
        out.write(f"FAIL  {name}: {type(error).__name__}: {first_line(error)}\n")
        return False
    out.write(f"ok    {name}: {found}\n")
    return True


def _checks(settings: Settings) -> Iterator[Check]:
    from skylens.api.components import check_settings, configured_stores
    from skylens.api.import_components import staging_store

    try:
        check_settings(settings)
    except Exception as error:
        yield "settings", _failing(str(error))
        stores = {}
    else:
        yield "settings", lambda: "every file read, every store and path valid"
        stores = {name: store.blob for name, store in configured_stores(settings).items()}
        stores[f"{staging_store(settings).id} (staging)"] = staging_store(settings).blob
    yield "database", lambda: _database(settings)
    for name, blob in stores.items():
        yield f"store {name}", _store_check(blob)
    if settings.auth.mode is AuthMode.KEYSTONE or settings.quotas.source is QuotaSource.KEYSTONE:
        yield "keystone", lambda: _keystone(settings)


def _failing(reason: str) -> Callable[[], str]:
    def run() -> str:
        raise CheckFailed(reason)

    return run


def _database(settings: Settings) -> str:
    import sqlalchemy as sa

    from skylens.config import ConfigError
    from skylens.db.engine import (
        create_engine,
        current_revision,
        head_revision,
        is_past_revision,
        redacted,
        setup_errors,
    )

    url = settings.database_url
    migrates = settings.database.auto_upgrade
    parsed = sa.make_url(url)
    missing = parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists()
    if missing and migrates:  # and connecting would create it: a check changes nothing
        return f"no database file yet at {parsed.database}: `serve` creates and migrates it"
    if missing:
        raise CheckFailed(f"no database file at {parsed.database} (run `skylens db upgrade`)")
    try:
        with setup_errors(url):
            engine = create_engine(url, pool_size=1)
            try:
                current = current_revision(engine)
            finally:
                engine.dispose()
    except ConfigError as error:
        raise CheckFailed(str(error)) from None
    if current != head_revision() and migrates and is_past_revision(current):
        return (
            f"{redacted(url)} reachable, schema at revision {current or 'none'}: `serve` "
            f"migrates it to {head_revision()} (database.auto_upgrade)"
        )
    if current != head_revision():
        raise CheckFailed(
            f"{redacted(url)} is at schema revision {current or 'none'}, this release "
            f"needs {head_revision()} (run `skylens db upgrade`)"
        )
    return f"{redacted(url)} reachable, schema at revision {current}"


def _store_check(blob: Any) -> Callable[[], str]:
    """Reachable (a read), then writable: a small blob written, committed, read back
    and deleted, as an upload would."""

    def run() -> str:
        from skylens.db.engine import first_line
        from skylens.domain.errors import BlobNotFound, StorageFull, StorageUnavailable

        key = f"skylens-config-check-{uuid.uuid4().hex}"
        probe = b"skylens config check\n"
        try:
            blob.size(key)
            writer = blob.writer(key)
            try:
                writer.write(probe)
                writer.commit()
            except BaseException:
                writer.abort()
                raise
            try:
                if b"".join(blob.read(key)) != probe:
                    raise CheckFailed("the blob written was read back different")
            finally:
                blob.delete(key)
        except (StorageUnavailable, StorageFull, BlobNotFound) as error:
            detail = getattr(error, "reason", "") or str(error)
            raise CheckFailed(f"{type(error).__name__}: {first_line(Exception(detail))}") from None
        details = blob.details()
        where = details.get("data_dir") or details.get("endpoint") or details.get("auth_endpoint")
        return f"reachable and writable ({where})" if where else "reachable and writable"

    return run


def _keystone(settings: Settings) -> str:
    from skylens.api.components import service_credentials
    from skylens.db.engine import first_line

    credentials = service_credentials(settings)
    try:
        token = credentials.session().get_token()
    except Exception as error:
        raise CheckFailed(
            f"cannot authenticate as {credentials.username!r} at {credentials.auth_url}: "
            f"{type(error).__name__}: {first_line(error)}"
        ) from None
    if not token:
        raise CheckFailed(f"no token for {credentials.username!r} at {credentials.auth_url}")
    return (
        f"{credentials.auth_url} answers; the service user {credentials.username!r} authenticates"
    )
