"""GET /v2/images filters: each query parameter narrows the list; all are ANDed.

`name`, `id`, `status`, `container_format` and `disk_format` take `eq:` (the
default) or `in:`; `created_at` and `updated_at` take an ISO 8601 time with an
optional comparison; `size_min`/`size_max` bound the size; `tag` may repeat;
`os_hidden`, `protected`, `owner`, `checksum` and `os_hash_value` match their
attribute; any other key matches a property exactly. (`visibility` and
`member_status` are in test_list_visibility.py.)
"""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.identities import Identity
from tests.support.images import create_image
from tests.support.listing import assert_bad_request, list_ids
from tests.support.seeding import insert_image, insert_images
from tests.support.servers import RunningServer

# -- name, id, status, container_format, disk_format ---------------------------------------


def test_name_matches_the_whole_name_exactly(api: httpx.Client, project: str) -> None:
    cirros = create_image(api, name="cirros")["id"]
    create_image(api, name="cirros-0.6")
    create_image(api, name="Cirros")

    assert list_ids(api, {"owner": project, "name": "cirros"}) == [cirros]
    assert list_ids(api, {"owner": project, "name": "eq:cirros"}) == [cirros]


def test_in_matches_any_name_of_a_comma_separated_list(api: httpx.Client, project: str) -> None:
    ids = {name: create_image(api, name=name)["id"] for name in ("a", "b", "c")}

    listed = list_ids(api, {"owner": project, "name": "in:a,c,z"})

    assert sorted(listed) == sorted([ids["a"], ids["c"]])


def test_in_items_in_double_quotes_may_contain_commas(api: httpx.Client, project: str) -> None:
    ids = {name: create_image(api, name=name)["id"] for name in ("a,b", "a", "b", "c")}

    listed = list_ids(api, {"owner": project, "name": 'in:"a,b",c'})

    assert sorted(listed) == sorted([ids["a,b"], ids["c"]])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('in:a"b"', "There is no comma before opening quotation mark."),
        ('in:"a"b', "There is no comma after closing quotation mark."),
        ('in:"a,b', "The quote is not closed."),
        ('in:a,"b', "The quote is not closed."),
    ],
)
def test_misplaced_quotes_in_an_in_list_are_400(
    api: httpx.Client, value: str, problem: str
) -> None:
    response = api.get("/v2/images", params={"name": value})

    assert_bad_request(response, f"Invalid filter value {value.removeprefix('in:')}. {problem}")


@pytest.mark.parametrize(
    ("key", "value", "operator"),
    [
        ("name", "like:cirros", "like"),
        ("name", "a:b", "a"),  # so a name holding a colon cannot be matched
        ("id", "neq:0", "neq"),
        ("status", "gt:active", "gt"),
        ("container_format", "not:bare", "not"),
        ("disk_format", "lte:raw", "lte"),
    ],
)
def test_other_operators_are_400(api: httpx.Client, key: str, value: str, operator: str) -> None:
    response = api.get("/v2/images", params={key: value})

    assert_bad_request(response, f"Unable to filter by unknown operator '{operator}'.")


def test_id_in_lists_images_by_id(api: httpx.Client, project: str) -> None:
    first, second, _third = (create_image(api)["id"] for _ in range(3))

    listed = list_ids(api, {"owner": project, "id": f"in:{first},{second},{uuid.uuid4()}"})

    assert sorted(listed) == sorted([first, second])
    assert list_ids(api, {"owner": project, "id": second}) == [second]


def test_status_matches_exactly_and_in_lists(
    server: RunningServer, api: httpx.Client, project: str
) -> None:
    queued = create_image(api)["id"]
    active = insert_image(server, owner=project, status="active")
    deactivated = insert_image(server, owner=project, status="deactivated")

    assert list_ids(api, {"owner": project, "status": "active"}) == [active]
    listed = list_ids(api, {"owner": project, "status": "in:queued,deactivated"})
    assert sorted(listed) == sorted([queued, deactivated])


def test_an_unknown_status_matches_nothing(api: httpx.Client, project: str) -> None:
    create_image(api)

    response = api.get("/v2/images", params={"owner": project, "status": "bogus"})

    assert response.status_code == 200
    assert response.json()["images"] == []


def test_container_and_disk_format_match_exactly_and_in_lists(
    api: httpx.Client, project: str
) -> None:
    raw = create_image(api, disk_format="raw", container_format="bare")["id"]
    qcow2 = create_image(api, disk_format="qcow2", container_format="bare")["id"]
    iso = create_image(api, disk_format="iso", container_format="ovf")["id"]

    assert list_ids(api, {"owner": project, "disk_format": "qcow2"}) == [qcow2]
    assert sorted(list_ids(api, {"owner": project, "disk_format": "in:raw,iso"})) == sorted(
        [raw, iso]
    )
    assert list_ids(api, {"owner": project, "container_format": "ovf"}) == [iso]
    assert sorted(list_ids(api, {"owner": project, "container_format": "in:bare"})) == sorted(
        [raw, qcow2]
    )


# -- created_at and updated_at ----------------------------------------------------------------

EARLY = dt.datetime(2020, 1, 1)
MIDDLE = dt.datetime(2020, 6, 1, 12, 0, 0)
LATE = dt.datetime(2021, 1, 1)


@pytest.fixture
def dated(server: RunningServer, project: str) -> dict[str, dict[dt.datetime, str]]:
    """Three images of `project`; per attribute, the image carrying each time.

    updated_at runs opposite to created_at, so the two filters pick different images.
    """
    times = (EARLY, MIDDLE, LATE)
    rows = [
        {"owner": project, "created_at": created, "updated_at": updated}
        for created, updated in zip(times, reversed(times), strict=True)
    ]
    ids = insert_images(server, rows)
    return {
        "created_at": dict(zip(times, ids, strict=True)),
        "updated_at": dict(zip(reversed(times), ids, strict=True)),
    }


@pytest.mark.parametrize("attribute", ["created_at", "updated_at"])
@pytest.mark.parametrize(
    ("expression", "matching"),
    [
        ("gt:2020-06-01T12:00:00", [LATE]),
        ("gte:2020-06-01T12:00:00", [MIDDLE, LATE]),
        ("lt:2020-06-01T12:00:00", [EARLY]),
        ("lte:2020-06-01T12:00:00", [EARLY, MIDDLE]),
        ("eq:2020-06-01T12:00:00", [MIDDLE]),
        ("neq:2020-06-01T12:00:00", [EARLY, LATE]),
        ("2020-06-01T12:00:00", [MIDDLE]),
        ("2020-06-01T12:00:00Z", [MIDDLE]),
        ("2020-06-01T14:00:00+02:00", [MIDDLE]),
        ("eq:2020-06-01T07:00:00-05:00", [MIDDLE]),
        ("eq:2020-06-01T12:00:00+0000", [MIDDLE]),
        ("gte:2020-06-01 12:00:00", [MIDDLE, LATE]),
        ("lt:2020-06-01 12:00:00.500000", [EARLY, MIDDLE]),
        ("gt:2020-06-01", [MIDDLE, LATE]),
        ("lt:2020-06", [EARLY]),
        ("gte:2021", [LATE]),
        ("lt:2020-01-01T00:00:01", [EARLY]),
    ],
)
def test_time_filters_compare_in_utc(
    api: httpx.Client,
    project: str,
    dated: dict[str, dict[dt.datetime, str]],
    attribute: str,
    expression: str,
    matching: list[dt.datetime],
) -> None:
    """No operator means `eq`; no zone means UTC; a date alone means its midnight."""
    listed = list_ids(api, {"owner": project, attribute: expression})

    assert sorted(listed) == sorted(dated[attribute][moment] for moment in matching)


def test_an_image_is_found_by_the_created_at_the_api_returned(
    api: httpx.Client, project: str
) -> None:
    image = create_image(api)

    assert list_ids(api, {"owner": project, "created_at": image["created_at"]}) == [image["id"]]
    assert list_ids(api, {"owner": project, "created_at": f"gte:{image['created_at']}"}) == [
        image["id"]
    ]
    assert list_ids(api, {"owner": project, "created_at": f"gt:{image['created_at']}"}) == []
    assert list_ids(api, {"owner": project, "updated_at": f"lte:{image['updated_at']}"}) == [
        image["id"]
    ]


@pytest.mark.parametrize("attribute", ["created_at", "updated_at"])
@pytest.mark.parametrize(
    "expression",
    ["yesterday", "gt:yesterday", "2020-13-01", "gte:2020-02-30T00:00:00", "bad:worse", ""],
)
def test_a_time_that_is_not_iso_8601_is_400(
    api: httpx.Client, attribute: str, expression: str
) -> None:
    response = api.get("/v2/images", params={attribute: expression})

    assert_bad_request(
        response, f'Bad "{attribute}" query filter format. Use ISO 8601 DateTime notation.'
    )


@pytest.mark.parametrize("attribute", ["created_at", "updated_at"])
@pytest.mark.parametrize("operator", ["after", "in", "like"])
def test_an_unknown_time_operator_is_400(api: httpx.Client, attribute: str, operator: str) -> None:
    response = api.get("/v2/images", params={attribute: f"{operator}:2020-01-01T00:00:00"})

    assert_bad_request(response, "Unable to filter on a unknown operator.")


def test_changes_since_is_400(api: httpx.Client) -> None:
    response = api.get("/v2/images", params={"changes-since": "2020-01-01T00:00:00"})

    assert_bad_request(response, 'The "changes-since" filter is no longer available on v2.')


# -- size ------------------------------------------------------------------------------------


@pytest.fixture
def sized(server: RunningServer, project: str) -> dict[int | None, str]:
    """Images of `project` by size (one has none yet)."""
    sizes = (None, 0, 10, 100)
    ids = insert_images(server, [{"owner": project, "size": size} for size in sizes])
    return dict(zip(sizes, ids, strict=True))


@pytest.mark.parametrize(
    ("params", "sizes"),
    [
        ({"size_min": "10"}, [10, 100]),
        ({"size_max": "10"}, [0, 10]),
        ({"size_min": "0"}, [0, 10, 100]),
        ({"size_min": "5", "size_max": "50"}, [10]),
        ({"size_min": "11", "size_max": "99"}, []),
        ({"size": "100"}, [100]),
    ],
)
def test_size_min_and_size_max_bound_the_size_inclusively(
    api: httpx.Client,
    project: str,
    sized: dict[int | None, str],
    params: dict[str, str],
    sizes: list[int],
) -> None:
    """An image without a size yet matches no bound."""
    listed = list_ids(api, {"owner": project, **params})

    assert sorted(listed) == sorted(sized[size] for size in sizes)


@pytest.mark.parametrize("params", [{"size_min": "big"}, {"size_max": "1.5"}, {"size_min": ""}])
def test_a_size_bound_that_is_not_an_integer_is_400(
    api: httpx.Client, params: dict[str, str]
) -> None:
    response = api.get("/v2/images", params=params)

    assert_bad_request(response, "Unable to filter on a range with a non-numeric value.")


def test_min_and_max_bound_other_integer_attributes_too(api: httpx.Client, project: str) -> None:
    small = create_image(api, min_ram=256)["id"]
    large = create_image(api, min_ram=2048, min_disk=20)["id"]

    assert list_ids(api, {"owner": project, "min_ram_min": "512"}) == [large]
    assert list_ids(api, {"owner": project, "min_ram_max": "512"}) == [small]
    assert list_ids(api, {"owner": project, "min_disk_min": "1"}) == [large]
    assert list_ids(api, {"owner": project, "min_ram": "256"}) == [small]


# -- tags --------------------------------------------------------------------------------------


def test_tag_matches_images_carrying_it(api: httpx.Client, project: str) -> None:
    both = create_image(api, tags=["linux", "lts"])["id"]
    linux = create_image(api, tags=["linux"])["id"]
    create_image(api, tags=["windows"])

    assert sorted(list_ids(api, {"owner": project, "tag": "linux"})) == sorted([both, linux])
    assert list_ids(api, {"owner": project, "tag": "Linux"}) == []


def test_repeated_tags_must_all_be_carried(api: httpx.Client, project: str) -> None:
    both = create_image(api, tags=["linux", "lts"])["id"]
    create_image(api, tags=["linux"])
    create_image(api, tags=["lts"])

    listed = list_ids(api, [("owner", project), ("tag", "linux"), ("tag", "lts")])

    assert listed == [both]


def test_tag_values_are_stripped_of_surrounding_spaces(api: httpx.Client, project: str) -> None:
    tagged = create_image(api, tags=["linux"])["id"]

    assert list_ids(api, {"owner": project, "tag": "  linux "}) == [tagged]


# -- os_hidden and protected ---------------------------------------------------------------


def test_hidden_images_are_left_out_unless_os_hidden_is_true(
    api: httpx.Client, project: str
) -> None:
    shown = create_image(api)["id"]
    hidden = create_image(api, os_hidden=True)["id"]

    assert list_ids(api, {"owner": project}) == [shown]
    assert list_ids(api, {"owner": project, "os_hidden": "false"}) == [shown]
    assert list_ids(api, {"owner": project, "os_hidden": "true"}) == [hidden]
    assert list_ids(api, {"owner": project, "os_hidden": "TRUE"}) == [hidden]


@pytest.mark.parametrize("value", ["Maybe", "1", "yes", ""])
def test_os_hidden_other_than_true_or_false_is_400_naming_it_in_lowercase(
    api: httpx.Client, value: str
) -> None:
    response = api.get("/v2/images", params={"os_hidden": value})

    assert_bad_request(
        response,
        f"Invalid value '{value.lower()}' for 'os_hidden' filter. "
        "Valid values are 'true' or 'false'.",
    )


def test_protected_matches_protected_images(api: httpx.Client, project: str) -> None:
    plain = create_image(api)["id"]
    protected = create_image(api, protected=True)["id"]

    assert list_ids(api, {"owner": project, "protected": "true"}) == [protected]
    assert list_ids(api, {"owner": project, "protected": "false"}) == [plain]


@pytest.mark.parametrize("value", ["True", "FALSE", "1", ""])
def test_protected_is_case_sensitive_and_anything_else_is_400(
    api: httpx.Client, value: str
) -> None:
    response = api.get("/v2/images", params={"protected": value})

    assert_bad_request(
        response,
        f"Invalid value '{value}' for 'protected' filter. Valid values are 'true' or 'false'.",
    )


# -- owner, checksum, os_hash_value ---------------------------------------------------------


def test_owner_narrows_an_admin_list_to_one_project(
    http: ClientFactory, admin: Identity, member: Identity, stranger: Identity
) -> None:
    mine = create_image(http(member), visibility="private")["id"]
    create_image(http(stranger), visibility="private")

    assert list_ids(http(admin), {"owner": member.project}) == [mine]


def test_checksum_and_os_hash_value_match_exactly(
    server: RunningServer, api: httpx.Client, project: str
) -> None:
    first = insert_image(server, owner=project, checksum="a" * 32, os_hash_value="c" * 128)
    second = insert_image(server, owner=project, checksum="b" * 32, os_hash_value="d" * 128)

    assert list_ids(api, {"owner": project, "checksum": "a" * 32}) == [first]
    assert list_ids(api, {"owner": project, "os_hash_value": "d" * 128}) == [second]
    assert list_ids(api, {"owner": project, "checksum": "A" * 32}) == []


# -- properties ------------------------------------------------------------------------------


def test_any_other_key_matches_a_property_exactly(api: httpx.Client, project: str) -> None:
    ubuntu = create_image(api, os_distro="ubuntu")["id"]
    create_image(api, os_distro="Ubuntu")
    create_image(api, os_distro="ubuntu-core")
    create_image(api)

    assert list_ids(api, {"owner": project, "os_distro": "ubuntu"}) == [ubuntu]
    assert list_ids(api, {"owner": project, "no_such_property": "ubuntu"}) == []


def test_several_property_filters_must_all_match(api: httpx.Client, project: str) -> None:
    both = create_image(api, os_distro="ubuntu", hw_disk_bus="virtio")["id"]
    create_image(api, os_distro="ubuntu", hw_disk_bus="scsi")
    create_image(api, os_distro="debian", hw_disk_bus="virtio")

    listed = list_ids(api, {"owner": project, "os_distro": "ubuntu", "hw_disk_bus": "virtio"})

    assert listed == [both]


def test_different_kinds_of_filter_combine(api: httpx.Client, project: str) -> None:
    wanted = create_image(api, name="web", tags=["prod"], os_distro="ubuntu", disk_format="raw")
    create_image(api, name="web", tags=["prod"], os_distro="ubuntu", disk_format="qcow2")
    create_image(api, name="web", tags=["dev"], os_distro="ubuntu", disk_format="raw")
    create_image(api, name="db", tags=["prod"], os_distro="ubuntu", disk_format="raw")

    listed = list_ids(
        api,
        {
            "owner": project,
            "name": "web",
            "tag": "prod",
            "os_distro": "ubuntu",
            "disk_format": "in:raw,iso",
        },
    )

    assert listed == [wanted["id"]]
