"""The error hierarchy is in one place: every `SkylensError` is defined in
`skylens.domain.errors`, except the HTTP adapters' own, which its docstring lists."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import skylens
from skylens.domain import errors
from skylens.domain.errors import SkylensError

# What the docstring of skylens.domain.errors lists as defined beside an adapter.
ADAPTER_ERRORS = {
    "skylens.api.errors": {
        "MethodNotAllowed",
        "MethodNotImplemented",
        "RangeNotSatisfiable",
        "RouteNotFound",
        "UnsupportedPatchMediaType",
    },
    "skylens.api.requests": {"NulCharacter", "RequestTooLarge"},
    "skylens.api.compute_v21.microversions": {
        "InvalidVersionString",
        "VersionNotSupported",
        "VersionNotFoundForMethod",
    },
}


def every_subclass(cls: type[SkylensError]) -> Iterator[type[SkylensError]]:
    for subclass in cls.__subclasses__():
        yield subclass
        yield from every_subclass(subclass)


def test_every_error_is_in_the_hierarchy_module_or_listed_there() -> None:
    for module in pkgutil.walk_packages(skylens.__path__, "skylens."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)

    elsewhere: dict[str, set[str]] = {}
    for cls in every_subclass(SkylensError):
        if cls.__module__ != errors.__name__:
            elsewhere.setdefault(cls.__module__, set()).add(cls.__name__)

    assert elsewhere == ADAPTER_ERRORS


def test_the_hierarchy_module_lists_the_adapters_errors() -> None:
    documented = " ".join((errors.__doc__ or "").split())

    for module, names in ADAPTER_ERRORS.items():
        assert f"`{module}`" in documented
        for name in names:
            assert f"`{name}`" in documented, name
