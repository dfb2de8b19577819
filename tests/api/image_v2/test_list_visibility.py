"""GET /v2/images: which images a caller's list holds, and the `visibility` and
`member_status` filters.

A regular user lists public images, their own project's images and shared
images their project is a member of (accepted, unless `member_status` says
otherwise). Community images of other projects appear only when asked for with
`visibility=community` or `visibility=all`. Admins list every image (community
images of others also only when asked). Killed images are never listed.

Each test tags its images with a fresh tag and lists by it, so it sees only its own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity, admin_of, member_of, new_project, reader_of
from tests.support.images import create_image, show_image
from tests.support.listing import assert_bad_request, list_ids, walk_pages
from tests.support.seeding import add_member, insert_image, set_image_columns
from tests.support.servers import RunningServer

VISIBILITIES = ("public", "community", "shared", "private")


@pytest.fixture
def tag() -> str:
    return f"run-{uuid.uuid4().hex}"


@pytest.fixture
def images_by_visibility(http: ClientFactory, member: Identity, tag: str) -> dict[str, str]:
    """One image of `project` in each visibility (the public one made by an admin)."""
    owner_admin = http(admin_of(member.project))
    ids = {}
    for visibility in VISIBILITIES:
        client = owner_admin if visibility == "public" else http(member)
        ids[visibility] = create_image(client, visibility=visibility, tags=[tag])["id"]
    return ids


Lister = Callable[..., set[str]]


@pytest.fixture
def listed(http: ClientFactory, tag: str) -> Lister:
    """The ids of this test's images that `identity` lists with `params`."""

    def run(identity: Identity, **params: str) -> set[str]:
        return set(list_ids(http(identity), {"tag": tag, **params}))

    return run


def _pick(ids: dict[str, str], *visibilities: str) -> set[str]:
    return {ids[visibility] for visibility in visibilities}


# -- who sees what by default -------------------------------------------------------------------


def test_the_owner_lists_all_its_images_in_every_visibility(
    listed: Lister, member: Identity, images_by_visibility: dict[str, str]
) -> None:
    assert listed(member) == set(images_by_visibility.values())


def test_a_reader_of_the_owning_project_lists_them_too(
    listed: Lister, member: Identity, images_by_visibility: dict[str, str]
) -> None:
    assert listed(reader_of(member.project)) == set(images_by_visibility.values())


def test_another_project_lists_only_the_public_image(
    listed: Lister, stranger: Identity, images_by_visibility: dict[str, str]
) -> None:
    assert listed(stranger) == _pick(images_by_visibility, "public")


def test_an_admin_lists_every_image_except_other_projects_community_ones(
    listed: Lister, admin: Identity, images_by_visibility: dict[str, str]
) -> None:
    assert listed(admin) == _pick(images_by_visibility, "public", "shared", "private")


def test_a_caller_without_any_role_may_not_list(http: ClientFactory, project: str) -> None:
    response = http(Identity(project, "nobody", ())).get("/v2/images")

    assert response.status_code == 403
    assert response.json()["message"].startswith(
        "You are not authorized to complete get_images action."
    )


def test_member_without_reader_may_not_list(http: ClientFactory, project: str) -> None:
    # Roles are literal, as Glance 33 checks them (recorded list-member-role-only):
    # only Keystone's tokens carry `reader` implied by `member`.
    member_only = Identity(project, "member-only", ("member",))

    response = http(member_only).get("/v2/images")

    assert_error(response, 403, "You are not authorized to complete get_images action.")


def test_killed_images_are_never_listed_but_can_still_be_shown(
    server: RunningServer,
    listed: Lister,
    http: ClientFactory,
    member: Identity,
    admin: Identity,
    images_by_visibility: dict[str, str],
) -> None:
    killed = images_by_visibility["private"]
    set_image_columns(server, killed, status="killed")

    assert killed not in listed(member)
    assert killed not in listed(admin, visibility="all")
    assert killed not in listed(member, status="killed")
    assert show_image(http(member), killed)["status"] == "killed"


# -- the visibility filter ------------------------------------------------------------------


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_the_owner_filters_its_images_by_visibility(
    listed: Lister, member: Identity, images_by_visibility: dict[str, str], visibility: str
) -> None:
    assert listed(member, visibility=visibility) == _pick(images_by_visibility, visibility)


@pytest.mark.parametrize(
    ("visibility", "expected"),
    [
        ("community", ["community"]),
        ("all", ["public", "community"]),
        ("public", ["public"]),
        ("shared", []),
        ("private", []),
    ],
)
def test_others_find_community_images_only_by_asking_for_them(
    listed: Lister,
    stranger: Identity,
    images_by_visibility: dict[str, str],
    visibility: str,
    expected: list[str],
) -> None:
    assert listed(stranger, visibility=visibility) == _pick(images_by_visibility, *expected)


@pytest.mark.parametrize(
    ("visibility", "expected"),
    [
        ("all", VISIBILITIES),
        ("community", ["community"]),
        ("private", ["private"]),
        ("shared", ["shared"]),
    ],
)
def test_an_admin_filtering_by_visibility_sees_every_project(
    listed: Lister,
    admin: Identity,
    images_by_visibility: dict[str, str],
    visibility: str,
    expected: list[str],
) -> None:
    assert listed(admin, visibility=visibility) == _pick(images_by_visibility, *expected)


@pytest.mark.parametrize("value", ["bogus", "Public", "none"])
def test_an_unknown_visibility_is_400(api: httpx.Client, value: str) -> None:
    response = api.get("/v2/images", params={"visibility": value})

    assert_bad_request(response, f"Invalid visibility value: {value}")


# -- shared images and member_status ----------------------------------------------------------


@pytest.fixture
def shared_with(
    server: RunningServer, http: ClientFactory, member: Identity, tag: str
) -> dict[str, tuple[Identity, str]]:
    """A shared image of `project` per member status, each shared with its own project.

    Maps the status to (a member of the sharing project, the image).
    """
    result = {}
    for status in ("pending", "accepted", "rejected"):
        image_id = create_image(http(member), visibility="shared", tags=[tag])["id"]
        consumer = member_of(new_project())
        add_member(server, image_id, consumer.project, status)
        result[status] = (consumer, image_id)
    return result


@pytest.mark.parametrize(
    ("membership", "member_status", "appears"),
    [
        ("accepted", None, True),
        ("pending", None, False),
        ("rejected", None, False),
        ("accepted", "accepted", True),
        ("pending", "pending", True),
        ("rejected", "rejected", True),
        ("pending", "accepted", False),
        ("accepted", "rejected", False),
        ("rejected", "pending", False),
        ("pending", "all", True),
        ("accepted", "all", True),
        ("rejected", "all", True),
    ],
)
def test_a_shared_image_appears_to_a_member_whose_status_the_filter_selects(
    listed: Lister,
    shared_with: dict[str, tuple[Identity, str]],
    membership: str,
    member_status: str | None,
    appears: bool,
) -> None:
    """`member_status` defaults to `accepted`; `all` selects every status."""
    consumer, image_id = shared_with[membership]
    params = {} if member_status is None else {"member_status": member_status}

    assert listed(consumer, **params) == ({image_id} if appears else set())


def test_a_member_lists_a_shared_image_with_visibility_shared(
    listed: Lister, shared_with: dict[str, tuple[Identity, str]]
) -> None:
    consumer, image_id = shared_with["accepted"]

    assert listed(consumer, visibility="shared") == {image_id}
    assert listed(consumer, visibility="private") == set()


@pytest.mark.parametrize("sort", ["created_at:desc", "name:asc"])
def test_visibility_shared_pages_through_own_and_shared_in_images_once_each(
    server: RunningServer, http: ClientFactory, member: Identity, tag: str, sort: str
) -> None:
    """The project's own shared images and those shared with it come in one order,
    page after page, each once: also an own image the project is a member of."""
    other = new_project()
    start = dt.datetime(2026, 1, 1)
    expected = []
    for n in range(8):
        owner = member.project if n % 3 == 0 else other
        image_id = insert_image(
            server,
            owner=owner,
            visibility="shared",
            name=f"image-{(5 * n) % 8}",
            created_at=start + dt.timedelta(minutes=n),
            tags=[tag],
        )
        if owner == other or n == 3:  # image 3: its owner shares it with itself
            add_member(server, image_id, member.project)
        expected.append((f"image-{(5 * n) % 8}", start + dt.timedelta(minutes=n), image_id))
    unlisted = insert_image(server, owner=other, visibility="shared", tags=[tag])
    add_member(server, unlisted, member.project, "pending")
    if sort == "name:asc":
        expected.sort()
    else:
        expected.sort(key=lambda row: row[1], reverse=True)

    pages = walk_pages(
        http(member), {"tag": tag, "visibility": "shared", "limit": "3", "sort": sort}
    )

    assert [image_id for page in pages for image_id in page] == [row[2] for row in expected]
    assert [len(page) for page in pages] == [3, 3, 2]


def test_membership_of_a_private_image_does_not_list_it(
    server: RunningServer, listed: Lister, http: ClientFactory, member: Identity, tag: str
) -> None:
    image_id = create_image(http(member), visibility="private", tags=[tag])["id"]
    consumer = member_of(new_project())
    add_member(server, image_id, consumer.project, "accepted")

    assert listed(consumer) == set()
    assert listed(consumer, visibility="all", member_status="all") == set()


def test_member_status_does_not_narrow_an_admin_list(
    listed: Lister, admin: Identity, shared_with: dict[str, tuple[Identity, str]]
) -> None:
    everything = {image_id for _, image_id in shared_with.values()}

    assert listed(admin) == everything
    assert listed(admin, member_status="pending") == everything


def test_member_status_does_not_hide_the_callers_own_or_public_images(
    listed: Lister, member: Identity, images_by_visibility: dict[str, str]
) -> None:
    assert listed(member, member_status="rejected") == set(images_by_visibility.values())


@pytest.mark.parametrize("value", ["bogus", "Accepted", ""])
def test_an_unknown_member_status_is_400(api: httpx.Client, value: str) -> None:
    response = api.get("/v2/images", params={"member_status": value})

    assert_bad_request(response, f"Invalid status: {value}")


def test_a_shared_image_with_an_accepted_member_is_still_hidden_from_others(
    listed: Lister, stranger: Identity, shared_with: dict[str, tuple[Identity, str]]
) -> None:
    assert listed(stranger, member_status="all", visibility="all") == set()


def test_an_image_without_owner_is_listed_only_to_admins_unless_public(
    server: RunningServer, listed: Lister, stranger: Identity, admin: Identity, tag: str
) -> None:
    ownerless = insert_image(server, owner=None, visibility="shared", tags=[tag])

    assert listed(stranger) == set()
    assert listed(admin) == {ownerless}
