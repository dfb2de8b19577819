"""Image members, /v2/images/{id}/members: sharing a `shared` image with other
projects, as the Glance api-ref and Glance 33 on the wire describe it."""

from __future__ import annotations

import concurrent.futures
import re
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity, admin_of, member_of, new_project, reader_of
from tests.support.servers import RunningServer, skylens_server

ISO_SECONDS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


def create_image(client: httpx.Client, **body: Any) -> str:
    response = client.post("/v2/images", json={"name": "shared", **body})
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def share(client: httpx.Client, image_id: str, project: str) -> httpx.Response:
    return client.post(f"/v2/images/{image_id}/members", json={"member": project})


@pytest.fixture
def owner(api: httpx.Client) -> httpx.Client:
    return api


@pytest.fixture
def image_id(owner: httpx.Client) -> str:
    """A `shared` image (the default visibility) of `project`."""
    return create_image(owner)


@pytest.fixture
def guest(http: ClientFactory, other_project: str) -> httpx.Client:
    """A member of the project the image gets shared with."""
    return http(member_of(other_project))


# -- adding ------------------------------------------------------------------------


def test_adding_a_member_answers_200_with_a_pending_membership(
    owner: httpx.Client, image_id: str, other_project: str
) -> None:
    response = share(owner, image_id, other_project)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"member_id", "image_id", "status", "created_at", "updated_at", "schema"}
    assert body["member_id"] == other_project
    assert body["image_id"] == image_id
    assert body["status"] == "pending"
    assert body["schema"] == "/v2/schemas/member"
    assert body["created_at"] == body["updated_at"]
    assert re.match(ISO_SECONDS, body["created_at"])


def test_a_member_added_twice_is_409(
    owner: httpx.Client, image_id: str, other_project: str
) -> None:
    share(owner, image_id, other_project)

    assert_error(
        share(owner, image_id, other_project),
        409,
        f"Member {other_project} is duplicated for image {image_id}",
    )


@pytest.mark.parametrize("visibility", ["private", "public", "community"])
def test_only_shared_images_take_members(
    http: ClientFactory, admin: Identity, project: str, other_project: str, visibility: str
) -> None:
    client = http(admin)
    image_id = create_image(client, visibility=visibility, owner=project)

    assert_error(
        share(client, image_id, other_project),
        403,
        f"Not allowed to create members for image {image_id}.",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "Body expected in request."),
        (b"{}", "Member to be added not specified"),
        (b'{"member": ""}', "Member can't be empty"),
        (b'{"member": null}', "Member can't be empty"),
        (b'["x"]', 'Expected a member in the form: {"member": "image_id"}'),
        (b'{"member": 42}', 'Expected a member in the form: {"member": "image_id"}'),
        (b"{not json", "Malformed JSON in request body."),
    ],
)
def test_a_malformed_add_is_400(
    owner: httpx.Client, image_id: str, body: bytes, message: str
) -> None:
    response = owner.post(
        f"/v2/images/{image_id}/members",
        content=body,
        headers={"Content-Type": "application/json"},
    )

    assert_error(response, 400, message)


def test_a_member_id_longer_than_255_characters_is_400(owner: httpx.Client, image_id: str) -> None:
    response = share(owner, image_id, "p" * 256)

    assert_error(response, 400, "Member id should not be longer than 255 characters.")
    assert owner.get(f"/v2/images/{image_id}/members").json()["members"] == []


@pytest.mark.parametrize("caller", ["reader", "guest", "stranger"])
def test_only_the_owning_projects_members_add_members(
    http: ClientFactory,
    owner: httpx.Client,
    image_id: str,
    project: str,
    other_project: str,
    caller: str,
) -> None:
    share(owner, image_id, other_project)
    identities = {
        "reader": reader_of(project),
        "guest": member_of(other_project),
        "stranger": member_of(new_project()),
    }

    response = share(http(identities[caller]), image_id, new_project())

    if caller == "stranger":  # cannot even see the image
        assert_error(response, 404, f"Image {image_id} not found.")
    else:
        assert_error(response, 403, "You are not authorized to complete add_member action.")


def test_admins_may_share_any_shared_image(
    http: ClientFactory, admin: Identity, image_id: str, other_project: str
) -> None:
    response = share(http(admin), image_id, other_project)

    assert response.status_code == 200
    assert response.json()["status"] == "pending"


def test_an_unknown_image_is_404(owner: httpx.Client, other_project: str) -> None:
    missing = "7f1c9a5e-0e5b-4c4e-9d55-0d2f6d1c9a11"

    assert_error(share(owner, missing, other_project), 404, f"Image {missing} not found.")
    assert_error(owner.get(f"/v2/images/{missing}/members"), 404, f"Image {missing} not found.")


# -- the member quota --------------------------------------------------------------


@pytest.fixture(scope="module")
def small_quota_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir = tmp_path_factory.mktemp("member-quota")
    with skylens_server(
        data_dir,
        f"sqlite:///{data_dir / 'skylens.db'}",
        "sqlite",
        extra_env={"SKYLENS_IMAGES_MEMBER_QUOTA": "3"},
    ) as running:
        yield running


def test_the_member_quota_is_413_and_checked_before_duplicates(
    small_quota_server: RunningServer, member: Identity
) -> None:
    with httpx.Client(
        base_url=small_quota_server.url, headers={**member.headers, "Accept": "application/json"}
    ) as client:
        image_id = create_image(client)
        projects = [new_project() for _ in range(3)]
        for project in projects:
            assert share(client, image_id, project).status_code == 200

        over = share(client, image_id, new_project())
        again = share(client, image_id, projects[0])

    message = (
        f"Image member limit exceeded for image {image_id}: The limit has been exceeded on "
        "the number of allowed image members for this image. Attempted: 4, Maximum: 3:"
    )
    assert_error(over, 413, message)
    assert_error(again, 413, message)


def test_concurrent_adds_never_pass_the_member_quota(
    small_quota_server: RunningServer, member: Identity
) -> None:
    headers = {**member.headers, "Accept": "application/json"}
    with httpx.Client(base_url=small_quota_server.url, headers=headers) as client:
        image_id = create_image(client)

    def add(project: str) -> int:
        with httpx.Client(base_url=small_quota_server.url, headers=headers) as client:
            return share(client, image_id, project).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(add, [new_project() for _ in range(16)]))

    assert sorted(statuses) == [200] * 3 + [413] * 13
    with httpx.Client(base_url=small_quota_server.url, headers=headers) as client:
        assert len(client.get(f"/v2/images/{image_id}/members").json()["members"]) == 3


# -- listing and showing -----------------------------------------------------------


def test_the_owner_lists_every_member_and_a_member_only_itself(
    http: ClientFactory, owner: httpx.Client, image_id: str, other_project: str
) -> None:
    third = new_project()
    share(owner, image_id, other_project)
    share(owner, image_id, third)

    owners_view = owner.get(f"/v2/images/{image_id}/members")
    guests_view = http(reader_of(other_project)).get(f"/v2/images/{image_id}/members")

    assert owners_view.status_code == 200
    assert owners_view.json()["schema"] == "/v2/schemas/members"
    assert {m["member_id"] for m in owners_view.json()["members"]} == {other_project, third}
    assert [m["member_id"] for m in guests_view.json()["members"]] == [other_project]


def test_listing_members_of_an_image_that_is_not_shared_is_403(
    owner: httpx.Client, project: str
) -> None:
    image_id = create_image(owner, visibility="private")

    assert_error(
        owner.get(f"/v2/images/{image_id}/members"),
        403,
        f"Not allowed to list members for image {image_id}: Only shared images have members.",
    )


def test_showing_a_membership(
    http: ClientFactory, owner: httpx.Client, image_id: str, other_project: str
) -> None:
    share(owner, image_id, other_project)
    third = new_project()
    share(owner, image_id, third)
    path = f"/v2/images/{image_id}/members/{other_project}"

    by_owner = owner.get(path)
    by_member = http(reader_of(other_project)).get(path)
    by_other_member = http(member_of(third)).get(path)

    assert by_owner.status_code == 200
    assert by_owner.json() == by_member.json()
    assert by_owner.json()["member_id"] == other_project
    assert_error(
        by_other_member,
        404,
        f"{other_project} not found in the member list of the image {image_id}.",
    )


def test_showing_a_membership_of_an_image_that_is_not_shared_is_404(owner: httpx.Client) -> None:
    image_id = create_image(owner, visibility="private")

    assert_error(
        owner.get(f"/v2/images/{image_id}/members/anyone"),
        404,
        "Only shared images have members.",
    )


def test_an_unknown_member_is_404(owner: httpx.Client, image_id: str) -> None:
    assert_error(
        owner.get(f"/v2/images/{image_id}/members/nobody"),
        404,
        f"nobody not found in the member list of the image {image_id}.",
    )


# -- answering (PUT) ----------------------------------------------------------------


def set_status(client: httpx.Client, image_id: str, member_id: str, status: Any) -> httpx.Response:
    return client.put(f"/v2/images/{image_id}/members/{member_id}", json={"status": status})


@pytest.mark.parametrize("status", ["accepted", "rejected", "pending"])
def test_the_member_answers_its_invitation(
    guest: httpx.Client, owner: httpx.Client, image_id: str, other_project: str, status: str
) -> None:
    share(owner, image_id, other_project)

    response = set_status(guest, image_id, other_project, status)

    assert response.status_code == 200
    assert response.json()["status"] == status
    shown = owner.get(f"/v2/images/{image_id}/members/{other_project}").json()
    assert shown["status"] == status


def test_the_owner_may_not_answer_for_the_member(
    owner: httpx.Client, image_id: str, other_project: str
) -> None:
    share(owner, image_id, other_project)

    assert_error(
        set_status(owner, image_id, other_project, "accepted"),
        403,
        "You are not authorized to complete modify_member action.",
    )
    # Policy first, then the value: an owner sending nonsense still gets 403.
    assert set_status(owner, image_id, other_project, "bogus").status_code == 403


def test_a_reader_of_the_member_project_may_not_answer(
    http: ClientFactory, owner: httpx.Client, image_id: str, other_project: str
) -> None:
    share(owner, image_id, other_project)

    assert_error(
        set_status(http(reader_of(other_project)), image_id, other_project, "accepted"),
        403,
        "You are not authorized to complete modify_member action.",
    )


def test_a_member_cannot_answer_for_another_member(
    http: ClientFactory, owner: httpx.Client, image_id: str, other_project: str
) -> None:
    third = new_project()
    share(owner, image_id, other_project)
    share(owner, image_id, third)

    assert_error(
        set_status(http(member_of(third)), image_id, other_project, "accepted"),
        404,
        f"{other_project} not found in the member list of the image {image_id}.",
    )


def test_admins_may_set_any_status(
    http: ClientFactory,
    owner: httpx.Client,
    image_id: str,
    other_project: str,
    admin: Identity,
) -> None:
    share(owner, image_id, other_project)

    response = set_status(http(admin), image_id, other_project, "rejected")

    assert response.status_code == 200
    assert response.json()["status"] == "rejected"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"status": "maybe"}',
            'Incorrect request: Status must be "pending", "accepted" or "rejected".',
        ),
        (
            b'{"status": 1}',
            'Incorrect request: Status must be "pending", "accepted" or "rejected".',
        ),
        (b"{}", "Status not specified"),
        (b'["accepted"]', 'Expected a status in the form: {"status": "status"}'),
        (b"", "Body expected in request."),
    ],
)
def test_a_malformed_answer_is_400(
    guest: httpx.Client,
    owner: httpx.Client,
    image_id: str,
    other_project: str,
    body: bytes,
    message: str,
) -> None:
    share(owner, image_id, other_project)

    response = guest.put(
        f"/v2/images/{image_id}/members/{other_project}",
        content=body,
        headers={"Content-Type": "application/json"},
    )

    assert_error(response, 400, message)
    shown = owner.get(f"/v2/images/{image_id}/members/{other_project}").json()
    assert shown["status"] == "pending"


def test_answering_on_an_image_that_is_not_shared_is_403(
    http: ClientFactory, admin: Identity, project: str
) -> None:
    client = http(admin)
    image_id = create_image(client, visibility="public", owner=project)

    assert_error(
        set_status(client, image_id, "anyone", "accepted"),
        403,
        f"Not allowed to update members for image {image_id}.",
    )


# -- removing ----------------------------------------------------------------------


def test_the_owner_removes_a_member(
    owner: httpx.Client, guest: httpx.Client, image_id: str, other_project: str
) -> None:
    share(owner, image_id, other_project)

    response = owner.delete(f"/v2/images/{image_id}/members/{other_project}")

    assert response.status_code == 204
    assert response.content == b""
    # A bare 204, unlike Glance's other 204s (recorded exchange member-delete).
    assert "content-type" not in response.headers
    assert owner.get(f"/v2/images/{image_id}/members").json()["members"] == []
    assert guest.get(f"/v2/images/{image_id}").status_code == 404


def test_a_member_may_not_remove_itself(
    owner: httpx.Client, guest: httpx.Client, image_id: str, other_project: str
) -> None:
    share(owner, image_id, other_project)

    assert_error(
        guest.delete(f"/v2/images/{image_id}/members/{other_project}"),
        403,
        "You are not authorized to complete delete_member action.",
    )


def test_removing_an_unknown_member_is_404(owner: httpx.Client, image_id: str) -> None:
    assert_error(
        owner.delete(f"/v2/images/{image_id}/members/nobody"),
        404,
        f"nobody not found in the member list of the image {image_id}.",
    )


def test_removing_from_an_image_that_is_not_shared_is_403(owner: httpx.Client) -> None:
    image_id = create_image(owner, visibility="private")

    assert_error(
        owner.delete(f"/v2/images/{image_id}/members/anyone"),
        403,
        f"Not allowed to delete members for image {image_id}.",
    )


# -- what members see --------------------------------------------------------------


def listed(client: httpx.Client, **params: str) -> set[str]:
    response = client.get("/v2/images", params={"limit": "1000", **params})
    assert response.status_code == 200, response.text
    return {image["id"] for image in response.json()["images"]}


@pytest.mark.parametrize(
    ("status", "default", "pending", "rejected", "everything", "shared", "shared_all"),
    [
        ("pending", False, True, False, True, False, True),
        ("accepted", True, False, False, True, True, True),
        ("rejected", False, False, True, True, False, True),
    ],
)
def test_what_a_member_sees_in_lists_by_its_status(
    owner: httpx.Client,
    guest: httpx.Client,
    image_id: str,
    other_project: str,
    status: str,
    default: bool,
    pending: bool,
    rejected: bool,
    everything: bool,
    shared: bool,
    shared_all: bool,
) -> None:
    share(owner, image_id, other_project)
    set_status(guest, image_id, other_project, status)

    seen = {
        "default": image_id in listed(guest),
        "pending": image_id in listed(guest, member_status="pending"),
        "rejected": image_id in listed(guest, member_status="rejected"),
        "all": image_id in listed(guest, member_status="all"),
        "shared": image_id in listed(guest, visibility="shared"),
        "shared_all": image_id in listed(guest, visibility="shared", member_status="all"),
    }

    assert seen == {
        "default": default,
        "pending": pending,
        "rejected": rejected,
        "all": everything,
        "shared": shared,
        "shared_all": shared_all,
    }
    # Whatever its answer, a member may look at the image itself.
    assert guest.get(f"/v2/images/{image_id}").status_code == 200


def test_memberships_survive_a_trip_to_private_and_back(
    owner: httpx.Client, guest: httpx.Client, image_id: str, other_project: str
) -> None:
    share(owner, image_id, other_project)
    set_status(guest, image_id, other_project, "accepted")

    def visibility(value: str) -> None:
        patched = owner.patch(
            f"/v2/images/{image_id}",
            json=[{"op": "replace", "path": "/visibility", "value": value}],
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
        )
        assert patched.status_code == 200, patched.text

    visibility("private")
    hidden = guest.get(f"/v2/images/{image_id}")
    visibility("shared")

    assert hidden.status_code == 404
    assert guest.get(f"/v2/images/{image_id}").status_code == 200
    assert image_id in listed(guest)
    members = owner.get(f"/v2/images/{image_id}/members").json()["members"]
    assert [(m["member_id"], m["status"]) for m in members] == [(other_project, "accepted")]


def test_deleting_the_image_deletes_its_memberships(
    owner: httpx.Client, guest: httpx.Client, image_id: str, other_project: str
) -> None:
    share(owner, image_id, other_project)

    assert owner.delete(f"/v2/images/{image_id}").status_code == 204

    assert_error(guest.get(f"/v2/images/{image_id}/members"), 404, f"Image {image_id} not found.")


def test_admins_of_other_projects_see_every_membership(
    http: ClientFactory, owner: httpx.Client, image_id: str, other_project: str
) -> None:
    share(owner, image_id, other_project)

    members = http(admin_of(new_project())).get(f"/v2/images/{image_id}/members")

    assert [m["member_id"] for m in members.json()["members"]] == [other_project]
