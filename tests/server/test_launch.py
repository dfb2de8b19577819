"""How `skylens serve` starts uvicorn: its protocol when uvicorn is what it was written
for, stock uvicorn with one warning when not, and the `fast_paths` switch."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from skylens.asgi_extensions import READ_INTO, ZERO_COPY_SEND
from skylens.server import compat
from skylens.server.options import (
    ANSWERED_PAST_CAP,
    RESERVED_DESCRIPTORS,
    ServerOptions,
    connection_cap,
)
from skylens.server.protocol import GlanceHttpToolsProtocol
from tests.support.raw_http import closed_by_server, connection, send_until_answered
from tests.support.servers import dedicated_server
from tests.support.uvicorn_thread import uvicorn_thread

OCTET = {"Content-Type": "application/octet-stream"}

# Loaded by every Python process started with it on PYTHONPATH (the server and its
# workers): uvicorn as 0.40 and older was, without the method the protocol wraps.
OLD_UVICORN = """
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
del HttpToolsProtocol._start_asgi_task
"""


def test_the_installed_uvicorn_has_what_the_protocol_uses() -> None:
    assert compat.mismatches() == []
    assert compat.version().startswith(f"{compat.TESTED}.")


def test_a_missing_internal_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from uvicorn.protocols.http import httptools_impl

    def on_url(self: Any, url: bytes, extra: int) -> None: ...

    monkeypatch.delattr(httptools_impl.HttpToolsProtocol, "_start_asgi_task")
    monkeypatch.setattr(httptools_impl.HttpToolsProtocol, "on_url", on_url)

    assert compat.mismatches() == [
        "HttpToolsProtocol.on_url('self', 'url', 'extra') is not on_url('self', 'url')",
        "HttpToolsProtocol._start_asgi_task is missing",
    ]


def round_trip(url: str) -> tuple[int, int, bool]:
    """Upload 3 MiB and download it: the two statuses and whether the bytes came back."""
    data = os.urandom(3 << 20)
    with httpx.Client(base_url=url, timeout=60) as client:
        image = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
        path = f"/v2/images/{image.json()['id']}/file"
        upload = client.put(path, content=data, headers=OCTET)
        download = client.get(path)
    same = hashlib.sha256(download.content).digest() == hashlib.sha256(data).digest()
    return upload.status_code, download.status_code, same


def test_an_unexpected_uvicorn_falls_back_to_stock_uvicorn_with_one_warning(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(OLD_UVICORN)
    env = {"PYTHONPATH": str(site)}
    with dedicated_server(tmp_path / "data", "sqlite", extra_env=env) as server:
        assert round_trip(server.url) == (204, 200, True)
        unknown_method = httpx.request("FOO", f"{server.url}/v2/images")
        log = server.log.read_text()
        with connection(server.port) as sock:  # uvicorn's own bound on heads (h11's) holds
            start = b"GET /v2/images HTTP/1.1\r\nHost: localhost\r\nX-Endless: "
            send_until_answered(sock, start, b"a" * 65536, most=32 << 20)
            assert closed_by_server(sock)

    assert unknown_method.status_code == 501
    warnings = [line for line in log.splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1, log
    assert "HttpToolsProtocol._start_asgi_task is missing" in warnings[0]
    assert "Serving with stock uvicorn (h11)" in warnings[0]
    assert "stock uvicorn h11 protocol" in log


@pytest.mark.parametrize("fast_paths", ["true", "false"])
def test_fast_paths_can_be_switched_off(tmp_path: Path, fast_paths: str) -> None:
    env = {"SKYLENS_SERVER_FAST_PATHS": fast_paths}
    with dedicated_server(tmp_path, "sqlite", extra_env=env) as server:
        assert round_trip(server.url) == (204, 200, True)
        log = server.log.read_text()

    assert f"fast paths {'on' if fast_paths == 'true' else 'off'}" in log
    assert "warning" not in log.lower()


@pytest.mark.parametrize("fast_paths", [True, False])
def test_the_switch_decides_which_extensions_requests_see(fast_paths: bool) -> None:
    seen: list[set[str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(set(scope.get("extensions") or {}))
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    protocol = functools.partial(
        GlanceHttpToolsProtocol, options=ServerOptions(fast_paths=fast_paths)
    )
    with uvicorn_thread(app, protocol) as server:  # type: ignore[arg-type]
        assert httpx.put(server.url, content=b"x" * 1000).status_code == 204

    expected = {READ_INTO, ZERO_COPY_SEND} if fast_paths else set()
    assert seen == [expected]


@pytest.mark.parametrize(
    ("configured", "descriptors", "cap"),
    [(0, 1024, 1024 - RESERVED_DESCRIPTORS - ANSWERED_PAST_CAP), (0, 65536, 1000), (50, 1024, 50)],
)
def test_the_connection_cap_stays_under_the_descriptor_limit(
    configured: int, descriptors: int, cap: int
) -> None:
    assert connection_cap(configured, descriptors) == cap


def test_a_cap_over_the_descriptor_limit_is_refused_at_start(tmp_path: Path) -> None:
    env = {"SKYLENS_SERVER_MAX_CONNECTIONS": "10000000"}
    with (
        pytest.raises(RuntimeError, match=r"invalid value for server.max_connections"),
        dedicated_server(tmp_path, "sqlite", extra_env=env),
    ):
        pass
