"""House rule 7: who may see a metadef namespace, in Python and in SQL, agree.

`skylens.domain.metadefs.is_namespace_visible` judges one namespace in memory;
`skylens.db.metadefs.visible_namespaces` judges rows in a WHERE clause (the
namespace list). Over every caller and every namespace (each visibility, owned by
the caller, by another project or by nobody), both pick the same namespaces, on a
real SQLite file and on the real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from skylens.db.engine import create_engine, upgrade
from skylens.db.metadefs import SqlMetadefRepository, visible_namespaces
from skylens.db.tables import metadef_namespaces
from skylens.domain.access import RequestContext
from skylens.domain.metadefs import (
    Namespace,
    NamespaceContents,
    NamespaceVisibility,
    is_namespace_visible,
)
from tests.db.test_visibility_agreement import throwaway_database

NOW = dt.datetime(2026, 1, 1)
OWNER = "owner"

NAMESPACES = tuple(
    Namespace(
        namespace=f"{visibility.value}-{owner or 'no-owner'}",
        display_name=None,
        description=None,
        visibility=visibility,
        protected=False,
        owner=owner,
        created_at=NOW,
        updated_at=NOW,
    )
    for visibility, owner in itertools.product(NamespaceVisibility, (OWNER, "other", None))
)

# The owner's project, a stranger's and no project; as reader, member, admin, and none.
CALLERS = [
    pytest.param(
        RequestContext.create(project, "user", roles),
        id=f"{'+'.join(roles) or 'no-roles'}-of-{project or 'no-project'}",
    )
    for project, roles in itertools.product(
        (OWNER, "stranger", None), (["reader"], ["member"], ["admin"], [])
    )
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    """A migrated database on each backend holding NAMESPACES (and nothing else)."""
    directory = tmp_path_factory.mktemp("metadef-agreement")
    with throwaway_database(request.param, directory) as url:
        engine = create_engine(url, pool_size=1)
        try:
            upgrade(engine)
            repository = SqlMetadefRepository(engine)
            repository.unload()  # no catalogue: only the matrix
            for namespace in NAMESPACES:
                repository.add_namespace(namespace, NamespaceContents())
            yield engine
        finally:
            engine.dispose()


def selected(engine: sa.Engine, condition: sa.ColumnElement[bool]) -> set[str]:
    with engine.connect() as connection:
        statement = sa.select(metadef_namespaces.c.namespace).where(condition)
        return set(connection.execute(statement).scalars())


def test_the_matrix_holds_every_namespace(engine: sa.Engine) -> None:
    assert selected(engine, sa.true()) == {namespace.namespace for namespace in NAMESPACES}
    assert len(NAMESPACES) == 6


@pytest.mark.parametrize("context", CALLERS)
def test_visible_namespaces_agrees_with_is_namespace_visible(
    engine: sa.Engine, context: RequestContext
) -> None:
    expected = {n.namespace for n in NAMESPACES if is_namespace_visible(context, n)}

    assert selected(engine, visible_namespaces(context)) == expected
