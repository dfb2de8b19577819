"""Property protections: which roles may create, read, update or delete which
extra properties (Glance's `property_protection_file`, roles format).

Rules are tried in the order the operator wrote them; the first whose pattern is
found anywhere in a property's name (a regular-expression search, not a match of
the whole name) decides every operation on that property. A name no rule matches
may not be touched at all, and with no rules at all everything is allowed. Core
attributes (name, visibility, min_ram...) are never subject to these rules.

Roles are compared with the caller's roles as the request context has them,
literally, as in Glance: a Keystone token already carries the implied roles (a
`member` is then also a `reader`), other identities carry only what they name.
Admins get no exemption: a rule that names no admin role refuses admins.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from skylens.domain.access import RequestContext
from skylens.domain.errors import PropertyProtected
from skylens.domain.images import Image

ANY_ROLE = "@"  # every caller, whatever its roles
NO_ROLE = "!"  # no caller at all


class PropertyOperation(StrEnum):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"


@dataclasses.dataclass(frozen=True, slots=True)
class PropertyRule:
    """One section of the file: a pattern and, per operation, the roles allowed.

    An operation absent from `roles`, or given no roles, is allowed to nobody.
    """

    pattern: re.Pattern[str]
    roles: Mapping[PropertyOperation, frozenset[str]]

    def __post_init__(self) -> None:
        for operation, roles in self.roles.items():
            if ANY_ROLE in roles and NO_ROLE in roles:
                raise ValueError(
                    f"[{self.pattern.pattern}] {operation}: '{ANY_ROLE}' and '{NO_ROLE}' "
                    "are mutually exclusive"
                )

    def allows(self, roles: frozenset[str], operation: PropertyOperation) -> bool:
        allowed = self.roles.get(operation, frozenset())
        if NO_ROLE in allowed:
            return False
        if ANY_ROLE in allowed:
            return True
        return not allowed.isdisjoint(roles)


# Property names are chosen by clients: the name -> rule memo must stay bounded.
_MEMO_LIMIT = 4096


class PropertyRules:
    """The rules in force, evaluated for a caller and a property name."""

    def __init__(self, rules: Sequence[PropertyRule]) -> None:
        self.rules = tuple(rules)
        self._memo: dict[str, PropertyRule | None] = {}

    def rule_for(self, name: str) -> PropertyRule | None:
        """The first rule whose pattern is found in `name`; None if none is."""
        try:
            return self._memo[name]
        except KeyError:
            pass
        found = next((rule for rule in self.rules if rule.pattern.search(name)), None)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[name] = found
        return found

    def allows(self, context: RequestContext, name: str, operation: PropertyOperation) -> bool:
        if not self.rules:
            return True
        rule = self.rule_for(name)
        return rule is not None and rule.allows(context.roles, operation)

    def check(self, context: RequestContext, name: str, operation: PropertyOperation) -> None:
        """Raise `PropertyProtected` unless the caller may do `operation` on `name`."""
        if not self.allows(context, name, operation):
            raise PropertyProtected(name)

    def check_all(
        self, context: RequestContext, names: Iterable[str], operation: PropertyOperation
    ) -> None:
        for name in names:
            self.check(context, name, operation)

    def readable(self, context: RequestContext, names: Iterable[str]) -> bool:
        """May the caller read every one of `names`?"""
        return all(self.allows(context, name, PropertyOperation.READ) for name in names)

    def shown(self, context: RequestContext, image: Image) -> Image:
        """The image as the caller may see it: without the properties it may not read."""
        hidden = {
            name
            for name in image.properties
            if not self.allows(context, name, PropertyOperation.READ)
        }
        if not hidden:
            return image
        properties = {k: v for k, v in image.properties.items() if k not in hidden}
        return dataclasses.replace(image, properties=properties)


def restore_hidden(changed: Image, stored: Image, shown: Image) -> Image:
    """`changed` (made from `shown`, the caller's view of `stored`) with the
    properties the caller could not see put back untouched, unless the change set
    a property of the same name (which it may, given the right to create it)."""
    if shown is stored:
        return changed
    hidden = {k: v for k, v in stored.properties.items() if k not in shown.properties}
    if not hidden:
        return changed
    return dataclasses.replace(changed, properties={**hidden, **changed.properties})
