"""Named blob stores built from plain settings, for the composition root.

    build_stores({
        "local": {"kind": "file", "root": "/var/lib/skylens/images"},
        "ceph": {"kind": "s3", "bucket": "images", "endpoint_url": "https://rgw:8443",
                 "description": "Ceph RGW, 3 replicas", "weight": 10},
        "swift": {"kind": "swift", "auth_url": "...", "user": "...", "key": "...",
                  "container": "images"},
    })

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

from skylens.domain.stores import ConfiguredStore
from skylens.storage.checked import Backend, CheckedStore
from skylens.storage.filesystem import FilesystemStore
from skylens.storage.s3 import S3Store
from skylens.storage.swift import SwiftStore


class InvalidStoreSettings(ValueError):
    """A store's settings name an unknown kind or option, or miss a required one."""


def _filesystem(name: str, *, root: str | Path, fsync: bool = True) -> Backend:
    return FilesystemStore(name, Path(root), fsync=fsync)


# Importing s3 and swift is cheap: each imports its client library only when a store
# of its kind is built.
KINDS: dict[str, Callable[..., Backend]] = {
    "file": _filesystem,
    "s3": S3Store,
    "swift": SwiftStore,
}


def build_stores(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, ConfiguredStore]:
    """One store per entry, by name; see the module docstring."""
    return {name: build_store(name, options) for name, options in settings.items()}


def build_store(name: str, options: Mapping[str, Any]) -> ConfiguredStore:
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
    accepted = {
        parameter.name: parameter
        for parameter in inspect.signature(factory).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
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
    try:
        backend = factory(name, **options)
    except (TypeError, ValueError) as error:
        raise InvalidStoreSettings(f"store {name!r} ({kind}): {error}") from error
    return ConfiguredStore(
        blob=CheckedStore(backend), kind=kind, description=description, weight=weight
    )
