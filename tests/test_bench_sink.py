"""The hashing sink of bench/data.py, the bound every client's upload is read against:
it must read each body whole, however framed, and answer each request on a kept-alive
connection (a sink that stopped early would flatter the bound)."""

from __future__ import annotations

import hashlib
import os
import socket

from bench.sink import hashing_sink


def answer(sock: socket.socket) -> dict[bytes, bytes]:
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        assert data, "the sink closed the connection"
        head += data
    status, *lines = head.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert status == b"HTTP/1.1 204 No Content"
    return dict(line.split(b": ", 1) for line in lines)


def test_the_sink_reads_content_length_and_chunked_bodies_whole_on_one_connection() -> None:
    body = os.urandom(20 * (1 << 20) + 7)  # two blocks and a part
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest().encode()
    pieces = [body[offset : offset + 65536] for offset in range(0, len(body), 65536)]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"

    with hashing_sink() as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"PUT /a HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        first = answer(sock)
        sock.sendall(b"PUT /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
        second = answer(sock)
        sock.sendall(b"PUT /c HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"abc")
        third = answer(sock)

    assert first[b"x-sink-md5"] == second[b"x-sink-md5"] == md5
    assert third[b"x-sink-md5"] == hashlib.md5(b"abc", usedforsecurity=False).hexdigest().encode()
