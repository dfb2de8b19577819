"""Realistic catalogue data, bulk-inserted straight into a Skylens database.

Most images are public (owned by the cloud's admin project) or belong to a few
busy projects; the rest spread thinly over hundreds of projects. Every image
carries the properties real clouds set (os_distro, hw_*, ...), some of them
unique per image, and zero to three tags. Shared images have members, the
benchmark's own project among them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from skylens.db.tables import image_members, image_properties, image_tags, images

ADMIN_PROJECT = "cloud-admin"
# The regular project the benchmark acts as: about 4% of the images are its own.
MEMBER_PROJECT = "project-0003"
_PROJECTS = (ADMIN_PROJECT, *(f"project-{n:04d}" for n in range(1, 300)))
# Zipf-like: a few projects own most private images.
_PROJECT_WEIGHTS = tuple(1 / (rank + 1) for rank in range(len(_PROJECTS)))

_VISIBILITIES = (("public", 35), ("private", 40), ("shared", 20), ("community", 5))
_STATUSES = (
    ("active", 90),
    ("queued", 5),
    ("deactivated", 3),
    ("killed", 1),
    ("saving", 1),
)
_DISTROS: dict[str, tuple[int, tuple[str, ...]]] = {
    # distro: (weight, versions)
    "ubuntu": (30, ("18.04", "20.04", "22.04", "24.04", "24.10", "25.04")),
    "debian": (15, ("10", "11", "12", "13")),
    "windows": (12, ("2016", "2019", "2022", "2025", "10", "11")),
    "centos": (10, ("7", "8-stream", "9-stream", "10-stream")),
    "rhel": (10, ("7.9", "8.8", "8.10", "9.2", "9.4", "10.0")),
    "rocky": (8, ("8.9", "8.10", "9.3", "9.5")),
    "fedora": (5, ("39", "40", "41", "42")),
    "sles": (4, ("15-sp5", "15-sp6")),
    "alpine": (3, ("3.19", "3.20", "3.21")),
    "freebsd": (3, ("13.4", "14.1", "14.2")),
}
_OPTIONAL_PROPERTIES: dict[str, tuple[str, ...]] = {
    "hw_disk_bus": ("virtio", "scsi", "ide", "sata"),
    "hw_vif_model": ("virtio", "e1000", "rtl8139", "vmxnet3"),
    "hw_scsi_model": ("virtio-scsi", "lsilogic"),
    "hw_firmware_type": ("bios", "uefi"),
    "hw_machine_type": ("q35", "pc", "pc-i440fx-8.2"),
    "hw_qemu_guest_agent": ("yes", "no"),
    "hw_rng_model": ("virtio",),
    "hw_video_model": ("virtio", "vga", "cirrus", "qxl"),
    "hw_cpu_cores": ("1", "2", "4", "8"),
    "hw_cpu_sockets": ("1", "2"),
    "os_require_quiesce": ("yes", "no"),
    "img_config_drive": ("optional", "mandatory"),
    "os_admin_user": ("root", "ubuntu", "cloud-user", "Administrator", "admin"),
    "image_type": ("image", "snapshot"),
}
# Properties whose value is (nearly) unique per image.
_UNIQUE_PROPERTIES = ("build_id", "description", "owner_specified.openstack.sha256")
_TAGS = tuple(f"{kind}-{n}" for kind in ("team", "env", "release", "ci", "gold") for n in range(8))
_DISK_FORMATS = (("qcow2", 60), ("raw", 30), ("vmdk", 4), ("iso", 4), ("vhd", 2))
_EPOCH = dt.datetime(2023, 1, 1)
_SPAN_SECONDS = 3 * 365 * 24 * 3600


@dataclasses.dataclass(frozen=True)
class Seeded:
    images: int
    properties: int
    tags: int
    members: int
    member_visible_ids: tuple[str, ...]  # a sample the member project may show


_TABLES = (
    (images, "images"),
    (image_properties, "properties"),
    (image_tags, "tags"),
    (image_members, "members"),
)


def seed(engine: sa.Engine, count: int, *, batch: int = 5000, rng_seed: int = 42) -> Seeded:
    """Insert `count` images (with children), in one transaction: on PostgreSQL
    with COPY (a million images in a few minutes), elsewhere in batches of
    executemany INSERTs. The same `rng_seed` seeds the same catalogue on both."""
    rng = random.Random(rng_seed)
    totals = {"images": 0, "properties": 0, "tags": 0, "members": 0}
    visible: list[str] = []
    with engine.begin() as connection:
        postgresql = connection.dialect.name == "postgresql"
        write = _copy if postgresql else _insert
        rebuild = _drop_secondary_indexes(connection) if postgresql else []
        for rows in _batches(rng, count, batch):
            for table, key in _TABLES:
                if rows[key]:
                    write(connection, table, rows[key])
                    totals[key] += len(rows[key])
            visible.extend(
                row["id"]
                for row in rows["images"]
                if row["visibility"] == "public" or row["owner"] == MEMBER_PROJECT
            )
        for definition in rebuild:
            connection.exec_driver_sql(definition)
    sample = tuple(rng.sample(visible, min(len(visible), 2000)))
    return Seeded(**totals, member_visible_ids=sample)


def _drop_secondary_indexes(connection: sa.Connection) -> list[str]:
    """Drop the seeded tables' indexes other than their keys; the statements that
    make them again. One index built over a million rows at the end takes a
    fraction of the time of a million insertions into it."""
    connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
    connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
    superuser = connection.exec_driver_sql(
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    ).scalar()
    if superuser:
        # The rows are consistent by construction: skip the foreign-key checks
        # (two thirds of the load's time). Only a superuser may.
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
    found = connection.execute(
        sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:tables) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ),
        {"tables": [table.name for table, _ in _TABLES]},
    ).all()
    for name, _definition in found:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    return [definition for _name, definition in found]


def _insert(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    connection.execute(table.insert(), rows)


def _copy(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """`rows` into `table` with PostgreSQL's COPY: a tenth of the INSERTs' time."""
    names = list(rows[0])
    driver = connection.connection.driver_connection
    assert driver is not None
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row([row[name] for name in names])


def _batches(rng: random.Random, count: int, batch: int) -> Iterator[dict[str, list[Any]]]:
    for start in range(0, count, batch):
        rows: dict[str, list[Any]] = {"images": [], "properties": [], "tags": [], "members": []}
        for _ in range(min(batch, count - start)):
            _image(rng, rows)
        yield rows


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([value for value, _ in weighted], [w for _, w in weighted])[0]


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _image(rng: random.Random, rows: dict[str, list[Any]]) -> None:
    image_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    visibility = _pick(rng, _VISIBILITIES)
    if visibility == "public" and rng.random() < 0.7:
        owner: str | None = ADMIN_PROJECT
    else:
        owner = rng.choices(_PROJECTS, _PROJECT_WEIGHTS)[0]
    if rng.random() < 0.001:
        owner = None
    status = _pick(rng, _STATUSES)
    has_data = status in ("active", "deactivated")
    size = rng.randint(50 << 20, 20 << 30) if has_data else None
    created = _EPOCH + dt.timedelta(seconds=rng.randrange(_SPAN_SECONDS))
    distro = _pick(rng, tuple((name, weight) for name, (weight, _) in _DISTROS.items()))
    version = rng.choice(_DISTROS[distro][1])
    architecture = "aarch64" if rng.random() < 0.15 else "x86_64"
    name = f"{distro}-{version}-{architecture}-{created:%Y%m%d}" if rng.random() > 0.01 else None
    rows["images"].append(
        {
            "id": image_id,
            "name": name,
            "status": status,
            "visibility": visibility,
            "protected": rng.random() < 0.1,
            "os_hidden": rng.random() < 0.02,
            "owner": owner,
            "checksum": _hex(rng, 32) if has_data else None,
            "os_hash_algo": "sha512" if has_data else None,
            "os_hash_value": _hex(rng, 128) if has_data else None,
            "size": size,
            "virtual_size": size if has_data and rng.random() < 0.5 else None,
            "min_ram": rng.choice((0, 0, 512, 1024, 2048)),
            "min_disk": rng.choice((0, 0, 1, 10, 20, 40)),
            "container_format": "bare" if rng.random() < 0.95 else "ovf",
            "disk_format": _pick(rng, _DISK_FORMATS),
            "created_at": created,
            "updated_at": created + dt.timedelta(seconds=rng.randrange(30 * 24 * 3600)),
            "version": 1,
        }
    )
    properties = {
        "os_distro": distro,
        "os_version": version,
        "os_type": "windows" if distro == "windows" else "linux",
        "architecture": architecture,
    }
    for key in rng.sample(list(_OPTIONAL_PROPERTIES), rng.randint(1, 4)):
        properties[key] = rng.choice(_OPTIONAL_PROPERTIES[key])
    for key in rng.sample(_UNIQUE_PROPERTIES, rng.randint(0, 2)):
        properties[key] = _hex(rng, 64) if key.endswith("sha256") else f"{key}-{_hex(rng, 12)}"
    rows["properties"].extend(
        {"image_id": image_id, "name": key, "value": value} for key, value in properties.items()
    )
    rows["tags"].extend(
        {"image_id": image_id, "value": tag} for tag in rng.sample(_TAGS, rng.randint(0, 3))
    )
    if visibility == "shared":
        _members(rng, image_id, owner, created, rows["members"])


def _members(
    rng: random.Random,
    image_id: str,
    owner: str | None,
    created: dt.datetime,
    rows: list[dict[str, Any]],
) -> None:
    members = set(rng.sample(_PROJECTS, rng.randint(0, 3)))
    if rng.random() < 0.1:
        members.add(MEMBER_PROJECT)
    members.discard(owner or "")
    for member in sorted(members):
        status = _pick(rng, (("accepted", 70), ("pending", 20), ("rejected", 10)))
        rows.append(
            {
                "image_id": image_id,
                "member": member,
                "status": status,
                "created_at": created,
                "updated_at": created,
            }
        )
