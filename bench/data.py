"""Image data throughput: upload and download per store, beside the machine's own bounds.

    .venv/bin/python -m bench.data [--size-mib 1024] [--rss-size-mib 4096] [--runs 3]
                                   [--stores local,swift,s3] [--rss-stores local]
                                   [--clients sendfile,curl,requests,glanceclient]
                                   [--scratch /dev/shm]

In one run: the hashing and copying bounds of this machine over one random file
(`bench/bounds.py`), then, on one `skylens serve` worker, uploads of that file
(PUT /v2/images/{id}/file) to the file store with each client people use
(`bench/clients.py`: curl, requests as openstacksdk sends, glanceclient's chunked
body; and the raw sendfile client, the best case), each right after the same client's
upload to a hashing sink (`bench/sink.py`), the bound for that client; then uploads
to each store and downloads of it (GET, bytes discarded), then the worker's peak
memory growth during a larger upload. The Swift and S3 stores
are the test harness's real Swift server (its Swift API and its s3api) on loopback;
they are skipped, with the reason, when Swift is not installed or `skylens serve` does
not take the stores configuration. It prints figures; it never judges a run by failing.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
from tests.support.swift import RunningSwift, swift_server

from bench import bounds, clients, transfer
from bench.bounds import Bounds
from bench.server import RunningServer, bench_server, memory
from bench.sink import hashing_sink
from bench.transfer import Transfer

MIB = 1 << 20
STORES = ("local", "swift", "s3")
UPLOAD_TARGET = 0.70  # of the hashing bound, and of the hashing sink with the same client
DOWNLOAD_TARGET = 2500.0  # MB/s, from the page cache
RSS_TARGET_MIB = 64.0
RAM_DISK = Path("/dev/shm")  # noqa: S108 - the run makes a private mkdtemp directory in it


@dataclasses.dataclass(frozen=True)
class StoreFigures:
    uploads: list[Transfer]
    downloads: list[Transfer]


@dataclasses.dataclass(frozen=True)
class RssFigures:
    size: int  # bytes uploaded
    before_mib: float
    peak_mib: float  # VmHWM after the upload, or the highest VmRSS sampled if higher
    upload: Transfer

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.before_mib


@dataclasses.dataclass(frozen=True)
class ClientFigures:
    """One client's uploads of the file, each right after its upload to the sink."""

    sink: list[Transfer]
    skylens: list[Transfer]

    @property
    def ratios(self) -> list[float]:
        return [
            ours.mb_per_s / bound.mb_per_s
            for ours, bound in zip(self.skylens, self.sink, strict=True)
        ]


@dataclasses.dataclass
class Run:
    size: int
    bounds: Bounds
    stores: dict[str, StoreFigures] = dataclasses.field(default_factory=dict)
    clients: dict[str, ClientFigures] = dataclasses.field(default_factory=dict)
    rss: dict[str, RssFigures] = dataclasses.field(default_factory=dict)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)  # store -> why
    load_average: tuple[float, float] = (0.0, 0.0)
    idle_rss_mib: float = 0.0  # the worker once started
    final_rss_mib: float = 0.0  # after every measurement


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    wanted = [name for name in args.stores.split(",") if name]
    watched = [name for name in args.rss_stores.split(",") if name]
    unknown = set(wanted + watched) - set(STORES)
    if unknown:
        print(f"unknown store(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    chosen = [name for name in args.clients.split(",") if name]
    if set(chosen) - set(clients.CLIENTS):
        print(f"unknown client(s) in {args.clients}", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="skylens-bench-data-", dir=args.scratch))
    try:
        source = scratch / "image.raw"
        _write_random(source, args.size_mib * MIB)
        _write_random(source.with_name("warm-up.raw"), 64 * MIB)
        load_before = os.getloadavg()[0]
        measured = bounds.measure(source, scratch, args.bound_runs)
        run = Run(size=source.stat().st_size, bounds=measured)
        with _server(scratch, sorted({*wanted, *watched}, key=STORES.index), run.skipped) as server:
            run.idle_rss_mib = memory(server.pid).rss_mib
            # Memory first, while the worker has seen nothing but a small warm-up upload.
            for name in watched:
                if name not in run.skipped:
                    run.rss[name] = _peak_memory(server, name, source, args.rss_size_mib * MIB)
            for name in chosen:
                run.clients[name] = _client_uploads(server, name, source, args.runs)
            for name in wanted:
                if name not in run.skipped:
                    run.stores[name] = _throughput(server, name, source, args.runs)
            run.final_rss_mib = memory(server.pid).rss_mib
        run.load_average = (load_before, os.getloadavg()[0])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _report(args, run)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.data", description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024, help="the file moved up and down")
    parser.add_argument(
        "--rss-size-mib",
        type=int,
        default=4096,
        help="the upload watched for memory (the file, sent over and over in one body)",
    )
    parser.add_argument("--runs", type=int, default=3, help="uploads per store (2 GETs each)")
    parser.add_argument("--bound-runs", type=int, default=2, help="each bound is the best of")
    parser.add_argument("--stores", default=",".join(STORES), help="stores to measure")
    parser.add_argument(
        "--clients",
        default=",".join(clients.CLIENTS),
        help="clients uploading to the file store, each beside the hashing sink",
    )
    parser.add_argument("--rss-stores", default="local", help="stores to watch memory on")
    parser.add_argument(
        "--scratch",
        default=str(RAM_DISK) if RAM_DISK.is_dir() else None,
        help="where the file, the server's data and Swift's go (default /dev/shm: RAM)",
    )
    return parser


def _write_random(path: Path, size: int) -> None:
    generator = random.Random()
    with open(path, "wb") as file:
        for offset in range(0, size, 4 * MIB):
            file.write(generator.randbytes(min(4 * MIB, size - offset)))


# -- the server, with the stores it can have -------------------------------------


@contextlib.contextmanager
def _server(scratch: Path, wanted: list[str], skipped: dict[str, str]) -> Iterator[RunningServer]:
    """One worker with `local` and, where possible, `swift` and `s3` on a real Swift."""
    url = f"sqlite:///{scratch / 'skylens.db'}"
    with contextlib.ExitStack() as stack:
        swift = None
        if {"swift", "s3"} & set(wanted):
            swift = _start_swift(stack, scratch / "swift", wanted, skipped)
        config = _stores_config(scratch, swift)
        try:
            server = stack.enter_context(
                bench_server(scratch / "server", url, "sqlite", ("--config", str(config)))
            )
        except RuntimeError as error:
            # `serve` refused the [stores.*] tables: measure what needs none, the default
            # file store `local`.
            if "configuration error" not in str(error):
                raise
            reason = next(line for line in str(error).splitlines() if "configuration" in line)
            for name in ("swift", "s3"):
                if name in wanted:
                    skipped.setdefault(name, f"stores not configurable ({reason.strip()})")
            server = stack.enter_context(bench_server(scratch / "server", url, "sqlite"))
        yield server


def _start_swift(
    stack: contextlib.ExitStack, root: Path, wanted: list[str], skipped: dict[str, str]
) -> RunningSwift | None:
    try:
        return stack.enter_context(swift_server(root))
    except RuntimeError as error:
        for name in ("swift", "s3"):
            if name in wanted:
                skipped[name] = f"no Swift server ({str(error).splitlines()[0]})"
        return None


def _stores_config(scratch: Path, swift: RunningSwift | None) -> Path:
    """`[storage]` and `[stores.*]` for `skylens serve`: the file store `local` (the
    default) and, given a Swift, `swift` (its Swift API) and `s3` (its S3 API), each in a
    fresh container with the store's default part sizes."""
    stores: dict[str, dict[str, object]] = {
        "local": {"kind": "file", "root": str(scratch / "server" / "images")},
    }
    if swift is not None:
        suffix = uuid.uuid4().hex[:12]
        stores["swift"] = {
            "kind": "swift",
            "auth_url": swift.auth_url,
            "user": swift.user,
            "key": swift.key,
            "container": f"bench-{suffix}",
            "create_container": True,
        }
        stores["s3"] = {
            "kind": "s3",
            "endpoint_url": swift.s3_endpoint,
            "region": swift.region,
            "access_key": swift.s3_access_key,
            "secret_key": swift.s3_secret_key,
            "bucket": f"bench-{suffix}",
            "path_style": True,
            "create_bucket": True,  # max_parts: the default 10,000, as the test server allows
        }
    lines = ["[storage]", 'default_store = "local"']
    for name, options in stores.items():
        lines += ["", f"[stores.{name}]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    path = scratch / "stores.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- measuring -----------------------------------------------------------------


def _new_image(server: RunningServer) -> str:
    body = {"name": "bench-data", "disk_format": "raw", "container_format": "bare"}
    response = httpx.post(f"{server.url}/v2/images", json=body, timeout=30)
    response.raise_for_status()
    image_id: str = response.json()["id"]
    return image_id


def _upload(
    server: RunningServer, store: str, source: Path, repeat: int = 1
) -> tuple[str, Transfer]:
    image_id = _new_image(server)
    with open(source, "rb") as file:
        result = transfer.upload(
            "127.0.0.1",
            server.port,
            f"/v2/images/{image_id}/file",
            file,
            {"X-Image-Meta-Store": store},
            repeat=repeat,
        )
    if result.status != 204:
        raise RuntimeError(f"upload to {store} answered {result.status}; see {server.log}")
    return image_id, result


def _delete(server: RunningServer, image_id: str) -> None:
    httpx.delete(f"{server.url}/v2/images/{image_id}", timeout=120).raise_for_status()


def _throughput(server: RunningServer, store: str, source: Path, runs: int) -> StoreFigures:
    uploads, downloads = [], []
    for _ in range(runs):
        image_id, uploaded = _upload(server, store, source)
        uploads.append(uploaded)
        for _ in range(2):
            got = transfer.download("127.0.0.1", server.port, f"/v2/images/{image_id}/file", {})
            if got.status != 200 or got.size != uploaded.size:
                raise RuntimeError(f"download from {store}: {got.status}, {got.size} bytes")
            downloads.append(got)
        _delete(server, image_id)
    return StoreFigures(uploads, downloads)


def _client_uploads(server: RunningServer, client: str, source: Path, runs: int) -> ClientFigures:
    """`runs` uploads of `source` by `client` to the file store, each right after one
    by the same client to a hashing sink: the two figures of a pair are as close in
    time as they can be, so the machine's other work weighs on both alike."""
    sink: list[Transfer] = []
    ours: list[Transfer] = []
    with hashing_sink() as port:
        for _ in range(runs):
            bound = clients.upload(client, f"http://127.0.0.1:{port}", "sink", source, "local")
            if bound.status != 204:
                raise RuntimeError(f"{client} to the sink: {bound.status}")
            sink.append(bound)
            image_id = _new_image(server)
            uploaded = clients.upload(client, server.url, image_id, source, "local")
            if uploaded.status != 204:
                raise RuntimeError(f"{client} upload answered {uploaded.status}; see {server.log}")
            ours.append(uploaded)
            _delete(server, image_id)
    return ClientFigures(sink=sink, skylens=ours)


def _peak_memory(server: RunningServer, store: str, source: Path, size: int) -> RssFigures:
    """The worker's peak resident memory during one `size` upload, above its level before.

    The kernel's high-water mark (VmHWM) is reset first through /proc/<pid>/clear_refs;
    VmRSS is also sampled every 10 ms, in case the reset is not allowed.
    """
    repeat = max(1, -(-size // source.stat().st_size))
    warm_up, _ = _upload(server, store, source.with_name("warm-up.raw"))
    _delete(server, warm_up)
    before = memory(server.pid).rss_mib
    with contextlib.suppress(OSError):
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")
    sampled = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            sampled.append(memory(server.pid).rss_mib)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        image_id, uploaded = _upload(server, store, source, repeat)
    finally:
        stop.set()
        sampler.join()
    peak = max(_high_water_mib(server.pid), *sampled)
    _delete(server, image_id)
    return RssFigures(size=uploaded.size, before_mib=before, peak_mib=peak, upload=uploaded)


def _high_water_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- the report ------------------------------------------------------------------


def _report(args: argparse.Namespace, run: Run) -> None:
    b = run.bounds
    print(
        f"skylens image data benchmark: {run.size / MIB:,.0f} MiB random file, "
        f"{args.runs} uploads per store, 2 downloads after each; scratch {args.scratch} "
        f"(file, server data, Swift); {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    before, after = run.load_average
    print(
        f"1-minute load average {before:.2f} before, {after:.2f} after (a busy machine reads low)"
    )
    print("figures in MB/s (10^6 bytes); uploads and downloads: median (best)\n")
    seq, par = b.hashing_one_thread, b.hashing_two_threads
    rows = [("measure", "figure", "vs bound", "target", "met")]
    rows += [
        ("bound: md5, one thread", f"{b.md5:,.0f}", "", "", ""),
        ("bound: sha512, one thread", f"{b.sha512:,.0f}", "", "", ""),
        ("bound: md5 + sha512, one thread", f"{seq:,.0f}", "", "", ""),
        ("bound: md5 | sha512, two threads", f"{par:,.0f}", "", "", ""),
        ("bound: cp", f"{b.cp:,.0f}", "", "", ""),
        ("bound: loopback TCP, sendfile -> recv", f"{b.loopback:,.0f}", "", "", ""),
    ]
    for name, client in run.clients.items():
        bound = statistics.median(t.mb_per_s for t in client.sink)
        up = statistics.median(t.mb_per_s for t in client.skylens)
        ratio = statistics.median(client.ratios)
        rows.append((f"bound: hashing sink, {name}", f"{bound:,.0f}", "", "", ""))
        rows.append(
            (
                f"upload local, {name}",
                f"{up:,.0f} ({max(t.mb_per_s for t in client.skylens):,.0f})",
                f"{ratio:.0%} of the sink (runs: "
                + ", ".join(f"{r:.0%}" for r in client.ratios)
                + f"); {up / par:.0%} of 2 threads",
                f">= {UPLOAD_TARGET:.0%} of the sink",
                _met(ratio >= UPLOAD_TARGET),
            )
        )
    for name in STORES:
        if name in run.skipped:
            rows.append((f"upload, download {name}", f"skipped: {run.skipped[name]}", "", "", ""))
        if name not in run.stores:
            continue
        figures = run.stores[name]
        up = statistics.median(t.mb_per_s for t in figures.uploads)
        down = statistics.median(t.mb_per_s for t in figures.downloads)
        local = name == "local"
        rows.append(
            (
                f"upload {name}",
                f"{up:,.0f} ({max(t.mb_per_s for t in figures.uploads):,.0f})",
                f"{up / seq:.0%} of 1 thread, {up / par:.0%} of 2 threads",
                f">= {UPLOAD_TARGET:.0%} of 2 threads" if local else "-",
                _met(up >= UPLOAD_TARGET * par) if local else "-",
            )
        )
        rows.append(
            (
                f"download {name}",
                f"{down:,.0f} ({max(t.mb_per_s for t in figures.downloads):,.0f})",
                f"{down / b.loopback:.0%} of loopback",
                f">= {DOWNLOAD_TARGET:,.0f}" if local else "-",
                _met(down >= DOWNLOAD_TARGET) if local else "-",
            )
        )
    for name, rss in run.rss.items():
        rows.append(
            (
                f"peak RSS growth, {rss.size / MIB:,.0f} MiB upload to {name}",
                f"{rss.growth_mib:.1f} MiB",
                f"{rss.before_mib:.0f} -> {rss.peak_mib:.0f} MiB at {rss.upload.mb_per_s:,.0f}",
                f"< {RSS_TARGET_MIB:.0f} MiB",
                _met(rss.growth_mib < RSS_TARGET_MIB),
            )
        )
    _print_table(rows)
    print(
        f"\nworker RSS: {run.idle_rss_mib:.0f} MiB once started, "
        f"{run.final_rss_mib:.0f} MiB after every measurement"
    )


def _met(condition: bool) -> str:
    return "yes" if condition else "NO"


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for index, row in enumerate(rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("| " + " | ".join(cells) + " |")
        if index == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")


if __name__ == "__main__":
    sys.exit(main())
