"""`OrphanSweep`: abandoned uploads released, and data no image may claim removed,
from real file stores whose files the tests age (the sweep judges by mtime)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from skylens.domain.access import RequestContext
from skylens.domain.images import Image, ImageStatus
from skylens.services.sweep import SweepReport
from skylens.storage.keys import image_data_key
from tests.support.in_process import GRACE_SECONDS, Services

LONG_AGO = GRACE_SECONDS + 60


def root(services: Services, store: str) -> Path:
    return Path(str(services.stores[store].blob.details()["data_dir"]))


def age(services: Services, store: str, seconds: float = LONG_AGO) -> None:
    """Make every file of `store` (committed or not) `seconds` old."""
    then = time.time() - seconds
    for directory, _subdirectories, files in os.walk(root(services, store)):
        for name in files:
            os.utime(Path(directory) / name, (then, then))


def put(services: Services, store: str, key: str, data: bytes = b"left over") -> None:
    writer = services.stores[store].blob.writer(key)
    writer.write(data)
    writer.commit()


def saving(services: Services, image: Image) -> Image:
    """The image as an upload that took it and renewed its lease now left it."""
    taken = services.repository.update(
        image.id, lambda i: i.with_status(ImageStatus.SAVING, services.clock())
    )
    services.repository.renew_upload(image.id, services.clock())
    return taken


def report(services: Services, store: str) -> SweepReport:
    result = services.sweep.run()
    assert not result.failed
    (found,) = [r for r in result.stores if r.store == store]
    return found


# -- abandoned uploads -----------------------------------------------------------------


def test_an_upload_whose_lease_lapsed_goes_back_to_queued(
    services: Services, owner: RequestContext
) -> None:
    image = saving(services, services.create(owner))
    services.clock.advance(LONG_AGO)

    assert services.sweep.run().released == 1

    assert services.images.get(owner, image.id).status is ImageStatus.QUEUED
    assert services.repository.stale_uploads(services.clock()) == []  # the lease went too


def test_an_upload_whose_lease_is_live_is_left_alone(
    services: Services, owner: RequestContext
) -> None:
    image = saving(services, services.create(owner))
    services.clock.advance(GRACE_SECONDS / 2)

    assert services.sweep.run().released == 0

    assert services.images.get(owner, image.id).status is ImageStatus.SAVING


# -- uncommitted writes ------------------------------------------------------------------


def test_an_old_uncommitted_write_is_removed_unless_its_upload_is_alive(
    services: Services, owner: RequestContext
) -> None:
    dead = services.create(owner)
    alive = saving(services, services.create(owner))
    services.stores["local"].blob.writer(image_data_key(dead.id)).write(b"partial")
    services.stores["local"].blob.writer(image_data_key(alive.id)).write(b"partial")
    age(services, "local")

    assert report(services, "local").uncommitted == 1

    left = os.listdir(root(services, "local") / ".partial")
    assert [name.rpartition(".")[0] for name in left] == [f"images~{alive.id[:2]}~{alive.id}"]


# -- orphaned data ---------------------------------------------------------------------


def test_data_of_a_deleted_image_is_removed(services: Services, owner: RequestContext) -> None:
    image = services.create(owner)
    services.images.delete(owner, image.id)
    put(services, "local", image_data_key(image.id))
    age(services, "local")

    assert report(services, "local").orphans == 1

    assert services.stored("local") == []


def test_an_active_images_data_stays_and_its_copy_in_another_store_goes(
    services: Services, owner: RequestContext
) -> None:
    image = services.active(owner, b"data")
    put(services, "cheap", image_data_key(image.id))
    age(services, "local")
    age(services, "cheap")

    result = services.sweep.run()

    assert [(r.store, r.orphans) for r in result.stores] == [("local", 0), ("cheap", 1)]
    assert services.stored("local") == [image_data_key(image.id)]
    assert services.stored("cheap") == []


def test_data_a_dead_upload_committed_to_a_queued_image_goes_and_the_image_stays_queued(
    services: Services, owner: RequestContext
) -> None:
    image = services.create(owner)
    put(services, "local", image_data_key(image.id))
    age(services, "local")

    assert report(services, "local").orphans == 1

    assert services.stored("local") == []
    assert services.images.get(owner, image.id).status is ImageStatus.QUEUED
    assert services.upload(owner, image.id, b"data").status is ImageStatus.ACTIVE


def test_a_saving_images_data_stays(services: Services, owner: RequestContext) -> None:
    image = saving(services, services.create(owner))
    put(services, "local", image_data_key(image.id))
    age(services, "local")

    assert report(services, "local").orphans == 0

    assert services.stored("local") == [image_data_key(image.id)]


@pytest.mark.parametrize("key", ["elsewhere/file", "images/ab/not-ours"])
def test_keys_this_service_did_not_write_are_not_its_to_judge(services: Services, key: str) -> None:
    put(services, "local", key)
    age(services, "local")

    assert report(services, "local").orphans == 0

    assert services.stored("local") == [key]


def test_young_data_is_never_taken_for_an_orphan(services: Services, owner: RequestContext) -> None:
    image = services.create(owner)
    services.images.delete(owner, image.id)
    put(services, "local", image_data_key(image.id))  # a commit racing the deletion

    assert report(services, "local").orphans == 0

    assert services.stored("local") == [image_data_key(image.id)]
