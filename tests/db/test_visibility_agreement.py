"""House rule 7: the visibility rules in Python and their SQL twins agree.

`skylens.domain.access.is_visible` and `is_listed` judge one image in memory;
`skylens.db.visibility.visible`, `listed` and `listed_as` judge rows in a WHERE clause. Over
every combination of caller, image and list options, both pick the same images,
on a real SQLite file and on the real PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from skylens.db.engine import create_engine, upgrade
from skylens.db.repository import SqlImageRepository
from skylens.db.tables import image_members, images
from skylens.db.visibility import listed, listed_as, visible
from skylens.domain.access import RequestContext, is_listed, is_visible
from skylens.domain.images import Image, ImageStatus, MemberStatus, Visibility
from tests.support.servers import postgres_database

NOW = dt.datetime(2026, 1, 1)
OWNER = "owner"
# Every image is shared with these projects, each in its own member status.
MEMBERS = {
    "pending-member": MemberStatus.PENDING,
    "accepted-member": MemberStatus.ACCEPTED,
    "rejected-member": MemberStatus.REJECTED,
}
# The owner is an accepted member too (Glance lets an owner add its own project).
MEMBERSHIPS = {**MEMBERS, OWNER: MemberStatus.ACCEPTED}

# The image side of the matrix: every visibility, with and without an owner.
IMAGES = tuple(
    Image(
        id=f"{visibility.value}-{owner or 'no-owner'}",
        owner=owner,
        status=ImageStatus.ACTIVE,
        visibility=visibility,
        created_at=NOW,
        updated_at=NOW,
    )
    for visibility, owner in itertools.product(Visibility, (OWNER, None))
)

# The caller side: the owner, a member in each status, a stranger and a context
# without a project; each as a plain reader and as an admin.
CALLERS = [
    pytest.param(
        RequestContext.create(project, "user", roles),
        id=f"{roles[0]}-of-{project or 'no-project'}",
    )
    for project, roles in itertools.product(
        (OWNER, *MEMBERS, "stranger", None), (["reader"], ["admin"])
    )
]
MEMBER_STATUS_FILTERS = [None, *MemberStatus]


def membership(image: Image, context: RequestContext) -> MemberStatus | None:
    """The caller project's member status on `image`, as the database holds it."""
    return MEMBERSHIPS.get(context.project_id or "")


@contextlib.contextmanager
def throwaway_database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a fresh, empty database on `backend`."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'agreement.db'}"
    else:
        with postgres_database(f"skylens_agreement_{os.getpid()}") as url:
            yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    """A migrated database on each backend holding IMAGES and their MEMBERSHIPS."""
    with throwaway_database(request.param, tmp_path_factory.mktemp("agreement")) as url:
        engine = create_engine(url, pool_size=1)
        try:
            upgrade(engine)
            repository = SqlImageRepository(engine)
            for image in IMAGES:
                repository.add(image)
            with engine.begin() as connection:
                connection.execute(
                    sa.insert(image_members),
                    [
                        {"image_id": image.id, "member": project, "status": status.value,
                         "created_at": NOW, "updated_at": NOW}
                        for image in IMAGES
                        for project, status in MEMBERSHIPS.items()
                    ],
                )  # fmt: skip
            yield engine
        finally:
            engine.dispose()


def selected(engine: sa.Engine, condition: sa.ColumnElement[bool]) -> set[str]:
    """The ids of the image rows `condition` admits in a WHERE clause."""
    with engine.connect() as connection:
        return set(connection.execute(sa.select(images.c.id).where(condition)).scalars())


def test_the_matrix_holds_every_image(engine: sa.Engine) -> None:
    assert selected(engine, sa.true()) == {image.id for image in IMAGES}
    assert len(IMAGES) == 8


@pytest.mark.parametrize("context", CALLERS)
def test_visible_agrees_with_is_visible(engine: sa.Engine, context: RequestContext) -> None:
    expected = {
        image.id for image in IMAGES if is_visible(image, context, membership(image, context))
    }

    assert selected(engine, visible(context)) == expected


@pytest.mark.parametrize("visibility_filter", [None, "all", *Visibility])
@pytest.mark.parametrize("member_status", MEMBER_STATUS_FILTERS)
@pytest.mark.parametrize("context", CALLERS)
def test_listed_agrees_with_is_listed(
    engine: sa.Engine,
    context: RequestContext,
    member_status: MemberStatus | None,
    visibility_filter: str | None,
) -> None:
    """`listed` without a visibility filter, with `all` and with each visibility
    (the statement's `visibility = ...` condition added); with each visibility
    `listed_as` too, in one branch or in two, which never both admit a row."""
    given = visibility_filter is not None
    shown = None if visibility_filter in (None, "all") else Visibility(visibility_filter)
    expected = {
        image.id
        for image in IMAGES
        if shown in (None, image.visibility)
        and is_listed(image, context, membership(image, context), member_status, given)
    }
    of_shown = sa.true() if shown is None else images.c.visibility == shown.value

    assert selected(engine, sa.and_(of_shown, listed(context, member_status, given))) == expected
    in_branches = (
        []
        if shown is None
        else [listed_as(context, shown, member_status, branches=two) for two in (False, True)]
    )
    for conditions in in_branches:
        found = [selected(engine, sa.and_(of_shown, condition)) for condition in conditions]
        assert set().union(*found) == expected
        assert sum(len(ids) for ids in found) == len(expected), "a row in two branches"
