"""Named blob stores built from plain settings, for the composition root.

    build_stores({
        "local": {"kind": "file", "root": "/var/lib/skylens/images"},
        "ceph": {"kind": "s3", "bucket": "images", "endpoint_url": "https://rgw:8443",
                 "description": "Ceph RGW, 3 replicas", "weight": 10},
        "swift": {"kind": "swift", "auth_url": "...", "user": "...", "key": "...",
                  "container": "images"},
        "web": {"kind": "http", "description": "images at http(s) URLs (read-only)"},
    }, remote=fetcher)

Besides `kind`, `description` and `weight` (see `ConfiguredStore`), each kind's
options are the keyword arguments of its store (`FilesystemStore`: `root`, `fsync`;
`S3Store`; `SwiftStore`), so they are documented in one place. Reading them from a
file is the caller's business; this module only checks that each store names a
known kind, no unknown option and every required one.

Every store built here is wrapped in `CheckedStore` (key checks, preparation on first
use, error normalisation; see `checked.py`): the rest of the service never sees a
bare backend.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from skylens.domain.ports import RemoteSource
from skylens.domain.stores import ConfiguredStore
from skylens.storage.checked import Backend, CheckedStore
from skylens.storage.filesystem import FilesystemStore
from skylens.storage.http import HttpStore
from skylens.storage.keys import location_key, url_of_location_key
from skylens.storage.s3 import S3Store
from skylens.storage.swift import SwiftStore


class InvalidStoreSettings(ValueError):
    """A store's settings name an unknown kind or option, or miss a required one."""


def _filesystem(name: str, *, root: str | Path, fsync: bool = True) -> Backend:
    return FilesystemStore(name, Path(root), fsync=fsync)


def _http(name: str, *, remote: RemoteSource) -> Backend:
    return HttpStore(name, remote=remote)


# Importing s3 and swift is cheap: each imports its client library only when a store
# of its kind is built.
KINDS: dict[str, Callable[..., Backend]] = {
    "file": _filesystem,
    "s3": S3Store,
    "swift": SwiftStore,
    "http": _http,
}
# What the composition root gives a kind besides its options (never read from a file).
_INJECTED = {"http": ("remote",)}


def build_stores(
    settings: Mapping[str, Mapping[str, Any]], remote: RemoteSource | None = None
) -> dict[str, ConfiguredStore]:
    """One store per entry, by name; see the module docstring. `remote` fetches the
    http stores' URLs (web-download's fetcher, with its URI filter)."""
    return {name: build_store(name, options, remote) for name, options in settings.items()}


def build_store(
    name: str, options: Mapping[str, Any], remote: RemoteSource | None = None
) -> ConfiguredStore:
    options = dict(options)
    kind = options.pop("kind", None)
    description = options.pop("description", "")
    weight = options.pop("weight", 0)
    if not isinstance(description, str):
        raise InvalidStoreSettings(f"store {name!r}: description must be a string")
    if not isinstance(weight, int) or isinstance(weight, bool):
        raise InvalidStoreSettings(f"store {name!r}: weight must be an integer")
    factory = KINDS.get(kind) if isinstance(kind, str) else None
    if factory is None:
        raise InvalidStoreSettings(
            f"store {name!r}: kind must be one of {', '.join(sorted(KINDS))}, not {kind!r}"
        )
    injected = _INJECTED.get(kind, ())
    accepted = {
        parameter.name: parameter
        for parameter in inspect.signature(factory).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.name not in injected
    }
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidStoreSettings(
            f"store {name!r} ({kind}): unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(accepted))}"
        )
    missing = sorted(
        option
        for option, parameter in accepted.items()
        if parameter.default is inspect.Parameter.empty and option not in options
    )
    if missing:
        raise InvalidStoreSettings(
            f"store {name!r} ({kind}): missing option(s) {', '.join(missing)}"
        )
    if injected and remote is None:
        raise InvalidStoreSettings(f"store {name!r} ({kind}): no fetcher for its URLs")
    extra = {"remote": remote} if injected else {}
    try:
        backend = factory(name, **options, **extra)
    except (TypeError, ValueError) as error:
        raise InvalidStoreSettings(f"store {name!r} ({kind}): {error}") from error
    return ConfiguredStore(
        blob=CheckedStore(backend),
        kind=kind,
        description=description,
        weight=weight,
        url_of=_url_of(kind, options),
        key_of_url=_key_of_url if kind == "http" else None,
    )


def _url_of(kind: str, options: Mapping[str, Any]) -> Callable[[str], str]:
    """How an image location names a blob of the store (Glance's URL schemes; no
    endpoint, no credentials)."""
    if kind == "file":
        root = Path(options["root"]).absolute()
        return lambda key: (root / key).as_uri()
    if kind == "http":
        return lambda key: url_of_location_key(key) or ""
    where = options.get("bucket") or options.get("container") or ""
    return lambda key: f"{kind}://{where}/{key}"


def _key_of_url(url: str) -> str | None:
    scheme = url.partition(":")[0].lower()
    return location_key(url) if scheme in ("http", "https") else None
