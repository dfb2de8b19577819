"""Run a one-node OpenStack Swift cluster in one process, for the tests.

`tests/support/swift.py` starts this file with the Python of the Swift virtualenv
(`.swift-venv/`, made by `scripts/install-swift`); the test suite never imports it, since
it imports Swift and eventlet, which the project's virtualenv does not have:

    .swift-venv/bin/python -I tests/support/swift_runner.py ROOT

ROOT holds `etc/` (`swift.conf` and the proxy, account, container and object server
configurations, written by `swift.py`) and `srv/` (the devices). The runner

1. starts its own memcached (tempauth keeps tokens there, the proxy caches account and
   container info) on an ephemeral loopback port, so clusters never share a cache;
2. binds the proxy, account, container and object servers to ephemeral loopback ports;
3. builds the three rings (one device, one replica) for those ports, with the same
   `RingBuilder` that `swift-ring-builder` drives;
4. serves the four WSGI pipelines from their configuration files the way Swift's own
   `swift-*-server` commands do (eventlet, `SwiftHttpProtocol`, no header
   capitalisation), as green threads of this one process;
5. writes `ROOT/ready.json` (ports and pids), then serves until SIGTERM or SIGINT, or
   until its standard input closes because the test process that started it died.

Everything is logged to standard error, which `swift.py` sends to `ROOT/swift.log`.
"""

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

# Run as a script, this file's folder heads sys.path, and that folder holds swift.py,
# which would shadow the swift package. (`-I` already leaves it out; this is for `python
# swift_runner.py` by hand.)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

SERVERS = ("proxy", "account", "container", "object")
PART_POWER = 8  # 256 partitions: plenty for one device, and quick to build
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In a child about to exec: have Linux kill it when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the runner stops it
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def start_memcached(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    """memcached on an ephemeral 127.0.0.1 port, which it writes to a file (no races)."""
    binary = shutil.which("memcached") or "/usr/bin/memcached"
    port_file = root / "memcached.port"
    port_file.unlink(missing_ok=True)
    command = [binary, "-l", "127.0.0.1", "-p", "-1", "-U", "0", "-t", "1", "-m", "64"]
    if os.geteuid() == 0:
        command += ["-u", "root"]  # memcached refuses to run as root without -u
    process = subprocess.Popen(
        command,
        env={**os.environ, "MEMCACHED_PORT_FILENAME": str(port_file)},
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,  # safe: this process has one thread yet
    )
    deadline = time.monotonic() + 10
    while not port_file.exists():  # memcached renames it into place once complete
        if process.poll() is not None:
            raise SystemExit(f"memcached exited with {process.returncode}")
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("memcached wrote no port file in 10 s")
        time.sleep(0.01)
    # "TCP INET: 40157"
    port = int(port_file.read_text().split("TCP INET:")[1].split()[0])
    return process, port


def main(root: Path) -> None:
    etc = root / "etc"
    memcached, memcache_port = start_memcached(root)

    def stop(signum: int, frame: object) -> None:
        # Straight out: a signal may land in any green thread, where SystemExit would
        # end only that one. Every write is already on disk; nothing else needs closing,
        # and the cache is thrown away (memcached takes 0.5 s over a SIGTERM).
        memcached.kill()
        memcached.wait()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _serve(root, etc, memcached, memcache_port)
    stop(signal.SIGTERM, None)


def _serve(root: Path, etc: Path, memcached: subprocess.Popen[bytes], memcache_port: int) -> None:
    import warnings

    # eventlet (bug fixes only now) says so on import; Swift is still built on it.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet
    import eventlet.debug
    import eventlet.hubs
    import eventlet.wsgi
    from swift.common import utils

    # As swift-*-server do: green sockets and threads, then the best hub, then the apps.
    utils.monkey_patch()
    eventlet.hubs.use_hub(utils.get_hub())
    eventlet.debug.hub_exceptions(False)
    os.environ["TZ"] = "UTC+0"
    time.tzset()

    import socket

    from swift.common import constraints, storage_policy
    from swift.common.http_protocol import SwiftHttpProtocol
    from swift.common.ring import RingBuilder
    from swift.common.wsgi import loadapp

    sockets = {}
    for name in SERVERS:
        sockets[name] = eventlet.listen(("127.0.0.1", 0), backlog=1024)
        sockets[name].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ports = {name: sock.getsockname()[1] for name, sock in sockets.items()}

    for kind in ("account", "container", "object"):
        builder = RingBuilder(PART_POWER, 1, 1)
        builder.add_dev(
            {
                "region": 1,
                "zone": 1,
                "ip": "127.0.0.1",
                "port": ports[kind],
                "device": "d1",
                "weight": 1.0,
                "meta": "",
            }
        )
        builder.rebalance(seed=1)
        builder.get_ring().save(str(etc / f"{kind}.ring.gz"))

    # Read swift.conf from etc/ (hash prefix and suffix, the replication-only storage
    # policy, constraints) rather than /etc/swift/swift.conf, whatever the host has there.
    utils.set_swift_dir(str(etc))
    storage_policy.reload_storage_policies()
    constraints.reload_constraints()
    # Once one logger logs to the console, every logger Swift makes afterwards does too.
    utils.get_logger({"log_address": "/dev/null"}, "swift-runner", log_to_console=True)
    logger = utils.get_logger({"log_address": "/dev/null"}, "swift-runner")

    warnings.filterwarnings("ignore", message="capitalize_response_headers is disabled")
    memcache_servers = f"127.0.0.1:{memcache_port}"
    servers = []
    for name in SERVERS:
        global_conf = {"log_name": f"{name}-server", "memcache_servers": memcache_servers}
        app = loadapp(str(etc / f"{name}-server.conf"), global_conf=global_conf)
        servers.append(
            eventlet.spawn(
                eventlet.wsgi.server,
                sockets[name],
                app,
                utils.NullLogger(),
                custom_pool=eventlet.GreenPool(1024),
                protocol=SwiftHttpProtocol,
                socket_timeout=60,
                # s3api needs "ETag", not eventlet's "Etag" (as run_server says).
                capitalize_response_headers=False,
                url_length_limit=constraints.MAX_REQUEST_LINE,
            )
        )

    ready = {
        "pid": os.getpid(),
        "memcached_pid": memcached.pid,
        "memcache_port": memcache_port,
        **{f"{name}_port": port for name, port in ports.items()},
    }
    (root / "ready.json.tmp").write_text(json.dumps(ready))
    (root / "ready.json.tmp").rename(root / "ready.json")
    logger.info("swift-runner ready: %s", json.dumps(ready))

    # Standard input is a pipe from the test process: EOF means that process is gone.
    while True:
        eventlet.hubs.trampoline(sys.stdin.fileno(), read=True)
        if not os.read(sys.stdin.fileno(), 4096):
            break
    logger.info("swift-runner: standard input closed, stopping")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} ROOT")
    main(Path(sys.argv[1]).resolve())
