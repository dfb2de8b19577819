"""`SqlImageRepository` on a real SQLite file and on the real PostgreSQL: what goes
in comes out, ids are never reused, writers of one image take turns, quota claims
hold, memberships and upload leases.

Each backend locks its own way (SQLite: the database's write lock; PostgreSQL: the
image's row, and an advisory lock per project for quota claims); the concurrency
tests run on both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from skylens.db.engine import create_engine, upgrade
from skylens.db.repository import SqlImageRepository
from skylens.domain.errors import Conflict, ImageNotFound, MemberLimitExceeded, QuotaExceeded
from skylens.domain.images import Image, ImageStatus, MemberStatus, Visibility
from skylens.domain.members import ImageMember
from skylens.domain.quotas import QuotaClaim, Resource
from tests.support.identities import new_project
from tests.support.servers import postgres_database

NOW = dt.datetime(2026, 1, 1, 12, 0, 0)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    """A migrated database on each backend, shared by the module's tests (each works
    on images and projects of its own)."""
    with throwaway_database(request.param, tmp_path_factory.mktemp("repository")) as url:
        engine = create_engine(url, pool_size=4)
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()


def throwaway_database(backend: str, directory: Path) -> contextlib.AbstractContextManager[str]:
    if backend == "sqlite":
        return contextlib.nullcontext(f"sqlite:///{directory / 'skylens.db'}")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return postgres_database(f"skylens_repository_{worker}_{os.getpid()}")


@pytest.fixture
def repository(engine: sa.Engine) -> SqlImageRepository:
    return SqlImageRepository(engine)


def new_image(owner: str | None = None, **attributes: Any) -> Image:
    """A queued shared image of `owner` (a new project's by default), with `attributes`."""
    image = Image(
        id=str(uuid.uuid4()),
        owner=new_project() if owner is None else owner,
        status=ImageStatus.QUEUED,
        visibility=Visibility.SHARED,
        created_at=NOW,
        updated_at=NOW,
    )
    return dataclasses.replace(image, **attributes)


def renamed(name: str) -> Callable[[Image], Image]:
    return lambda image: dataclasses.replace(image, name=name)


# -- what goes in comes out ---------------------------------------------------------


def test_an_image_comes_back_as_it_went_in(repository: SqlImageRepository) -> None:
    image = new_image(
        name="cirros",
        protected=True,
        min_ram=512,
        disk_format="qcow2",
        container_format="bare",
        tags=frozenset({"a", "b"}),
        properties={"os_distro": "cirros", "empty": "", "unset": None},
        stores=("local", "cheap"),
        size=1 << 40,
    )

    repository.add(image)

    assert repository.get(image.id) == image


def test_an_update_stores_the_changed_image_and_its_children(
    repository: SqlImageRepository,
) -> None:
    image = new_image(tags=frozenset({"old", "kept"}), properties={"a": "1", "b": "2"})
    repository.add(image)

    def change(current: Image) -> Image:
        return dataclasses.replace(
            current,
            name="new",
            tags=frozenset({"kept", "new"}),
            properties={"a": "1", "b": "changed", "c": "3"},
        )

    updated = repository.update(image.id, change)

    assert repository.get(image.id) == updated
    assert updated.tags == {"kept", "new"}


def test_an_image_id_is_never_reused(repository: SqlImageRepository) -> None:
    image = new_image()
    repository.add(image)
    with pytest.raises(Conflict, match="already exists"):
        repository.add(image)

    repository.update(image.id, lambda i: i.with_status(ImageStatus.DELETED, NOW))

    assert repository.get(image.id) is None
    with pytest.raises(Conflict, match="already exists"):
        repository.add(image)


def test_updating_a_missing_image_is_not_found(repository: SqlImageRepository) -> None:
    with pytest.raises(ImageNotFound):
        repository.update(str(uuid.uuid4()), renamed("x"))


def test_a_change_that_changes_nothing_writes_nothing(
    repository: SqlImageRepository, engine: sa.Engine
) -> None:
    image = new_image()
    repository.add(image)

    assert repository.update(image.id, lambda current: current) == image

    with engine.connect() as connection:
        version = connection.execute(
            sa.text("SELECT version FROM images WHERE id = :id"), {"id": image.id}
        ).scalar_one()
    assert version == 1


def test_data_locations_name_the_status_and_stores_of_live_images_only(
    repository: SqlImageRepository,
) -> None:
    active = new_image(status=ImageStatus.ACTIVE, stores=("local", "cheap"))
    queued = new_image()
    repository.add(active)
    repository.add(queued)

    assert repository.data_locations([active.id, queued.id, str(uuid.uuid4())]) == {
        active.id: (ImageStatus.ACTIVE, ("local", "cheap")),
        queued.id: (ImageStatus.QUEUED, ()),
    }


def test_usage_counts_images_uploads_and_every_copys_bytes(
    repository: SqlImageRepository,
) -> None:
    project = new_project()
    repository.add(new_image(project, status=ImageStatus.ACTIVE, size=100, stores=("a", "b")))
    repository.add(new_image(project, status=ImageStatus.ACTIVE, size=5, stores=("a",)))
    repository.add(new_image(project, status=ImageStatus.SAVING))
    repository.add(new_image())  # another project's

    assert repository.usage(project) == {
        Resource.IMAGE_SIZE_TOTAL: 205,
        Resource.IMAGE_STAGE_TOTAL: 0,
        Resource.IMAGE_COUNT_TOTAL: 3,
        Resource.IMAGE_COUNT_UPLOADING: 1,
    }


# -- writers take turns ------------------------------------------------------------


def test_writers_of_one_image_take_turns_and_no_change_is_lost(
    repository: SqlImageRepository,
) -> None:
    """The first writer holds the image while the second tries: the second's change
    runs only once the first has committed, on the image the first left."""
    image = new_image(properties={})
    repository.add(image)
    events: list[str] = []
    first_holds, second_tried = threading.Event(), threading.Event()

    def first(current: Image) -> Image:
        events.append("first runs")
        first_holds.set()
        assert second_tried.wait(30)
        time.sleep(0.3)  # the second writer's chance to run too early, if it could
        events.append("first done")
        return dataclasses.replace(current, properties={**current.properties, "first": "1"})

    def second(current: Image) -> Image:
        events.append("second runs")
        return dataclasses.replace(current, properties={**current.properties, "second": "2"})

    with ThreadPoolExecutor(2) as pool:
        done = pool.submit(repository.update, image.id, first)
        assert first_holds.wait(30)
        then = pool.submit(repository.update, image.id, second)
        second_tried.set()
        done.result()
        then.result()

    assert events == ["first runs", "first done", "second runs"]
    stored = repository.get(image.id)
    assert stored is not None
    assert stored.properties == {"first": "1", "second": "2"}


def test_concurrent_claims_of_one_project_never_pass_its_limit(
    repository: SqlImageRepository,
) -> None:
    """Four creations race for the last place under a count limit; one wins."""
    project = new_project()
    claim = [QuotaClaim(Resource.IMAGE_COUNT_TOTAL, 1, 1)]

    def create() -> str:
        try:
            repository.add(new_image(project), claim)
        except QuotaExceeded:
            return "refused"
        return "created"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(lambda _: create(), range(4)))

    assert outcomes == ["created", "refused", "refused", "refused"]
    assert repository.usage(project, [Resource.IMAGE_COUNT_TOTAL]) == {
        Resource.IMAGE_COUNT_TOTAL: 1
    }


def test_concurrent_members_never_pass_the_member_quota(
    repository: SqlImageRepository,
) -> None:
    image = new_image()
    repository.add(image)

    def add(member: str) -> str:
        try:
            repository.add_member(
                ImageMember(image.id, member, MemberStatus.PENDING, NOW, NOW), quota=2
            )
        except MemberLimitExceeded:
            return "refused"
        return "added"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(add, [new_project() for _ in range(5)]))

    assert outcomes == ["added", "added", "refused", "refused", "refused"]
    assert len(repository.members(image.id)) == 2


# -- memberships ------------------------------------------------------------------------


def test_a_membership_is_added_changed_and_removed(repository: SqlImageRepository) -> None:
    image = new_image()
    repository.add(image)
    project = new_project()
    member = ImageMember(image.id, project, MemberStatus.PENDING, NOW, NOW)

    repository.add_member(member, quota=-1)
    assert repository.members(image.id) == [member]
    assert repository.membership(image.id, project) is MemberStatus.PENDING
    assert repository.shared_out([image.id]) == {image.id}

    later = NOW + dt.timedelta(hours=1)
    changed = repository.set_member_status(image.id, project, MemberStatus.ACCEPTED, later)
    assert changed == dataclasses.replace(member, status=MemberStatus.ACCEPTED, updated_at=later)

    assert repository.remove_member(image.id, project)
    assert not repository.remove_member(image.id, project)
    assert repository.membership(image.id, project) is None
    assert repository.set_member_status(image.id, project, MemberStatus.ACCEPTED, later) is None


def test_a_membership_is_refused_twice_and_on_a_missing_image(
    repository: SqlImageRepository,
) -> None:
    image = new_image()
    repository.add(image)
    member = ImageMember(image.id, new_project(), MemberStatus.PENDING, NOW, NOW)
    repository.add_member(member, quota=-1)

    with pytest.raises(Conflict, match="is duplicated"):
        repository.add_member(member, quota=-1)
    with pytest.raises(ImageNotFound):
        repository.add_member(dataclasses.replace(member, image_id=str(uuid.uuid4())), quota=-1)


# -- upload leases -------------------------------------------------------------------------


def test_an_upload_lease_is_live_until_it_lapses_and_ends_with_the_upload(
    repository: SqlImageRepository,
) -> None:
    image = new_image(status=ImageStatus.SAVING)
    repository.add(image)
    repository.renew_upload(image.id, NOW)
    repository.renew_upload(image.id, NOW + dt.timedelta(minutes=1))  # renewed in place

    assert image.id in repository.live_uploads(NOW + dt.timedelta(seconds=30))
    assert image.id not in repository.stale_uploads(NOW + dt.timedelta(seconds=30))
    assert image.id not in repository.live_uploads(NOW + dt.timedelta(minutes=2))
    assert image.id in repository.stale_uploads(NOW + dt.timedelta(minutes=2))

    repository.end_upload(image.id)

    assert image.id not in repository.live_uploads(NOW)
    # Saving without a lease: stale once the image has not changed since.
    assert image.id in repository.stale_uploads(NOW + dt.timedelta(seconds=1))
    assert image.id not in repository.stale_uploads(NOW)
