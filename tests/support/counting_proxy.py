"""A loopback HTTP proxy in front of a real server that counts what passes through it.

Put in front of the test Keystone, it shows how many token validations
(`GET /v3/auth/tokens`) Skylens asks for, per token, and how many at most were
in flight at once. `delay_validations` holds each validation for that long before
passing it on, so that concurrent ones overlap.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from tests.support.uvicorn_thread import uvicorn_thread

_HOP_BY_HOP = {b"host", b"connection", b"content-length", b"transfer-encoding", b"keep-alive"}


class CountingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.url = ""  # set once serving
        self.delay_validations = 0.0
        self._lock = threading.Lock()
        self._validations: collections.Counter[str] = collections.Counter()
        self._in_flight = 0
        self.most_in_flight = 0

    def validations(self, token: str) -> int:
        with self._lock:
            return self._validations[token]

    def reset_most_in_flight(self) -> None:
        with self._lock:
            self.most_in_flight = self._in_flight

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        subject = dict(scope["headers"]).get(b"x-subject-token")
        validation = scope["method"] == "GET" and scope["path"] == "/v3/auth/tokens"
        if validation:
            self._started(subject.decode("latin-1") if subject else "")
        try:
            if validation and self.delay_validations:
                await asyncio.sleep(self.delay_validations)
            target = self.upstream + scope["path"]
            if scope["query_string"]:
                target += "?" + scope["query_string"].decode()
            async with httpx.AsyncClient(timeout=30) as client:
                answer = await client.request(
                    scope["method"], target, headers=headers, content=body
                )
        finally:
            if validation:
                self._ended()
        await send(
            {
                "type": "http.response.start",
                "status": answer.status_code,
                "headers": [
                    (k, v)
                    for k, v in answer.headers.raw
                    if k.lower() not in _HOP_BY_HOP and k.lower() != b"content-encoding"
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.content})

    def _started(self, token: str) -> None:
        with self._lock:
            self._validations[token] += 1
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)

    def _ended(self) -> None:
        with self._lock:
            self._in_flight -= 1


@contextlib.contextmanager
def counting_proxy(upstream: str) -> Iterator[CountingProxy]:
    """A `CountingProxy` to `upstream`, served on loopback until the block ends."""
    proxy = CountingProxy(upstream)
    with uvicorn_thread(proxy, "h11", loop="asyncio") as served:
        proxy.url = served.url
        yield proxy
