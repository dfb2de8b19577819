"""A real OpenStack Swift object store on loopback, serving the S3 and Swift APIs on one port.

`swift_server(tmp_dir)` runs a one-node, one-replica Swift (proxy with `s3api` and
`tempauth`, account, container and object servers, and its own memcached) from the
separate virtualenv `.swift-venv/` that `scripts/install-swift` makes; see
`swift_runner.py` for how the cluster runs in one process. A module or conftest gets the
`swift` fixture (session scope: one cluster per xdist worker, started on first use) with

    from tests.support.swift import swift_fixture  # noqa: F401

Import it in one place per test tree: each import is its own fixture, with its own cluster.

Both APIs reach the same account, `AUTH_test`: Swift through tempauth as `test:tester` /
`testing`, S3 with access key `test:tester` and secret `testing` (path-style addressing,
region `us-east-1`). A second account, `AUTH_probe`, is used only to check the cluster
before handing it over, so `AUTH_test` starts empty.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    import swiftclient
    from botocore.client import BaseClient

REPO_ROOT = Path(__file__).resolve().parents[2]
# Relative to the repository root, as in scripts/install-swift.
SWIFT_VENV = REPO_ROOT / os.environ.get("SKYLENS_TEST_SWIFT_VENV", ".swift-venv")
RUNNER = Path(__file__).with_name("swift_runner.py")
START_TIMEOUT = 60.0

USER, KEY = "test:tester", "testing"
PROBE_USER, PROBE_KEY = "probe:probe", "probing"
REGION = "us-east-1"
# Swift's documented s3api order: s3api before tempauth, which checks the S3 signatures;
# copy and versioned_writes where the proxy would insert them anyway.
PROXY_PIPELINE = (
    "catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl"
    " s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server"
)


@dataclasses.dataclass(frozen=True)
class RunningSwift:
    url: str  # the proxy: http://127.0.0.1:PORT, both APIs
    root: Path  # etc/ (configs, rings), srv/ (devices), swift.log
    pid: int  # the runner; memcached is its child
    memcached_pid: int

    user: str = USER
    key: str = KEY
    account: str = "AUTH_test"
    region: str = REGION

    @property
    def auth_url(self) -> str:
        """tempauth's v1.0 endpoint (X-Auth-User / X-Auth-Key)."""
        return f"{self.url}/auth/v1.0"

    @property
    def storage_url(self) -> str:
        return f"{self.url}/v1/{self.account}"

    @property
    def s3_endpoint(self) -> str:
        return self.url

    @property
    def s3_access_key(self) -> str:
        return self.user

    @property
    def s3_secret_key(self) -> str:
        return self.key

    @property
    def log(self) -> Path:
        return self.root / "swift.log"

    def s3_client(self, **config: Any) -> BaseClient:
        """A boto3 S3 client for the test account; `config` goes to botocore's Config."""
        from botocore.config import Config

        settings: dict[str, Any] = {
            "s3": {"addressing_style": "path"},  # no DNS for bucket.127.0.0.1
            "retries": {"max_attempts": 1, "mode": "standard"},  # show failures as they are
            "connect_timeout": 5,
            "read_timeout": 60,
        }
        settings.update(config)
        return _boto3_session().client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name=self.region,
            aws_access_key_id=self.s3_access_key,
            aws_secret_access_key=self.s3_secret_key,
            config=Config(**settings),
        )

    def swift_connection(self, **kwargs: Any) -> swiftclient.Connection:
        """A python-swiftclient Connection for the test account (tempauth, v1 auth)."""
        import swiftclient

        options: dict[str, Any] = {
            "authurl": self.auth_url,
            "user": self.user,
            "key": self.key,
            "auth_version": "1",
            "retries": 0,
            "timeout": 60,
        }
        options.update(kwargs)
        return swiftclient.Connection(**options)


@functools.cache
def _boto3_session() -> Any:
    """One boto3 session per process: a fresh one reloads botocore's models (0.2 s a client)."""
    import boto3

    return boto3.session.Session()


@pytest.fixture(scope="session", name="swift")
def swift_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwift]:
    """One real Swift per xdist worker (or per run without xdist), for the whole session."""
    with swift_server(tmp_path_factory.mktemp("swift")) as server:
        yield server


@contextlib.contextmanager
def swift_server(tmp_dir: Path) -> Iterator[RunningSwift]:
    """Run a fresh Swift cluster with its data in `tmp_dir` until the block ends."""
    python = SWIFT_VENV / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"Swift is not installed at {SWIFT_VENV}: run scripts/install-swift")
    if shutil.which("memcached") is None:
        raise RuntimeError("memcached is not installed: run scripts/install-swift")
    root = tmp_dir.resolve()
    (root / "srv" / "d1").mkdir(parents=True, exist_ok=True)
    _require_user_xattrs(root / "srv")
    _write_configs(root)
    log = root / "swift.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            # -I: neither this file's folder (swift.py would shadow the swift package)
            # nor PYTHON* variables leak into Swift's interpreter.
            [str(python), "-I", str(RUNNER), str(root)],
            stdin=subprocess.PIPE,  # the runner stops when this closes
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
    try:
        ready = _wait_until_ready(root, process, log)
        server = RunningSwift(
            url=f"http://127.0.0.1:{ready['proxy_port']}",
            root=root,
            pid=process.pid,
            memcached_pid=ready["memcached_pid"],
        )
        _wait_until_serving(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdin:
            process.stdin.close()


def _require_user_xattrs(directory: Path) -> None:
    probe = directory / ".xattr-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.skylens", b"1")
    except OSError as error:
        raise RuntimeError(
            f"Swift's object server needs user extended attributes, which {directory} "
            f"does not support ({error}); run pytest with --basetemp on ext4/xfs/btrfs"
        ) from error
    finally:
        probe.unlink()


def _write_configs(root: Path) -> None:
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "swift.conf").write_text(
        f"""\
[swift-hash]
swift_hash_path_suffix = {secrets.token_hex(16)}
swift_hash_path_prefix = {secrets.token_hex(16)}

# Replication only: nothing needs erasure coding.
[storage-policy:0]
name = gold
policy_type = replication
default = yes
"""
    )
    # The runner binds every server to an ephemeral loopback port itself and builds the
    # rings for those ports, so no bind_port here. log_address is not a socket: Swift then
    # sends syslog over UDP to 127.0.0.1:514 (nowhere), and the runner's console log,
    # swift.log, is the log.
    common = f"""\
[DEFAULT]
bind_ip = 127.0.0.1
workers = 0
swift_dir = {etc}
devices = {root / "srv"}
mount_check = false
log_address = /dev/null
"""
    for kind in ("account", "container", "object"):
        (etc / f"{kind}-server.conf").write_text(
            f"""\
{common}
[pipeline:main]
pipeline = {kind}-server

[app:{kind}-server]
use = egg:swift#{kind}
"""
        )
    # memcache_servers comes from the runner, which starts memcached.
    (etc / "proxy-server.conf").write_text(
        f"""\
{common}
[pipeline:main]
pipeline = {PROXY_PIPELINE}

[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true
# Generous on a loaded two-core CI machine (defaults 0.5 s and 10 s).
conn_timeout = 5
node_timeout = 30

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:tempurl]
use = egg:swift#tempurl

[filter:s3api]
use = egg:swift#s3api
location = {REGION}
# AWS's (and Ceph's, MinIO's) part limit rather than s3api's 1,000, so S3 stores run
# here with their production default; s3api needs SLO to allow as many segments.
max_upload_part_num = 10000

[filter:tempauth]
use = egg:swift#tempauth
user_{USER.replace(":", "_")} = {KEY} .admin
user_{PROBE_USER.replace(":", "_")} = {PROBE_KEY} .admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes
"""
    )


def _wait_until_ready(root: Path, process: subprocess.Popen[bytes], log: Path) -> dict[str, int]:
    deadline = time.monotonic() + START_TIMEOUT
    ready = root / "ready.json"
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(f"Swift exited with {process.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Swift did not start in {START_TIMEOUT} s:\n{log.read_text()}")
        time.sleep(0.02)
    result: dict[str, int] = json.loads(ready.read_text())
    return result


def _wait_until_serving(server: RunningSwift, process: subprocess.Popen[bytes]) -> None:
    """Until /healthcheck answers and a write and a read go through every server."""
    deadline = time.monotonic() + START_TIMEOUT
    last: object = None
    with httpx.Client(base_url=server.url, timeout=10) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                if http.get("/healthcheck").status_code == 200:
                    last = _probe_write(http)
                    if last is None:
                        return
            except httpx.HTTPError as error:
                last = error
            time.sleep(0.05)
    raise RuntimeError(f"Swift is not serving ({last!r}):\n{server.log.read_text()}")


def _probe_write(http: httpx.Client) -> object:
    """PUT and GET an object in the probe account; None when it worked, else what failed."""
    auth = http.get("/auth/v1.0", headers={"X-Auth-User": PROBE_USER, "X-Auth-Key": PROBE_KEY})
    if auth.status_code != 200:
        return auth
    headers = {"X-Auth-Token": auth.headers["X-Auth-Token"]}
    path = f"/v1/AUTH_{PROBE_USER.split(':')[0]}/probe"
    for response in (
        http.put(path, headers=headers),
        http.put(f"{path}/object", headers=headers, content=b"probe"),
    ):
        if response.status_code != 201:
            return response
    response = http.get(f"{path}/object", headers=headers)
    return None if response.content == b"probe" else response
