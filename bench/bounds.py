"""What this machine can do with the same bytes, without Skylens: the bounds the
upload and download figures are read against.

- Hashing: md5 and sha512 in Python (hashlib, OpenSSL), alone, one after the other on
  one thread, and side by side on two threads, over the file in the pipeline's blocks
  (`BLOCK_SIZE`). Side by side, both hashes end each block before the next is read,
  as the upload pipeline once ran them; it no longer waits so, and can come close to
  this bound or pass it. The measurement stays as it was, so figures compare across
  sittings.
- Copying: `cp` of the file, and a loopback TCP connection (sendfile on one end,
  recv_into a reused buffer on the other, one thread each), the most a download over
  loopback can reach.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from skylens.services.ingest import BLOCK_SIZE


@dataclasses.dataclass(frozen=True)
class Bounds:
    md5: float  # MB/s
    sha512: float
    hashing_one_thread: float  # md5 then sha512 over each block
    hashing_two_threads: float  # md5 and sha512 of each block at once
    cp: float
    loopback: float


def measure(path: Path, scratch: Path, runs: int = 2) -> Bounds:
    """Each bound is the best of `runs` (`runs` + 1 for the quick copies): a bound is
    what the machine can do, and other work only ever makes a run slower."""
    size = path.stat().st_size

    def best(seconds: Callable[[], float], times: int = runs) -> float:
        return size / min(seconds() for _ in range(max(1, times))) / 1e6

    return Bounds(
        md5=best(lambda: _hash(path, ("md5",))),
        sha512=best(lambda: _hash(path, ("sha512",))),
        hashing_one_thread=best(lambda: _hash(path, ("md5", "sha512"))),
        hashing_two_threads=best(lambda: _hash_in_threads(path)),
        cp=best(lambda: _cp(path, scratch / "copy"), runs + 1),
        loopback=best(lambda: _loopback(path), runs + 1),
    )


def loopback(path: Path, runs: int = 3) -> float:
    """MB/s of the fastest of `runs` loopback sends of the file (sendfile -> recv)."""
    size = path.stat().st_size
    return size / min(_loopback(path) for _ in range(runs)) / 1e6


def hashing_two_threads(path: Path) -> float:
    """md5 | sha512 on two threads over the file, once: MB/s."""
    return path.stat().st_size / _hash_in_threads(path) / 1e6


def _hash(path: Path, algorithms: tuple[str, ...]) -> float:
    hashes = [hashlib.new(name, usedforsecurity=False) for name in algorithms]
    buffer = bytearray(BLOCK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as file:
        started = time.perf_counter()
        while count := file.readinto(buffer):
            for digest in hashes:
                digest.update(view[:count])
        return time.perf_counter() - started


def _hash_in_threads(path: Path) -> float:
    md5 = hashlib.md5(usedforsecurity=False)
    sha512 = hashlib.sha512()
    buffer = bytearray(BLOCK_SIZE)
    view = memoryview(buffer)
    with (
        open(path, "rb", buffering=0) as file,
        concurrent.futures.ThreadPoolExecutor(2) as pool,
    ):
        started = time.perf_counter()
        while count := file.readinto(buffer):
            block = view[:count]
            for future in [pool.submit(md5.update, block), pool.submit(sha512.update, block)]:
                future.result()
        return time.perf_counter() - started


def _cp(path: Path, target: Path) -> float:
    command = [shutil.which("cp") or "cp", str(path), str(target)]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def _loopback(path: Path) -> float:
    size = path.stat().st_size
    with socket.create_server(("127.0.0.1", 0)) as listener:
        received = threading.Event()

        def receive() -> None:
            connection, _ = listener.accept()
            with connection:
                buffer = memoryview(bytearray(1 << 20))
                got = 0
                while got < size:
                    count = connection.recv_into(buffer)
                    if not count:
                        break
                    got += count
            received.set()

        receiver = threading.Thread(target=receive)
        receiver.start()
        with socket.create_connection(listener.getsockname()) as sender, open(path, "rb") as file:
            started = time.perf_counter()
            sender.sendfile(file)
            received.wait()
            seconds = time.perf_counter() - started
        receiver.join()
    return seconds
