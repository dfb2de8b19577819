"""Fixtures: real Skylens servers on SQLite and PostgreSQL, identities, clients.

Every API test runs once per backend. Each test works in fresh projects, so the
tests share one server per backend (per xdist worker) without seeing each
other's images.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.identities import Identity, admin_of, member_of, new_project, reader_of
from tests.support.keystone import keystone_fixture  # noqa: F401
from tests.support.locations import (  # noqa: F401
    postgresql_locations_server,
    sqlite_locations_server,
)
from tests.support.servers import (
    RunningServer,
    file_stores_config,
    postgres_database,
    skylens_server,
    stores_config,
)
from tests.support.swift import RunningSwift, swift_fixture  # noqa: F401
from tests.support.web_download import (  # noqa: F401
    postgresql_web_server,
    sqlite_web_server,
    web_files,
)

BACKENDS = ("sqlite", "postgresql")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


# The shared servers keep data in two file stores, `local` (the default) and `cheap`
# (tests.support.servers.file_stores_config): most tests need no Swift, and a run of
# them starts none. Tests of the object stores ask for `object_store_server`, whose
# servers also have `swift` and `s3` on the real Swift server (`stores_config`).


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("sqlite-server")
    with _sqlite_server(data_dir, file_stores_config(data_dir)) as server:
        yield server


@pytest.fixture(scope="session")
def postgresql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("postgresql-server")
    with _postgresql_server(data_dir, file_stores_config(data_dir), "skylens_test") as server:
        yield server


@pytest.fixture(scope="session")
def sqlite_object_store_server(
    tmp_path_factory: pytest.TempPathFactory, swift: RunningSwift
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("sqlite-object-store-server")
    with _sqlite_server(data_dir, stores_config(swift, data_dir)) as server:
        yield server


@pytest.fixture(scope="session")
def postgresql_object_store_server(
    tmp_path_factory: pytest.TempPathFactory, swift: RunningSwift
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("postgresql-object-store-server")
    config = stores_config(swift, data_dir)
    with _postgresql_server(data_dir, config, "skylens_objects") as server:
        yield server


@contextlib.contextmanager
def _sqlite_server(data_dir: Path, config: Path) -> Iterator[RunningServer]:
    url = f"sqlite:///{data_dir / 'skylens.db'}"
    with skylens_server(data_dir, url, "sqlite", extra_args=("--config", str(config))) as server:
        yield server


@contextlib.contextmanager
def _postgresql_server(data_dir: Path, config: Path, database: str) -> Iterator[RunningServer]:
    with (
        # The pid keeps concurrent pytest runs on one machine off each other's database.
        postgres_database(f"{database}_{_worker()}_{os.getpid()}") as url,
        skylens_server(data_dir, url, "postgresql", extra_args=("--config", str(config))) as server,
    ):
        yield server


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest) -> RunningServer:
    """The running service, once on each database backend."""
    result: RunningServer = request.getfixturevalue(f"{request.param}_server")
    return result


@pytest.fixture(params=BACKENDS)
def object_store_server(request: pytest.FixtureRequest) -> RunningServer:
    """The running service with the `swift` and `s3` stores too, once on each backend.
    A module of object-store tests makes it its `server`."""
    result: RunningServer = request.getfixturevalue(f"{request.param}_object_store_server")
    return result


@pytest.fixture(params=BACKENDS)
def web_server(request: pytest.FixtureRequest) -> RunningServer:
    """The running service allowed to web-download from `web_files`, once on each
    backend. A module of web-download tests makes it its `server`."""
    result: RunningServer = request.getfixturevalue(f"{request.param}_web_server")
    return result


@pytest.fixture(params=BACKENDS)
def locations_server(request: pytest.FixtureRequest) -> RunningServer:
    """The running service with locations shown, the locations API and an http store
    (tests.support.locations), once on each backend."""
    result: RunningServer = request.getfixturevalue(f"{request.param}_locations_server")
    return result


@pytest.fixture
def project() -> str:
    return new_project()


@pytest.fixture
def other_project() -> str:
    return new_project()


@pytest.fixture
def member(project: str) -> Identity:
    return member_of(project)


@pytest.fixture
def reader(project: str) -> Identity:
    return reader_of(project)


@pytest.fixture
def admin() -> Identity:
    return admin_of(new_project())


@pytest.fixture
def stranger(other_project: str) -> Identity:
    return member_of(other_project)


ClientFactory = Callable[..., httpx.Client]


@pytest.fixture
def http(server: RunningServer) -> Iterator[ClientFactory]:
    """Raw HTTP clients acting as an identity: `http(member)`; JSON errors by default."""
    clients: list[httpx.Client] = []

    def make(
        identity: Identity | None = None, accept: str | None = "application/json"
    ) -> httpx.Client:
        headers = dict(identity.headers) if identity else {}
        if accept is not None:
            headers["Accept"] = accept
        # Plain HTTP on loopback: not loading a TLS trust store makes a client ~10x cheaper.
        client = httpx.Client(
            base_url=server.url,
            headers=headers,
            timeout=30,
            verify=False,  # noqa: S501
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def api(http: ClientFactory, member: Identity) -> httpx.Client:
    """A raw HTTP client acting as a member of `project`."""
    return http(member)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "postgresql" in item.name:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
