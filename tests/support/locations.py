"""Fixtures for image locations through the real server: on each backend, a server
with locations shown (`show_multiple_locations`, `show_image_direct_url`), the
locations API (2.17) and an http store `web` whose URLs may be on the loopback web
server of files (tests.support.web_source), which the import filter allows
explicitly (`127.0.0.1` and its port), as a test deployment would say so.
Registered in tests/conftest.py; a module makes `locations_server` its `server`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.support.servers import RunningServer, dedicated_server
from tests.support.web_download import web_download_config
from tests.support.web_source import WebSource

LOCATION_OPTIONS = [
    "",
    "[images]",
    "show_multiple_locations = true",
    "show_image_direct_url = true",
    "locations_api = true",
    "",
    "[stores.web]",
    'kind = "http"',
    'description = "Images at http(s) URLs"',
    "weight = 1",
]


@contextlib.contextmanager
def locations_server_on(
    factory: pytest.TempPathFactory, backend: str, files: WebSource, *extra: str
) -> Iterator[RunningServer]:
    """A server of the module's own: locations on, `extra` config lines added."""
    data_dir = factory.mktemp(f"{backend}-locations-server")
    config = web_download_config(data_dir, files.port)
    lines = [*LOCATION_OPTIONS, *extra]
    config.write_text(config.read_text() + "\n".join(lines) + "\n")
    with dedicated_server(data_dir, backend, extra_args=("--config", str(config))) as server:
        yield server


@pytest.fixture(scope="session")
def sqlite_locations_server(
    tmp_path_factory: pytest.TempPathFactory, web_files: WebSource
) -> Iterator[RunningServer]:
    with locations_server_on(tmp_path_factory, "sqlite", web_files) as server:
        yield server


@pytest.fixture(scope="session")
def postgresql_locations_server(
    tmp_path_factory: pytest.TempPathFactory, web_files: WebSource
) -> Iterator[RunningServer]:
    with locations_server_on(tmp_path_factory, "postgresql", web_files) as server:
        yield server
