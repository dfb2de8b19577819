"""House rule 7 for the IMS profile: `__imagetype` in Python and in SQL agree.

`skylens.domain.ims.image_type` types one image in memory; `skylens.db.ims.of_type`
selects the rows of a type in a WHERE clause. Over every visibility, with and
without members (in each member status), both pick the same images, on a real
SQLite file and on the real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from skylens.db.engine import create_engine, upgrade
from skylens.db.ims import of_type
from skylens.db.repository import SqlImageRepository
from skylens.db.tables import image_members, images
from skylens.domain.images import Image, ImageStatus, MemberStatus, Visibility
from skylens.domain.ims import ImageType, image_type
from tests.db.test_visibility_agreement import throwaway_database

NOW = dt.datetime(2026, 1, 1)
# None: the image has no member; else its one member's status.
MEMBERSHIPS = (None, *MemberStatus)
CASES = {
    f"{visibility.value}-{membership or 'alone'}": (visibility, membership)
    for visibility, membership in itertools.product(Visibility, MEMBERSHIPS)
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    with throwaway_database(request.param, tmp_path_factory.mktemp("image-type")) as url:
        engine = create_engine(url, pool_size=1)
        try:
            upgrade(engine)
            repository = SqlImageRepository(engine)
            for image_id, (visibility, membership) in CASES.items():
                repository.add(_image(image_id, visibility))
                if membership is not None:
                    with engine.begin() as connection:
                        connection.execute(
                            sa.insert(image_members).values(
                                image_id=image_id, member="member", status=membership.value,
                                created_at=NOW, updated_at=NOW,
                            )
                        )  # fmt: skip
            yield engine
        finally:
            engine.dispose()


def _image(image_id: str, visibility: Visibility) -> Image:
    return Image(
        id=image_id,
        owner="owner",
        status=ImageStatus.ACTIVE,
        visibility=visibility,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize("wanted", list(ImageType))
def test_of_type_agrees_with_image_type(engine: sa.Engine, wanted: ImageType) -> None:
    expected = {
        image_id
        for image_id, (visibility, membership) in CASES.items()
        if image_type(_image(image_id, visibility), membership is not None) is wanted
    }
    with engine.connect() as connection:
        found = set(connection.execute(sa.select(images.c.id).where(of_type(wanted))).scalars())

    assert found == expected
    assert found  # every type occurs in the matrix


def test_shared_out_names_the_images_with_members(engine: sa.Engine) -> None:
    expected = {image_id for image_id, (_, membership) in CASES.items() if membership is not None}

    assert SqlImageRepository(engine).shared_out(list(CASES)) == expected
