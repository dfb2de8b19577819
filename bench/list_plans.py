"""How long the database takes to plan and run one list statement as its filters grow,
and (`--images N`) the list statements of a seeded catalogue.

Seeds 19 images (each with a few tags and properties) into a fresh database, then
builds the statement the repository runs for `GET /v2/images` with n tags, n
property filters, or n sort keys after a marker, and prints PostgreSQL's planning
and execution times (EXPLAIN ANALYZE) or SQLite's run time. The API refuses more
than `images.list_tags_max` tags (and so on); the repository is asked directly
here to show how the statement's cost grows with n.

With `--images N`, seeds N images with `bench.seed` instead (plus a project that is
a member of three shared images, and one of none) and prints the same times for
the lists `bench.list_show` measures, for `visibility=shared` and `member_status`
lists, each also after a marker (its second page), run as the read pool runs them
(no JIT), best of three.

    .venv/bin/python -m bench.list_plans                       # PostgreSQL
    .venv/bin/python -m bench.list_plans --backend sqlite
    .venv/bin/python -m bench.list_plans --images 300000       # a seeded catalogue
    PYTHONPATH=/path/to/other/src .venv/bin/python -m bench.list_plans   # another tree
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.seed import ADMIN_PROJECT, MEMBER_PROJECT, seed
from skylens.db.engine import create_engine, upgrade
from skylens.db.repository import SqlImageRepository
from skylens.db.tables import image_members, image_properties, image_tags, images
from skylens.domain.access import RequestContext
from skylens.domain.images import MemberStatus, Visibility
from skylens.domain.listing import ListQuery, SortDirection, SortKey, complete_sort

ADMIN = RequestContext.create("bench", "bench", ["admin", "member", "reader"])
IMAGES = 19
# With --images: a project that is a member of three shared images (accepted) and
# of a fourth (pending), and one that is a member of none and owns none.
FEW_PROJECT = "project-few-shares"
NO_PROJECT = "project-no-shares"


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


def _statement(
    engine: sa.Engine, query: ListQuery, context: RequestContext = ADMIN
) -> tuple[str, Any]:
    """The page's statement (the last the list runs) and its parameters."""
    executed: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        executed.append((args[2], args[3]))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        SqlImageRepository(engine).list(context, query)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    return executed[-1]


def _measure(
    engine: sa.Engine, query: ListQuery, context: RequestContext = ADMIN, *, runs: int = 1
) -> str:
    """PostgreSQL's planning and execution times (those of the run that executed
    fastest of `runs`), or SQLite's run time."""
    statement, parameters = _statement(engine, query, context)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            best: list[str] = []
            for _ in range(runs):
                plan = connection.exec_driver_sql(
                    f"EXPLAIN (ANALYZE, SUMMARY) {statement}", parameters
                ).scalars()
                times = [line for line in plan if line.startswith(("Planning", "Execution"))]
                if not best or _milliseconds(times[-1]) < _milliseconds(best[-1]):
                    best = times
            return ", ".join(best)
        started = time.perf_counter()
        connection.exec_driver_sql(statement, parameters).all()
        return f"Run time: {(time.perf_counter() - started) * 1000:.3f} ms"


def _milliseconds(line: str) -> float:
    return float(line.split()[-2])


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


def _seed_catalogue(engine: sa.Engine, count: int) -> None:
    seed(engine, count)
    with engine.begin() as connection:
        shared = connection.execute(
            sa.select(images.c.id, images.c.created_at)
            .where(images.c.visibility == "shared")
            .order_by(sa.func.md5(images.c.id))
            .limit(4)
        ).all()
        connection.execute(
            sa.insert(image_members),
            [
                {"image_id": image_id, "member": FEW_PROJECT, "status": status,
                 "created_at": created_at, "updated_at": created_at}
                for (image_id, created_at), status in zip(
                    shared, ("accepted", "accepted", "accepted", "pending"), strict=True
                )
            ],
        )  # fmt: skip
    # What autovacuum would do shortly after a bulk load; measure the steady state.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))


def _catalogue_queries() -> dict[str, tuple[RequestContext, ListQuery]]:
    admin = RequestContext.create(ADMIN_PROJECT, "bench", ["admin", "member", "reader"])
    member, few, none = (
        RequestContext.create(project, "bench", ["member", "reader"])
        for project in (MEMBER_PROJECT, FEW_PROJECT, NO_PROJECT)
    )
    newest = complete_sort(())
    by_name = complete_sort((SortKey("name", SortDirection.ASC),), SortDirection.ASC)
    shared = Visibility.SHARED
    return {
        "admin limit=25": (admin, ListQuery(limit=25, sort=newest)),
        "member limit=25": (member, ListQuery(limit=25, sort=newest)),
        "member limit=1000": (member, ListQuery(limit=1000, sort=newest)),
        "member sort=name:asc": (member, ListQuery(limit=25, sort=by_name)),
        "member os_distro=ubuntu": (
            member,
            ListQuery(limit=25, sort=newest, properties={"os_distro": "ubuntu"}),
        ),
        "member member_status=pending": (
            member,
            ListQuery(limit=25, sort=newest, member_status=MemberStatus.PENDING),
        ),
        "member member_status=all": (
            member,
            ListQuery(limit=25, sort=newest, member_status=None),
        ),
        "shared, admin": (admin, ListQuery(limit=25, sort=newest, visibility=shared)),
        "shared, member of many": (member, ListQuery(limit=25, sort=newest, visibility=shared)),
        "shared, many, name:asc": (member, ListQuery(limit=25, sort=by_name, visibility=shared)),
        "shared, many, pending": (
            member,
            ListQuery(limit=25, sort=newest, visibility=shared, member_status=MemberStatus.PENDING),
        ),
        "shared, many, limit=1000": (
            member,
            ListQuery(limit=1000, sort=newest, visibility=shared),
        ),
        "shared, member of 3": (few, ListQuery(limit=25, sort=newest, visibility=shared)),
        "shared, 3, status all": (
            few,
            ListQuery(limit=25, sort=newest, visibility=shared, member_status=None),
        ),
        "shared, member of none": (none, ListQuery(limit=25, sort=newest, visibility=shared)),
        "private, owner of none": (
            none,
            ListQuery(limit=25, sort=newest, visibility=Visibility.PRIVATE),
        ),
    }


def _without_jit(connection: Any, _record: Any) -> None:
    """As the read pool's connections (db/reads.py); committed, or the pool's
    rollback would undo it."""
    connection.execute("SET jit = off")
    connection.commit()


def _catalogue(engine: sa.Engine, count: int) -> None:
    _seed_catalogue(engine, count)
    sa.event.listen(engine, "connect", _without_jit)
    engine.dispose()
    for what, (context, query) in _catalogue_queries().items():
        print(f"{what:<30} {_measure(engine, query, context, runs=3)}", flush=True)
        page = SqlImageRepository(engine).list(context, query)
        if page.next_marker is not None and query.limit <= 25:
            second = dataclasses.replace(query, marker=page.next_marker)
            print(f"{'  its second page':<30} {_measure(engine, second, context, runs=3)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--sizes", default="10,20,50,100")
    parser.add_argument("--images", type=int, help="seed this many images; list them")
    args = parser.parse_args()
    with _engine(args.backend) as engine:
        upgrade(engine)
        if args.images:
            _catalogue(engine, args.images)
            return
        marker = _seed(engine)
        for n in (int(size) for size in args.sizes.split(",")):
            for what, query in _queries(n, marker).items():
                print(f"{n:>4} {what:<26} {_measure(engine, query)}", flush=True)


if __name__ == "__main__":
    main()
