"""Every item of issue 18, as an abuse of a running server (see bench/abuse_kit.py).

Each scenario sends what the issue's reproduction sent (`Scale.full`) or a smaller
form of it (the test suite's), calls `probe()` while the abuse is in flight, and
returns what the abuse got beside what it should get.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from httpx import QueryParams
from tests.support.identities import admin_of, member_of, new_project
from tests.support.images import PATCH_V21
from tests.support.isos import make_iso

from bench.abuse_kit import (
    BOTH,
    MIB,
    POSTGRESQL,
    SQLITE,
    Outcome,
    Probe,
    Setup,
    Target,
    answer,
    distinct,
    in_background,
    outcome,
    push,
    repeated,
    sockets,
    status,
    until_ended,
)

SetupFactory = Callable[[Path, Any], contextlib.AbstractContextManager[Setup]]


@contextlib.contextmanager
def no_setup(_data_dir: Path, _keystone: Any) -> Iterator[Setup]:
    yield Setup()


def env_setup(**env: str) -> SetupFactory:
    @contextlib.contextmanager
    def setup(_data_dir: Path, _keystone: Any) -> Iterator[Setup]:
        yield Setup(env=env)

    return setup


def file_setup(name: str, text: str, option: str, **env: str) -> SetupFactory:
    """A server given a file of `text` in its data directory, named by the environment
    variable `option`; the scenario gets the file's path as `target.extra`."""

    @contextlib.contextmanager
    def setup(data_dir: Path, _keystone: Any) -> Iterator[Setup]:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / name
        path.write_text(text)
        yield Setup(env={option: str(path), **env}, extra=path)

    return setup


@dataclasses.dataclass(frozen=True)
class Scenario:
    item: str  # issue 18's item number
    name: str
    run: Callable[[Target, Probe], Outcome]
    backends: tuple[str, ...] = BOTH
    setup: SetupFactory = no_setup
    # Answers the probes may get while the abuse runs (an outage is 503, quickly).
    probe_answers: frozenset[str] = frozenset({"200"})
    needs_keystone: bool = False
    # The fix is in the server layer (skylens.server), landing separately.
    server_layer: bool = False

    @property
    def id(self) -> str:
        return f"{self.item}-{self.name}"


SCENARIOS: list[Scenario] = []


def scenario(item: str, **options: Any) -> Callable[[Callable[[Target, Probe], Outcome]], Any]:
    def register(run: Callable[[Target, Probe], Outcome]) -> Callable[[Target, Probe], Outcome]:
        name = run.__name__.replace("_", "-")
        SCENARIOS.append(Scenario(item, name, run, **options))
        return run

    return register


def server_layer(item: str, **env: str) -> Callable[[Callable[[Target, Probe], Outcome]], Any]:
    """A scenario whose fix is in the HTTP server (`server.*` options in `env`)."""
    return scenario(item, backends=SQLITE, server_layer=True, setup=env_setup(**env))


# -- 1, 10, 15: list requests that ask too much ------------------------------------


@scenario("1")
def sort_keys_with_a_marker(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    marker = t.image(member, name="marked")
    keys = t.scale.of(400, 400)
    with (
        t.client(member) as api,
        in_background(
            lambda: api.get(
                "/v2/images", params={"marker": marker, "sort": ",".join(["name:asc"] * keys)}
            ),
            lambda: api.get("/v2.1/images", params=[("sort_key", "name")] * keys),
        ) as pending,
    ):
        probe()
    return outcome([status(f.result()) for f in pending], ["400", "400"])


@scenario("10")
def too_many_filters(t: Target, probe: Probe) -> Outcome:
    many = t.scale.of(1000, 1000)
    with (
        t.client(member_of(new_project())) as api,
        in_background(
            lambda: api.get("/v2/images", params=[("tag", f"t{i}") for i in range(many)]),
            lambda: api.get("/v2/images", params=[(f"p{i}", "v") for i in range(many)]),
            # 2,000 sort keys make a request target over 16 KiB: refused at the head (414).
            lambda: api.get(
                "/v2/images", params={"sort": ",".join(f"k{i}:asc" for i in range(2 * many))}
            ),
            # 200 fit in the target and pass the sort-key cap: 400.
            lambda: api.get(
                "/v2/images", params={"sort": ",".join(f"k{i}:asc" for i in range(200))}
            ),
        ) as pending,
    ):
        probe()
    return outcome([status(f.result()) for f in pending], ["400", "400", "414", "400"])


@scenario("15")
def tag_filters_on_many_images(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    for index in range(19):
        t.image(member, name=f"tagged-{index}", tags=[f"t{index % 5}"])
    capped = QueryParams([("tag", f"t{i}") for i in range(20)])  # at the cap: answered
    over = QueryParams([("tag", f"t{i}") for i in range(100)])
    requests = t.scale.of(12, 6)
    with (
        t.client(member) as api,
        in_background(
            *(lambda: api.get("/v2/images", params=capped) for _ in range(requests)),
            lambda: api.get("/v2/images", params=over),
        ) as pending,
    ):
        probe()
    return outcome(distinct([status(f.result()) for f in pending]), ["200", "400"])


# -- 2, 4: bodies and headers without end ------------------------------------------


@scenario("2", backends=SQLITE)
def huge_json_bodies(t: Target, probe: Probe) -> Outcome:
    size = t.scale.of(400 * MIB, 64 * MIB)
    headers = {**member_of(new_project()).headers, "Content-Type": "application/json"}
    piece = b"[" + b" " * (MIB - 1)

    def sized() -> str:
        with t.connect() as sock:
            sock.sendall(t.head("POST", "/v2/images", {**headers, "Content-Length": str(size)}))
            push(sock, repeated(piece, size))
            return answer(sock, 30)

    def chunked() -> str:
        with t.connect() as sock:
            sock.sendall(t.head("POST", "/v2/images", {**headers, "Transfer-Encoding": "chunked"}))
            push(sock, repeated(f"{len(piece):x}\r\n".encode() + piece + b"\r\n", size))
            return answer(sock, 30)

    with in_background(sized, chunked) as pending:
        probe()
    return outcome([f.result() for f in pending], ["413", "413"])


@scenario("2")
def huge_property_values(t: Target, probe: Probe) -> Outcome:
    big = t.scale.of(100 * MIB, 4 * MIB)
    with (
        t.client(member_of(new_project())) as api,
        in_background(
            lambda: api.post("/v2/images", json={"name": "big", "x_big": "a" * big}),
            lambda: api.post("/v2/images", json={"name": "long", "x_long": "a" * 70000}),
        ) as pending,
    ):
        probe()
    return outcome([status(f.result()) for f in pending], ["413", "400"])


@scenario("2", backends=SQLITE)
def huge_patches(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    image_id = t.image(member)
    ops = [
        {"op": "add", "path": f"/p{i}", "value": "v"} for i in range(t.scale.of(200_000, 20_000))
    ]
    with (
        t.client(member, headers={"Content-Type": PATCH_V21}) as api,
        in_background(
            lambda: api.patch(f"/v2/images/{image_id}", content=json.dumps(ops)),
            lambda: api.patch(f"/v2/images/{uuid.uuid4()}", content=json.dumps(ops)),
        ) as pending,
    ):
        probe()
    return outcome([status(f.result()) for f in pending], ["413", "413"])


@server_layer("4")
def endless_headers(t: Target, probe: Probe) -> Outcome:
    size, count = t.scale.of(150 * MIB, 4 * MIB), t.scale.of(6, 3)
    line = b"X-Padding: " + b"a" * (64 * 1024) + b"\r\n"

    def endless() -> str:
        with t.connect() as sock:
            sock.sendall(f"GET /v2/images HTTP/1.1\r\nHost: 127.0.0.1:{t.server.port}\r\n".encode())
            push(sock, repeated(line, size))
            return answer(sock, 5)

    with in_background(*(endless for _ in range(count))) as pending:
        probe()
    return outcome(distinct([f.result() for f in pending]), ["431"])


# -- 3, 18: connections that hold on -----------------------------------------------


@server_layer("3", SKYLENS_SERVER_BODY_READ_TIMEOUT_SECONDS="2")
def stalled_uploads(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    count = t.scale.of(40, 8)
    ids = [t.image(member, name=f"stalled-{i}") for i in range(count)]
    headers = {
        **member.headers,
        "Content-Type": "application/octet-stream",
        "Content-Length": str(1 << 30),
    }
    with sockets(count, t) as opened:
        for sock, image_id in zip(opened, ids, strict=True):
            sock.sendall(t.head("PUT", f"/v2/images/{image_id}/file", headers) + b"x")
        time.sleep(0.5)
        probe()
        ended = until_ended(opened, 15)
    return outcome(distinct(ended), ["ended"])


@server_layer("18", SKYLENS_SERVER_HEADER_TIMEOUT_SECONDS="2")
def idle_connections(t: Target, probe: Probe) -> Outcome:
    count = t.scale.of(1100, 300)
    with sockets(count, t) as opened:
        for sock in opened:
            sock.sendall(f"GET /v2/images HTTP/1.1\r\nHost: 127.0.0.1:{t.server.port}\r\n".encode())
        probe()
        ended = until_ended(opened, 15)
    return outcome(distinct(ended), ["ended"])


# -- 5, 6, 7, 14, 19c: identity ----------------------------------------------------


@scenario("5", backends=SQLITE)
def ownerless_create(t: Target, probe: Probe) -> Outcome:
    with t.client(headers={"X-User-Id": "nobody", "X-Roles": "member,reader"}) as api:
        got = [status(api.post("/v2/images", json={"name": "ownerless"}))]
    probe()
    return outcome(got, ["403"])


@scenario("6", backends=SQLITE)
def cross_site_requests(t: Target, probe: Probe) -> Outcome:
    with t.client() as api:
        got = [
            status(
                api.post(
                    "/v2/images",
                    content=b'{"name": "from a web page"}',
                    headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
                )
            ),
            status(api.get("/v2/images", headers={"Host": "rebound.example"})),
        ]
    probe()
    return outcome(got, ["403", "403"])


@contextlib.contextmanager
def _slow_keystone(data_dir: Path, keystone: Any) -> Iterator[Setup]:
    from tests.support.counting_proxy import counting_proxy

    with counting_proxy(keystone.url) as proxy:
        yield Setup(
            env={
                "SKYLENS_AUTH_MODE": "keystone",
                "SKYLENS_KEYSTONE_AUTH_URL": f"{proxy.url}/v3",
                "SKYLENS_KEYSTONE_USERNAME": keystone.service_user,
                "SKYLENS_KEYSTONE_PASSWORD": keystone.passwords[keystone.service_user],
                "SKYLENS_KEYSTONE_PROJECT_NAME": keystone.service_project,
            },
            extra=(keystone, proxy),
        )


@scenario("7", backends=SQLITE, needs_keystone=True, setup=_slow_keystone)
def keystone_flood(t: Target, probe: Probe) -> Outcome:
    keystone, proxy = t.extra
    t.probe_headers = {"X-Auth-Token": keystone.token("alpha-reader")}
    with t.client(headers=t.probe_headers) as cached:
        first = status(cached.get("/v2/images"))  # validated once, then cached
    proxy.delay_validations = 2.0  # a slow Keystone
    try:
        tokens = [f"gAAAAA{uuid.uuid4().hex}" for _ in range(t.scale.of(60, 16))]

        def refused(token: str) -> str:
            with t.client(headers={"X-Auth-Token": token}) as api:
                return status(api.get("/v2/images"))

        with in_background(*(lambda token=token: refused(token) for token in tokens)) as pending:
            time.sleep(0.2)
            probe()
    finally:
        proxy.delay_validations = 0.0
    return outcome([first, *distinct([f.result() for f in pending])], ["200", "401"])


TOKEN = "abuse-suite-token-0123456789"  # noqa: S105 - a test token
_token_file = file_setup(
    "tokens.toml",
    f'[[token]]\nname = "abuse"\ntoken = "{TOKEN}"\n'
    'project = "alpha"\nuser = "bot"\nroles = ["member", "reader"]\n',
    "SKYLENS_AUTH_TOKEN_FILE",
    SKYLENS_AUTH_MODE="tokens",
)


@scenario("14", backends=SQLITE, setup=_token_file)
def deleted_token_file(t: Target, probe: Probe) -> Outcome:
    t.probe_headers = {"X-Auth-Token": TOKEN}
    with t.client(headers=t.probe_headers) as api:
        before = status(api.get("/v2/images"))
        probe()
        t.extra.unlink()
        time.sleep(2)
        after = status(api.get("/v2/images"))
    t.probe_headers = {}  # no identity is left: the probe's list answers 401 from here
    return outcome([before, after], ["200", "401"])


@scenario("19")
def long_project_id(t: Target, probe: Probe) -> Outcome:
    with t.client(headers={"X-Project-Id": "p" * 300, "X-Roles": "member,reader"}) as api:
        got = [status(api.get("/v2/images")), status(api.post("/v2/images", json={}))]
    probe()
    return outcome(got, ["400", "400"])


# -- 8, 9, 11: values the API refuses ----------------------------------------------


@scenario("8")
def numbers_beyond_range(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    image_id = t.image(member, data=b"x" * 1024)
    digits = "9" * 5000
    with t.client(member) as api:
        got = [
            status(api.get(f"/v2/images/{image_id}/file", headers={"Range": f"bytes={digits}-"})),
            status(
                api.get("/v2.1/images", headers={"OpenStack-API-Version": f"compute 2.{digits}"})
            ),
            status(api.get("/v2/images", params={"size_min": "99999999999999999999"})),
            status(api.get("/v2/images", params={"min_disk": str(1 << 64)})),
            status(api.get("/v2.1/images/detail", params={"minDisk": str(1 << 64)})),
        ]
    probe()
    return outcome(got, ["416", "406", "400", "400", "400"])


@scenario("9")
def nul_bytes(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    image_id = t.image(member)
    with t.client(member) as api:
        got = [
            status(api.get(f"/v2/images/{image_id}%00")),
            status(api.get("/v2/images?name=a%00b")),
            status(api.put(f"/v2/images/{image_id}/tags/a%00b")),
            status(api.post("/v2/images", json={"name": "n", "x_\u0000": "v"})),
            status(api.post("/v2/images", json={"name": "n", "x_v": "a\u0000b"})),
            status(api.post(f"/v2/images/{image_id}/members", json={"member": "a\u0000b"})),
            status(
                api.post(f"/v2.1/images/{image_id}/metadata", json={"metadata": {"k": "\u0000"}})
            ),
        ]
    probe()
    return outcome(got, ["400"] * 7)


@scenario("11")
def look_alike_ids(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    image_id = t.image(member)
    with t.client(member) as api:
        got = [
            status(api.post("/v2/images", json={"id": image_id + "\n"})),
            status(api.post("/v2/images", json={"id": image_id.upper()})),
        ]
    probe()
    return outcome(got, ["400", "409"])


# -- 12: a hidden property's existence ---------------------------------------------


_protections = file_setup(
    "protections.conf",
    "[^x_hidden]\ncreate = admin\nread = admin\nupdate = admin\ndelete = admin\n\n"
    "[.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n",
    "SKYLENS_IMAGES_PROPERTY_PROTECTION_FILE",
    SKYLENS_IMAGES_PROPERTY_QUOTA="2",
)


@scenario("12", backends=SQLITE, setup=_protections)
def hidden_property_count(t: Target, probe: Probe) -> Outcome:
    project = new_project()
    image_id = t.image(admin_of(project), x_hidden="secret")
    ops = [{"op": "add", "path": f"/p{i}", "value": "v"} for i in range(3)]
    with t.client(member_of(project), headers={"Content-Type": PATCH_V21}) as api:
        refused = api.patch(f"/v2/images/{image_id}", json=ops)
    probe()
    counted = "Attempted: 3," in refused.text
    return outcome(
        [status(refused), f"counts visible only: {counted}"], ["413", "counts visible only: True"]
    )


# -- 13, 14, 16, 17, 19a: storage --------------------------------------------------


@scenario("13", backends=SQLITE)
def hybrid_installer_iso(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    with tempfile.TemporaryDirectory() as scratch:
        data = make_iso(Path(scratch), "installer.iso", hybrid=True).read_bytes()
    image_id = t.image(member, data=data, disk_format="iso", container_format="bare")
    probe()
    with t.client(member) as api:
        return outcome([api.get(f"/v2/images/{image_id}").json()["status"]], ["active"])


@scenario("14", backends=SQLITE)
def qcow2_declared_ami(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "1M"], check=True)
        data = path.read_bytes()
    image_id = t.image(member, disk_format="ami", container_format="ami")
    with t.client(member, headers={"Content-Type": "application/octet-stream"}) as api:
        got = [status(api.put(f"/v2/images/{image_id}/file", content=data))]
    probe()
    return outcome(got, ["415"])


# A sweep every second, taking what saw no write for a second.
SWEEPING_EVERY_SECOND = env_setup(
    SKYLENS_STORAGE_SWEEP_GRACE_SECONDS="1", SKYLENS_STORAGE_SWEEP_INTERVAL_SECONDS="1"
)


@scenario("16", backends=SQLITE, setup=SWEEPING_EVERY_SECOND)
def slow_upload_and_the_sweep(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    image_id = t.image(member)
    pieces = t.scale.of(8, 5)
    headers = {**member.headers, "Content-Type": "application/octet-stream"}
    with t.connect() as sock:
        sock.sendall(
            t.head("PUT", f"/v2/images/{image_id}/file", {**headers, "Content-Length": str(pieces)})
        )
        for _ in range(pieces):  # slower than the grace period, its lease renewed
            sock.sendall(b"x")
            time.sleep(0.6)
        probe()
        got = [answer(sock, 30)]
    with t.client(member) as api:
        got.append(api.get(f"/v2/images/{image_id}").json()["status"])
    return outcome(got, ["204", "active"])


@scenario("17", backends=SQLITE, setup=SWEEPING_EVERY_SECOND)
def stray_blob_of_a_queued_image(t: Target, probe: Probe) -> Outcome:
    from skylens.storage.keys import image_data_key

    member = member_of(new_project())
    image_id = t.image(member)
    stray = t.server.log.parent / "images" / image_data_key(image_id)
    stray.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the store, aged, then moved in whole: the sweep (grace 1 s) would
    # take a key whose write outlasts the grace on a busy machine before it is aged.
    written = t.server.log.parent / f"stray-{image_id}"
    written.write_bytes(os.urandom(t.scale.of(256, 4) * MIB))  # committed, never activated
    old = time.time() - 3600
    os.utime(written, (old, old))
    os.replace(written, stray)
    probe()
    deadline = time.monotonic() + 15
    while stray.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    with t.client(member) as api:
        state = api.get(f"/v2/images/{image_id}").json()["status"]
    return outcome(
        [f"stray removed: {not stray.exists()}", state], ["stray removed: True", "queued"]
    )


@contextlib.contextmanager
def _tiny_disk(data_dir: Path, _keystone: Any) -> Iterator[Setup]:
    root = data_dir / "tiny"
    root.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(root)], check=True)
    try:
        config = data_dir / "tiny.toml"
        config.write_text(f'[stores.local]\nkind = "file"\nroot = "{root}"\n')
        yield Setup(args=("--config", str(config)))
    finally:
        subprocess.run(["umount", "--lazy", str(root)], check=True)


@scenario("19", backends=SQLITE, setup=_tiny_disk)
def full_disk(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    image_id = t.image(member)
    with t.client(member, headers={"Content-Type": "application/octet-stream"}) as api:
        got = [status(api.put(f"/v2/images/{image_id}/file", content=os.urandom(3 * MIB)))]
    probe()
    return outcome(got, ["413"])


# -- 19b, 20: the database ---------------------------------------------------------


@scenario("19", backends=POSTGRESQL, probe_answers=frozenset({"200", "503"}))
def database_outage(t: Target, probe: Probe) -> Outcome:
    from tests.support.servers import database_away

    member = member_of(new_project())
    with t.client(member) as api, database_away(t.server):
        answers = [api.get("/v2/images"), api.post("/v2/images", json={}), api.get("/v2.1/images")]
        probe()
        got = [f"{r.status_code} Retry-After {r.headers.get('retry-after')}" for r in answers]
    return outcome(distinct(got), ["503 Retry-After 2"])


@scenario("20")
def concurrent_patches(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    image_id = t.image(member)
    count = t.scale.of(90, 30)

    def patch(index: int) -> str:
        with t.client(member, headers={"Content-Type": PATCH_V21}) as api:
            op = [{"op": "add", "path": f"/p{index}", "value": "v"}]
            return status(api.patch(f"/v2/images/{image_id}", json=op))

    with in_background(*(lambda i=i: patch(i) for i in range(count))) as pending:
        probe()
    with t.client(member) as api:
        image = api.get(f"/v2/images/{image_id}").json()
    kept = sum(f"p{index}" in image for index in range(count))
    got = [*distinct([f.result() for f in pending]), f"{kept} kept"]
    return outcome(got, ["200", f"{count} kept"])


# -- 21: noise ---------------------------------------------------------------------


@server_layer("21")
def disconnects_and_bad_chunks(t: Target, probe: Probe) -> Outcome:
    member = member_of(new_project())
    logged_before = len(t.server.log.read_bytes())
    headers = {**member.headers, "Content-Type": "application/octet-stream"}
    for _ in range(3):
        image_id = t.image(member)
        with t.connect() as sock:  # gone mid-upload
            sock.sendall(
                t.head(
                    "PUT", f"/v2/images/{image_id}/file", {**headers, "Content-Length": str(MIB)}
                )
                + b"x" * 1000
            )
        with t.connect() as sock:  # a chunk size that is not hexadecimal
            sock.sendall(
                t.head(
                    "PUT",
                    f"/v2/images/{image_id}/file",
                    {**headers, "Transfer-Encoding": "chunked"},
                )
                + b"zz\r\nabc\r\n"
            )
            answer(sock, 5)
    probe()
    time.sleep(0.5)
    logged = t.server.log.read_bytes()[logged_before:].decode(errors="replace")
    quiet = "Traceback" not in logged and "unhandled error" not in logged
    with t.client(member) as api:
        document = api.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    declared = document["paths"]["/v2.1/images/{image_id}"]["get"]["responses"]["404"]
    reference = declared["content"]["application/json"]["schema"]["$ref"]
    nova = schemas[reference.rsplit("/", 1)[-1]] != schemas["error"]
    return outcome(
        [f"log quiet: {quiet}", f"compute errors as Nova's: {nova}"],
        ["log quiet: True", "compute errors as Nova's: True"],
    )
