"""Prometheus metrics: what every worker process counts, and `GET /metrics`.

Counted per request (from the access log's exchanges): requests and their
duration by method, route *template* (`/v2/images/{image_id}`, never a path with an
id in it; `unmatched` when no route matched) and status, the bytes received and
sent by route, and image data uploaded to and downloaded from each configured
store, with each upload's outcome. Counted by the services: uploads and tasks under
way, tasks ended by type and outcome, image cache hits and misses. Read from the
database pools (the engine's and, on PostgreSQL, the one show and list await):
connections checked out, and how many the pools may open.

Labels carry no project, user, image or token: the endpoint is public. A store
label is always a configured store's id, never a name a client sent.

`skylens serve` sets `PROMETHEUS_MULTIPROC_DIR` before its workers start (see
`skylens.cli.main`): each worker then writes its values to files there and a
scrape, served by whichever worker gets it (or by the `serve` process itself on
`server.metrics_port`, `MetricsServer`), adds up every worker's. The "under way"
gauges of a worker that died without a word (SIGKILL, OOM) are dropped at the next
scrape, so they never count work nobody does. Without it (an app built in a test's
process) the values live in this app's own registry.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import socket
import threading
import urllib.parse
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.requests import Request
from starlette.responses import Response

from skylens.api.components import Observers
from skylens.api.middleware import Exchange
from skylens.api.routing import PublicOperation, Resource
from skylens.config import ConfigError

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
# Image data takes minutes where metadata takes milliseconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class Connections(Protocol):
    """A pool of database connections, as the metrics see it."""

    @property
    def size(self) -> int:
        """The most connections it opens."""

    @property
    def in_use(self) -> int:
        """Its connections checked out."""


def _capacity(pool: sa.pool.QueuePool | None) -> int:
    """The most connections an engine's pool opens: its size and its overflow (which
    SQLAlchemy keeps to itself: `max_overflow` has no public accessor)."""
    return 0 if pool is None else pool.size() + pool._max_overflow


def _within(count: int, most: int) -> int:
    return min(max(count, 0), most)


class Metrics:
    """One app's metrics. `observe` is an access-log observer; `observers` the
    services' hooks; `watch_connections` follows the database connection pools."""

    def __init__(self) -> None:
        self._multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        self._engine_pool: sa.pool.QueuePool | None = None  # watch_connections'
        self._reads: Connections | None = None
        # Multiprocess values live in files, not in a registry: a fresh one collects
        # them at each scrape.
        own = None if self._multiprocess else CollectorRegistry()
        self._registry = own
        # `labels()` takes a lock and builds a key on every call; a request needs
        # the same few children over and over. Bounded like the children themselves:
        # the routes, the methods the server accepts and the statuses it answers.
        self._request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._route_children: dict[str, tuple[Any, Any]] = {}
        self._in_use = -1  # the in-use gauge's last value; none written yet
        request = ("method", "route", "status")
        self.requests = Counter(
            "skylens_http_requests", "HTTP requests answered", request, registry=own
        )
        self.duration = Histogram(
            "skylens_http_request_duration_seconds",
            "Time from a request's arrival to its last response byte",
            request,
            buckets=_BUCKETS,
            registry=own,
        )
        self.received = Counter(
            "skylens_http_received_bytes", "Request body bytes received", ["route"], registry=own
        )
        self.sent = Counter(
            "skylens_http_sent_bytes", "Response body bytes sent", ["route"], registry=own
        )
        self.uploads = Gauge(
            "skylens_uploads_in_flight",
            "Image data uploads being received",
            multiprocess_mode="livesum",
            registry=own,
        )
        self.uploaded = Counter(
            "skylens_image_uploaded_bytes",
            "Image data bytes stored by uploads, by store",
            ["store"],
            registry=own,
        )
        self.downloaded = Counter(
            "skylens_image_downloaded_bytes",
            "Image data bytes sent by downloads, by the store they came from",
            ["store"],
            registry=own,
        )
        self.uploads_ended = Counter(
            "skylens_uploads_ended",
            "Uploads ended, by store and outcome (success, refused: 4xx, failed: 5xx)",
            ["store", "outcome"],
            registry=own,
        )
        self.tasks = Counter(
            "skylens_tasks_ended", "Tasks run to their end", ["type", "outcome"], registry=own
        )
        self.tasks_running = Gauge(
            "skylens_tasks_in_flight",
            "Tasks (image imports) being run",
            multiprocess_mode="livesum",
            registry=own,
        )
        self.cache = Counter(
            "skylens_image_cache_lookups",
            "Downloads of images from stores without local files, by whether the node's "
            "image cache held them",
            ["result"],
            registry=own,
        )
        self.pool = Gauge(
            "skylens_database_connections_checked_out",
            "Database connections in use (checked out of the pools)",
            multiprocess_mode="livesum",
            registry=own,
        )
        self.pool_capacity = Gauge(
            "skylens_database_connections_max",
            "Database connections the pools may open at most",
            multiprocess_mode="livesum",
            registry=own,
        )

    def observe(self, exchange: Exchange) -> None:
        route = exchange.facts.route if exchange.facts and exchange.facts.route else UNMATCHED
        labels = (exchange.method, route, str(exchange.status))
        counted = self._request_children.get(labels)
        if counted is None:
            counted = (self.requests.labels(*labels), self.duration.labels(*labels))
            self._request_children[labels] = counted
        counted[0].inc()
        counted[1].observe(exchange.seconds)
        if exchange.bytes_in or exchange.bytes_out:
            received, sent = self._route_children.get(route) or self._bytes_children(route)
            if exchange.bytes_in:
                received.inc(exchange.bytes_in)
            if exchange.bytes_out:
                sent.inc(exchange.bytes_out)
        store = exchange.facts.store if exchange.facts else None
        if store is not None:
            self._image_data(exchange, store)
        if self._reads is not None:
            self.count_connections()  # the request's reads have given theirs back

    def _bytes_children(self, route: str) -> tuple[Any, Any]:
        children = (self.received.labels(route), self.sent.labels(route))
        self._route_children[route] = children
        return children

    def _image_data(self, exchange: Exchange, store: str) -> None:
        # Image data only: not the bytes of an upload that was not stored, nor an
        # error body sent instead of the data.
        status = exchange.status
        if exchange.method == "PUT":
            outcome = "success" if status < 400 else "refused" if status < 500 else "failed"
            self.uploads_ended.labels(store, outcome).inc()
            if outcome == "success":
                self.uploaded.labels(store).inc(exchange.bytes_in)
        elif status < 300 and exchange.bytes_out:
            self.downloaded.labels(store).inc(exchange.bytes_out)

    def observers(self) -> Observers:
        return Observers(
            uploads_under_way=self.uploads.set,
            task_outcomes=lambda kind, outcome: self.tasks.labels(kind, outcome).inc(),
            tasks_under_way=self.tasks_running.set,
            cache_lookups=lambda result: self.cache.labels(result).inc(),
        )

    def watch_connections(self, engine: sa.Engine, reads: Connections | None = None) -> None:
        """Follow the connections of `engine`'s pool and of `reads` (the pool show and
        list await on PostgreSQL): the most they may open, and how many are in use.

        Both figures come from the same pools, so in use never exceeds the most. The
        in-use gauge is set from the pools' own counts, not counted up and down (when
        the database goes away, connections that failed their ping are checked in
        without a checkout, and a count drifts below zero): at each of the engine's
        checkouts and checkins, at the end of each request (`reads` has no events; a
        request's reads are done by then) and before a scrape.
        """
        pool = engine.pool
        self._engine_pool = pool if isinstance(pool, sa.pool.QueuePool) else None
        self._reads = reads
        self.pool_capacity.set(_capacity(self._engine_pool) + (reads.size if reads else 0))
        self.count_connections()
        if self._engine_pool is None:
            return

        def checked_out(*_: object) -> None:
            self.count_connections()

        def checked_in(*_: object) -> None:
            # The pool counts the connection back in just after this event.
            self.count_connections(returning=1)

        sa.event.listen(engine, "checkout", checked_out)
        sa.event.listen(engine, "checkin", checked_in)

    def count_connections(self, returning: int = 0) -> None:
        """Set the in-use gauge from the watched pools, less `returning` connections
        the engine's pool is taking back: each pool's count kept within its size."""
        engine, reads = self._engine_pool, self._reads
        in_use = 0
        if engine is not None:
            in_use += _within(engine.checkedout() - returning, _capacity(engine))
        if reads is not None:
            in_use += _within(reads.in_use, reads.size)
        if in_use != self._in_use:  # asked after every request: write only a change
            self._in_use = in_use
            self.pool.set(in_use)

    def exposition(self) -> bytes:
        """The text a scrape gets (blocking: it reads every worker's files)."""
        if self._registry is None:
            return multiprocess_exposition()
        return generate_latest(self._registry)

    def resource(self, path: str) -> Resource:
        async def metrics(_request: Request) -> Response:
            self.count_connections()
            body = await asyncio.to_thread(self.exposition)
            # The classic text format (Prometheus 2 and 3 both read it).
            return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)

        operation = PublicOperation("GET", metrics, "Metrics in Prometheus' text format")
        return Resource(path, [operation], tag="service")


def multiprocess_exposition() -> bytes:
    """Every worker process's values, added up, from `PROMETHEUS_MULTIPROC_DIR`."""
    _forget_dead_workers(Path(os.environ[MULTIPROCESS_ENV]))
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def _forget_dead_workers(directory: Path) -> None:
    """Drop the "under way" gauges (`livesum`) of worker processes no longer alive:
    a worker killed mid-upload must not count that upload for ever. Their counters
    stay: what they counted happened."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MetricsServer:
    """`GET <path>` on a port of its own (`server.metrics_port`), answered by the
    `serve` process from a thread: every worker's values, whichever worker is busy.
    Any other path is 404."""

    def __init__(self, host: str, port: int, path: str) -> None:
        handler = _handler(path)
        server_class = _V6Server if ":" in host else http.server.ThreadingHTTPServer
        try:
            self._server = server_class((host, port), handler)
        except OSError as error:
            raise ConfigError(
                f"server.metrics_port: cannot listen on {host}:{port}: {error.strerror}"
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="skylens-metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _V6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler(path: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "skylens"
        sys_version = ""

        def do_GET(self) -> None:
            if urllib.parse.urlsplit(self.path).path != path:
                self._answer(404, b"Not Found\n", "text/plain; charset=utf-8")
                return
            self._answer(200, multiprocess_exposition(), CONTENT_TYPE_PLAIN_0_0_4)

        def _answer(self, status: int, body: bytes, media_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None  # scrapes every few seconds would drown the log

    return Handler
