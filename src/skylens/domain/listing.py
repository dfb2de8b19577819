"""What a caller asks for when listing images: filters, order and paging."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from enum import StrEnum

from skylens.domain.images import Image, MemberStatus, Visibility
from skylens.domain.ims import ImsQuery


class SortDirection(StrEnum):
    ASC = "asc"
    DESC = "desc"


# Keys Glance lets clients sort by, in the order its error message lists them.
SORT_KEYS: tuple[str, ...] = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
)


# The integer attributes a list may filter on, and the range each can hold (its
# column's: 64 bits for sizes, 32 for the minimums).
INTEGER_RANGES: Mapping[str, tuple[int, int]] = {
    "size": (-(2**63), 2**63 - 1),
    "virtual_size": (-(2**63), 2**63 - 1),
    "min_ram": (-(2**31), 2**31 - 1),
    "min_disk": (-(2**31), 2**31 - 1),
}


class Operator(StrEnum):
    EQ = "eq"
    NEQ = "neq"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"


@dataclasses.dataclass(frozen=True, slots=True)
class SortKey:
    attribute: str
    direction: SortDirection


@dataclasses.dataclass(frozen=True, slots=True)
class AttributeFilter:
    """`attribute` equals `values[0]`, or (operator IN) is one of `values`."""

    attribute: str
    operator: Operator
    values: tuple[str | int | bool, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class TimeFilter:
    attribute: str  # created_at or updated_at
    operator: Operator
    value: dt.datetime  # naive UTC


@dataclasses.dataclass(frozen=True, slots=True)
class ListQuery:
    limit: int
    marker: str | None = None
    sort: tuple[SortKey, ...] = ()
    visibility: Visibility | None = None  # None: no filter; see `all_visibilities`
    all_visibilities: bool = False
    member_status: MemberStatus | None = MemberStatus.ACCEPTED  # None: all
    os_hidden: bool = False
    attributes: tuple[AttributeFilter, ...] = ()
    times: tuple[TimeFilter, ...] = ()
    tags: tuple[str, ...] = ()
    properties: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ims: ImsQuery | None = None  # the IMS profile's filters, when it is on

    @property
    def visibility_filter_given(self) -> bool:
        return self.all_visibilities or self.visibility is not None


@dataclasses.dataclass(frozen=True, slots=True)
class ImagePage:
    images: tuple[Image, ...]
    next_marker: str | None


def complete_sort(
    keys: tuple[SortKey, ...], default: SortDirection = SortDirection.DESC
) -> tuple[SortKey, ...]:
    """Drop repeated keys, and append created_at and id so that every order is
    total (stable paging).

    A key's second place in an order never decides between two rows (they tied
    on its first), so Glance's order is the same without the repeats, and the
    statement stays as short as the distinct keys. As in Glance, the appended
    keys take `default`: the direction when the client gave exactly one, else `desc`.
    """
    if not keys:
        keys = (SortKey("created_at", default),)
    unique: dict[str, SortKey] = {}
    for key in keys:
        unique.setdefault(key.attribute, key)
    for attribute in ("created_at", "id"):
        unique.setdefault(attribute, SortKey(attribute, default))
    return tuple(unique.values())
