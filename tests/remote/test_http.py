"""The web-download fetcher against a real local HTTP(S) server: resumes that give
back the same bytes, clean failures, redirects filtered hop by hop, and every refused
URI refused before anything connects."""

from __future__ import annotations

import asyncio
import hashlib
import random
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from skylens.api.offload import InThreads
from skylens.domain.data import DataDigest
from skylens.domain.errors import ImageTooLarge, ImportUriRefused, RemoteSourceFailed
from skylens.domain.ports import RemoteSource
from skylens.domain.uris import UriFilter
from skylens.inspection.formats import OsloFormatInspector
from skylens.remote.http import FetchOptions, HttpBody, HttpFetcher
from skylens.services.ingest import ingest
from skylens.storage.filesystem import FilesystemStore
from tests.domain.test_uris import INTERNAL
from tests.support.web_source import WebSource, web_source

DATA = random.Random(12).randbytes(1 << 20)
CAP = 1 << 30


@pytest.fixture
def source() -> Iterator[WebSource]:
    with web_source() as server:
        server.files["a.img"] = DATA
        yield server


def fetcher(
    server: WebSource, hosts: tuple[str, ...] = ("127.0.0.1",), **options: float
) -> HttpFetcher:
    """The tests' fetcher: loopback allowed explicitly, as a test config would."""
    uri_filter = UriFilter(allowed_hosts=hosts, allowed_ports=(server.port,))
    return HttpFetcher(uri_filter, FetchOptions(connect_timeout=10, **options))  # type: ignore[arg-type]


async def read_all(body: HttpBody, block: int = 100_000) -> bytes:
    """Read as the ingest does: `readinto` fills whole blocks until the last one."""
    parts = []
    buffer = memoryview(bytearray(block))
    try:
        while count := await body.readinto(buffer):
            parts.append(bytes(buffer[:count]))
            if count < block:
                assert await body.readinto(buffer) == 0
                break
    finally:
        await body.aclose()
    return b"".join(parts)


def fetch(client: HttpFetcher, uri: str, cap: int = CAP) -> bytes:
    async def run() -> bytes:
        return await read_all(await client.open(uri, cap))

    return asyncio.run(run())


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_fetcher_is_a_remote_source(source: WebSource) -> None:
    remote: RemoteSource = fetcher(source)

    async def run() -> tuple[int | None, bytes]:
        body = await remote.open(source.url("/files/a.img"), CAP)
        return body.size, b"".join([chunk async for chunk in fetcher_body(body)])

    size, data = asyncio.run(run())
    assert size == len(DATA)
    assert digest(data) == digest(DATA)
    assert source.connections == 1
    assert source.requests[0].host == f"127.0.0.1:{source.port}"


def fetcher_body(body: object) -> HttpBody:
    assert isinstance(body, HttpBody)
    return body


def test_a_dropped_connection_is_resumed_and_the_bytes_are_the_same(source: WebSource) -> None:
    data = fetch(fetcher(source), source.url("/files/a.img?drop=300000"))

    assert digest(data) == digest(DATA)
    assert source.connections == 4
    assert [seen.range for seen in source.requests] == [
        None, "bytes=300000-", "bytes=600000-", "bytes=900000-",
    ]  # fmt: skip


def test_chunks_resume_too(source: WebSource) -> None:
    async def run() -> bytes:
        async with await fetcher(source).open(source.url("/files/a.img?drop=250000"), CAP) as body:
            return b"".join([chunk async for chunk in body])

    assert digest(asyncio.run(run())) == digest(DATA)


def test_resumes_are_bounded(source: WebSource) -> None:
    with pytest.raises(RemoteSourceFailed, match="2 resumes already"):
        fetch(fetcher(source, max_resumes=2), source.url("/files/a.img?drop=300000"))

    assert source.connections == 3


@pytest.mark.parametrize(
    ("query", "reason"),
    [("ranges=no", "the server does not support ranges"),
     ("etag=changing", "the source changed"),
     ("validators=no", "the server cannot resume it")],
)  # fmt: skip
def test_a_drop_that_cannot_be_resumed_fails_cleanly(
    source: WebSource, query: str, reason: str
) -> None:
    with pytest.raises(RemoteSourceFailed, match=reason) as failed:
        fetch(fetcher(source), source.url(f"/files/a.img?drop=300000&{query}"))

    assert failed.value.message.startswith(f"Could not fetch {source.url('/files/a.img')}")
    assert source.connections <= 2


def test_a_stall_past_the_read_timeout_fails_cleanly(source: WebSource) -> None:
    with pytest.raises(RemoteSourceFailed, match="timed out"):
        fetch(
            fetcher(source, read_timeout=0.2, max_resumes=1), source.url("/files/a.img?stall=1000")
        )

    assert [seen.range for seen in source.requests] == [None, "bytes=1000-"]


def test_a_source_announcing_more_than_the_cap_is_refused_before_its_body(
    source: WebSource,
) -> None:
    with pytest.raises(ImageTooLarge):
        fetch(fetcher(source), source.url("/files/a.img"), cap=len(DATA) - 1)


def test_an_error_status_fails(source: WebSource) -> None:
    with pytest.raises(RemoteSourceFailed, match="the server answered 404"):
        fetch(fetcher(source), source.url("/files/missing.img"))


def test_redirects_are_followed_up_to_the_bound(source: WebSource) -> None:
    assert digest(fetch(fetcher(source), source.url("/chain/5/a.img?drop=600000"))) == digest(DATA)

    source.connections = 0
    with pytest.raises(RemoteSourceFailed, match="more than 5 redirects"):
        fetch(fetcher(source), source.url("/chain/6/a.img"))
    assert source.connections == 6


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "http://localhost:{port}/files/a.img",
     "http://2130706433:{port}/files/a.img", "http://[::ffff:127.0.0.1]:{port}/files/a.img",
     "file:///etc/passwd", "http://127.0.0.1:1/files/a.img"],
)  # fmt: skip
def test_every_redirect_is_filtered(source: WebSource, target: str) -> None:
    location = target.format(port=source.port)

    with pytest.raises(ImportUriRefused) as refused:
        fetch(fetcher(source), source.url(f"/redirect?to={location}"))

    assert refused.value.uri == location
    assert source.connections == 1


def test_a_redirect_to_an_allowed_host_is_followed(source: WebSource) -> None:
    location = f"http://localhost:{source.port}/files/a.img"
    client = fetcher(source, hosts=("127.0.0.1", "localhost"))

    assert digest(fetch(client, source.url(f"/redirect?to={location}"))) == digest(DATA)
    assert source.requests[-1].host == f"localhost:{source.port}"


def fetch_with_token(client: HttpFetcher, uri: str) -> bytes:
    async def run() -> bytes:
        return await read_all(await client.open(uri, CAP, headers=[("X-Auth-Token", "secret")]))

    return asyncio.run(run())


def test_credentials_go_with_every_request_to_their_origin_resumptions_too(
    source: WebSource,
) -> None:
    data = fetch_with_token(fetcher(source), source.url("/files/a.img?drop=400000"))

    assert digest(data) == digest(DATA)
    assert [(seen.range, seen.auth_token) for seen in source.requests] == [
        (None, "secret"), ("bytes=400000-", "secret"), ("bytes=800000-", "secret"),
    ]  # fmt: skip


def test_credentials_never_follow_a_redirect_to_another_origin(source: WebSource) -> None:
    """glance-download's token is for the image service the catalogue names: a redirect
    elsewhere (here another host name of the same server) is followed without it, and
    a redirect back to the first origin gets it again."""
    client = fetcher(source, hosts=("127.0.0.1", "localhost"))
    back = source.url("/files/a.img")
    away = f"http://localhost:{source.port}/redirect?to={back}"

    assert digest(fetch_with_token(client, source.url(f"/redirect?to={away}"))) == digest(DATA)
    assert [(seen.host, seen.auth_token) for seen in source.requests] == [
        (f"127.0.0.1:{source.port}", "secret"),
        (f"localhost:{source.port}", None),
        (f"127.0.0.1:{source.port}", "secret"),
    ]


@pytest.mark.parametrize("uri", INTERNAL)
def test_every_refused_spelling_is_refused_before_connecting(source: WebSource, uri: str) -> None:
    """The server's own port is allowed, so a spelling of loopback that got through
    would reach it (and the others would fail to connect, not be refused)."""
    client = HttpFetcher(UriFilter(allowed_ports=(source.port,)))
    scheme, rest = uri.split("//", 1)
    authority, slash, path = rest.partition("/")

    for candidate in (uri, f"{scheme}//{authority}:{source.port}{slash}{path}"):
        with pytest.raises(ImportUriRefused):
            fetch(client, candidate)
    assert source.connections == 0


def test_a_name_resolving_to_loopback_is_refused_unless_allowed(source: WebSource) -> None:
    uri = source.url("/files/a.img", host="localhost")

    with pytest.raises(ImportUriRefused, match=f"pass filtering: {uri}") as refused:
        fetch(HttpFetcher(UriFilter(allowed_ports=(source.port,))), uri)
    assert "loopback address" in refused.value.reason
    assert source.connections == 0

    assert digest(fetch(fetcher(source, hosts=("localhost",)), uri)) == digest(DATA)
    assert source.requests[0].host == f"localhost:{source.port}"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def test_https_connects_to_the_checked_address_with_the_name_as_sni(
    certificate: tuple[Path, Path],
) -> None:
    key, cert = certificate
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    with web_source(tls) as server:
        server.files["a.img"] = DATA
        uri_filter = UriFilter(allowed_hosts=("localhost",), allowed_ports=(server.port,))
        client = HttpFetcher(uri_filter, FetchOptions(cafile=str(cert)))

        data = fetch(client, server.url("/files/a.img?drop=500000", host="localhost"))

        assert digest(data) == digest(DATA)
        assert {(seen.sni, seen.host) for seen in server.requests} == {
            ("localhost", f"localhost:{server.port}")
        }
        with pytest.raises(RemoteSourceFailed, match="CERTIFICATE_VERIFY_FAILED"):
            fetch(HttpFetcher(uri_filter), server.url("/files/a.img", host="localhost"))


def test_the_ingest_streams_a_resumed_body_into_a_store(source: WebSource, tmp_path: Path) -> None:
    """What web-download will do: the body goes through the one-pass ingest as an
    upload does (md5, secure hash, inspection, store write), resumes unseen."""
    store = FilesystemStore("local", tmp_path / "images", fsync=False)
    writer = store.writer("image")

    async def run() -> DataDigest:
        body = await fetcher(source).open(source.url("/files/a.img?drop=400000"), CAP)
        try:
            return await ingest(
                body, writer, OsloFormatInspector(), hash_algo="sha512", size_cap=CAP,
                threads=InThreads(anyio.CapacityLimiter(2)), expected_size=body.size,
            )  # fmt: skip
        finally:
            await body.aclose()

    result = asyncio.run(run())
    writer.commit()

    assert (result.size, result.hash_value) == (len(DATA), hashlib.sha512(DATA).hexdigest())
    assert result.checksum == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    assert digest(b"".join(store.read("image"))) == digest(DATA)
    assert source.connections == 3
