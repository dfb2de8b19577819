"""How long the database takes to plan and run one list statement as its filters grow.

Seeds 19 images (each with a few tags and properties) into a fresh database, then
builds the statement the repository runs for `GET /v2/images` with n tags, n
property filters, or n sort keys after a marker, and prints PostgreSQL's planning
and execution times (EXPLAIN ANALYZE) or SQLite's run time. The API refuses more
than `images.list_tags_max` tags (and so on); the repository is asked directly
here to show how the statement's cost grows with n.

    .venv/bin/python -m bench.list_plans                       # PostgreSQL
    .venv/bin/python -m bench.list_plans --backend sqlite
    PYTHONPATH=/path/to/other/src .venv/bin/python -m bench.list_plans   # another tree
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from skylens.db.engine import create_engine, upgrade
from skylens.db.repository import SqlImageRepository
from skylens.db.tables import image_properties, image_tags, images
from skylens.domain.access import RequestContext
from skylens.domain.listing import ListQuery, SortDirection, SortKey, complete_sort

ADMIN = RequestContext.create("bench", "bench", ["admin", "member", "reader"])
IMAGES = 19


def _seed(engine: sa.Engine) -> str:
    now = dt.datetime(2024, 1, 1)
    ids = [str(uuid.uuid4()) for _ in range(IMAGES)]
    rows = [
        {
            "id": image_id,
            "name": f"image-{index % 5}",
            "status": "active",
            "visibility": "public",
            "protected": False,
            "os_hidden": False,
            "owner": "bench",
            "min_ram": 0,
            "min_disk": 0,
            "size": index * 10,
            "created_at": now + dt.timedelta(seconds=index),
            "updated_at": now,
        }
        for index, image_id in enumerate(ids)
    ]
    with engine.begin() as connection:
        connection.execute(images.insert(), rows)
        connection.execute(
            image_tags.insert(),
            [{"image_id": i, "value": f"tag-{n}"} for i in ids for n in range(3)],
        )
        connection.execute(
            image_properties.insert(),
            [{"image_id": i, "name": f"key-{n}", "value": "v"} for i in ids for n in range(3)],
        )
    return ids[IMAGES // 2]


def _statement(engine: sa.Engine, query: ListQuery) -> tuple[str, Any]:
    executed: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        executed.append((args[2], args[3]))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        SqlImageRepository(engine).list(ADMIN, query)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    return executed[-1]


def _measure(engine: sa.Engine, query: ListQuery) -> str:
    statement, parameters = _statement(engine, query)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            plan = connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, SUMMARY) {statement}", parameters
            ).scalars()
            times = [line for line in plan if line.startswith(("Planning Time", "Execution Time"))]
            return ", ".join(times)
        started = time.perf_counter()
        connection.exec_driver_sql(statement, parameters).all()
        return f"Run time: {(time.perf_counter() - started) * 1000:.3f} ms"


def _queries(n: int, marker: str) -> dict[str, ListQuery]:
    sort = (SortKey("name", SortDirection.ASC),) * n
    return {
        "tags": ListQuery(limit=25, sort=complete_sort(()), tags=_tags(n)),
        "properties": ListQuery(
            limit=25,
            sort=complete_sort(()),
            properties={f"key-{index}": "v" for index in range(n)},
        ),
        "repeated sort keys, marker": ListQuery(
            limit=25, marker=marker, sort=complete_sort(sort, SortDirection.ASC)
        ),
    }


def _tags(n: int) -> tuple[str, ...]:
    """Tags every image has, then ones none has (as for the properties `key-<n>`):
    no image matches more than three."""
    return tuple(f"tag-{index}" for index in range(n))


@contextlib.contextmanager
def _engine(backend: str) -> Iterator[sa.Engine]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as scratch:
            engine = create_engine(f"sqlite:///{Path(scratch) / 'plans.db'}", pool_size=1)
            yield engine
            engine.dispose()
        return
    from tests.support.servers import postgres_database

    with postgres_database(f"skylens_bench_plans_{uuid.uuid4().hex[:8]}") as url:
        engine = create_engine(url, pool_size=1)
        yield engine
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--sizes", default="10,20,50,100")
    args = parser.parse_args()
    with _engine(args.backend) as engine:
        upgrade(engine)
        marker = _seed(engine)
        for n in (int(size) for size in args.sizes.split(",")):
            for what, query in _queries(n, marker).items():
                print(f"{n:>4} {what:<26} {_measure(engine, query)}", flush=True)


if __name__ == "__main__":
    main()
