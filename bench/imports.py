"""Image import throughput: web-download and copy-image, beside the hashing bound.

    .venv/bin/python -m bench.imports [--size-mib 1024] [--runs 3] [--scratch /dev/shm]
                                      [--stage-size-mib 4096]

In one run: the hashing bounds of this machine over one random file
(`bench/bounds.py`), then, on one `skylens serve` worker with two file stores
(`local`, the default, and `second`):
- web-download: `POST /v2/images/{id}/import` of the file from a loopback HTTP server
  (one that sends it with sendfile(2), so it costs the machine next to nothing),
  timed from the request to the image being active;
- copy-image: the image just imported copied from `local` to `second`, timed the same
  way;
- a staged import (issue 12: "staged import of a 4 GiB image with peak RSS growth
  < 64 MiB"): `PUT /v2/images/{id}/stage` of `--stage-size-mib` (4 GiB) of the file,
  sent over and over as one body, then `POST .../import` glance-direct, with the
  worker's VmRSS sampled every 50 ms from before the stage to the import's end.
All of them read the data once and compute md5 and sha512 on the way (the ingest), so
the bound they are read against is md5 | sha512 on two threads. It prints figures; it
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

from bench import bounds, transfer
from bench.bounds import Bounds
from bench.data import RAM_DISK, RSS_TARGET_MIB, _high_water_mib, _met, _print_table, _write_random
from bench.server import RunningServer, bench_server, memory

MIB = 1 << 20
TARGET = 0.70  # of the md5 | sha512 bound
POLL_SECONDS = 0.02
RSS_SAMPLE_SECONDS = 0.05
WARM_UP_SIZE = 16 * MIB


@dataclasses.dataclass(frozen=True)
class Timed:
    size: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.size / self.seconds / 1e6


@dataclasses.dataclass(frozen=True)
class Staged:
    """One staged import: its two steps, and the worker's memory around them."""

    stage: Timed  # PUT .../stage, from the first byte sent to the 204
    glance_direct: Timed  # POST .../import to the import lock gone
    idle_mib: float  # VmRSS before the stage
    peak_mib: float  # the highest VmRSS sampled (or VmHWM, if higher) until the end
    samples: int
    worker_pid: int
    serve_pid: int  # the `skylens serve` process started

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.idle_mib


@dataclasses.dataclass
class Run:
    size: int
    bounds: Bounds
    web_download: list[Timed] = dataclasses.field(default_factory=list)
    copy_image: list[Timed] = dataclasses.field(default_factory=list)
    # md5 | sha512 on two threads over the file, measured right before each import:
    # the bound of that import, as busy as the machine was then.
    web_download_bounds: list[float] = dataclasses.field(default_factory=list)
    copy_image_bounds: list[float] = dataclasses.field(default_factory=list)
    staged: Staged | None = None
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
                run.web_download_bounds.append(bounds.hashing_two_threads(source))
                image_id, downloaded = _import(server, run.size, web)
                run.web_download.append(downloaded)
                run.copy_image_bounds.append(bounds.hashing_two_threads(source))
                _, copied = _import(
                    server, run.size, {"name": "copy-image"}, image_id, stores=["second"]
                )
                run.copy_image.append(copied)
                httpx.delete(f"{server.url}/v2/images/{image_id}", timeout=120).raise_for_status()
            if args.stage_size_mib:
                staged = _stage_source(source, args.stage_size_mib * MIB)
                run.staged = _staged_import(server, staged, args.stage_size_mib * MIB)
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
        "--stage-size-mib",
        type=int,
        default=4096,
        help="the staged import's size: the file sent over and over as one body (0: none)",
    )
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


def _staged_import(server: RunningServer, source: Path, size: int) -> Staged:
    """Stage `size` bytes (a multiple of the file's: it is sent over and over as one
    body) and import them glance-direct, sampling the worker's VmRSS every 50 ms from
    before the stage to the import's end. The kernel's high-water mark is reset first
    and read at the end, so a peak between two samples counts too (when the reset is
    allowed). A small staged import first warms the paths, as a worker that has served."""
    pid = _worker_pid(server.pid)
    warm_up = source.with_name("warm-up.raw")
    _write_random(warm_up, WARM_UP_SIZE)
    warm_id, _ = _stage(server, warm_up, 1)
    _import(server, WARM_UP_SIZE, {"name": "glance-direct"}, warm_id)
    _delete(server, warm_id)
    idle = memory(pid).rss_mib
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    sampled = [idle]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(RSS_SAMPLE_SECONDS):
            with contextlib.suppress(OSError):
                sampled.append(memory(pid).rss_mib)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        image_id, staged = _stage(server, source, size // source.stat().st_size)
        _, imported = _import(server, staged.size, {"name": "glance-direct"}, image_id)
    finally:
        stop.set()
        sampler.join()
    peak = max(_high_water_mib(pid), *sampled)
    _delete(server, image_id)
    return Staged(
        stage=Timed(staged.size, staged.seconds),
        glance_direct=imported,
        idle_mib=idle,
        peak_mib=peak,
        samples=len(sampled),
        worker_pid=pid,
        serve_pid=server.pid,
    )


def _stage(server: RunningServer, source: Path, repeat: int) -> tuple[str, transfer.Transfer]:
    """A new image, and `PUT .../stage` of the file `repeat` times over as one body."""
    created = {"name": "bench-staged", "disk_format": "raw", "container_format": "bare"}
    response = httpx.post(f"{server.url}/v2/images", json=created, timeout=30)
    response.raise_for_status()
    image_id = str(response.json()["id"])
    with open(source, "rb") as file:
        path = f"/v2/images/{image_id}/stage"
        staged = transfer.upload("127.0.0.1", server.port, path, file, {}, repeat=repeat)
    if staged.status != 204:
        raise RuntimeError(f"stage answered {staged.status}; see {server.log}")
    return image_id, staged


def _delete(server: RunningServer, image_id: str) -> None:
    httpx.delete(f"{server.url}/v2/images/{image_id}", timeout=120).raise_for_status()


def _stage_source(source: Path, size: int) -> Path:
    """The file the stage sends `size // its size` times: `source` when `size` is a
    multiple of it, else a random file of `size` of its own."""
    if size % source.stat().st_size == 0:
        return source
    own = source.with_name("staged.raw")
    _write_random(own, size)
    return own


def _worker_pid(pid: int) -> int:
    """The process that serves: `pid` itself with `--workers 1` (uvicorn serves from the
    process it started), its one child if it ever hands the serving to one."""
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return children[0] if len(children) == 1 else pid


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
    rows: list[tuple[str, ...]] = [("measure", "figure", "vs bound", "target", "met")]
    rows += [
        ("bound: md5 + sha512, one thread", f"{b.hashing_one_thread:,.0f}", "", "", ""),
        ("bound: md5 | sha512, two threads", f"{par:,.0f}", "", "", ""),
        ("bound: cp", f"{b.cp:,.0f}", "", "", ""),
        ("bound: loopback TCP, sendfile -> recv", f"{b.loopback:,.0f}", "", "", ""),
    ]
    for name, timed, paired in (
        ("web-download from loopback HTTP to local", run.web_download, run.web_download_bounds),
        ("copy-image local -> second (file stores)", run.copy_image, run.copy_image_bounds),
    ):
        if not timed:
            continue
        median = statistics.median(t.mb_per_s for t in timed)
        ratios = [t.mb_per_s / bound for t, bound in zip(timed, paired, strict=True)]
        rows.append(
            (
                name,
                f"{median:,.0f} ({max(t.mb_per_s for t in timed):,.0f})",
                f"{median / par:.0%} of md5 | sha512; {statistics.median(ratios):.0%} of the "
                f"bound measured just before (runs: {', '.join(f'{r:.0%}' for r in ratios)})",
                f">= {TARGET:.0%}",
                _met(statistics.median(ratios) >= TARGET),
            )
        )
    if run.staged is not None:
        rows += _staged_rows(run.staged, par)
    _print_table(rows)
    if run.staged is not None:
        staged = run.staged
        whose = (
            "`skylens serve` itself"
            if staged.worker_pid == staged.serve_pid
            else f"a child of `skylens serve` {staged.serve_pid}"
        )
        print(
            f"\nstaged import: worker pid {staged.worker_pid} ({whose}), {staged.samples} VmRSS "
            f"samples ({RSS_SAMPLE_SECONDS * 1000:.0f} ms apart) from before the stage to "
            "the import's end; peak = the highest sample or VmHWM after a reset, if higher"
        )


def _staged_rows(staged: Staged, par: float) -> list[tuple[str, ...]]:
    size = f"{staged.stage.size / MIB:,.0f} MiB"
    rows: list[tuple[str, ...]] = []
    for name, timed in (
        (f"stage {size}: PUT .../stage to 204", staged.stage),
        (f"import {size} glance-direct: POST to done", staged.glance_direct),
    ):
        rows.append(
            (
                name,
                f"{timed.mb_per_s:,.0f}",
                f"{timed.mb_per_s / par:.0%} of md5 | sha512",
                "",
                "",
            )
        )
    rows += [
        (f"worker RSS, staged import of {size}", f"idle {staged.idle_mib:.0f} MiB", "", "", ""),
        ("", f"peak {staged.peak_mib:.0f} MiB", "", "", ""),
        (
            "",
            f"growth {staged.growth_mib:.1f} MiB",
            "",
            f"< {RSS_TARGET_MIB:.0f} MiB",
            _met(staged.growth_mib < RSS_TARGET_MIB),
        ),
    ]
    return rows


if __name__ == "__main__":
    sys.exit(main())
