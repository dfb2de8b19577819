"""Request bodies of the image metadata routes, validated as the Compute API does."""

from __future__ import annotations

from typing import Any

import jsonschema
from starlette.requests import Request

from skylens.api.requests import parse_json, read_body
from skylens.domain.errors import InvalidRequest

# A metadata object: keys of 1-255 of these characters, string values of up to 255.
# `\Z`, not `$` (which Python also matches before a final newline): this schema is
# only ever run by Python's `re`, never published.
_METADATA: dict[str, Any] = {
    "type": "object",
    "patternProperties": {
        r"^[a-zA-Z0-9-_:. ]{1,255}\Z": {"type": "string", "maxLength": 255},
    },
    "additionalProperties": False,
}


def _body_schema(member: str, **constraints: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {member: {**_METADATA, **constraints}},
        "required": [member],
        "additionalProperties": False,
    }


_METADATA_BODY = jsonschema.Draft4Validator(_body_schema("metadata"))
_META_BODY = jsonschema.Draft4Validator(_body_schema("meta", minProperties=1, maxProperties=1))


async def read_metadata(request: Request) -> dict[str, str]:
    """`{"metadata": {...}}` (POST and PUT of the whole metadata)."""
    document = await _read(request)
    _validate(_METADATA_BODY, document)
    metadata: dict[str, str] = document["metadata"]
    return metadata


async def read_meta_item(request: Request, key: str) -> dict[str, str]:
    """`{"meta": {key: value}}`: exactly one item, named as the URL names it."""
    document = await _read(request)
    _validate(_META_BODY, document)
    meta: dict[str, str] = document["meta"]
    if key not in meta:
        raise InvalidRequest("Request body and URI mismatch")
    return meta


async def _read(request: Request) -> Any:
    body = await read_body(request)
    if not body:
        return None
    return parse_json(body, malformed="Malformed request body")


def _validate(validator: jsonschema.Draft4Validator, document: Any) -> None:
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        return
    if error.path:
        raise InvalidRequest(
            f"Invalid input for field/attribute {error.path[-1]}. "
            f"Value: {error.instance}. {error.message}"
        )
    raise InvalidRequest(error.message)
