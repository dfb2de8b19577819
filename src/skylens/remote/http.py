"""Fetching a web source's body (web-download, the http store): `HttpFetcher`
implements the domain's `RemoteSource`.

Every URI, the first and each redirect's, goes through the `UriFilter`; a host name is
resolved once, here, every address it resolves to must pass, and the connection goes
to those addresses, never to a second lookup's (which DNS rebinding would control),
while `Host` and TLS's SNI and certificate check still use the name. A connection
that drops or stalls mid-body is resumed with `Range: bytes=N-` a bounded number of
times, and only if the server proves it is sending the rest of the same entity (206,
the expected `Content-Range`, the same strong ETag / Last-Modified).

HTTP is spoken with h11 (a sans-I/O HTTP/1.1 parser, already installed with uvicorn)
rather than a client library: a library resolves names itself, pools connections and
may follow redirects, exactly what this module must control. h11 parses the response
head; a body framed by Content-Length (what image servers send) is then received
straight into the caller's buffer (the ingest's block), with the socket's own
`recv_into` on plain HTTP, never through h11 or a stream buffer. Other bodies
(chunked, or ended by the close) go through h11 a chunk at a time. On https the bytes
come from asyncio's TLS stream. One request per connection (`Connection: close`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Protocol

import h11

from skylens import __version__
from skylens.domain.errors import ImageTooLarge, RemoteSourceFailed, RemoteSourceMissing
from skylens.domain.uris import IPAddress, SourceUri, UriFilter

CHUNK_SIZE = 1 << 16  # the most read from a socket at once, and so held at once
USER_AGENT = f"skylens/{__version__}"
REDIRECTS = {301, 302, 303, 307, 308}
# A connection that fails this way mid-body may be resumed.
_DROPPED = (OSError, h11.RemoteProtocolError)  # OSError: TimeoutError, resets, TLS errors
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)")

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]


@dataclasses.dataclass(frozen=True)
class FetchOptions:
    connect_timeout: float = 30.0  # seconds for resolving, and for each connection attempt
    read_timeout: float = 60.0  # seconds waiting for the next bytes of a response
    max_redirects: int = 5
    max_resumes: int = 5  # resumed connections per body, after drops and stalls
    cafile: str = ""  # CA bundle for https sources; empty: the system's


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The host's addresses, by the system's resolver, each once, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ipaddress.ip_address(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
    return addresses


class HttpFetcher:
    """Opens http(s) sources that `uri_filter` allows (a `RemoteSource`)."""

    def __init__(
        self,
        uri_filter: UriFilter,
        options: FetchOptions = FetchOptions(),
        resolver: Resolver = system_resolver,
    ) -> None:
        self._filter = uri_filter
        self.options = options
        self._resolve = resolver
        self._tls = ssl.create_default_context(cafile=options.cafile or None)

    async def open(
        self,
        uri: str,
        size_cap: int,
        headers: Sequence[tuple[str, str]] = (),
        start: int = 0,
    ) -> HttpBody:
        """`start` > 0 asks for the body from that byte on (`Range`), which the server
        must grant (206 with the matching `Content-Range`)."""
        source = self._filter.check(uri)
        origin = _origin(source)
        ranged = [("Range", f"bytes={start}-")] if start > 0 else []
        redirects = 0
        while True:
            addresses = await self._addresses(source)
            exchange = await self.connect(source, addresses)
            # Credentials go to the origin they were meant for, never along a redirect.
            sent = headers if _origin(source) == origin else ()
            try:
                response = await exchange.request(source, [*sent, *ranged])
            except _DROPPED as error:
                exchange.close()
                raise RemoteSourceFailed(source.uri, _describe(error)) from error
            location = _header(response, "location")
            if response.status_code not in REDIRECTS or location is None:
                break
            exchange.close()
            redirects += 1
            if redirects > self.options.max_redirects:
                raise RemoteSourceFailed(uri, f"more than {self.options.max_redirects} redirects")
            source = self._filter.check(source.join(location))
        if response.status_code != (206 if start > 0 else 200):
            exchange.close()
            reason = f"the server answered {response.status_code}"
            missing = response.status_code in (404, 410)
            raise (RemoteSourceMissing if missing else RemoteSourceFailed)(source.uri, reason)
        if start > 0 and not _starts_at(response, start):
            exchange.close()
            raise RemoteSourceFailed(source.uri, f"the server did not send bytes={start}-")
        body = HttpBody(self, source, addresses, exchange, response, size_cap, start, sent)
        if body.size is not None and body.size > size_cap:
            exchange.close()
            raise ImageTooLarge()
        return body

    async def _addresses(self, source: SourceUri) -> Sequence[IPAddress]:
        """Where `source` may be fetched from: its address, or every address its name
        resolves to, each allowed by the filter (one refused refuses them all)."""
        if source.address is not None:
            return [source.address]
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                addresses = await self._resolve(source.host, source.port)
        except (OSError, UnicodeError) as error:
            raise RemoteSourceFailed(source.uri, f"cannot resolve {source.host}") from error
        if not addresses:
            raise RemoteSourceFailed(source.uri, f"{source.host} has no address")
        for address in addresses:
            self._filter.check_address(source, address)
        return addresses

    async def connect(self, source: SourceUri, addresses: Sequence[IPAddress]) -> Exchange:
        """A connection to the first of `addresses` that answers."""
        failure: OSError | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(self.options.connect_timeout):
                    if source.scheme == "https":
                        channel: _Channel = await self._tls_channel(source, address)
                    else:
                        channel = await _SocketChannel.connect(address, source.port)
            except OSError as error:
                failure = error
                continue
            return Exchange(channel, self.options.read_timeout)
        raise RemoteSourceFailed(source.uri, _describe(failure))

    async def _tls_channel(self, source: SourceUri, address: IPAddress) -> _StreamChannel:
        reader, writer = await asyncio.open_connection(
            str(address),
            source.port,
            ssl=self._tls,
            server_hostname=source.host,
            limit=CHUNK_SIZE,
        )
        return _StreamChannel(reader, writer)


class _Channel(Protocol):
    """A connection's bytes: a plain socket, or a TLS stream."""

    async def send(self, data: bytes) -> None: ...

    async def receive_into(self, buffer: memoryview) -> int:
        """What has come (at least a byte, at most `buffer`'s size); 0 at the end."""

    def close(self) -> None: ...


class _SocketChannel:
    """A plain TCP socket, received from with `recv_into` straight into the buffers
    it is given."""

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, address: IPAddress, port: int) -> _SocketChannel:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await asyncio.get_running_loop().sock_connect(sock, (str(address), port))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    async def send(self, data: bytes) -> None:
        await self._loop.sock_sendall(self._socket, data)

    async def receive_into(self, buffer: memoryview) -> int:
        return await self._loop.sock_recv_into(self._socket, buffer)

    def close(self) -> None:
        self._socket.close()


class _StreamChannel:
    """asyncio's streams (for TLS, which decrypts in user space)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def receive_into(self, buffer: memoryview) -> int:
        data = await self._reader.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._writer.transport.abort()


class Exchange:
    """One GET and its response, on a connection of its own."""

    def __init__(self, channel: _Channel, read_timeout: float) -> None:
        self._channel = channel
        self._read_timeout = read_timeout
        self._http = h11.Connection(h11.CLIENT)
        # A body framed by Content-Length is read past h11: what h11 had already
        # received of it, then how much is still to come from the connection.
        self._early = memoryview(b"")
        self._left: int | None = None

    @property
    def framed_by_length(self) -> bool:
        """Whether the body is read straight into the caller's buffers (`readinto`)."""
        return self._left is not None

    async def request(
        self, source: SourceUri, headers: Sequence[tuple[str, str]] = ()
    ) -> h11.Response:
        """Send the request; return the response's head once it has come."""
        request = h11.Request(
            method="GET",
            target=source.target,
            headers=[
                ("Host", source.authority),
                ("User-Agent", USER_AGENT),
                ("Accept-Encoding", "identity"),
                ("Connection", "close"),
                *headers,
            ],
        )
        data = (self._http.send(request) or b"") + (self._http.send(h11.EndOfMessage()) or b"")
        async with asyncio.timeout(self._read_timeout):
            await self._channel.send(data)
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Response):
                break
            if not isinstance(event, h11.InformationalResponse):
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")
        length = _header(event, "content-length")
        if length is not None and _header(event, "transfer-encoding") is None:
            early, _ = self._http.trailing_data  # the body's first bytes, if any came
            self._early = memoryview(early)[: int(length)]
            self._left = int(length) - len(self._early)
        return event

    async def readinto(self, buffer: memoryview) -> int:
        """The next bytes of a body framed by Content-Length into `buffer`: at least
        one, 0 once the body has ended; h11.RemoteProtocolError if the connection
        ends before it."""
        if self._early:
            count = min(len(buffer), len(self._early))
            buffer[:count] = self._early[:count]
            self._early = self._early[count:]
            return count
        if not self._left:
            return 0
        async with asyncio.timeout(self._read_timeout):
            count = await self._channel.receive_into(buffer[: self._left])
        if not count:
            raise h11.RemoteProtocolError("the server closed the connection")
        self._left -= count
        return count

    async def data(self) -> bytes | None:
        """The next bytes of the body, or None once it has ended."""
        if self.framed_by_length:
            chunk = bytearray(CHUNK_SIZE)
            count = await self.readinto(memoryview(chunk))
            return bytes(chunk[:count]) if count else None
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                if event.data:
                    return bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return None
            else:
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")

    async def _next_event(self) -> object:
        while True:
            event = self._http.next_event()
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.ConnectionClosed):
                    raise h11.RemoteProtocolError("the server closed the connection")
                return event
            received = bytearray(CHUNK_SIZE)
            async with asyncio.timeout(self._read_timeout):
                count = await self._channel.receive_into(memoryview(received))
            self._http.receive_data(bytes(received[:count]))

    def close(self) -> None:
        self._channel.close()


class HttpBody:
    """A source's body (a `RemoteBody`): `readinto` for the ingest, or iterate for
    chunks of bytes. Holds at most one chunk besides what the caller holds."""

    def __init__(
        self,
        fetcher: HttpFetcher,
        source: SourceUri,
        addresses: Sequence[IPAddress],
        exchange: Exchange,
        response: h11.Response,
        size_cap: int,
        offset: int = 0,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._fetcher = fetcher
        self._offset = offset  # where in the entity the body starts
        self._headers = headers  # sent again with each resumption
        self.source = source  # after redirects
        self._addresses = addresses
        self._exchange = exchange
        self._size_cap = size_cap
        length = _header(response, "content-length")
        self.size = int(length) if length is not None else None  # h11 checked the digits
        self.etag = _header(response, "etag")
        self.last_modified = _header(response, "last-modified")
        self.content_type = _header(response, "content-type")
        self._ranges = (_header(response, "accept-ranges") or "").lower() != "none"
        self.received = 0
        self.resumes = 0
        self._pending = memoryview(b"")
        self._ended = False

    async def readinto(self, buffer: memoryview) -> int:
        filled = 0
        while filled < len(buffer):
            if not self._pending and self._exchange.framed_by_length and not self._ended:
                received = await self._receive_into(buffer[filled:])
                if received == 0:
                    break
                filled += received or 0  # None: the rest comes in chunks, below
                continue
            if not self._pending:
                chunk = await self._next_chunk()
                if chunk is None:
                    break
                self._pending = memoryview(chunk)
            count = min(len(self._pending), len(buffer) - filled)
            buffer[filled : filled + count] = self._pending[:count]
            self._pending = self._pending[count:]
            filled += count
        return filled

    async def _receive_into(self, buffer: memoryview) -> int | None:
        """Body bytes straight into `buffer` (at least one; 0 at the end), resuming a
        dropped connection as `_next_chunk` does; None if the resumed response's body
        is not framed by Content-Length (it is then read in chunks)."""
        while True:
            try:
                count = await self._exchange.readinto(buffer)
            except _DROPPED as error:
                self._exchange.close()
                await self._resume(error)
                if not self._exchange.framed_by_length:
                    return None
                continue
            if not count:
                self._exchange.close()
                self._ended = True
                return 0
            self.received += count
            if self.received > self._size_cap:
                self._exchange.close()
                raise ImageTooLarge()
            return count

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._pending:
            pending, self._pending = bytes(self._pending), memoryview(b"")
            yield pending
        while (chunk := await self._next_chunk()) is not None:
            yield chunk

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.chunks()

    async def aclose(self) -> None:
        self._exchange.close()

    async def __aenter__(self) -> HttpBody:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _next_chunk(self) -> bytes | None:
        while not self._ended:
            try:
                chunk = await self._exchange.data()
            except _DROPPED as error:
                self._exchange.close()
                await self._resume(error)
                continue
            if chunk is None:
                self._exchange.close()
                self._ended = True
                return None
            self.received += len(chunk)
            if self.received > self._size_cap:
                self._exchange.close()
                raise ImageTooLarge()
            return chunk
        return None

    async def _resume(self, error: BaseException) -> None:
        """Carry on from byte `received` on a new connection to the same address, or
        raise `RemoteSourceFailed`. Retried connections count as resumes too."""
        uri = self.source.uri
        broke = f"the connection failed after {self.received} bytes ({_describe(error)})"
        strong_etag = self.etag is not None and not self.etag.startswith("W/")
        if not self._ranges or not (strong_etag or self.last_modified):
            raise RemoteSourceFailed(uri, f"{broke} and the server cannot resume it")
        while True:
            if self.resumes >= self._fetcher.options.max_resumes:
                raise RemoteSourceFailed(uri, f"{broke}, {self.resumes} resumes already")
            self.resumes += 1
            try:
                exchange = await self._fetcher.connect(self.source, self._addresses)
            except RemoteSourceFailed as failure:
                broke = failure.reason
                continue
            try:
                response = await exchange.request(
                    self.source,
                    [*self._headers, ("Range", f"bytes={self._offset + self.received}-")],
                )
            except _DROPPED as failure:
                exchange.close()
                broke = _describe(failure)
                continue
            refusal = self._refuses_resumption(response)
            if refusal is not None:
                exchange.close()
                raise RemoteSourceFailed(uri, f"{broke} and resuming failed: {refusal}")
            self._exchange = exchange
            return

    def _refuses_resumption(self, response: h11.Response) -> str | None:
        """Why `response` is not the rest of the body this started to receive, if so."""
        if response.status_code == 200:
            return "the server does not support ranges"
        if response.status_code != 206:
            return f"the server answered {response.status_code}"
        found = _CONTENT_RANGE.fullmatch(_header(response, "content-range") or "")
        if found is None:
            return "no valid Content-Range"
        first, last, total = found.groups()
        at = self._offset + self.received
        end = None if self.size is None else self._offset + self.size
        if int(first) != at or (end is not None and (total != str(end) or int(last) != end - 1)):
            return f"the server sent {found.group(0)} for bytes={at}-"
        for name, before in (("etag", self.etag), ("last-modified", self.last_modified)):
            if before is not None and _header(response, name) != before:
                return "the source changed"
        return None


def _starts_at(response: h11.Response, start: int) -> bool:
    found = _CONTENT_RANGE.fullmatch(_header(response, "content-range") or "")
    return found is not None and int(found.group(1)) == start


def _origin(source: SourceUri) -> tuple[str, str, int]:
    return source.scheme, source.host.lower(), source.port


def _header(response: h11.Response, name: str) -> str | None:
    """The response's (first) header `name` (lower case), if any."""
    wanted = name.encode()
    for key, value in response.headers:
        if key == wanted:
            return value.decode("latin-1")
    return None


def _describe(error: BaseException | None) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__
