"""Glance's property protection file (roles format), read and kept current.

    # protections.conf: INI; each section name is a regular expression
    [^x_billing_]
    create = admin
    read = admin,member
    update = admin
    delete = admin

    [.*]
    create = @
    read = @
    update = @
    delete = @

Each section needs all four operations; a value is a comma-separated list of
roles, `@` for anyone or `!` for no one, and an empty value means no one (a
warning says so, as Glance's does). A `[DEFAULT]` section gives every section the
options it lacks, as in any configparser file. What the rules mean is
`skylens.domain.protections`.

The file is re-read within a second of any change. One that is broken at
start-up stops the service; one that breaks later keeps the previous rules in
force, and the error is logged.
"""

from __future__ import annotations

import configparser
import logging
import re
from pathlib import Path

from skylens.domain.protections import (
    ANY_ROLE,
    NO_ROLE,
    PropertyOperation,
    PropertyRule,
    PropertyRules,
)
from skylens.reloading import ReloadingFile

log = logging.getLogger(__name__)

_OPERATIONS = tuple(PropertyOperation)


class InvalidProtectionsFile(ValueError):
    """The protections file cannot be used; the message names the section and why."""


class ProtectionsFile:
    """A `PropertyProtections` read from a file and re-read when it changes."""

    def __init__(self, path: str | Path) -> None:
        # A broken file at start-up is fatal; a broken edit keeps the previous rules.
        self._file = ReloadingFile(
            Path(path), _read, what="property protection file", invalid=(InvalidProtectionsFile,)
        )

    def current(self) -> PropertyRules:
        return self._file.current()


def _read(path: Path) -> PropertyRules:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidProtectionsFile(f"{path} is not UTF-8 text: {error}") from None
    return parse_rules(text, str(path))


def parse_rules(text: str, source: str = "<string>") -> PropertyRules:
    """The rules of a roles-format protections file, in the file's order."""
    parser = configparser.RawConfigParser()  # no %-interpolation; strict about duplicates
    try:
        parser.read_string(text, source)
    except configparser.Error as error:
        raise InvalidProtectionsFile(f"{source}: {error}") from None
    return PropertyRules([_rule(parser, section, source) for section in parser.sections()])


def _rule(parser: configparser.RawConfigParser, section: str, source: str) -> PropertyRule:
    where = f"{source}: section [{section}]"
    try:
        pattern = re.compile(section)
    except re.error as error:
        raise InvalidProtectionsFile(f"{where}: invalid regular expression: {error}") from None
    unknown = sorted(set(parser.options(section)) - set(_OPERATIONS))
    if unknown:
        log.warning("%s: option(s) %s ignored", where, ", ".join(unknown))
    roles: dict[PropertyOperation, frozenset[str]] = {}
    for operation in _OPERATIONS:
        if not parser.has_option(section, operation):
            raise InvalidProtectionsFile(
                f"{where} has no {operation.value!r} "
                "(every section needs create, read, update and delete)"
            )
        value = parser.get(section, operation)
        names = [role.strip().lower() for role in value.split(",")] if value else []
        if ANY_ROLE in names and NO_ROLE in names:
            raise InvalidProtectionsFile(
                f"{where}: {operation.value} = {value}: "
                f"'{ANY_ROLE}' and '{NO_ROLE}' are mutually exclusive"
            )
        if not names:
            log.warning(
                "%s: %s names no role: no one will be allowed to %s these properties",
                where,
                operation.value,
                operation.value,
            )
        roles[operation] = frozenset(name for name in names if name)
    return PropertyRule(pattern, roles)
