"""`OrphanSweep`: abandoned uploads released, and data no image may claim removed,
from real file stores whose files the tests age (the sweep judges by mtime)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from skylens.domain.access import RequestContext
from skylens.domain.images import Image, ImageStatus
from skylens.domain.stores import ConfiguredStore
from skylens.services.sweep import SweepReport
from skylens.storage.keys import image_data_key, staging_key
from tests.support.in_process import GRACE_SECONDS, Services

LONG_AGO = GRACE_SECONDS + 60


STAGING = "os_glance_staging_store"


def root(services: Services, store: str) -> Path:
    return Path(str(_store(services, store).blob.details()["data_dir"]))


def _store(services: Services, store: str) -> ConfiguredStore:
    return services.staging.store if store == STAGING else services.stores[store]


def age(services: Services, store: str, seconds: float = LONG_AGO) -> None:
    """Make every file of `store` (committed or not) `seconds` old."""
    then = time.time() - seconds
    for directory, _subdirectories, files in os.walk(root(services, store)):
        for name in files:
            os.utime(Path(directory) / name, (then, then))


def put(services: Services, store: str, key: str, data: bytes = b"left over") -> None:
    writer = _store(services, store).blob.writer(key)
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

    assert [(r.store, r.orphans) for r in result.stores] == [
        ("local", 0),
        ("cheap", 1),
        (STAGING, 0),
    ]
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


# -- the staging store -----------------------------------------------------------------


def staged(services: Services, image: Image, size: int | None = 9) -> Image:
    """The image as a stage left it: uploading, with the staged size once complete."""
    return services.repository.update(
        image.id,
        lambda i: dataclasses.replace(
            i.with_status(ImageStatus.UPLOADING, services.clock()), size=size
        ),
    )


def staged_keys(services: Services) -> list[str]:
    return sorted(services.staging.store.blob.keys())


def test_deleting_an_image_deletes_its_staged_data(
    services: Services, owner: RequestContext
) -> None:
    image = staged(services, services.create(owner))
    put(services, STAGING, staging_key(image.id))

    services.data.delete_image(owner, image.id)

    assert staged_keys(services) == []


def test_staged_data_waiting_for_or_feeding_an_import_stays(
    services: Services, owner: RequestContext
) -> None:
    waiting = staged(services, services.create(owner))
    importing = services.repository.update(
        staged(services, services.create(owner)).id,
        lambda i: i.with_status(ImageStatus.IMPORTING, services.clock()),
    )
    for image in (waiting, importing):
        put(services, STAGING, staging_key(image.id))
    age(services, STAGING)

    assert report(services, STAGING).orphans == 0

    assert staged_keys(services) == sorted(staging_key(i.id) for i in (waiting, importing))


def test_staged_data_of_an_image_deleted_or_imported_goes(
    services: Services, owner: RequestContext
) -> None:
    deleted = services.create(owner)
    services.images.delete(owner, deleted.id)  # the record only: as if the data stayed
    active = services.active(owner, b"imported")
    for image in (deleted, active):
        put(services, STAGING, staging_key(image.id))
    age(services, STAGING)

    assert report(services, STAGING).orphans == 2

    assert staged_keys(services) == []
    assert services.stored("local") == [image_data_key(active.id)]


def test_a_dead_stage_goes_back_to_queued_and_its_staged_data_goes(
    services: Services, owner: RequestContext
) -> None:
    """A stage whose process died after committing and before recording the size:
    its lease lapses, the image goes back to queued, the data it committed goes."""
    image = staged(services, services.create(owner), size=None)
    services.repository.renew_upload(image.id, services.clock())
    put(services, STAGING, staging_key(image.id))
    age(services, STAGING)
    services.clock.advance(LONG_AGO)

    result = services.sweep.run()

    assert result.released == 1
    assert [(r.store, r.orphans) for r in result.stores if r.store == STAGING] == [(STAGING, 1)]
    assert staged_keys(services) == []
    assert services.images.get(owner, image.id).status is ImageStatus.QUEUED


def test_a_stage_that_died_before_its_first_lease_renewal_is_released(
    services: Services, owner: RequestContext
) -> None:
    image = staged(services, services.create(owner), size=None)  # no lease row at all
    services.clock.advance(LONG_AGO)

    assert services.sweep.run().released == 1

    assert services.images.get(owner, image.id).status is ImageStatus.QUEUED


def test_an_unfinished_staging_write_goes_unless_its_stage_is_alive(
    services: Services, owner: RequestContext
) -> None:
    dead = services.create(owner)
    alive = staged(services, services.create(owner), size=None)
    services.repository.renew_upload(alive.id, services.clock())
    for image in (dead, alive):
        services.staging.store.blob.writer(staging_key(image.id)).write(b"partial")
    age(services, STAGING)

    assert report(services, STAGING).uncommitted == 1

    left = os.listdir(root(services, STAGING) / ".partial")
    assert [name.rpartition(".")[0] for name in left] == [f"staging~{alive.id[:2]}~{alive.id}"]
    assert services.images.get(owner, alive.id).status is ImageStatus.UPLOADING
