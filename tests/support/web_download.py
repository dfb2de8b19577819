"""Fixtures for web-download through the real server: a loopback web server of
files (tests.support.web_source) and, on each backend, a server whose import filter
allows exactly that web server (`127.0.0.1` and its port), as a test deployment
would say so explicitly. Registered in tests/conftest.py; a module makes
`web_server` its `server`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import RunningServer, dedicated_server, file_stores_config
from tests.support.web_source import WebSource, web_source

# Short, so that the tests of a stalled source end soon; resumes after drops are at once.
READ_TIMEOUT_SECONDS = 2
MAX_RESUMES = 2


@pytest.fixture(scope="session")
def web_files() -> Iterator[WebSource]:
    """The loopback web server that web-download fetches from (`files[name]`)."""
    with web_source() as source:
        yield source


def web_download_config(data_dir: Path, port: int) -> Path:
    """The shared servers' stores, and web-download allowed from 127.0.0.1:`port`."""
    config = file_stores_config(data_dir)
    lines = [
        "",
        "[import_filtering]",
        'allowed_hosts = ["127.0.0.1"]',
        f"allowed_ports = [{port}]",
        "",
        "[web_download]",
        f"read_timeout_seconds = {READ_TIMEOUT_SECONDS}",
        f"max_resumes = {MAX_RESUMES}",
    ]
    config.write_text(config.read_text() + "\n".join(lines) + "\n")
    return config


@contextlib.contextmanager
def _web_server(
    factory: pytest.TempPathFactory, backend: str, files: WebSource
) -> Iterator[RunningServer]:
    data_dir = factory.mktemp(f"{backend}-web-server")
    config = web_download_config(data_dir, files.port)
    with dedicated_server(data_dir, backend, extra_args=("--config", str(config))) as server:
        yield server


@pytest.fixture(scope="session")
def sqlite_web_server(
    tmp_path_factory: pytest.TempPathFactory, web_files: WebSource
) -> Iterator[RunningServer]:
    with _web_server(tmp_path_factory, "sqlite", web_files) as server:
        yield server


@pytest.fixture(scope="session")
def postgresql_web_server(
    tmp_path_factory: pytest.TempPathFactory, web_files: WebSource
) -> Iterator[RunningServer]:
    with _web_server(tmp_path_factory, "postgresql", web_files) as server:
        yield server
