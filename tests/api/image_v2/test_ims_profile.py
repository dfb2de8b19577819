"""The Huawei Cloud IMS profile (`images.ims_profile = true`), over real HTTP.

Seed 003 ("Querying Images") is the spec. One server per backend runs with the
profile on, holding one catalogue across a platform project and two tenant
projects, A and B; every query below runs as a member of A unless it says
otherwise, and each asserts the exact set of images it must return.

| image | owner | visibility | members | `__imagetype` |
|---|---|---|---|---|
| gold_centos | platform | public, protected | | gold |
| gold_ubuntu | platform | public | | gold |
| community | platform | community | | private |
| a_private | A | private (active: uploaded) | | private |
| a_alone | A | shared | none | private |
| a_out | A | shared | B accepted | shared |
| b_private | B | private | | private |
| b_pending / b_accepted / b_rejected | B | shared | A in that status | shared |
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.clients import glance_client
from tests.support.identities import Identity, admin_of, member_of, new_project
from tests.support.images import PATCH_V21
from tests.support.listing import assert_bad_request, walk_pages
from tests.support.seeding import set_image_columns
from tests.support.servers import RunningServer, dedicated_server

QUEENS = {"X-Api-Version": "Queens"}
MITAKA = {"X-Api-Version": "M"}
START = dt.datetime(2018, 10, 1)

# name -> (owner key, create body, tags, {member key: status}); in creation order,
# image i created at START + i days and updated an hour later.
CATALOGUE: dict[str, tuple[str, dict[str, Any], list[str], dict[str, str]]] = {
    "gold_centos": (
        "platform",
        {
            "visibility": "public",
            "protected": True,
            "container_format": "bare",
            "disk_format": "qcow2",
            "min_ram": 2048,
            "min_disk": 40,
            "__platform": "CentOS",
            "__os_type": "Linux",
            "__os_bit": "64",
            "__os_version": "CentOS 7.3 64bit",
            "__support_kvm": "true",
            "__support_largememory": "true",
            "__support_diskintensive": "true",
            "__support_highperformance": "true",
            "__support_kvm_infiniband": "true",
            "virtual_env_type": "FusionCompute",
            "hw_firmware_type": "bios",
        },
        [],
        {},
    ),
    "gold_ubuntu": (
        "platform",
        {
            "visibility": "public",
            "container_format": "bare",
            "disk_format": "iso",
            "__platform": "Ubuntu",
            "__os_type": "Linux",
            "__os_bit": "32",
            "__support_xen": "true",
            "virtual_env_type": "IsoImage",
            "hw_firmware_type": "uefi",
        },
        [],
        {},
    ),
    "community": ("platform", {"visibility": "community", "__os_type": "Other"}, [], {}),
    "a_private": (
        "a",
        {"visibility": "private", "container_format": "bare", "disk_format": "raw",
         "__platform": "Windows", "__os_type": "Windows", "__support_xen_gpu_type": "M60"},
        ["a=b", "os.linux"],
        {},
    ),
    "a_alone": ("a", {"visibility": "shared", "__support_kvm_gpu_type": "V100"}, [], {}),
    "a_out": (
        "a", {"visibility": "shared", "virtual_env_type": "DataImage"}, ["os=linux"],
        {"b": "accepted"},
    ),
    "b_private": ("b", {"visibility": "private", "__os_type": "Linux"}, [], {}),
    "b_pending": ("b", {"visibility": "shared"}, [], {"a": "pending"}),
    "b_accepted": (
        "b", {"visibility": "shared", "__support_xen_hana": "true", "virtual_env_type": "Ironic"},
        ["os.linux"], {"a": "accepted"},
    ),
    "b_rejected": ("b", {"visibility": "shared"}, [], {"a": "rejected"}),
}  # fmt: skip


class Catalogue:
    """The seeded images of one server: ids by name, the projects, clients."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.projects = {key: new_project() for key in ("platform", "a", "b", "c")}
        self.ids: dict[str, str] = {}

    def identity(self, key: str) -> Identity:
        if key == "platform":
            return admin_of(self.projects[key])
        return member_of(self.projects[key])

    def client(self, key: str = "a", headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url,
            headers={**self.identity(key).headers, "Accept": "application/json", **(headers or {})},
            timeout=30,
            verify=False,  # noqa: S501 - plain HTTP on loopback
        )

    def names(self, ids: list[str]) -> set[str]:
        by_id = {image_id: name for name, image_id in self.ids.items()}
        return {by_id.get(image_id, image_id) for image_id in ids}


def _seed(catalogue: Catalogue) -> None:
    for name, (owner, body, tags, members) in CATALOGUE.items():
        with catalogue.client(owner) as client:
            created = client.post("/v2/images", json={"name": name, "tags": tags, **body})
            assert created.status_code == 201, created.text
            image_id = created.json()["id"]
            for member, status in members.items():
                project = catalogue.projects[member]
                added = client.post(f"/v2/images/{image_id}/members", json={"member": project})
                assert added.status_code == 200, added.text
                with catalogue.client(member) as as_member:
                    changed = as_member.put(
                        f"/v2/images/{image_id}/members/{project}", json={"status": status}
                    )
                    assert changed.status_code == 200, changed.text
        catalogue.ids[name] = image_id
    with catalogue.client("a") as client:
        uploaded = client.put(
            f"/v2/images/{catalogue.ids['a_private']}/file",
            content=b"\0" * 512,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert uploaded.status_code == 204, uploaded.text
    for index, image_id in enumerate(catalogue.ids.values()):
        created_at = START + dt.timedelta(days=index)
        set_image_columns(
            catalogue.server,
            image_id,
            created_at=created_at,
            updated_at=created_at + dt.timedelta(hours=1),
        )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def catalogue(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalogue]:
    backend = request.param
    data_dir = tmp_path_factory.mktemp(f"ims-{backend}")
    env = {"SKYLENS_IMAGES_IMS_PROFILE": "true"}
    with dedicated_server(data_dir, backend, extra_env=env) as server:
        seeded = Catalogue(server)
        _seed(seeded)
        yield seeded


def listed(
    catalogue: Catalogue,
    params: list[tuple[str, str]],
    key: str = "a",
    headers: dict[str, str] | None = None,
) -> set[str]:
    """The names of every image the query returns, following `next` to the end."""
    with catalogue.client(key, headers) as client:
        pages = walk_pages(client, [*params, ("limit", "3")])
    return catalogue.names([image_id for page in pages for image_id in page])


# -- seed 003, "Common Query Methods" ---------------------------------------------

COMMON_QUERIES = {
    "public images": (
        [("__imagetype", "gold"), ("visibility", "public"), ("protected", "true")],
        {"gold_centos"},
    ),
    "available shared images": (
        [("member_status", "accepted"), ("visibility", "shared"), ("__imagetype", "shared")],
        {"b_accepted", "a_out"},
    ),
    "rejected images": (
        [("member_status", "rejected"), ("visibility", "shared"), ("__imagetype", "shared")],
        {"b_rejected", "a_out"},
    ),
    "unaccepted images": (
        [("member_status", "pending"), ("visibility", "shared"), ("__imagetype", "shared")],
        {"b_pending", "a_out"},
    ),
}


@pytest.mark.parametrize("headers", [QUEENS, MITAKA, {}], ids=["queens", "mitaka", "no-header"])
@pytest.mark.parametrize("query", COMMON_QUERIES, ids=list(COMMON_QUERIES))
def test_common_query_methods(catalogue: Catalogue, query: str, headers: dict[str, str]) -> None:
    params, expected = COMMON_QUERIES[query]

    assert listed(catalogue, params, headers=headers) == expected


@pytest.mark.parametrize("headers", [QUEENS, MITAKA], ids=["queens", "mitaka"])
def test_private_images_by_owner(catalogue: Catalogue, headers: dict[str, str]) -> None:
    owner = catalogue.projects["a"]

    assert listed(catalogue, [("owner", owner)], headers=headers) == {
        "a_private",
        "a_alone",
        "a_out",
    }
    assert listed(catalogue, [("owner", owner), ("__imagetype", "private")], headers=headers) == {
        "a_private",
        "a_alone",
    }


def test_the_other_project_sees_its_own_side(catalogue: Catalogue) -> None:
    shared = [("__imagetype", "shared"), ("member_status", "all")]

    assert listed(catalogue, shared, key="b") == {"a_out", "b_pending", "b_accepted", "b_rejected"}
    assert listed(catalogue, [("__imagetype", "private")], key="b") == {"b_private"}


# -- seed 003, Table 1: each filter -------------------------------------------------

DEFAULT_LIST = {"gold_centos", "gold_ubuntu", "a_private", "a_alone", "a_out", "b_accepted"}
TABLE_1 = [
    ([("__isregistered", "true")], DEFAULT_LIST),
    ([("__isregistered", "false")], set()),
    ([("__imagetype", "gold")], {"gold_centos", "gold_ubuntu"}),
    ([("__imagetype", "private")], {"a_private", "a_alone"}),
    ([("__imagetype", "shared")], {"a_out", "b_accepted"}),
    ([("protected", "true")], {"gold_centos"}),
    ([("protected", "false")], DEFAULT_LIST - {"gold_centos"}),
    ([("visibility", "public")], {"gold_centos", "gold_ubuntu"}),
    ([("visibility", "community")], {"community"}),
    ([("visibility", "private")], {"a_private"}),
    ([("visibility", "shared")], {"a_alone", "a_out", "b_accepted"}),
    ([("name", "a_out")], {"a_out"}),
    ([("status", "active")], {"a_private"}),
    ([("status", "queued")], DEFAULT_LIST - {"a_private"}),
    ([("container_format", "bare")], {"gold_centos", "gold_ubuntu", "a_private"}),
    ([("disk_format", "iso")], {"gold_ubuntu"}),
    ([("min_ram", "2048")], {"gold_centos"}),
    ([("min_disk", "40")], {"gold_centos"}),
    ([("__os_bit", "64")], {"gold_centos"}),
    ([("__os_bit", "32")], {"gold_ubuntu"}),
    ([("__platform", "CentOS")], {"gold_centos"}),
    ([("__platform", "Windows")], {"a_private"}),
    ([("__os_type", "Linux")], {"gold_centos", "gold_ubuntu"}),
    ([("__os_version", "CentOS 7.3 64bit")], {"gold_centos"}),
    ([("__support_kvm", "true")], {"gold_centos"}),
    ([("__support_xen", "true")], {"gold_ubuntu"}),
    ([("__support_largememory", "true")], {"gold_centos"}),
    ([("__support_diskintensive", "true")], {"gold_centos"}),
    ([("__support_highperformance", "true")], {"gold_centos"}),
    ([("__support_xen_gpu_type", "M60")], {"a_private"}),
    ([("__support_kvm_gpu_type", "V100")], {"a_alone"}),
    ([("__support_xen_hana", "true")], {"b_accepted"}),
    ([("__support_kvm_infiniband", "true")], {"gold_centos"}),
    ([("virtual_env_type", "FusionCompute")], {"gold_centos"}),
    ([("virtual_env_type", "DataImage")], {"a_out"}),
    ([("hw_firmware_type", "uefi")], {"gold_ubuntu"}),
    ([("tag", "a=b")], {"a_private"}),
    ([("tag", "os=linux")], {"a_private", "a_out", "b_accepted"}),  # `os.linux` is legacy
    ([("tag", "os.linux")], {"a_private", "b_accepted"}),
    ([("member_status", "pending"), ("visibility", "shared")], {"a_alone", "a_out", "b_pending"}),
    ([("member_status", "all")], DEFAULT_LIST | {"b_pending", "b_rejected"}),
]


@pytest.mark.parametrize(
    ("params", "expected"), TABLE_1, ids=["&".join(f"{k}={v}" for k, v in p) for p, _ in TABLE_1]
)
def test_table_1_filters(
    catalogue: Catalogue, params: list[tuple[str, str]], expected: set[str]
) -> None:
    assert listed(catalogue, params, headers=QUEENS) == expected


def test_owner_and_id_filters(catalogue: Catalogue) -> None:
    assert listed(catalogue, [("owner", catalogue.projects["b"])]) == {"b_accepted"}
    assert listed(catalogue, [("id", catalogue.ids["gold_ubuntu"])]) == {"gold_ubuntu"}


MITAKA_VISIBILITY = [
    ("public", {"gold_centos", "gold_ubuntu", "community"}),
    ("private", {"a_private", "a_alone", "a_out", "b_accepted"}),
    ("shared", {"a_alone", "a_out", "b_accepted"}),
]


@pytest.mark.parametrize(("visibility", "expected"), MITAKA_VISIBILITY)
def test_mitaka_visibility_filters_find_what_mitaka_shows(
    catalogue: Catalogue, visibility: str, expected: set[str]
) -> None:
    with catalogue.client("a", MITAKA) as client:
        response = client.get("/v2/images", params={"visibility": visibility, "limit": 100})
    assert response.status_code == 200, response.text
    images = response.json()["images"]

    assert catalogue.names([image["id"] for image in images]) == expected
    if visibility != "shared":
        assert {image["visibility"] for image in images} == {visibility}


def test_mitaka_has_no_community_visibility(catalogue: Catalogue) -> None:
    with catalogue.client("a", MITAKA) as client:
        response = client.get("/v2/images", params={"visibility": "community"})

    assert_bad_request(response, "Invalid visibility value: community")


# -- time filters: both formats, every operator -------------------------------------


def _day(index: int) -> dt.datetime:
    return START + dt.timedelta(days=index)


NAMES = list(CATALOGUE)
LISTED_ORDER = [name for name in NAMES if name in DEFAULT_LIST]
TIME_CASES = [
    ("gt", 3, {n for n in LISTED_ORDER if NAMES.index(n) > 3}),
    ("gte", 3, {n for n in LISTED_ORDER if NAMES.index(n) >= 3}),
    ("lt", 3, {n for n in LISTED_ORDER if NAMES.index(n) < 3}),
    ("lte", 3, {n for n in LISTED_ORDER if NAMES.index(n) <= 3}),
    ("eq", 3, {NAMES[3]}),
    ("neq", 3, DEFAULT_LIST - {NAMES[3]}),
]


@pytest.mark.parametrize("style", ["iso", "space"])
@pytest.mark.parametrize("attribute", ["created_at", "updated_at"])
@pytest.mark.parametrize(("operator", "index", "expected"), TIME_CASES)
def test_time_filters(
    catalogue: Catalogue,
    attribute: str,
    style: str,
    operator: str,
    index: int,
    expected: set[str],
) -> None:
    moment = _day(index) + (dt.timedelta(hours=1) if attribute == "updated_at" else dt.timedelta())
    text = moment.strftime("%Y-%m-%dT%H:%M:%SZ" if style == "iso" else "%Y-%m-%d %H:%M:%S")

    assert listed(catalogue, [(attribute, f"{operator}:{text}")]) == expected


# -- paging and links -----------------------------------------------------------------


def test_links_are_the_seeds(catalogue: Catalogue) -> None:
    params = (("__isregistered", "true"), ("__imagetype", "gold"), ("limit", "1"))
    with catalogue.client("a", QUEENS) as client:
        first = client.get("/v2/images", params=params).json()
        second = client.get(first["next"]).json()
        third = client.get(second["next"]).json()

    query = "__isregistered=true&__imagetype=gold&limit=1"
    ids = [catalogue.ids["gold_ubuntu"], catalogue.ids["gold_centos"]]  # created_at desc
    assert first["first"] == f"/v2/images?{query}"
    assert first["schema"] == "/v2/schemas/images"
    assert first["next"] == f"/v2/images?{query}&marker={ids[0]}"
    assert second["first"] == f"/v2/images?{query}"
    assert second["next"] == f"/v2/images?{query}&marker={ids[1]}"
    assert [[i["id"] for i in body["images"]] for body in (first, second, third)] == [
        ids[:1],
        ids[1:],
        [],
    ]
    assert "next" not in third


def test_default_page_is_25_and_next_runs_out(catalogue: Catalogue) -> None:
    with catalogue.client("c") as client:
        for number in range(27):
            created = client.post("/v2/images", json={"name": f"filler-{number}"})
            assert created.status_code == 201, created.text
        pages = walk_pages(client, [("__imagetype", "private")])

    assert [len(page) for page in pages] == [25, 2]
    assert len({image_id for page in pages for image_id in page}) == 27


@pytest.mark.parametrize(
    "key", ["name", "container_format", "disk_format", "status", "id", "size", "created_at"]
)
def test_the_seeds_sort_keys(catalogue: Catalogue, key: str) -> None:
    with catalogue.client("a") as client:
        response = client.get("/v2/images", params={"sort_key": key, "sort_dir": "asc"})

    assert response.status_code == 200, response.text


def test_other_sort_keys_are_refused(catalogue: Catalogue) -> None:
    with catalogue.client("a") as client:
        response = client.get("/v2/images", params={"sort_key": "updated_at"})

    assert_bad_request(
        response,
        "Invalid sort key: updated_at. It must be one of the following: "
        "name, container_format, disk_format, status, id, size, created_at.",
    )


# -- invalid values: the standard filters' 400 ----------------------------------------

INVALID = [
    ("__imagetype", "market", "'gold', 'private' or 'shared'"),
    ("__isregistered", "yes", "'true' or 'false'"),
    ("__os_type", "Solaris", "'Linux', 'Windows' or 'Other'"),
    ("__os_bit", "128", "'32' or '64'"),
    ("__support_kvm", "yes", "'true' or 'false'"),
    ("virtual_env_type", "Docker", "'FusionCompute', 'Ironic', 'DataImage' or 'IsoImage'"),
    ("hw_firmware_type", "coreboot", "'bios' or 'uefi'"),
    ("protected", "maybe", "'true' or 'false'"),  # the standard filter, for comparison
]


@pytest.mark.parametrize(("name", "value", "valid"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_filter_values(catalogue: Catalogue, name: str, value: str, valid: str) -> None:
    with catalogue.client("a") as client:
        response = client.get("/v2/images", params={name: value})

    assert_bad_request(
        response, f"Invalid value '{value}' for '{name}' filter. Valid values are {valid}."
    )


def test_platform_values_are_the_seeds(catalogue: Catalogue) -> None:
    with catalogue.client("a") as client:
        for platform in ("Red Hat", "Oracle Linux", "EulerOS", "OpenSUSE"):
            assert client.get("/v2/images", params={"__platform": platform}).status_code == 200
        response = client.get("/v2/images", params={"__platform": "Arch"})

    assert response.status_code == 400


# -- attributes and X-Api-Version -------------------------------------------------------


def _show(catalogue: Catalogue, name: str, headers: dict[str, str]) -> dict[str, Any]:
    with catalogue.client("a", headers) as client:
        response = client.get(f"/v2/images/{catalogue.ids[name]}")
    assert response.status_code == 200, response.text
    image: dict[str, Any] = response.json()
    return image


def test_attributes_of_a_gold_image(catalogue: Catalogue) -> None:
    image = _show(catalogue, "gold_centos", QUEENS)

    assert image["__imagetype"] == "gold"
    assert image["__isregistered"] == "true"
    assert image["__platform"] == "CentOS"
    assert image["__os_bit"] == "64"
    assert image["virtual_env_type"] == "FusionCompute"
    assert image["hw_firmware_type"] == "bios"
    assert image["active_at"] is None


def test_active_at_is_when_the_upload_activated_the_image(catalogue: Catalogue) -> None:
    image = _show(catalogue, "a_private", QUEENS)

    assert image["status"] == "active"
    active_at = dt.datetime.strptime(image["active_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(dt.datetime.now(dt.UTC).replace(tzinfo=None) - active_at) < dt.timedelta(hours=1)


def test_queens_shows_queens(catalogue: Catalogue) -> None:
    image = _show(catalogue, "b_accepted", {"X-Api-Version": "Q"})

    assert image["visibility"] == "shared"
    assert image["__imagetype"] == "shared"
    for name in ("os_hidden", "os_hash_algo", "os_hash_value"):
        assert name in image
    assert "stores" in _show(catalogue, "a_private", QUEENS)


@pytest.mark.parametrize("headers", [MITAKA, {"X-Api-Version": "Liberty"}, {}])
def test_mitaka_shows_mitaka(catalogue: Catalogue, headers: dict[str, str]) -> None:
    shared = _show(catalogue, "b_accepted", headers)
    uploaded = _show(catalogue, "a_private", headers)

    assert shared["visibility"] == "private"
    assert shared["__imagetype"] == "shared"
    for name in ("os_hidden", "os_hash_algo", "os_hash_value", "stores"):
        assert name not in shared
        assert name not in uploaded
    assert uploaded["checksum"] is not None


def test_mitaka_lists_shared_images_as_private(catalogue: Catalogue) -> None:
    with catalogue.client("a", MITAKA) as client:
        body = client.get("/v2/images", params={"__imagetype": "shared"}).json()

    assert {image["visibility"] for image in body["images"]} == {"private"}
    assert all("os_hidden" not in image for image in body["images"])


def test_an_api_version_that_names_no_release_is_refused(catalogue: Catalogue) -> None:
    with catalogue.client("a", {"X-Api-Version": "2.6"}) as client:
        response = client.get("/v2/images")

    assert_bad_request(
        response,
        "Invalid X-Api-Version header: '2.6'. It must start with a letter: M or before for "
        "the Mitaka API, after M for the Queens API.",
    )


# -- creating and patching the `__` properties -------------------------------------------


def test_ims_properties_are_validated_on_create(catalogue: Catalogue) -> None:
    with catalogue.client("a") as client:
        bad = client.post("/v2/images", json={"name": "x", "__os_type": "Solaris"})
        computed = client.post("/v2/images", json={"name": "x", "__imagetype": "gold"})

    assert bad.status_code == 400
    assert "'Solaris' is not one of ['Linux', 'Windows', 'Other']" in bad.json()["message"]
    assert computed.status_code == 403
    assert "Attribute '__imagetype' is read-only." in computed.json()["message"]


def test_ims_properties_can_be_patched(catalogue: Catalogue) -> None:
    with catalogue.client("a", QUEENS) as client:
        created = client.post("/v2/images", json={"name": "patched", "__os_type": "Linux"})
        image_id = created.json()["id"]
        url = f"/v2/images/{image_id}"
        headers = {"Content-Type": PATCH_V21}
        patched = client.patch(
            url,
            json=[
                {"op": "replace", "path": "/__os_type", "value": "Windows"},
                {"op": "add", "path": "/__platform", "value": "Windows"},
            ],
            headers=headers,
        )
        bad = client.patch(
            url, json=[{"op": "add", "path": "/__os_bit", "value": "16"}], headers=headers
        )
        read_only = client.patch(
            url, json=[{"op": "add", "path": "/active_at", "value": "x"}], headers=headers
        )
        removed = client.patch(url, json=[{"op": "remove", "path": "/__platform"}], headers=headers)

    assert patched.status_code == 200, patched.text
    assert patched.json()["__os_type"] == "Windows"
    assert patched.json()["__platform"] == "Windows"
    assert bad.status_code == 400
    assert read_only.status_code == 403
    assert removed.status_code == 200
    assert "__platform" not in removed.json()


def test_the_schema_publishes_the_ims_properties(catalogue: Catalogue) -> None:
    with catalogue.client("a") as client:
        schema = client.get("/v2/schemas/image").json()

    assert schema["properties"]["__os_type"]["enum"] == ["Linux", "Windows", "Other"]
    assert schema["properties"]["__imagetype"]["readOnly"] is True


def test_glanceclient_lists_with_ims_filters_following_the_ims_next_links(
    catalogue: Catalogue,
) -> None:
    """A real client passes the extension filters through and pages with the
    profile's `next` links (query kept, marker appended)."""
    glance = glance_client(catalogue.server.url, catalogue.identity("a"))

    images = list(
        glance.images.list(filters={"__imagetype": "gold", "__os_type": "Linux"}, page_size=1)
    )

    assert catalogue.names([image["id"] for image in images]) == {"gold_centos", "gold_ubuntu"}
