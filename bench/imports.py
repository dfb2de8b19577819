"""Image import throughput: web-download and copy-image, beside the hashing bound.

    .venv/bin/python -m bench.imports [--size-mib 1024] [--runs 3] [--scratch /dev/shm]

In one run: the hashing bounds of this machine over one random file
(`bench/bounds.py`), then, on one `skylens serve` worker with two file stores
(`local`, the default, and `second`):
- web-download: `POST /v2/images/{id}/import` of the file from a loopback HTTP server
  (one that sends it with sendfile(2), so it costs the machine next to nothing),
  timed from the request to the image being active;
- copy-image: the image just imported copied from `local` to `second`, timed the same
  way.
Both read the data once and compute md5 and sha512 on the way (the ingest), so the
bound they are read against is md5 | sha512 on two threads. It prints figures; it
never judges a run by failing. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.server
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import bounds
from bench.bounds import Bounds
from bench.data import RAM_DISK, _met, _print_table, _write_random
from bench.server import RunningServer, bench_server

MIB = 1 << 20
TARGET = 0.70  # of the md5 | sha512 bound
POLL_SECONDS = 0.02


@dataclasses.dataclass(frozen=True)
class Timed:
    size: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.size / self.seconds / 1e6


@dataclasses.dataclass
class Run:
    size: int
    bounds: Bounds
    web_download: list[Timed] = dataclasses.field(default_factory=list)
    copy_image: list[Timed] = dataclasses.field(default_factory=list)
    load_average: tuple[float, float] = (0.0, 0.0)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="skylens-bench-imports-", dir=args.scratch))
    try:
        source = scratch / "image.raw"
        _write_random(source, args.size_mib * MIB)
        load_before = os.getloadavg()[0]
        run = Run(size=source.stat().st_size, bounds=bounds.measure(source, scratch, 2))
        with _file_server(source) as port, _server(scratch, port) as server:
            uri = f"http://127.0.0.1:{port}/image.raw"
            for _ in range(args.runs):
                web = {"name": "web-download", "uri": uri}
                image_id, downloaded = _import(server, run.size, web)
                run.web_download.append(downloaded)
                _, copied = _import(
                    server, run.size, {"name": "copy-image"}, image_id, stores=["second"]
                )
                run.copy_image.append(copied)
                httpx.delete(f"{server.url}/v2/images/{image_id}", timeout=120).raise_for_status()
        run.load_average = (load_before, os.getloadavg()[0])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _report(args, run)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024, help="the image imported")
    parser.add_argument("--runs", type=int, default=3, help="web-downloads (and copies)")
    parser.add_argument(
        "--scratch",
        default=str(RAM_DISK) if RAM_DISK.is_dir() else None,
        help="where the file and the server's data go (default /dev/shm: RAM)",
    )
    return parser


# -- the loopback web server and the Skylens worker --------------------------------


class _FileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    path_served: Path

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        size = self.path_served.stat().st_size
        self.send_response(200)
        for name, value in (
            ("Content-Length", str(size)),
            ("Accept-Ranges", "bytes"),
            ("ETag", '"bench"'),
            ("Connection", "close"),
        ):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()
        with open(self.path_served, "rb") as file:
            self.connection.sendfile(file)
        self.close_connection = True


@contextlib.contextmanager
def _file_server(path: Path) -> Iterator[int]:
    """A loopback HTTP server of `path` at any path; its port."""
    handler = type("Handler", (_FileHandler,), {"path_served": path})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _server(scratch: Path, web_port: int) -> Iterator[RunningServer]:
    """One worker, two file stores, web-download allowed from 127.0.0.1:`web_port`."""
    lines = ["[storage]", 'default_store = "local"']
    for name in ("local", "second"):
        root = scratch / "server" / name
        lines += ["", f"[stores.{name}]", 'kind = "file"', f'root = "{root}"']
    lines += ["", "[import_filtering]", 'allowed_hosts = ["127.0.0.1"]']
    lines.append(f"allowed_ports = [{web_port}]")
    config = scratch / "imports.toml"
    config.write_text("\n".join(lines) + "\n")
    url = f"sqlite:///{scratch / 'skylens.db'}"
    with bench_server(scratch / "server", url, "sqlite", ("--config", str(config))) as server:
        yield server


# -- measuring -----------------------------------------------------------------


def _import(
    server: RunningServer,
    size: int,
    method: dict[str, str],
    image_id: str | None = None,
    **body: Any,
) -> tuple[str, Timed]:
    """Import into a new image (or `image_id`); timed from the request to its end."""
    with httpx.Client(base_url=server.url, timeout=120) as api:
        if image_id is None:
            created = {"name": "bench-import", "disk_format": "raw", "container_format": "bare"}
            response = api.post("/v2/images", json=created)
            response.raise_for_status()
            image_id = str(response.json()["id"])
        started = time.perf_counter()
        response = api.post(f"/v2/images/{image_id}/import", json={"method": method, **body})
        if response.status_code != 202:
            raise RuntimeError(f"{method['name']}: {response.status_code} {response.text}")
        while True:
            image = api.get(f"/v2/images/{image_id}").json()
            if "os_glance_import_task" not in image:
                break
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - started
    if image["status"] != "active" or image["os_glance_failed_import"]:
        raise RuntimeError(f"{method['name']} failed; see {server.log}")
    return image_id, Timed(size, seconds)


# -- the report ------------------------------------------------------------------


def _report(args: argparse.Namespace, run: Run) -> None:
    b = run.bounds
    print(
        f"skylens import benchmark: {run.size / MIB:,.0f} MiB random file, {args.runs} "
        f"web-downloads and copies; scratch {args.scratch} (file, server data); "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    before, after = run.load_average
    print(
        f"1-minute load average {before:.2f} before, {after:.2f} after (a busy machine reads low)"
    )
    print("figures in MB/s (10^6 bytes); imports: median (best), request to active\n")
    par = b.hashing_two_threads
    rows = [("measure", "figure", "vs bound", "target", "met")]
    rows += [
        ("bound: md5 + sha512, one thread", f"{b.hashing_one_thread:,.0f}", "", "", ""),
        ("bound: md5 | sha512, two threads", f"{par:,.0f}", "", "", ""),
        ("bound: cp", f"{b.cp:,.0f}", "", "", ""),
        ("bound: loopback TCP, sendfile -> recv", f"{b.loopback:,.0f}", "", "", ""),
    ]
    for name, timed in (
        ("web-download from loopback HTTP to local", run.web_download),
        ("copy-image local -> second (file stores)", run.copy_image),
    ):
        median = statistics.median(t.mb_per_s for t in timed)
        rows.append(
            (
                name,
                f"{median:,.0f} ({max(t.mb_per_s for t in timed):,.0f})",
                f"{median / par:.0%} of md5 | sha512",
                f">= {TARGET:.0%}",
                _met(median >= TARGET * par),
            )
        )
    _print_table(rows)


if __name__ == "__main__":
    sys.exit(main())
