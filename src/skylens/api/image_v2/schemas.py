"""The JSON Schemas the Image API publishes, and request validation against them.

The files in `schemas/` are the single source of truth: they are served as they
are, and the same documents validate request bodies, so what clients read is
exactly what the service enforces.

Patterns are read as JSON Schema reads them (ECMA-262): `$` is the end of the
string. Python's `re` also matches `$` before a final newline, so jsonschema alone
would take `"<uuid>\\n"` for an id; the validator here does not.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.exceptions

from skylens.domain.errors import InvalidRequest

_HERE = Path(__file__).parent / "schemas"


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((_HERE / f"{name}.json").read_text())
    return document


@dataclasses.dataclass(frozen=True)
class Schema:
    """One published schema and its validator."""

    name: str
    document: dict[str, Any]

    @cached_property
    def _validator(self) -> Any:
        cls = jsonschema.validators.validator_for(self.document)
        return jsonschema.validators.extend(cls, {"pattern": _pattern})(self.document)

    def validate(self, instance: Any) -> None:
        """Raise `InvalidRequest` with Glance's wording on the best-matching error."""
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(instance))
        if error is not None:
            raise InvalidRequest(f"Provided object does not match schema '{self.name}': {error}")

    @cached_property
    def properties(self) -> dict[str, Any]:
        result: dict[str, Any] = self.document["properties"]
        return result

    @cached_property
    def read_only(self) -> frozenset[str]:
        return frozenset(k for k, v in self.properties.items() if v.get("readOnly"))


def _pattern(validator: Any, pattern: str, instance: Any, _schema: Any) -> Iterator[Any]:
    """jsonschema's `pattern` keyword, with JSON Schema's `$` (see the module doc)."""
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield jsonschema.exceptions.ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """`pattern` with every `$` anchor (not escaped, not in a class) made `\\Z`."""
    out, escaped, in_class = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
    return re.compile("".join(out))


def _collection(name: str, item: dict[str, Any], paged: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {name: {"type": "array", "items": item}}
    links = []
    if paged:
        properties["first"] = {"type": "string"}
        properties["next"] = {"type": "string"}
        links = [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"}]
    properties["schema"] = {"type": "string"}
    links.append({"rel": "describedby", "href": "{schema}"})
    return {"name": name, "properties": properties, "links": links}


@dataclasses.dataclass(frozen=True)
class ImageSchemas:
    image: Schema
    images: Schema
    member: Schema
    members: Schema
    task: Schema
    tasks: Schema

    def all(self) -> tuple[Schema, ...]:
        return (self.image, self.images, self.member, self.members, self.task, self.tasks)


def load_schemas(ims_profile: bool = False) -> ImageSchemas:
    """The published schemas; with the IMS profile, the image schema also holds the
    properties IMS defines (`schemas/ims-image.json`), so that the values IMS
    enumerates are validated on create and PATCH, and clients can read them."""
    image = _load("image")
    if ims_profile:
        image["properties"].update(_load("ims-image")["properties"])
    member = _load("member")
    return ImageSchemas(
        image=Schema("image", image),
        images=Schema("images", _collection("images", copy.deepcopy(image), paged=True)),
        member=Schema("member", member),
        members=Schema("members", _collection("members", copy.deepcopy(member), paged=False)),
        task=Schema("task", _load("task")),
        tasks=Schema("tasks", _load("tasks")),
    )
