"""Parse list query parameters into a `ListQuery`, as Glance does.

The grammar of `GET /v2/images`, which the Compute API's image list shares (it
renames its parameters to these first): one parser, the same errors. Beyond
Glance, `ListLimits` caps how much one request may ask for, because every sort
key, tag and property filter becomes a term of one SQL statement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence

from skylens.domain.errors import InvalidFilter
from skylens.domain.images import MemberStatus, Visibility
from skylens.domain.listing import (
    INTEGER_RANGES,
    SORT_KEYS,
    AttributeFilter,
    ListQuery,
    Operator,
    SortDirection,
    SortKey,
    TimeFilter,
    complete_sort,
)

_LIST_ATTRIBUTES = ("name", "id", "status", "container_format", "disk_format")
_TIME_ATTRIBUTES = ("created_at", "updated_at")
_TIME_OPERATORS = frozenset(
    {Operator.EQ, Operator.NEQ, Operator.GT, Operator.GTE, Operator.LT, Operator.LTE}
)
# Columns an unknown-looking key may still name: filtered by equality.
_INTEGER_COLUMNS = frozenset(INTEGER_RANGES)
_BOOLEAN_COLUMNS = frozenset({"protected", "os_hidden"})
_STRING_COLUMNS = frozenset({"owner", "checksum", "os_hash_algo", "os_hash_value", "visibility"})
_RESERVED = frozenset({"limit", "marker", "member_status", "tag", "sort", "sort_key", "sort_dir"})


@dataclasses.dataclass(frozen=True)
class ListLimits:
    """Page sizes, and the most one request may ask for (beyond them: 400)."""

    default: int = 25
    maximum: int = 1000
    parameters: int = 128  # query parameters in all, repeats included
    sort_keys: int = 50  # items of `sort`, or of `sort_key` / `sort_dir`
    tags: int = 20  # `tag=` parameters
    property_filters: int = 50


def parse_list_query(
    params: Sequence[tuple[str, str]], limits: ListLimits, sort_keys: Sequence[str] = SORT_KEYS
) -> ListQuery:
    check_count("query parameters", len(params), limits.parameters)
    last = dict(params)
    values: dict[str, list[str]] = {}
    for key, value in params:
        values.setdefault(key, []).append(value)

    limit = _limit(last.get("limit"), limits)
    member_status = _member_status(last.get("member_status", "accepted"))
    sort, default_direction = _sort(last, values, sort_keys, limits.sort_keys)
    tags = tuple(tag.strip() for tag in values.get("tag", []))
    check_count("tag filters", len(tags), limits.tags)

    filters = {key: value for key, value in last.items() if key not in _RESERVED}
    if "changes-since" in filters:
        raise InvalidFilter('The "changes-since" filter is no longer available on v2.')
    visibility, all_visibilities = _visibility(filters.pop("visibility", None))
    os_hidden = _os_hidden(filters.pop("os_hidden", None))
    attributes: list[AttributeFilter] = []
    times: list[TimeFilter] = []
    ranges: dict[str, int] = {}
    properties: dict[str, str] = {}
    for key, value in filters.items():
        if key in _TIME_ATTRIBUTES:
            times.append(_time_filter(key, value))
        elif key in _LIST_ATTRIBUTES:
            attributes.append(_list_filter(key, value))
        elif key == "protected":
            attributes.append(AttributeFilter(key, Operator.EQ, (_protected(value),)))
        elif key.endswith(("_min", "_max")) and key[:-4] in _INTEGER_COLUMNS:
            ranges[key] = _in_range(key, key[:-4], _range_value(value))
        elif key in _INTEGER_COLUMNS:
            attributes.append(AttributeFilter(key, Operator.EQ, (_integer(key, value),)))
        elif key in _BOOLEAN_COLUMNS:
            attributes.append(AttributeFilter(key, Operator.EQ, (value.lower() == "true",)))
        elif key in _STRING_COLUMNS:
            attributes.append(AttributeFilter(key, Operator.EQ, (value,)))
        else:
            properties[key] = value
    check_count("property filters", len(properties), limits.property_filters)
    for key, bound in ranges.items():
        operator = Operator.GTE if key.endswith("_min") else Operator.LTE
        attributes.append(AttributeFilter(key[:-4], operator, (bound,)))

    return ListQuery(
        limit=limit,
        marker=last.get("marker"),
        sort=complete_sort(sort, default_direction),
        visibility=visibility,
        all_visibilities=all_visibilities,
        member_status=member_status,
        os_hidden=os_hidden,
        attributes=tuple(attributes),
        times=tuple(times),
        tags=tags,
        properties=properties,
    )


def check_count(what: str, count: int, cap: int) -> None:
    """Refuse a request that asks for more than `cap` of `what`."""
    if count > cap:
        raise InvalidFilter(f"Too many {what}: {count}. The maximum is {cap}.")


def _limit(raw: str | None, limits: ListLimits) -> int:
    limit = requested_limit(raw)
    return limits.default if limit is None else min(limit, limits.maximum)


def requested_limit(raw: str | None) -> int | None:
    """The `limit` parameter as given (None if absent), refused as Glance refuses it."""
    if raw is None:
        return None
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidFilter("limit param must be an integer") from None
    if limit < 0:
        raise InvalidFilter("limit param must be positive")
    return limit


def invalid_value(name: str, value: str, allowed: Sequence[str]) -> str:
    """Glance's refusal of a filter value outside `allowed` (`protected`, `os_hidden`)."""
    quoted = [f"'{item}'" for item in allowed]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"Invalid value '{value}' for '{name}' filter. Valid values are {listed}."


def _member_status(raw: str) -> MemberStatus | None:
    if raw == "all":
        return None
    try:
        return MemberStatus(raw)
    except ValueError:
        raise InvalidFilter(f"Invalid status: {raw}") from None


def _visibility(raw: str | None) -> tuple[Visibility | None, bool]:
    if not raw:
        return None, False
    if raw == "all":
        return None, True
    try:
        return Visibility(raw), False
    except ValueError:
        raise InvalidFilter(f"Invalid visibility value: {raw}") from None


def _os_hidden(raw: str | None) -> bool:
    value = ("false" if raw is None else raw).lower()  # present but empty is invalid
    if value not in ("true", "false"):
        raise InvalidFilter(invalid_value("os_hidden", value, ("true", "false")))
    return value == "true"


def _protected(raw: str) -> bool:
    if raw not in ("true", "false"):
        raise InvalidFilter(invalid_value("protected", raw, ("true", "false")))
    return raw == "true"


def _range_value(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise InvalidFilter("Unable to filter on a range with a non-numeric value.") from None


def _integer(key: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidFilter(f"Invalid value '{raw}' for '{key}' filter.") from None
    return _in_range(key, key, value)


def _in_range(name: str, attribute: str, value: int) -> int:
    """`value`, if `attribute` can hold it; else a 400 in Glance's words for an
    out-of-range integer (so no backend is asked to compare with it)."""
    low, high = INTEGER_RANGES[attribute]
    if value > high:
        raise InvalidFilter(f"'{name}' value out of range, must not exceed {high}.")
    if value < low:
        raise InvalidFilter(f"'{name}' value out of range, must not be less than {low}.")
    return value


# -- sorting -------------------------------------------------------------------


def _sort(
    last: dict[str, str], values: dict[str, list[str]], sort_keys: Sequence[str], cap: int
) -> tuple[tuple[SortKey, ...], SortDirection]:
    keys: list[str] = []
    directions: list[SortDirection] = []
    if "sort" in last:
        if "sort_key" in last or "sort_dir" in last:
            raise InvalidFilter("Old and new sorting syntax cannot be combined")
        items = last["sort"].strip().split(",")
        check_count("sort keys", len(items), cap)
        for item in items:
            key, _, direction = item.partition(":")
            keys.append(_sort_key(key.strip(), sort_keys))
            directions.append(_sort_direction(direction.strip() or "desc"))
    else:
        given = values.get("sort_key", [])
        given_directions = values.get("sort_dir", [])
        check_count("sort keys", max(len(given), len(given_directions)), cap)
        keys = [_sort_key(key.strip(), sort_keys) for key in given]
        directions = [_sort_direction(d.strip()) for d in given_directions]
        if len(directions) > 1 and len(directions) != len(keys):
            raise InvalidFilter("Number of sort dirs does not match the number of sort keys")
    if not keys:
        keys = ["created_at"]
    default = directions[0] if len(directions) == 1 else SortDirection.DESC
    if not directions:
        directions = [SortDirection.DESC]
    if len(directions) == 1:
        directions = directions * len(keys)
    return tuple(SortKey(k, d) for k, d in zip(keys, directions, strict=True)), default


def _sort_key(key: str, sort_keys: Sequence[str]) -> str:
    if key not in sort_keys:
        raise InvalidFilter(
            f"Invalid sort key: {key}. It must be one of the following: {', '.join(sort_keys)}."
        )
    return key


def _sort_direction(direction: str) -> SortDirection:
    try:
        return SortDirection(direction)
    except ValueError:
        raise InvalidFilter(f"Invalid sort direction: {direction}") from None


# -- operators -----------------------------------------------------------------


def _split_operator(expression: str) -> tuple[str, str]:
    """`op:value`, or `eq` for a plain value or a bare ISO 8601 timestamp."""
    operator, sep, value = expression.partition(":")
    if not sep or _parse_time(expression) is not None:
        return "eq", expression
    return operator, value


def _list_filter(key: str, expression: str) -> AttributeFilter:
    operator, value = _split_operator(expression)
    if operator == Operator.IN:
        return AttributeFilter(key, Operator.IN, tuple(split_quoted_list(value)))
    if operator == Operator.EQ:
        return AttributeFilter(key, Operator.EQ, (value,))
    raise InvalidFilter(f"Unable to filter by unknown operator '{operator}'.")


def _time_filter(key: str, expression: str) -> TimeFilter:
    operator, value = _split_operator(expression)
    moment = _parse_time(value)
    if moment is None:
        raise InvalidFilter(f'Bad "{key}" query filter format. Use ISO 8601 DateTime notation.')
    if operator not in _TIME_OPERATORS:
        raise InvalidFilter("Unable to filter on a unknown operator.")
    return TimeFilter(key, Operator(operator), moment)


# The grammar of `iso8601.parse_date`, which Glance parses these times with:
# YYYY, YYYY-MM, YYYY-MM-DD or YYYYMMDD (a dashed month or day may have one digit),
# then optionally `T` or a space and HH[[:]MM][[:]SS[.fraction]][Z|+HH[[:]MM]].
_ISO_8601 = re.compile(
    r"(?P<year>[0-9]{4})"
    r"(?:(?:-(?P<monthdash>[0-9]{1,2})|(?P<month>[0-9]{2})(?!$))"
    r"(?:(?:-(?P<daydash>[0-9]{1,2})|(?P<day>[0-9]{2}))"
    r"(?:[ T](?P<hour>[0-9]{2})(?::?(?P<minute>[0-9]{2}))?"
    r"(?::?(?P<second>[0-9]{1,2})(?:[.,](?P<fraction>[0-9]+))?)?"
    r"(?P<zone>Z|[-+][0-9]{2}:?(?:[0-9]{2})?)?"
    r")?)?)?$"
)


def _parse_time(text: str) -> dt.datetime | None:
    """ISO 8601 as Glance reads it (no zone means UTC) -> naive UTC, or None."""
    match = _ISO_8601.match(text)
    if match is None:
        return None
    part = match.groupdict()
    try:
        moment = dt.datetime(
            int(part["year"]),
            int(part["month"] or part["monthdash"] or 1),
            int(part["day"] or part["daydash"] or 1),
            int(part["hour"] or 0),
            int(part["minute"] or 0),
            int(part["second"] or 0),
            int((part["fraction"] or "0")[:6].ljust(6, "0")),
            tzinfo=_zone(part["zone"]),
        )
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None


def _zone(zone: str | None) -> dt.tzinfo:
    if zone is None or zone == "Z":
        return dt.UTC
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return dt.timezone(sign * offset)


def split_quoted_list(value: str) -> list[str]:
    """Split an `in:` value on commas; double-quoted items may contain commas.

    A backslash-escaped quote stays in the item as written (as in Glance).
    """
    items: list[str] = []
    current: list[str] = []
    started = quoted = False
    for index, char in enumerate(value):
        escaped = index > 0 and value[index - 1] == "\\"
        if char == '"' and not escaped:
            _check_quote(value, index, opening=not quoted)
            quoted = not quoted
            started = True
        elif char == "," and not quoted:
            items.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
            started = True
    if quoted:
        raise InvalidFilter(f"Invalid filter value {value}. The quote is not closed.")
    if started:
        items.append("".join(current))
    return items


def _check_quote(value: str, index: int, *, opening: bool) -> None:
    if opening and index > 0 and value[index - 1] != ",":
        raise InvalidFilter(
            f"Invalid filter value {value}. There is no comma before opening quotation mark."
        )
    if not opening and index + 1 < len(value) and value[index + 1] != ",":
        raise InvalidFilter(
            f"Invalid filter value {value}. There is no comma after closing quotation mark."
        )
