"""Glance's policy rules evaluated by oslo.policy, with an optional policy file.

Every rule is registered under Glance's name with Glance's default check string
(`skylens.domain.policy`); a policy file (YAML or JSON, a map of rule name to
check string, Glance's format) overrides rules by name and may add rules of its
own for others to reference. The file is re-read within a second of any change,
as Glance re-reads its own. A file that is broken at start-up stops the service;
one that breaks later keeps the previous rules in force, and the error is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from oslo_config import cfg
from oslo_policy import _checks, _parser, policy

from skylens.domain.access import Action, RequestContext
from skylens.domain.images import Image
from skylens.domain.metadefs import (
    METADEF_BASE_CHECK_STRINGS,
    METADEF_CHECK_STRINGS,
    MetadefAction,
    Namespace,
    metadef_target,
)
from skylens.domain.policy import (
    BASE_CHECK_STRINGS,
    DEFAULT_CHECK_STRINGS,
    PROJECT_SCOPED,
    policy_target,
)
from skylens.reloading import ReloadingFile

log = logging.getLogger(__name__)

_C = TypeVar("_C", bound=_checks.BaseCheck)
_KEYWORDS = frozenset({"and", "or", "not", "@", "!"})


class InvalidPolicyFile(ValueError):
    """The policy file cannot be used; the message says which rule and why."""


def default_rules() -> list[policy.RuleDefault]:
    """Glance's rules as oslo.policy defaults: helpers first, then every image action,
    then every metadef action (all of which Glance scopes to projects)."""
    helpers = {**BASE_CHECK_STRINGS, **METADEF_BASE_CHECK_STRINGS}
    rules = [policy.RuleDefault(name, check) for name, check in helpers.items()]
    for action, check in DEFAULT_CHECK_STRINGS.items():
        scope_types = ["project"] if action in PROJECT_SCOPED else None
        rules.append(policy.RuleDefault(action.value, check, scope_types=scope_types))
    for metadef_action, check in METADEF_CHECK_STRINGS.items():
        rules.append(policy.RuleDefault(metadef_action.value, check, scope_types=["project"]))
    return rules


class OsloPolicy:
    """A `Policy` decided by an oslo.policy `Enforcer` of its own (no global config)."""

    def __init__(self, policy_file: str | Path | None = None) -> None:
        # A broken file at start-up is fatal; a broken edit keeps the previous rules.
        self._file = (
            ReloadingFile(
                Path(policy_file),
                _enforcer_of,
                what="policy file",
                invalid=(InvalidPolicyFile,),
            )
            if policy_file
            else None
        )
        self._defaults = None if self._file else build_enforcer({})

    def allows(self, context: RequestContext, action: Action, image: Image | None = None) -> bool:
        if context.scope != "project" and action in PROJECT_SCOPED:
            return (
                False  # oslo.policy always enforces scope_types (and the file cannot change them)
            )
        target = policy_target(context, action, image)
        return bool(self._enforcer().enforce(action.value, target, _creds(context)))

    def allows_metadef(
        self, context: RequestContext, action: MetadefAction, namespace: Namespace | None = None
    ) -> bool:
        if context.scope != "project":
            return False  # every metadef rule is project-scoped, as in Glance
        target = metadef_target(context, namespace)
        return bool(self._enforcer().enforce(action.value, target, _creds(context)))

    def _enforcer(self) -> policy.Enforcer:
        if self._file is None:
            assert self._defaults is not None
            return self._defaults
        return self._file.current()


def _enforcer_of(path: Path) -> policy.Enforcer:
    return build_enforcer(read_policy_file(path))


def read_policy_file(path: Path) -> dict[str, str]:
    """The file's rules, each check string parsed and found well-formed."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidPolicyFile(f"{path} is not UTF-8 text: {error}") from None
    try:
        document = policy.parse_file_contents(text)
    except ValueError as error:
        raise InvalidPolicyFile(f"{path} is neither YAML nor JSON: {error}") from None
    if not isinstance(document, Mapping):
        raise InvalidPolicyFile(f"{path}: a map of rule name to check string expected")
    rules: dict[str, str] = {}
    for name, check in document.items():
        if not isinstance(name, str) or not isinstance(check, str):
            raise InvalidPolicyFile(f"{path}: rule {name!r}: the check string must be a string")
        _check_well_formed(path, name, check)
        rules[name] = check
    return rules


def build_enforcer(overrides: Mapping[str, str]) -> policy.Enforcer:
    """An enforcer holding Glance's defaults with `overrides` applied; it refuses
    rules that reference undefined rules (which would resolve to `default`, i.e.
    allow everything) or reference each other in a cycle."""
    conf = cfg.ConfigOpts()
    conf(args=[], project="skylens", default_config_files=[], default_config_dirs=[])
    enforcer = policy.Enforcer(conf, use_conf=False, default_rule="default")
    defaults = default_rules()
    enforcer.register_defaults(defaults)
    checks = {rule.name: rule.check_str for rule in defaults}
    checks.update(overrides)
    parsed = {name: _parser.parse_rule(check) for name, check in checks.items()}
    for name, check in parsed.items():
        for referenced in _sub_checks(check, _checks.RuleCheck):
            if referenced.match not in parsed:
                raise InvalidPolicyFile(
                    f"policy file: rule {name!r} refers to undefined rule {referenced.match!r}"
                )
    enforcer.set_rules(policy.Rules(parsed, "default"), overwrite=True, use_conf=False)
    try:
        enforcer.check_rules(raise_on_violation=True)
    except policy.InvalidDefinitionError:
        raise InvalidPolicyFile("policy file: rules refer to each other in a cycle") from None
    return enforcer


def _check_well_formed(path: Path, name: str, check: str) -> None:
    if not _parses(check):
        raise InvalidPolicyFile(f"{path}: rule {name!r}: cannot parse check string {check!r}")
    for generic in _sub_checks(_parser.parse_rule(check), _checks.GenericCheck):
        try:
            generic.match % _AnyKey()
        except (ValueError, TypeError) as error:
            raise InvalidPolicyFile(
                f"{path}: rule {name!r}: bad target reference {generic.match!r}: {error}"
            ) from None


def _parses(check: str) -> bool:
    """Does oslo.policy understand the check string? Asked without its parser, which
    logs a traceback and quietly reads a string it cannot parse as "never"."""
    if not check:
        return True  # '' is "always"
    for word in check.split():
        token = word.lstrip("(").rstrip(")")
        if token and token.lower() not in _KEYWORDS and ":" not in token:
            return False
    state = _parser.ParseState()
    for parsed in _parser._parse_tokenize(check):
        state.shift(parsed)
    try:
        state.result  # noqa: B018 (raises ValueError when the tokens do not reduce to one check)
    except ValueError:
        return False
    return True


def _sub_checks(check: _checks.BaseCheck, kind: type[_C]) -> list[_C]:
    """The checks of type `kind` in a parsed check string (through and/or/not)."""
    if isinstance(check, kind):
        return [check]
    found: list[_C] = []
    for child in [*getattr(check, "rules", ()), getattr(check, "rule", None)]:
        if isinstance(child, _checks.BaseCheck):
            found.extend(_sub_checks(child, kind))
    return found


class _AnyKey(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def _creds(context: RequestContext) -> dict[str, Any]:
    """What oslo.context's `to_policy_values()` gives Glance, from our context."""
    return {
        "user_id": context.user_id,
        "project_id": context.project_id,
        "roles": sorted(context.roles),
        "system_scope": "all" if context.scope == "system" else None,
        "domain_id": None,
        "is_admin_project": True,
    }
