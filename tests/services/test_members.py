"""`MemberService`: sharing `shared` images with other projects, with Glance's
checks in Glance's order, on a real SQLite file."""

from __future__ import annotations

import pytest

from skylens.domain.access import RequestContext
from skylens.domain.changes import ImageLimits
from skylens.domain.errors import Conflict, Forbidden, InvalidRequest, MemberLimitExceeded, NotFound
from skylens.domain.images import Image, MemberStatus
from skylens.domain.listing import ListQuery, complete_sort
from tests.support.identities import new_project
from tests.support.in_process import Services, ServicesFactory, member_of, reader_of


def project_of(context: RequestContext) -> str:
    assert context.project_id is not None
    return context.project_id


@pytest.fixture
def image(services: Services, owner: RequestContext) -> Image:
    return services.create(owner)


def test_a_new_member_is_pending_and_listed_to_the_owner(
    services: Services, owner: RequestContext, stranger: RequestContext, image: Image
) -> None:
    added = services.members.add(owner, image.id, project_of(stranger))

    assert added.status is MemberStatus.PENDING
    assert services.members.list(owner, image.id) == [added]
    assert services.members.get(owner, image.id, project_of(stranger)) == added


def test_a_member_sees_only_its_own_membership(
    services: Services, owner: RequestContext, stranger: RequestContext, image: Image
) -> None:
    other = new_project()
    services.members.add(owner, image.id, other)
    mine = services.members.add(owner, image.id, project_of(stranger))

    assert services.members.list(stranger, image.id) == [mine]
    with pytest.raises(NotFound, match=f"{other} not found in the member list"):
        services.members.get(stranger, image.id, other)


def test_a_member_accepts_and_then_lists_the_image(
    services: Services, owner: RequestContext, stranger: RequestContext, image: Image
) -> None:
    services.members.add(owner, image.id, project_of(stranger))
    services.clock.advance(5)

    accepted = services.members.set_status(
        stranger, image.id, project_of(stranger), lambda: MemberStatus.ACCEPTED
    )

    assert accepted.status is MemberStatus.ACCEPTED
    assert accepted.updated_at > accepted.created_at
    listed = services.images.list(stranger, ListQuery(limit=10, sort=complete_sort(())))
    assert [i.id for i in listed.images] == [image.id]


def test_only_the_member_itself_changes_its_status(
    services: Services, owner: RequestContext, stranger: RequestContext, image: Image
) -> None:
    services.members.add(owner, image.id, project_of(stranger))

    with pytest.raises(Forbidden):
        services.members.set_status(
            owner, image.id, project_of(stranger), lambda: MemberStatus.ACCEPTED
        )


def test_the_requested_status_is_judged_after_the_caller_is_allowed(
    services: Services, owner: RequestContext, stranger: RequestContext, image: Image
) -> None:
    services.members.add(owner, image.id, project_of(stranger))

    def invalid() -> MemberStatus:
        raise InvalidRequest("not a status")

    with pytest.raises(Forbidden):
        services.members.set_status(owner, image.id, project_of(stranger), invalid)
    with pytest.raises(InvalidRequest):
        services.members.set_status(stranger, image.id, project_of(stranger), invalid)


def test_only_shared_images_have_members(
    services: Services, owner: RequestContext, stranger: RequestContext
) -> None:
    private = services.create(owner, visibility="private")

    with pytest.raises(Forbidden, match=f"Not allowed to create members for image {private.id}."):
        services.members.add(owner, private.id, project_of(stranger))
    with pytest.raises(Forbidden, match=r"Only shared images have members\."):
        services.members.list(owner, private.id)
    with pytest.raises(NotFound, match=r"Only shared images have members\."):
        services.members.get(owner, private.id, project_of(stranger))


def test_a_project_is_a_member_once(
    services: Services, owner: RequestContext, stranger: RequestContext, image: Image
) -> None:
    services.members.add(owner, image.id, project_of(stranger))

    with pytest.raises(Conflict, match="is duplicated"):
        services.members.add(owner, image.id, project_of(stranger))


def test_the_member_quota_holds(make_services: ServicesFactory, owner: RequestContext) -> None:
    services = make_services(limits=ImageLimits(members=2))
    image = services.create(owner)
    services.members.add(owner, image.id, new_project())
    services.members.add(owner, image.id, new_project())

    with pytest.raises(MemberLimitExceeded):
        services.members.add(owner, image.id, new_project())


def test_a_member_id_longer_than_the_column_is_refused(
    services: Services, owner: RequestContext, image: Image
) -> None:
    with pytest.raises(InvalidRequest, match="should not be longer than 255 characters"):
        services.members.add(owner, image.id, "p" * 256)


def test_a_stranger_cannot_share_nor_see_the_members_of_an_image_it_cannot_see(
    services: Services, owner: RequestContext, stranger: RequestContext, image: Image
) -> None:
    with pytest.raises(NotFound, match=f"Image {image.id} not found."):
        services.members.add(stranger, image.id, project_of(stranger))
    with pytest.raises(NotFound, match=f"Image {image.id} not found."):
        services.members.list(stranger, image.id)


def test_a_reader_of_the_owner_lists_members_but_adds_none(
    services: Services, owner: RequestContext, image: Image
) -> None:
    reader = reader_of(project_of(owner))
    services.members.add(owner, image.id, new_project())

    assert len(services.members.list(reader, image.id)) == 1
    with pytest.raises(Forbidden):
        services.members.add(reader, image.id, new_project())


def test_a_removed_member_no_longer_sees_the_image(
    services: Services, owner: RequestContext, image: Image
) -> None:
    member = member_of(new_project())
    services.members.add(owner, image.id, project_of(member))
    assert services.images.get(member, image.id).id == image.id

    services.members.remove(owner, image.id, project_of(member))

    assert services.members.list(owner, image.id) == []
    with pytest.raises(NotFound):
        services.images.get(member, image.id)


def test_removing_a_project_that_is_no_member_is_not_found(
    services: Services, owner: RequestContext, image: Image
) -> None:
    absent = new_project()

    with pytest.raises(NotFound, match=f"{absent} not found in the member list"):
        services.members.remove(owner, image.id, absent)
