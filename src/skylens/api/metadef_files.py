"""Metadefs catalogue files: Glance's format, one JSON file per namespace.

What `glance-manage db load_metadefs` reads and `db export_metadefs` writes:
`namespace`, `display_name`, `description`, `visibility`, `protected`, `owner`,
`resource_type_associations`, `properties`, `objects`, `tags`. Each file is checked
against the published namespace schema before anything is loaded, so a bad file
loads nothing and is named in one line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

import skylens
from skylens.api.image_v2.metadef_views import load_metadef_schemas
from skylens.domain.errors import InvalidRequest
from skylens.domain.metadefs import NamespaceDetail, catalogue_document, contents_of, namespace_of

# The catalogue Skylens ships (package data), loaded on a database's first start.
SHIPPED_CATALOGUE = Path(skylens.__file__).parent / "metadefs_catalogue"
_UNSAFE = re.compile(r"[^\w.-]+")


class InvalidCatalogueFile(ValueError):
    """A catalogue file that is not a valid namespace document."""


def read_catalogue(directory: Path) -> list[NamespaceDetail]:
    """Every `*.json` namespace file of `directory`, in file name order."""
    if not directory.is_dir():
        raise InvalidCatalogueFile(f"{directory}: not a directory")
    schema = load_metadef_schemas()["namespace"]
    details: list[NamespaceDetail] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidCatalogueFile(f"{path}: not a JSON document ({error})") from error
        if not isinstance(document, dict):
            raise InvalidCatalogueFile(f"{path}: not a JSON object")
        document = _without_nulls(document)
        try:
            schema.validate(document)
        except InvalidRequest as error:
            reason = error.message.splitlines()[0]
            raise InvalidCatalogueFile(f"{path}: {reason}") from error
        document.setdefault("owner", "admin")  # as glance-manage loads an ownerless file
        name = document["namespace"]
        if name in seen:
            raise InvalidCatalogueFile(f"{path}: namespace {name} is also in {seen[name]}")
        seen[name] = path.name
        details.append(NamespaceDetail(namespace_of(document), contents_of(document)))
    return details


def _without_nulls(document: dict[str, Any]) -> dict[str, Any]:
    """Glance's own exports write null for what is unset; the schema wants it absent."""
    cleaned = {key: value for key, value in document.items() if value is not None}
    for key in ("resource_type_associations", "objects", "tags"):
        if isinstance(cleaned.get(key), list):
            cleaned[key] = [
                {k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item
                for item in cleaned[key]
            ]
    return cleaned


def first_start_catalogue(directory: str) -> list[NamespaceDetail]:
    """The configured directory's catalogue, or the shipped one (none if not shipped)."""
    if directory:
        return read_catalogue(Path(directory))
    if SHIPPED_CATALOGUE.is_dir():
        return read_catalogue(SHIPPED_CATALOGUE)
    return []


def file_name(namespace: str) -> str:
    return f"{_UNSAFE.sub('_', namespace)}.json"


def write_catalogue(details: Iterable[NamespaceDetail], directory: Path) -> list[Path]:
    """One file per namespace; the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for detail in details:
        path = directory / file_name(detail.namespace.namespace)
        if path in written:
            raise InvalidCatalogueFile(f"{path}: two namespaces would share this file")
        document = catalogue_document(detail)
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
        written.append(path)
    return written
