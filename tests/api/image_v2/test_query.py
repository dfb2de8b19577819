"""Parsing `GET /v2/images` query parameters into a `ListQuery`, without a server.

The HTTP behaviour is in test_list*.py; these pin down the pure parsing rules
(quoted `in:` lists, ISO 8601 times, sort syntaxes) case by case.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl

import iso8601
import pytest

from skylens.api.listing import ListLimits, parse_list_query, split_quoted_list
from skylens.domain.errors import InvalidFilter
from skylens.domain.images import MemberStatus, Visibility
from skylens.domain.listing import AttributeFilter, ListQuery, Operator, SortKey, TimeFilter


def parse(query: str, limits: ListLimits | None = None) -> ListQuery:
    return parse_list_query(parse_qsl(query, keep_blank_values=True), limits or ListLimits())


def refusal(query: str) -> str:
    with pytest.raises(InvalidFilter) as raised:
        parse(query)
    return raised.value.message


# -- in: lists ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("a", ["a"]),
        ("a,b,c", ["a", "b", "c"]),
        ('"a,b",c', ["a,b", "c"]),
        ('c,"a,b"', ["c", "a,b"]),
        ('"a,b","c,d"', ["a,b", "c,d"]),
        ("a,,b", ["a", "", "b"]),
        (",a", ["", "a"]),
        ("a,", ["a"]),
        ('"",a', ["", "a"]),
        ("", []),
        ('"a\\"b",c', ['a\\"b', "c"]),  # an escaped quote stays as written
        ('a\\"b', ['a\\"b']),
        ("a b, c", ["a b", " c"]),
    ],
)
def test_split_quoted_list_splits_on_commas_outside_quotes(value: str, items: list[str]) -> None:
    assert split_quoted_list(value) == items


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('a"b"', "There is no comma before opening quotation mark."),
        ('a,b"c"', "There is no comma before opening quotation mark."),
        ('"a"b', "There is no comma after closing quotation mark."),
        ('"a" ,b', "There is no comma after closing quotation mark."),
        ('"a', "The quote is not closed."),
        ('a,"b,c', "The quote is not closed."),
        ('"a\\"', "The quote is not closed."),
    ],
)
def test_split_quoted_list_refuses_misplaced_quotes(value: str, problem: str) -> None:
    with pytest.raises(InvalidFilter) as raised:
        split_quoted_list(value)

    assert raised.value.message == f"Invalid filter value {value}. {problem}"


def test_in_filters_carry_every_item() -> None:
    assert parse('name=in:"a,b",c').attributes == (
        AttributeFilter("name", Operator.IN, ("a,b", "c")),
    )


# -- times -------------------------------------------------------------------------------------

NOON = dt.datetime(2020, 6, 1, 12, 0, 0)


def parsed_time(text: str) -> dt.datetime:
    [time_filter] = parse_list_query([("created_at", f"gte:{text}")], ListLimits()).times
    return time_filter.value


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2020-06-01T12:00:00", NOON),
        ("2020-06-01 12:00:00", NOON),
        ("2020-06-01T12:00:00Z", NOON),
        ("2020-06-01T12:00", NOON),
        ("2020-06-01T12", NOON),
        ("20200601T120000", NOON),
        ("2020-06-01T14:00:00+02:00", NOON),
        ("2020-06-01T14:00:00+0200", NOON),
        ("2020-06-01T14:00:00+02", NOON),
        ("2020-06-01T06:30:00-05:30", NOON),
        ("2020-06-02T01:00:00+13:00", NOON),
        ("2020-06-01T12:00:00.25", NOON.replace(microsecond=250000)),
        ("2020-06-01T12:00:00,5Z", NOON.replace(microsecond=500000)),
        ("2020-06-01T12:00:00.1234567", NOON.replace(microsecond=123456)),
        ("2020-06-01T00:30:00+01:00", dt.datetime(2020, 5, 31, 23, 30)),
        ("2020-06-01", dt.datetime(2020, 6, 1)),
        ("2020-6-1", dt.datetime(2020, 6, 1)),
        ("20200601", dt.datetime(2020, 6, 1)),
        ("2020-06", dt.datetime(2020, 6, 1)),
        ("2020", dt.datetime(2020, 1, 1)),
    ],
)
def test_times_are_iso_8601_normalised_to_naive_utc(text: str, moment: dt.datetime) -> None:
    """A `T` or a space between date and time; no zone means UTC."""
    assert parsed_time(text) == moment


@pytest.mark.parametrize("operator", ["eq", "neq", "gt", "gte", "lt", "lte"])
def test_each_comparison_operator_applies_to_times(operator: str) -> None:
    assert parse(f"updated_at={operator}:2020-06-01T12:00:00").times == (
        TimeFilter("updated_at", Operator(operator), NOON),
    )


def test_a_whole_timestamp_holding_colons_means_eq() -> None:
    assert parse("created_at=2020-06-01T14:00:00%2B02:00").times == (
        TimeFilter("created_at", Operator.EQ, NOON),
    )


@pytest.mark.parametrize(
    "text",
    [
        "noon",
        "",
        "2020-06-01T25:00:00",
        "2020-02-30",
        "2020-00-10",
        "202006",
        "2020-06-01t12:00:00z",
        "2020-06-01T12:00:00+2",
        "2020-06-01T12:00:00 +02:00",
        "2020-06-01T12:00:00 UTC",
        "2020-06-01T12:00:00+24:00",
        " 2020-06-01",
        "9999-12-31T23:00:00-05:00",
        "\u0662020-06-01",
    ],
)
def test_other_time_formats_are_refused(text: str) -> None:
    with pytest.raises(InvalidFilter) as raised:
        parsed_time(text)

    assert raised.value.message == (
        'Bad "created_at" query filter format. Use ISO 8601 DateTime notation.'
    )


ISO_8601_SAMPLES = [
    f"{date}{time}{zone}"
    for date in (
        "2020-06-01",
        "2020-6-1",
        "20200601",
        "2020-06",
        "2020",
        "2020-13-01",
        "2020-02-30",
    )
    for time in ("", "T12", "T12:30", "T1230", "T12:30:45", "T12:30:45.5", " 12:30:45,123", "t12")
    for zone in ("", "Z", "+02:00", "-0530", "+02", "+2", "z", "+24:00")
]


@pytest.mark.parametrize("text", ISO_8601_SAMPLES)
def test_times_parse_exactly_as_the_iso8601_library_glance_uses(text: str) -> None:
    """The iso8601 package (Glance's parser; here a test-only dependency) is the oracle."""
    try:
        reference = iso8601.parse_date(text)
        expected: dt.datetime | None = reference.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        expected = None
    try:
        actual: dt.datetime | None = parsed_time(text)
    except InvalidFilter:
        actual = None

    assert actual == expected


def test_the_time_is_checked_before_the_operator() -> None:
    assert refusal("created_at=after:2020-06-01") == "Unable to filter on a unknown operator."
    assert refusal("created_at=after:noon") == (
        'Bad "created_at" query filter format. Use ISO 8601 DateTime notation.'
    )


# -- sorting ------------------------------------------------------------------------------------


def _sort(*keys: str) -> tuple[SortKey, ...]:
    return tuple(SortKey(*key.split(":")) for key in keys)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "sort"),
    [
        ("", _sort("created_at:desc", "id:desc")),
        ("sort_dir=asc", _sort("created_at:asc", "id:asc")),
        ("sort_key=name", _sort("name:desc", "created_at:desc", "id:desc")),
        ("sort_key=name&sort_dir=asc", _sort("name:asc", "created_at:asc", "id:asc")),
        (
            "sort_key=name&sort_key=size&sort_dir=asc",
            _sort("name:asc", "size:asc", "created_at:asc", "id:asc"),
        ),
        (
            "sort_key=name&sort_key=size&sort_dir=asc&sort_dir=asc",
            _sort("name:asc", "size:asc", "created_at:desc", "id:desc"),
        ),
        ("sort_key= name &sort_dir= asc ", _sort("name:asc", "created_at:asc", "id:asc")),
        ("sort_key=id&sort_dir=asc", _sort("id:asc", "created_at:asc")),
        ("sort_key=created_at&sort_key=id", _sort("created_at:desc", "id:desc")),
        ("sort=name", _sort("name:desc", "created_at:desc", "id:desc")),
        ("sort=name:", _sort("name:desc", "created_at:desc", "id:desc")),
        ("sort=name:asc", _sort("name:asc", "created_at:asc", "id:asc")),
        ("sort=name:asc,size", _sort("name:asc", "size:desc", "created_at:desc", "id:desc")),
        (
            "sort= name : asc , updated_at:asc ",
            _sort("name:asc", "updated_at:asc", "created_at:desc", "id:desc"),
        ),
        ("sort=created_at:asc", _sort("created_at:asc", "id:asc")),
        # A repeated key never changes the order: its first place decides.
        (
            "sort=name:asc,size,name:desc",
            _sort("name:asc", "size:desc", "created_at:desc", "id:desc"),
        ),
        ("sort=name:asc,name:asc", _sort("name:asc", "created_at:desc", "id:desc")),
        ("sort=id:asc,created_at,id", _sort("id:asc", "created_at:desc")),
        (
            "sort_key=size&sort_key=size&sort_dir=asc",
            _sort("size:asc", "created_at:asc", "id:asc"),
        ),
    ],
)
def test_sort_orders_are_completed_with_created_at_and_id(
    query: str, sort: tuple[SortKey, ...]
) -> None:
    """The tie-breakers take the one direction given, or else `desc`."""
    assert parse(query).sort == sort


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sort_key=tags", "Invalid sort key: tags."),
        ("sort=name,min_ram:asc", "Invalid sort key: min_ram."),
        ("sort_dir=random", "Invalid sort direction: random"),
        ("sort=name:up", "Invalid sort direction: up"),
        ("sort=name&sort_key=size", "Old and new sorting syntax cannot be combined"),
        ("sort=name&sort_dir=asc", "Old and new sorting syntax cannot be combined"),
        (
            "sort_key=name&sort_dir=asc&sort_dir=desc&sort_dir=asc",
            "Number of sort dirs does not match the number of sort keys",
        ),
    ],
)
def test_invalid_sorts_are_refused(query: str, message: str) -> None:
    assert refusal(query).startswith(message)


# -- the other parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "limit"),
    [("", 25), ("limit=0", 0), ("limit=7", 7), ("limit=1000", 1000), ("limit=1001", 1000)],
)
def test_limit_defaults_and_is_clamped(query: str, limit: int) -> None:
    assert parse(query).limit == limit


def test_limits_come_from_configuration() -> None:
    limits = ListLimits(default=5, maximum=10)

    assert parse("", limits).limit == 5
    assert parse("limit=50", limits).limit == 10


def test_member_status_defaults_to_accepted_and_all_means_no_filter() -> None:
    assert parse("").member_status is MemberStatus.ACCEPTED
    assert parse("member_status=pending").member_status is MemberStatus.PENDING
    assert parse("member_status=all").member_status is None


@pytest.mark.parametrize(
    ("query", "visibility", "all_visibilities"),
    [
        ("", None, False),
        ("visibility=community", Visibility.COMMUNITY, False),
        ("visibility=all", None, True),
    ],
)
def test_visibility_filter(
    query: str, visibility: Visibility | None, all_visibilities: bool
) -> None:
    parsed = parse(query)

    assert (parsed.visibility, parsed.all_visibilities) == (visibility, all_visibilities)
    assert parsed.visibility_filter_given is (visibility is not None or all_visibilities)


def test_every_unreserved_key_that_is_no_attribute_filters_a_property() -> None:
    parsed = parse("os_distro=ubuntu&hw_disk_bus=virtio&owner=p&checksum=c")

    assert parsed.properties == {"os_distro": "ubuntu", "hw_disk_bus": "virtio"}
    assert set(parsed.attributes) == {
        AttributeFilter("owner", Operator.EQ, ("p",)),
        AttributeFilter("checksum", Operator.EQ, ("c",)),
    }


def test_size_bounds_become_inclusive_comparisons() -> None:
    assert set(parse("size_min=1&size_max=9").attributes) == {
        AttributeFilter("size", Operator.GTE, (1,)),
        AttributeFilter("size", Operator.LTE, (9,)),
    }


def test_tags_keep_every_value_stripped() -> None:
    assert parse("tag=a&tag=%20b%20").tags == ("a", "b")


def test_marker_is_the_last_one_given() -> None:
    assert parse("marker=a&marker=b").marker == "b"
