"""`ImageService`: the image catalogue's use cases, with Glance's default policy,
per-image limits and project quotas, on a real SQLite file."""

from __future__ import annotations

import pytest

from skylens.domain.access import RequestContext
from skylens.domain.changes import Change, ChangeOp, ImageLimits
from skylens.domain.errors import (
    Conflict,
    Forbidden,
    ForeignOwnerForbidden,
    ImageNotFound,
    InvalidFilter,
    LimitExceeded,
    NotFound,
    OwnerChangeForbidden,
    QuotaExceeded,
)
from skylens.domain.images import ImageStatus, Visibility
from skylens.domain.listing import ListQuery, complete_sort
from skylens.domain.quotas import Resource
from skylens.services.images import NewImage
from tests.support.identities import new_project
from tests.support.in_process import Services, ServicesFactory, member_of

# The order every list has when the client gives none.
NEWEST_FIRST = complete_sort(())


# -- create ----------------------------------------------------------------


def test_a_new_image_is_queued_shared_and_owned_by_the_callers_project(
    services: Services, owner: RequestContext
) -> None:
    image = services.create(owner, name="cirros")

    assert image.status is ImageStatus.QUEUED
    assert image.visibility is Visibility.SHARED
    assert image.owner == owner.project_id
    assert services.images.get(owner, image.id) == image


def test_a_member_cannot_create_an_image_for_another_project(
    services: Services, owner: RequestContext
) -> None:
    with pytest.raises(ForeignOwnerForbidden):
        services.create(owner, owner=new_project())


def test_an_admin_creates_images_for_any_project_or_none(
    services: Services, admin: RequestContext
) -> None:
    other = new_project()

    assert services.create(admin, owner=other).owner == other
    assert services.create(admin, owner=None).owner is None


def test_only_an_admin_creates_a_public_image(
    services: Services, owner: RequestContext, admin: RequestContext
) -> None:
    with pytest.raises(Forbidden):
        services.create(owner, visibility="public")

    assert services.create(admin, visibility="public").visibility is Visibility.PUBLIC


def test_a_reader_cannot_create_an_image(services: Services, reader: RequestContext) -> None:
    with pytest.raises(Forbidden):
        services.create(reader)


def test_an_image_id_is_never_used_twice_not_even_after_a_delete(
    services: Services, owner: RequestContext
) -> None:
    image = services.create(owner)
    with pytest.raises(Conflict, match="already exists"):
        services.images.create(owner, NewImage(image_id=image.id))

    services.images.delete(owner, image.id)
    with pytest.raises(Conflict, match="already exists"):
        services.images.create(owner, NewImage(image_id=image.id))


def test_the_per_image_tag_and_property_limits_hold_at_create(
    make_services: ServicesFactory, owner: RequestContext
) -> None:
    services = make_services(limits=ImageLimits(properties=2, tags=1))

    with pytest.raises(LimitExceeded):
        services.images.create(owner, NewImage(tags=frozenset({"a", "b"})))
    with pytest.raises(LimitExceeded):
        services.images.create(owner, NewImage(properties={"a": "1", "b": "2", "c": "3"}))
    assert services.images.create(owner, NewImage(properties={"a": "1", "b": "2"}))


def test_the_image_count_quota_is_counted_on_the_owner(
    make_services: ServicesFactory, project: str, owner: RequestContext, admin: RequestContext
) -> None:
    services = make_services(
        quotas=dict.fromkeys(Resource, -1),
        project_quotas={project: {Resource.IMAGE_COUNT_TOTAL: 2}},
    )
    services.create(owner)
    services.create(admin, owner=project)  # an admin's image for the project counts

    with pytest.raises(QuotaExceeded):
        services.create(owner)
    with pytest.raises(QuotaExceeded):
        services.create(admin, owner=project)
    services.create(member_of(new_project()))  # other projects have the default: none


def test_a_deleted_image_frees_its_place_in_the_count_quota(
    make_services: ServicesFactory, owner: RequestContext
) -> None:
    services = make_services(quotas={Resource.IMAGE_COUNT_TOTAL: 1})
    image = services.create(owner)
    with pytest.raises(QuotaExceeded):
        services.create(owner)

    services.images.delete(owner, image.id)

    services.create(owner)


# -- get and list ------------------------------------------------------------


def test_a_stranger_is_told_a_private_image_does_not_exist(
    services: Services, owner: RequestContext, stranger: RequestContext
) -> None:
    image = services.create(owner, visibility="private")

    with pytest.raises(ImageNotFound):
        services.images.get(stranger, image.id)


def test_a_public_or_community_image_is_seen_by_everyone(
    services: Services, admin: RequestContext, owner: RequestContext, stranger: RequestContext
) -> None:
    public = services.create(admin, visibility="public")
    community = services.create(owner, visibility="community")

    assert services.images.get(stranger, public.id).id == public.id
    assert services.images.get(stranger, community.id).id == community.id


def test_a_shared_image_is_seen_by_its_members_only(
    services: Services, owner: RequestContext, stranger: RequestContext
) -> None:
    image = services.create(owner)
    with pytest.raises(ImageNotFound):
        services.images.get(stranger, image.id)

    assert stranger.project_id is not None
    services.members.add(owner, image.id, stranger.project_id)

    assert services.images.get(stranger, image.id).id == image.id


def test_a_list_holds_the_callers_images_and_pages_by_marker(
    services: Services, owner: RequestContext, stranger: RequestContext
) -> None:
    created = {services.create(owner).id for _ in range(3)}
    services.create(stranger)

    first = services.images.list(owner, ListQuery(limit=2, sort=NEWEST_FIRST))
    assert first.next_marker is not None
    rest = services.images.list(
        owner, ListQuery(limit=2, marker=first.next_marker, sort=NEWEST_FIRST)
    )

    assert {image.id for image in first.images + rest.images} == created
    assert rest.next_marker is None


def test_a_marker_the_caller_cannot_see_is_refused(
    services: Services, owner: RequestContext, stranger: RequestContext
) -> None:
    hidden = services.create(stranger, visibility="private")

    with pytest.raises(InvalidFilter, match="No image found"):
        services.images.list(owner, ListQuery(limit=10, marker=hidden.id, sort=NEWEST_FIRST))


# -- update --------------------------------------------------------------------


def test_an_update_applies_the_changes_and_keeps_the_rest(
    services: Services, owner: RequestContext
) -> None:
    image = services.create(owner, name="old")
    services.clock.advance(5)

    updated = services.images.update(
        owner,
        image.id,
        [Change(ChangeOp.REPLACE, "name", "new"), Change(ChangeOp.ADD, "os_distro", "cirros")],
    )

    assert (updated.name, updated.properties) == ("new", {"os_distro": "cirros"})
    assert updated.disk_format == "raw"
    assert updated.updated_at > image.updated_at
    assert services.images.get(owner, image.id) == updated


def test_a_stranger_cannot_change_an_image_it_cannot_see(
    services: Services, owner: RequestContext, stranger: RequestContext
) -> None:
    image = services.create(owner, visibility="private")

    with pytest.raises(ImageNotFound):
        services.images.update(stranger, image.id, [Change(ChangeOp.REPLACE, "name", "x")])


def test_a_reader_sees_an_image_but_cannot_change_it(
    services: Services, owner: RequestContext, reader: RequestContext
) -> None:
    image = services.create(owner)

    with pytest.raises(Forbidden):
        services.images.update(reader, image.id, [Change(ChangeOp.REPLACE, "name", "x")])


def test_a_member_of_a_public_image_it_does_not_own_is_forbidden_to_change_it(
    services: Services, admin: RequestContext, stranger: RequestContext
) -> None:
    image = services.create(admin, visibility="public")

    with pytest.raises(Forbidden):
        services.images.update(stranger, image.id, [Change(ChangeOp.REPLACE, "name", "x")])


def test_only_an_admin_changes_the_owner(
    services: Services, owner: RequestContext, admin: RequestContext
) -> None:
    image = services.create(owner)
    other = new_project()

    with pytest.raises(OwnerChangeForbidden):
        services.images.update(owner, image.id, [Change(ChangeOp.REPLACE, "owner", other)])
    assert (
        services.images.update(admin, image.id, [Change(ChangeOp.REPLACE, "owner", other)]).owner
        == other
    )


def test_the_property_limit_refuses_a_new_property_but_not_a_changed_one(
    make_services: ServicesFactory, owner: RequestContext
) -> None:
    services = make_services(limits=ImageLimits(properties=1))
    image = services.create(owner)
    services.images.update(owner, image.id, [Change(ChangeOp.ADD, "a", "1")])

    with pytest.raises(LimitExceeded):
        services.images.update(owner, image.id, [Change(ChangeOp.ADD, "b", "2")])
    changed = services.images.update(owner, image.id, [Change(ChangeOp.REPLACE, "a", "3")])

    assert changed.properties == {"a": "3"}


def test_a_failed_update_changes_nothing(services: Services, owner: RequestContext) -> None:
    image = services.create(owner, name="kept")

    with pytest.raises(Conflict):
        services.images.update(
            owner,
            image.id,
            [Change(ChangeOp.REPLACE, "name", "lost"), Change(ChangeOp.REMOVE, "absent")],
        )

    assert services.images.get(owner, image.id) == image


# -- delete ------------------------------------------------------------------


def test_a_deleted_image_is_gone(services: Services, owner: RequestContext) -> None:
    image = services.create(owner)

    services.images.delete(owner, image.id)

    with pytest.raises(ImageNotFound):
        services.images.get(owner, image.id)
    assert services.repository.get(image.id) is None


def test_a_protected_image_cannot_be_deleted(services: Services, owner: RequestContext) -> None:
    image = services.create(owner, protected=True)

    with pytest.raises(Forbidden, match="is protected"):
        services.images.delete(owner, image.id)

    assert services.images.get(owner, image.id).status is ImageStatus.QUEUED


def test_deleting_a_missing_image_says_so_in_glances_words(
    services: Services, owner: RequestContext
) -> None:
    image = services.create(owner)
    services.images.delete(owner, image.id)

    with pytest.raises(ImageNotFound, match=f"Failed to find image {image.id} to delete"):
        services.images.delete(owner, image.id)


# -- deactivate and reactivate ---------------------------------------------------


def test_an_active_image_is_deactivated_and_reactivated(
    services: Services, owner: RequestContext
) -> None:
    image = services.active(owner)

    services.images.deactivate(owner, image.id)
    assert services.images.get(owner, image.id).status is ImageStatus.DEACTIVATED
    services.images.deactivate(owner, image.id)  # again: nothing to do

    services.images.reactivate(owner, image.id)
    assert services.images.get(owner, image.id).status is ImageStatus.ACTIVE
    services.images.reactivate(owner, image.id)  # again: nothing to do


def test_an_image_without_data_can_be_neither_deactivated_nor_reactivated(
    services: Services, owner: RequestContext
) -> None:
    image = services.create(owner)

    with pytest.raises(Forbidden, match="Not allowed to deactivate image in status 'queued'"):
        services.images.deactivate(owner, image.id)
    with pytest.raises(Forbidden, match="Not allowed to reactivate image in status 'queued'"):
        services.images.reactivate(owner, image.id)


def test_a_reader_cannot_deactivate_an_image(
    services: Services, owner: RequestContext, reader: RequestContext
) -> None:
    image = services.active(owner)

    with pytest.raises(Forbidden):
        services.images.deactivate(reader, image.id)

    assert services.images.get(owner, image.id).status is ImageStatus.ACTIVE


# -- tags --------------------------------------------------------------------------


def test_a_tag_is_added_once_and_removed(services: Services, owner: RequestContext) -> None:
    image = services.create(owner)

    services.images.add_tag(owner, image.id, "gold")
    services.images.add_tag(owner, image.id, "gold")
    assert services.images.get(owner, image.id).tags == {"gold"}

    services.images.remove_tag(owner, image.id, "gold")
    assert services.images.get(owner, image.id).tags == frozenset()


def test_removing_a_tag_the_image_lacks_is_not_found(
    services: Services, owner: RequestContext
) -> None:
    image = services.create(owner)

    with pytest.raises(NotFound):
        services.images.remove_tag(owner, image.id, "absent")


def test_the_tag_limit_is_told_with_the_image(
    make_services: ServicesFactory, owner: RequestContext
) -> None:
    services = make_services(limits=ImageLimits(tags=1))
    image = services.create(owner)
    services.images.add_tag(owner, image.id, "one")

    with pytest.raises(LimitExceeded, match=f"Image tag limit exceeded for image {image.id}"):
        services.images.add_tag(owner, image.id, "two")
    services.images.add_tag(owner, image.id, "one")  # already there: no new tag


def test_tagging_an_image_the_caller_cannot_see_is_not_found_in_glances_words(
    services: Services, owner: RequestContext, stranger: RequestContext
) -> None:
    image = services.create(owner, visibility="private")

    with pytest.raises(NotFound, match=f"Image {image.id} not found."):
        services.images.add_tag(stranger, image.id, "x")
