"""Parse the two json-patch media types Glance accepts into domain `Change`s."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from skylens.api.errors import UnsupportedPatchMediaType
from skylens.api.image_v2.schemas import Schema
from skylens.domain.changes import Change, ChangeOp
from skylens.domain.errors import (
    InvalidPatch,
    LimitExceeded,
    ReadOnlyAttribute,
    ReservedAttribute,
)
from skylens.domain.images import READ_ONLY_ATTRIBUTES, RESERVED_ATTRIBUTES, RESERVED_PREFIX

PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"
# Glance lists the operations sorted in its messages.
_OPERATIONS = ", ".join(sorted(op.value for op in ChangeOp))
_ADJACENT_SLASHES = re.compile(r"/\s*?/")
_BAD_ESCAPE = re.compile(r"~[^01]")


@dataclasses.dataclass(frozen=True)
class ParsedPatch:
    changes: tuple[Change, ...]
    add_replaces: bool


def check_media_type(content_type: str | None) -> bool:
    """True for the v2.1 media type, False for v2.0; 415 for anything else."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == PATCH_V21:
        return True
    if media_type == PATCH_V20:
        return False
    raise UnsupportedPatchMediaType(content_type or "", (PATCH_V20, PATCH_V21))


def parse_patch(
    document: Any, schema: Schema, *, v21: bool, max_operations: int = -1
) -> ParsedPatch:
    """The changes `document` asks for; more than `max_operations` (unless negative)
    is 413, before any is looked at. Validating each value costs ~20 us, so callers
    run this off the event loop."""
    if not isinstance(document, list):
        raise InvalidPatch("Request body must be a JSON array of operation objects.")
    if 0 <= max_operations < len(document):
        raise LimitExceeded(
            "The limit has been exceeded on the number of allowed patch operations. "
            f"Attempted: {len(document)}, Maximum: {max_operations}"
        )
    changes = []
    for raw in document:
        if not isinstance(raw, dict):
            raise InvalidPatch("Operations must be JSON objects.")
        op, pointer = _operation_v21(raw) if v21 else _operation_v20(raw)
        path = decode_pointer(pointer)
        name = path[0]
        if len(path) != _PATH_DEPTHS.get(name, {}).get(op, 1):
            raise InvalidPatch(f"Invalid JSON pointer for this resource: '/{'/'.join(path)}'")
        if op is not ChangeOp.REMOVE and "value" not in raw:
            raise InvalidPatch(f'Operation "{op.value}" requires a member named "value".')
        _check_writable(name, schema)
        value = raw.get("value")
        position = path[1] if len(path) == 2 else None
        if op is not ChangeOp.REMOVE:
            # `/locations/N` adds one item of the array (as Glance validates it).
            schema.validate({name: [value] if position is not None else value})
        changes.append(Change(op, name, value, position))
    return ParsedPatch(tuple(changes), add_replaces=v21)


def _operation_v21(raw: dict[str, Any]) -> tuple[ChangeOp, str]:
    op = raw.get("op")
    if op is None:
        raise InvalidPatch(
            f"Unable to find `op` in JSON Schema change. It must be one of the following: "
            f"{_OPERATIONS}."
        )
    if op not in ChangeOp.__members__.values():
        raise InvalidPatch(
            f"Invalid operation: `{op}`. It must be one of the following: {_OPERATIONS}."
        )
    if "path" not in raw:
        raise InvalidPatch("Unable to find 'path' in JSON Schema change")
    return ChangeOp(op), _pointer_text(raw["path"])


def _operation_v20(raw: dict[str, Any]) -> tuple[ChangeOp, str]:
    present = [op for op in ChangeOp if op.value in raw]
    if len(present) > 1:
        raise InvalidPatch(
            'Operation objects must contain only one member named "add", "remove", or "replace".'
        )
    if not present:
        raise InvalidPatch(
            'Operation objects must contain exactly one member named "add", "remove", or "replace".'
        )
    return present[0], _pointer_text(raw[present[0].value])


def _pointer_text(pointer: Any) -> str:
    if not isinstance(pointer, str):
        raise InvalidPatch(f'Pointer `{pointer}` does not start with "/".')
    return pointer


def decode_pointer(pointer: str) -> list[str]:
    """Decode Glance's restricted JSON pointer into its stripped tokens."""
    if not pointer.startswith("/"):
        raise InvalidPatch(f'Pointer `{pointer}` does not start with "/".')
    if _ADJACENT_SLASHES.search(pointer[1:]):
        raise InvalidPatch(f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise InvalidPatch(f'Pointer `{pointer}` end with "/".')
    if pointer[1:].strip() == "/":
        raise InvalidPatch(f"Pointer `{pointer}` does not contains valid token.")
    if _BAD_ESCAPE.search(pointer) or pointer.endswith("~"):
        raise InvalidPatch(
            f'Pointer `{pointer}` contains "~" not part of a recognized escape sequence.'
        )
    return [
        part.replace("~1", "/").replace("~0", "~").strip()
        for part in pointer.lstrip("/").split("/")
    ]


# Glance's `_path_depth_limits`: `/locations/N|-` adds or removes one location,
# `/locations` replaces them all; every other path is one token.
_PATH_DEPTHS = {"locations": {ChangeOp.ADD: 2, ChangeOp.REMOVE: 2, ChangeOp.REPLACE: 1}}


def _check_writable(name: str, schema: Schema) -> None:
    if name in schema.read_only or name in READ_ONLY_ATTRIBUTES:
        raise ReadOnlyAttribute(name)
    if name == "locations":
        return  # Glance's rules, and its 403s while locations are invisible, apply later
    if name in RESERVED_ATTRIBUTES or name.startswith(RESERVED_PREFIX):
        raise ReservedAttribute(name)
