"""The route table of an app built as `skylens serve` builds it, read from the app itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.routing import Route

from skylens.api.app import create_app
from skylens.api.compute_v21.routes import ComputeMount
from skylens.api.routing import RouteGroup
from skylens.config import load
from skylens.db.engine import create_engine

Surface = Literal["image", "compute"]


@dataclasses.dataclass(frozen=True)
class ServedRoute:
    surface: Surface  # which API answers it, with its own error bodies
    route: Route


def served_routes(data_dir: Path, environ: Mapping[str, str] | None = None) -> list[ServedRoute]:
    """Every route of the app that `skylens serve` with `environ` (SKYLENS_* variables)
    builds on an SQLite file in `data_dir`."""
    settings = load(
        environ=dict(environ or {}),
        overrides={"data_dir": str(data_dir), "database.url": f"sqlite:///{data_dir}/routes.db"},
    )
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        app: Any = create_app(settings, engine)
    finally:
        engine.dispose()
    while not isinstance(app, ComputeMount):  # through the pure-ASGI middleware
        app = app.app
    compute: Any = app.compute
    while not isinstance(app, Starlette):
        app = app.app
    while not isinstance(compute, Starlette):
        compute = compute.app
    surfaces: list[tuple[Surface, Starlette]] = [("image", app), ("compute", compute)]
    served = []
    for surface, starlette in surfaces:
        for entry in starlette.routes:
            for route in entry.routes if isinstance(entry, RouteGroup) else [entry]:
                assert isinstance(route, Route), route
                served.append(ServedRoute(surface, route))
    return served
