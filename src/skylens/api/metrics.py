"""Prometheus metrics: what every worker process counts, and `GET /metrics`.

Counted per request (from the access log's exchanges): requests and their
duration by method, route *template* (`/v2/images/{image_id}`, never a path with an
id in it; `unmatched` when no route matched) and status, and the bytes received
and sent by route. Counted by the services: uploads under way, import tasks ended
by type and outcome, image cache hits and misses. Counted by the database pool:
connections checked out.

Labels carry no project, user, image or token: the endpoint is public.

`skylens serve` sets `PROMETHEUS_MULTIPROC_DIR` before its workers start (see
`skylens.cli.main`): each worker then writes its values to files there and a
scrape, served by whichever worker gets it, adds up every worker's. Without it
(an app built in a test's process) the values live in this app's own registry.
"""

from __future__ import annotations

import asyncio
import os

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from skylens.api.components import Observers
from skylens.api.middleware import Exchange
from skylens.api.routing import PublicOperation, Resource

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
# Image data takes minutes where metadata takes milliseconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class Metrics:
    """One app's metrics. `observe` is an access-log observer; `observers` the
    services' hooks; `watch_pool` follows an engine's connection pool."""

    def __init__(self) -> None:
        self._multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        # Multiprocess values live in files, not in a registry: a fresh one collects
        # them at each scrape.
        own = None if self._multiprocess else CollectorRegistry()
        self._registry = own
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
        self.tasks = Counter(
            "skylens_tasks_ended", "Tasks run to their end", ["type", "outcome"], registry=own
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

    def observe(self, exchange: Exchange) -> None:
        route = exchange.facts.route if exchange.facts and exchange.facts.route else UNMATCHED
        labels = (exchange.method, route, str(exchange.status))
        self.requests.labels(*labels).inc()
        self.duration.labels(*labels).observe(exchange.seconds)
        if exchange.bytes_in:
            self.received.labels(route).inc(exchange.bytes_in)
        if exchange.bytes_out:
            self.sent.labels(route).inc(exchange.bytes_out)

    def observers(self) -> Observers:
        return Observers(
            uploads_under_way=self.uploads.set,
            task_outcomes=lambda kind, outcome: self.tasks.labels(kind, outcome).inc(),
            cache_lookups=lambda result: self.cache.labels(result).inc(),
        )

    def watch_pool(self, engine: sa.Engine) -> None:
        sa.event.listen(engine, "checkout", lambda *_: self.pool.inc())
        sa.event.listen(engine, "checkin", lambda *_: self.pool.dec())

    def exposition(self) -> bytes:
        """The text a scrape gets (blocking: it reads every worker's files)."""
        registry = self._registry
        if registry is None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def resource(self, path: str) -> Resource:
        async def metrics(_request: Request) -> Response:
            body = await asyncio.to_thread(self.exposition)
            # The classic text format (Prometheus 2 and 3 both read it).
            return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)

        operation = PublicOperation("GET", metrics, "Metrics in Prometheus' text format")
        return Resource(path, [operation], tag="service")
