"""A local HTTP(S) server of files for the web-download tests, which misbehaves on
request, counts the connections it accepts and records what each request said.

`/files/<name>` serves a file (with `Range`, `ETag`, `Last-Modified`); its query
asks for trouble:
- `drop=N`: send at most N bytes of the body, then close the connection;
- `stall=N`: send N bytes, then send nothing more until the server stops;
- `stall_first=N`: the same for the first request of this URL only (a source that
  hung once, then serves the file whole to whoever asks again);
- `ranges=no`: ignore `Range` (200 and the whole file) and say nothing of ranges;
- `etag=changing`: a new ETag on every request;
- `validators=no`: neither ETag nor Last-Modified.
`/redirect?to=URL` answers 302 to URL; `/chain/<n>/<name>?...` redirects n (at least 1) times
before serving `/files/<name>?...`.
"""

from __future__ import annotations

import dataclasses
import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


@dataclasses.dataclass(frozen=True)
class SeenRequest:
    path: str
    host: str | None
    range: str | None
    sni: str | None
    auth_token: str | None = None  # X-Auth-Token


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, source: WebSource) -> None:
        self.source = source
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.source.lock:
            self.source.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up mid-response is what the tests are about."""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        source = self.server.source
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        sni = getattr(self.connection, "sni", None)
        with source.lock:
            source.requests.append(
                SeenRequest(
                    self.path,
                    self.headers["Host"],
                    self.headers["Range"],
                    sni,
                    self.headers["X-Auth-Token"],
                )
            )
            serial = len(source.requests)
        if url.path == "/redirect":
            self._redirect(query["to"])
        elif url.path.startswith("/chain/"):
            _, _, count, name = url.path.split("/", 3)
            more = int(count)
            after = f"?{url.query}" if url.query else ""
            self._redirect(
                f"/chain/{more - 1}/{name}{after}" if more > 1 else f"/files/{name}{after}"
            )
        elif url.path.startswith("/files/") and url.path[7:] in source.files:
            if "stall_first" in query:
                with source.lock:
                    first = [seen.path for seen in source.requests].count(self.path) == 1
                if first:
                    query["stall"] = query["stall_first"]
            self._file(source.files[url.path[7:]], query, serial)
        else:
            self._answer(404, [], b"not here")

    def _redirect(self, location: str) -> None:
        self._answer(302, [("Location", location)], b"")

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in [*headers, ("Content-Length", str(len(body))), ("Connection", "close")]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _file(self, data: bytes, query: dict[str, str], serial: int) -> None:
        headers = []
        if query.get("validators") != "no":
            etag = f'"v{serial}"' if query.get("etag") == "changing" else '"v1"'
            headers += [("ETag", etag), ("Last-Modified", LAST_MODIFIED)]
        start, status = 0, 200
        asked = self.headers["Range"]
        if query.get("ranges") != "no":
            headers.append(("Accept-Ranges", "bytes"))
            if asked and asked.startswith("bytes=") and asked.endswith("-"):
                start, status = int(asked[6:-1]), 206
                headers.append(("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"))
        body = data[start:]
        self.send_response(status)
        for name, value in [*headers, ("Content-Length", str(len(body))), ("Connection", "close")]:
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        if "drop" in query:
            self.wfile.write(body[: int(query["drop"])])
        elif "stall" in query:
            self.wfile.write(body[: int(query["stall"])])
            self.wfile.flush()
            self.server.source.stopping.wait(60)
        else:
            self.wfile.write(body)


class WebSource:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.files: dict[str, bytes] = {}
        self.connections = 0
        self.requests: list[SeenRequest] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server(self)
        self.port: int = self._server.server_address[1]
        self.scheme = "http"
        if tls is not None:
            tls.sni_callback = _remember_sni
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


def _remember_sni(connection: ssl.SSLObject, name: str, context: ssl.SSLContext) -> None:
    # wrap_socket hands the callback the SSLSocket (typeshed names the SSLObject).
    connection.sni = name  # type: ignore[attr-defined]


@contextmanager
def web_source(tls: ssl.SSLContext | None = None) -> Iterator[WebSource]:
    source = WebSource(tls)
    source.start()
    try:
        yield source
    finally:
        source.stop()
