"""`ImageDataService`: uploads, downloads and deletions of image data through real
file stores, with the real format inspector, on a real SQLite file."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from skylens.domain.access import RequestContext
from skylens.domain.errors import (
    Conflict,
    DataFormatMismatch,
    Forbidden,
    ImageTooLarge,
    InvalidRequest,
    QuotaExceeded,
    StorageUnavailable,
    UnknownStore,
    UnsafeImageData,
)
from skylens.domain.images import Image, ImageStatus
from skylens.domain.quotas import MIB, Resource
from skylens.services.image_data import UploadLimits
from skylens.services.images import NewImage
from skylens.storage.keys import image_data_key
from tests.support.in_process import Services, ServicesFactory


def qemu_img(directory: Path, name: str, *options: str, size: str = "") -> bytes:
    """The qcow2 image `qemu-img create` makes with `options`."""
    command = ["qemu-img", "create", "-q", "-f", "qcow2", *options, name, *filter(None, [size])]
    subprocess.run(command, check=True, capture_output=True, cwd=directory)
    return (directory / name).read_bytes()


def downloaded(services: Services, context: RequestContext, image_id: str) -> bytes:
    download = services.data.open_download(context, image_id)
    assert download is not None
    return b"".join(download.store.read(download.key))


def with_copy_in(services: Services, image: Image, store: str) -> Image:
    """The image with a second copy of its data, in `store` (as a copy would make)."""
    key = image_data_key(image.id)
    writer = services.stores[store].blob.writer(key)
    for chunk in services.stores[image.stores[0]].blob.read(key):
        writer.write(chunk)
    writer.commit()
    return services.repository.update(
        image.id, lambda i: dataclasses.replace(i, stores=(*i.stores, store))
    )


# -- upload ------------------------------------------------------------------------


def test_an_upload_activates_the_image_with_its_size_and_hashes(
    services: Services, owner: RequestContext
) -> None:
    data = os.urandom(3 * MIB + 17)
    image = services.create(owner)

    active = services.upload(owner, image.id, data)

    assert active.status is ImageStatus.ACTIVE
    assert (active.size, active.virtual_size) == (len(data), len(data))
    assert active.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert (active.os_hash_algo, active.os_hash_value) == (
        "sha512",
        hashlib.sha512(data).hexdigest(),
    )
    assert active.stores == ("local",)
    assert services.stored("local") == [image_data_key(image.id)]
    assert downloaded(services, owner, image.id) == data


def test_an_upload_goes_to_the_store_asked_for(services: Services, owner: RequestContext) -> None:
    image = services.create(owner)

    active = services.upload(owner, image.id, b"data", store="cheap")

    assert active.stores == ("cheap",)
    assert services.stored("cheap") == [image_data_key(image.id)]
    assert services.stored("local") == []


def test_an_upload_to_an_unknown_store_is_refused_before_anything_changes(
    services: Services, owner: RequestContext
) -> None:
    image = services.create(owner)

    with pytest.raises(UnknownStore):
        services.upload(owner, image.id, b"data", store="nowhere")

    assert services.images.get(owner, image.id).status is ImageStatus.QUEUED


def test_an_image_without_formats_takes_no_data(services: Services, owner: RequestContext) -> None:
    image = services.images.create(owner, NewImage())

    with pytest.raises(
        InvalidRequest, match="Properties disk_format, container_format must be set"
    ):
        services.upload(owner, image.id, b"data")

    assert services.images.get(owner, image.id).status is ImageStatus.QUEUED


def test_an_active_image_takes_no_second_upload(services: Services, owner: RequestContext) -> None:
    image = services.active(owner, b"first")

    with pytest.raises(Conflict):
        services.upload(owner, image.id, b"second")

    assert downloaded(services, owner, image.id) == b"first"


def test_a_stranger_cannot_upload_to_a_shared_image(
    services: Services, owner: RequestContext, stranger: RequestContext
) -> None:
    image = services.create(owner)
    assert stranger.project_id is not None
    services.members.add(owner, image.id, stranger.project_id)

    with pytest.raises(Forbidden):
        services.upload(stranger, image.id, b"data")


def test_data_past_the_size_cap_is_refused_and_nothing_stays(
    make_services: ServicesFactory, owner: RequestContext
) -> None:
    services = make_services(upload=UploadLimits(size_cap=1000))
    image = services.create(owner)

    with pytest.raises(ImageTooLarge):
        services.upload(owner, image.id, b"x" * 1001)

    assert services.images.get(owner, image.id).status is ImageStatus.QUEUED
    assert services.stored("local") == []
    assert services.upload(owner, image.id, b"x" * 1000).size == 1000  # a retry may fit


def test_data_not_of_the_declared_format_is_refused_and_nothing_stays(
    services: Services, owner: RequestContext
) -> None:
    image = services.create(owner, disk_format="qcow2")

    with pytest.raises(DataFormatMismatch):
        services.upload(owner, image.id, b"\0" * 4096)

    assert services.images.get(owner, image.id).status is ImageStatus.QUEUED
    assert services.stored("local") == []


def test_a_qcow2_image_gets_its_virtual_size(
    services: Services, owner: RequestContext, tmp_path: Path
) -> None:
    data = qemu_img(tmp_path, "plain.qcow2", size="64M")
    image = services.create(owner, disk_format="qcow2")

    active = services.upload(owner, image.id, data)

    assert (active.size, active.virtual_size) == (len(data), 64 * MIB)


def test_a_qcow2_image_with_a_backing_file_is_refused_as_unsafe(
    services: Services, owner: RequestContext, tmp_path: Path
) -> None:
    data = qemu_img(tmp_path, "evil.qcow2", "-b", "/etc/passwd", "-F", "raw")
    image = services.create(owner, disk_format="qcow2")

    with pytest.raises(UnsafeImageData):
        services.upload(owner, image.id, data)

    assert services.stored("local") == []


def test_the_size_quota_refuses_data_that_does_not_fit(
    make_services: ServicesFactory, owner: RequestContext
) -> None:
    services = make_services(quotas={Resource.IMAGE_SIZE_TOTAL: 1})
    first = services.active(owner, b"x" * (MIB // 2))
    image = services.create(owner)

    with pytest.raises(QuotaExceeded):
        services.upload(owner, image.id, b"x" * (MIB // 2 + 1))

    assert services.images.get(owner, image.id).status is ImageStatus.QUEUED
    assert services.stored("local") == [image_data_key(first.id)]
    assert services.upload(owner, image.id, b"x" * (MIB // 2)).status is ImageStatus.ACTIVE


# -- download ------------------------------------------------------------------------


def test_an_image_without_data_has_nothing_to_download(
    services: Services, owner: RequestContext
) -> None:
    image = services.create(owner)

    assert services.data.open_download(owner, image.id) is None


def test_a_download_reads_the_heaviest_store_holding_the_data(
    services: Services, owner: RequestContext
) -> None:
    image = with_copy_in(services, services.active(owner), "cheap")

    download = services.data.open_download(owner, image.id)

    assert download is not None
    assert download.store.name == "cheap"  # weight 5, over local's 0


def test_a_deactivated_image_is_downloaded_by_admins_only(
    services: Services, owner: RequestContext, admin: RequestContext
) -> None:
    image = services.active(owner, b"data")
    services.images.deactivate(owner, image.id)

    with pytest.raises(Forbidden, match="has been deactivated"):
        services.data.open_download(owner, image.id)
    assert downloaded(services, admin, image.id) == b"data"


def test_data_in_a_store_this_server_lacks_is_unavailable(
    services: Services, owner: RequestContext
) -> None:
    image = services.active(owner)
    services.repository.update(image.id, lambda i: dataclasses.replace(i, stores=("gone",)))

    with pytest.raises(StorageUnavailable, match="gone"):
        services.data.open_download(owner, image.id)


# -- delete ---------------------------------------------------------------------------


def test_deleting_an_image_deletes_its_data_in_every_store(
    services: Services, owner: RequestContext
) -> None:
    image = with_copy_in(services, services.active(owner), "cheap")

    services.data.delete_image(owner, image.id)

    assert services.stored("local") == services.stored("cheap") == []
    assert services.repository.get(image.id) is None


def test_an_admin_removes_one_copy_and_the_other_serves(
    services: Services, owner: RequestContext, admin: RequestContext
) -> None:
    image = with_copy_in(services, services.active(owner, b"data"), "cheap")

    services.data.delete_from_store(admin, "cheap", image.id)

    assert services.images.get(owner, image.id).stores == ("local",)
    assert services.stored("cheap") == []
    assert downloaded(services, owner, image.id) == b"data"


def test_the_last_copy_of_the_data_stays(services: Services, admin: RequestContext) -> None:
    image = services.active(admin)

    with pytest.raises(Forbidden, match="only store containing it"):
        services.data.delete_from_store(admin, "local", image.id)

    assert services.stored("local") == [image_data_key(image.id)]


def test_removing_a_copy_is_for_admins_and_active_images(
    services: Services, owner: RequestContext, admin: RequestContext
) -> None:
    image = with_copy_in(services, services.active(owner), "cheap")
    queued = services.create(admin)

    with pytest.raises(Forbidden):
        services.data.delete_from_store(owner, "cheap", image.id)
    with pytest.raises(Conflict, match="if image status is not 'active'"):
        services.data.delete_from_store(admin, "cheap", queued.id)
    with pytest.raises(Conflict, match="store nowhere is not available"):
        services.data.delete_from_store(admin, "nowhere", image.id)


# -- stores ----------------------------------------------------------------------------


def test_the_stores_are_listed_with_the_default_and_detailed_for_admins(
    services: Services, owner: RequestContext, admin: RequestContext
) -> None:
    listed = {store.id: store for store in services.data.stores_info(owner)}
    detailed = {store.id: store for store in services.data.stores_info(admin, detail=True)}

    assert [s.id for s in listed.values() if s.is_default] == ["local"]
    assert listed["cheap"].weight is None
    assert (detailed["cheap"].kind, detailed["cheap"].weight) == ("file", 5)
    with pytest.raises(Forbidden):
        services.data.stores_info(owner, detail=True)
