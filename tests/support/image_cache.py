"""Servers with an image cache (default store in the test Swift), and what tests of
the cache ask them."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.identities import Identity
from tests.support.servers import (
    RunningServer,
    postgres_database,
    skylens_server,
    stores_config,
)
from tests.support.swift import RunningSwift

OCTET = {"Content-Type": "application/octet-stream"}
# Every cache route, with the policy rule Glance 33 checks on it.
CACHE_ROUTES = [
    ("GET", "/v2/cache", "cache_list"),
    ("DELETE", "/v2/cache", "cache_delete"),
    ("PUT", "/v2/cache/{id}", "cache_image"),
    ("DELETE", "/v2/cache/{id}", "cache_delete"),
    ("GET", "/v2/cache/nodes/{id}", "list_cached_nodes"),
    ("POST", "/v2/cache/clean", "cache_clean"),
    ("POST", "/v2/cache/prune", "cache_prune"),
]


@contextlib.contextmanager
def cache_server(
    swift: RunningSwift,
    data_dir: Path,
    backend: str,
    database_url: str | None = None,
    node: str = "",
    stores: Path | None = None,
    max_size: int = 1 << 30,
) -> Iterator[RunningServer]:
    """A server whose default store is Swift, with a cache in `data_dir/cache`; with
    `stores`, the stores (the containers) another server's config names."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if stores is None:
        stores = data_dir / "stores.toml"
        if not stores.exists():
            stores = stores_config(swift, data_dir, default_store="swift")
    config = data_dir / "skylens.toml"
    config.write_text(
        stores.read_text() + f'\n[image_cache]\ndir = "{data_dir / "cache"}"\n'
        f'node_reference = "{node}"\npoll_seconds = 0.5\nmax_size = {max_size}\n'
    )
    with contextlib.ExitStack() as stack:
        if database_url is None:
            if backend == "sqlite":
                database_url = f"sqlite:///{data_dir / 'skylens.db'}"
            else:
                name = f"skylens_cache_{uuid.uuid4().hex[:12]}"
                database_url = stack.enter_context(postgres_database(name))
        yield stack.enter_context(
            skylens_server(data_dir, database_url, backend, extra_args=("--config", str(config)))
        )


def client(server: RunningServer, identity: Identity) -> httpx.Client:
    headers = {**identity.headers, "Accept": "application/json"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def cache_dir(server: RunningServer) -> Path:
    return server.log.parent / "cache"


def active_image(api: httpx.Client, data: bytes, visibility: str = "private") -> str:
    body = {"disk_format": "raw", "container_format": "bare", "visibility": visibility}
    image_id: str = api.post("/v2/images", json=body).json()["id"]
    response = api.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)
    assert response.status_code == 204, response.text
    return image_id


def cached(api: httpx.Client, image_id: str) -> dict[str, object] | None:
    for entry in api.get("/v2/cache").json()["cached_images"]:
        if entry["image_id"] == image_id:
            return dict(entry)
    return None


def wait_until_cached(api: httpx.Client, image_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        entry = cached(api, image_id)
        if entry is not None:
            return entry
        time.sleep(0.2)
    raise AssertionError(f"image {image_id} never cached")
