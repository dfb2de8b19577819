"""Put rows straight into a running server's database, for states no API reaches yet.

Image data upload does not exist yet, so an `active` image can only be made
here; nor can a client choose `created_at` or `size`, or share an image yet, so
`insert_image` and `add_member` write whole rows. Writes bump `version` as the
repository does, so a server holding the image never mistakes a seeded row for
the one it read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from skylens.db.engine import create_engine
from skylens.db.tables import image_members, image_properties, image_tags, images
from tests.support.servers import RunningServer


def set_image_columns(server: RunningServer, image_id: str, **columns: Any) -> None:
    """Overwrite columns of one image row, e.g. `status="active", size=0`."""
    engine = create_engine(server.database_url, pool_size=1)
    try:
        with engine.begin() as connection:
            result = connection.execute(
                sa.update(images)
                .where(images.c.id == image_id)
                .values(**columns, version=images.c.version + 1)
            )
        assert result.rowcount == 1, f"no image {image_id} in {server.backend}"
    finally:
        engine.dispose()


def activate(server: RunningServer, image_id: str) -> None:
    """Make a queued image `active` with an empty payload, as an upload would."""
    set_image_columns(
        server,
        image_id,
        status="active",
        size=0,
        checksum="d41d8cd98f00b204e9800998ecf8427e",
        os_hash_algo="sha512",
        os_hash_value=(
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
            "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        ),
    )


@contextlib.contextmanager
def _transaction(server: RunningServer) -> Iterator[sa.Connection]:
    engine = create_engine(server.database_url, pool_size=1)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _image_row(columns: Mapping[str, Any]) -> dict[str, Any]:
    """A row as a fresh `POST /v2/images` would store it, overridden by `columns`."""
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "status": "queued",
        "visibility": "shared",
        "protected": False,
        "os_hidden": False,
        "min_ram": 0,
        "min_disk": 0,
        "created_at": _now(),
        "version": 1,
        **columns,
    }
    row.setdefault("updated_at", row["created_at"])
    return row


def insert_image(
    server: RunningServer,
    *,
    tags: Iterable[str] = (),
    properties: Mapping[str, str] | None = None,
    **columns: Any,
) -> str:
    """Insert one image row (plus tags and properties) and return its id.

    Unset columns take the values a fresh `POST /v2/images` gives; `created_at`
    defaults to now and `updated_at` to `created_at`.
    """
    row = _image_row(columns)
    with _transaction(server) as connection:
        connection.execute(sa.insert(images).values(**row))
        tag_rows = [{"image_id": row["id"], "value": tag} for tag in tags]
        if tag_rows:
            connection.execute(sa.insert(image_tags), tag_rows)
        property_rows = [
            {"image_id": row["id"], "name": name, "value": value}
            for name, value in (properties or {}).items()
        ]
        if property_rows:
            connection.execute(sa.insert(image_properties), property_rows)
    image_id: str = row["id"]
    return image_id


def insert_images(server: RunningServer, rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Insert many image rows in one statement (see `insert_image`); their ids."""
    complete = [_image_row(columns) for columns in rows]
    keys = {key for row in complete for key in row}
    for row in complete:  # one executemany needs the same keys in every row
        for key in keys:
            row.setdefault(key, None)
    with _transaction(server) as connection:
        connection.execute(sa.insert(images), complete)
    return [row["id"] for row in complete]


def delete_images(server: RunningServer, image_ids: Iterable[str]) -> None:
    """Remove seeded rows (and their tags, properties and members) again."""
    ids = list(image_ids)
    with _transaction(server) as connection:
        for child in (image_tags, image_properties, image_members):
            connection.execute(sa.delete(child).where(child.c.image_id.in_(ids)))
        connection.execute(sa.delete(images).where(images.c.id.in_(ids)))


def add_member(server: RunningServer, image_id: str, member: str, status: str = "accepted") -> None:
    """Share an image with a project, as the (future) members API will."""
    now = _now()
    with _transaction(server) as connection:
        connection.execute(
            sa.insert(image_members).values(
                image_id=image_id, member=member, status=status, created_at=now, updated_at=now
            )
        )
