"""Replaying the recorded Glance 33 exchanges (tests/data/glance-33-exchanges/).

Each file holds one request as a Glance 33 server received it and that server's
answer (README.md there). They depend on each other in order: the same images are
created, changed, shared and deleted. `Replay` sends them to a Skylens in the same
order, swapping the ids Glance gave the images it created for the ids Skylens gave
the same creates, and `compare` says where an answer differs from Glance's: its
status, its key headers and its body's shape (keys, recursively, and JSON value
types), never values that differ on every run (ids, dates, request ids).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

# Group of each exchange, by the start of its name (README.md: "Groups, by name prefix").
_GROUP_PREFIXES: tuple[tuple[str, str], ...] = (
    ("root", "versions"),
    ("versions", "versions"),
    ("v2-root", "versions"),
    ("v2-images-noauth", "errors"),
    ("method-not-allowed", "errors"),
    ("unknown-path", "errors"),
    ("head-image", "errors"),
    ("schema-task", "tasks"),
    ("schema-metadefs", "metadefs"),
    ("schema-", "schemas"),
    ("info-import", "import"),
    ("info-stores", "stores"),
    ("info-usage", "usage"),
    ("create-", "create"),
    ("get-", "get"),
    ("image-get-", "members"),
    ("image-tasks", "tasks"),
    ("list-", "list"),
    ("patch-", "patch"),
    ("unprotect", "patch"),
    ("tag-", "tags"),
    ("download", "download"),
    ("upload", "upload"),
    ("deactivate", "actions"),
    ("reactivate", "actions"),
    ("action-", "actions"),
    ("member-", "members"),
    ("members-", "members"),
    ("delete-from-store", "stores"),
    ("delete", "delete"),
    ("import-", "import"),
    ("stage", "import"),
    ("tasks-", "tasks"),
    ("task-", "tasks"),
    ("cache-", "cache"),
    ("metadefs-", "metadefs"),
    ("healthcheck", "healthcheck"),
    ("cors-", "cors"),
)

# What Skylens serves: everything but /healthcheck's body (the cache group is a
# Glance without a cache, which Skylens answers as).
SERVED_GROUPS = frozenset(
    {
        "import",
        "tasks",
        "versions",
        "errors",
        "schemas",
        "stores",
        "usage",
        "create",
        "get",
        "list",
        "patch",
        "tags",
        "download",
        "upload",
        "actions",
        "members",
        "delete",
        "metadefs",
        "cache",
        "cors",
    }
)

# The headers compared, and how: "value" (equal, ignoring case), "present" (both or
# neither), "methods" (the same set of methods).
COMPARED_HEADERS: Mapping[str, str] = {
    "content-type": "value",
    "location": "present",
    "openstack-image-store-ids": "value",
    "allow": "methods",
    "accept-patch": "value",
    "content-range": "value",
    "content-md5": "value",
    "x-openstack-request-id": "present",
    "openstack-image-import-methods": "value",
}

# Where the recording's web-download fetched `blob.img` from (exchange 227).
RECORDED_WEB_SOURCE = "http://127.0.0.1:9393/"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Headers that only keystonemiddleware reads; Skylens's trusted headers need none.
_NOT_SENT = frozenset({"x-identity-status", "transfer-encoding"})


def group_of(name: str) -> str:
    for prefix, group in _GROUP_PREFIXES:
        if name.startswith(prefix):
            return group
    raise ValueError(f"exchange {name!r} belongs to no known group")


@dataclasses.dataclass(frozen=True)
class Answer:
    """A response, recorded or received, reduced to what is compared."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body_kind: str  # "json", "text", "base64" or "none"
    body: Any

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        headers = tuple(response.headers.multi_items())
        if not response.content:
            return cls(response.status_code, headers, "none", None)
        if response.headers.get("content-type", "").startswith("application/json"):
            return cls(response.status_code, headers, "json", response.json())
        return cls(response.status_code, headers, "text", response.content)


@dataclasses.dataclass(frozen=True)
class Exchange:
    number: int
    name: str
    group: str
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes | None
    chunked: bool
    recorded: Answer

    @property
    def creates_image(self) -> bool:
        return self.method == "POST" and self.path == "/v2/images"


def load_exchanges(directory: Path) -> list[Exchange]:
    """Every exchange in `directory`, in the order they were recorded."""
    index = json.loads((directory / "index.json").read_text())
    return [
        _exchange(json.loads((directory / sample["file"]).read_text()), sample["file"])
        for sample in index["samples"]
    ]


def _exchange(raw: Mapping[str, Any], file: str) -> Exchange:
    request, response = raw["request"], raw["response"]
    body = response["body"]
    if response["body_kind"] == "text":
        body = body.encode()
    return Exchange(
        number=int(file.split("-", 1)[0]),
        name=raw["name"],
        group=group_of(raw["name"]),
        method=request["method"],
        path=request["path"],
        headers=request["headers"],
        body=_request_body(request["body_kind"], request["body"]),
        chunked="Transfer-Encoding" in request["headers"],
        recorded=Answer(
            response["status"],
            tuple((name, value) for name, value in response["headers"]),
            response["body_kind"],
            body,
        ),
    )


def _request_body(kind: str, body: Any) -> bytes | None:
    if kind == "none":
        return None
    if kind == "json":
        return json.dumps(body).encode()
    if kind == "base64":
        return base64.b64decode(body)
    return str(body).encode()


class Ids:
    """The ids of the images created in the recording, and of the same images here."""

    def __init__(self) -> None:
        self.served: dict[str, str] = {}  # recorded id -> Skylens's id
        self.unreplayed: set[str] = set()  # created by exchanges not replayed

    def learn(self, exchange: Exchange, answer: Answer | None) -> None:
        self._learn_tasks(exchange, answer)
        if not exchange.creates_image or exchange.recorded.status != 201:
            return
        recorded_id = exchange.recorded.body["id"]
        if answer is None:
            self.unreplayed.add(recorded_id)
        elif answer.status == 201:
            self.served[recorded_id] = answer.body["id"]

    def _learn_tasks(self, exchange: Exchange, answer: Answer | None) -> None:
        """An image's tasks (`GET /v2/images/{id}/tasks`) name the ids of the tasks
        the recording's imports created, and of the same tasks here, in order."""
        if answer is None or not (exchange.method == "GET" and exchange.path.endswith("/tasks")):
            return
        if answer.body_kind != "json" or exchange.recorded.body_kind != "json":
            return
        recorded, served = exchange.recorded.body.get("tasks"), answer.body.get("tasks")
        if isinstance(recorded, list) and isinstance(served, list) and len(recorded) == len(served):
            for was, now in zip(recorded, served, strict=True):
                self.served[was["id"]] = now["id"]

    def depends_on_unreplayed(self, exchange: Exchange) -> bool:
        return any(found in self.unreplayed for found in _UUID.findall(exchange.path))

    def remap(self, text: str) -> str:
        return _UUID.sub(lambda match: self.served.get(match[0], match[0]), text)


def send(client: httpx.Client, exchange: Exchange, ids: Ids, web_source: str = "") -> Answer:
    """Send the recorded request, with its image ids remapped, and only its headers;
    a web-download from the recording's web server goes to `web_source` instead."""
    headers = {
        name: ids.remap(value)
        for name, value in exchange.headers.items()
        if name.lower() not in _NOT_SENT
    }
    body = exchange.body
    if web_source and body is not None:
        body = body.replace(RECORDED_WEB_SOURCE.encode(), web_source.encode())
    content: bytes | Iterator[bytes] | None = body
    if exchange.chunked and body is not None:
        content = iter([body])
    request = client.build_request(
        exchange.method, ids.remap(exchange.path), headers=headers, content=content
    )
    if "accept" not in {name.lower() for name in headers}:
        del request.headers["Accept"]  # httpx sends `*/*`; Glance's error format follows it
    return Answer.of(client.send(request))


@dataclasses.dataclass(frozen=True)
class Replayed:
    exchange: Exchange
    answer: Answer
    differences: list[Difference]


def replay_all(
    client: httpx.Client, exchanges: Sequence[Exchange], web_source: str = ""
) -> list[Replayed]:
    """Send, in order, every exchange of a served group that needs no image created by
    an exchange of another group; compare each answer with Glance's. An accepted
    import runs in the background: the next request waits until it has ended (the
    recording's next request came after Glance's import had ended too). `web_source`
    serves what the recording's web server served (`RECORDED_WEB_SOURCE`)."""
    ids = Ids()
    replayed = []
    for exchange in exchanges:
        if exchange.group not in SERVED_GROUPS or ids.depends_on_unreplayed(exchange):
            ids.learn(exchange, None)
            continue
        answer = send(client, exchange, ids, web_source)
        ids.learn(exchange, answer)
        if answer.status == 202 and exchange.path.endswith("/import"):
            wait_for_import(client, ids.remap(exchange.path).removesuffix("/import"), exchange)
        replayed.append(Replayed(exchange, answer, compare(exchange, answer, ids)))
    return replayed


def wait_for_import(client: httpx.Client, image_path: str, exchange: Exchange) -> None:
    """Until the image's import lock is gone and its tasks have recorded their end."""
    headers = {k: v for k, v in exchange.headers.items() if k.lower() not in _NOT_SENT}
    headers.pop("Content-Type", None)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        image = client.get(image_path, headers=headers).json()
        tasks = client.get(f"{image_path}/tasks", headers=headers).json()["tasks"]
        ended = all(task["status"] in ("success", "failure") for task in tasks)
        if "os_glance_import_task" not in image and ended:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the import of {image_path} did not end")


def recording_config(directory: Path, web_port: int) -> Path:
    """A Skylens configured like the recorded Glance: two file stores, `fast` (the
    default) and `cheap`; identity from trusted headers (the default mode); web-download
    allowed from the loopback web server on `web_port` (and only from it, as the
    recorded Glance's filter allowed only its own)."""
    # The recorded Glance never ran `glance-manage db load_metadefs`: no catalogue.
    lines = ["[metadefs]", "load_on_first_start = false", "", "[storage]", 'default_store = "fast"']
    lines += ["", "[import_filtering]", 'allowed_hosts = ["127.0.0.1"]']
    lines.append(f"allowed_ports = [{web_port}]")
    for name, description in (("fast", "Fast file store"), ("cheap", "Cheap file store")):
        lines += ["", f"[stores.{name}]", 'kind = "file"', f'description = "{description}"']
        lines.append(f"root = {json.dumps(str(directory / 'images' / name))}")
    path = directory / "recording.toml"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclasses.dataclass(frozen=True)
class Difference:
    aspect: str  # "status", "header" or "shape"
    text: str


def compare(exchange: Exchange, answer: Answer, ids: Ids) -> list[Difference]:
    """Where Skylens's `answer` differs from Glance's recorded one."""
    expected = exchange.recorded
    found = []
    if answer.status != expected.status:
        found.append(Difference("status", f"{answer.status}, Glance {expected.status}"))
    found += [Difference("header", text) for text in _header_differences(expected, answer)]
    paged = bool(re.search(r"[?&](limit|marker)=", exchange.path))
    found += [Difference("shape", text) for text in _body_differences(expected, answer, ids, paged)]
    return found


def _header_differences(expected: Answer, answer: Answer) -> Iterator[str]:
    for name, how in COMPARED_HEADERS.items():
        want, got = expected.header(name), answer.header(name)
        if how == "present":
            same = (want is None) == (got is None)
        elif how == "methods":
            same = _methods(want) == _methods(got)
        else:
            same = (want or "").lower() == (got or "").lower()
        if not same:
            yield f"{name}: {got!r}, Glance {want!r}"


def _methods(value: str | None) -> frozenset[str]:
    return frozenset(method.strip() for method in (value or "").split(",") if method.strip())


def _body_differences(expected: Answer, answer: Answer, ids: Ids, paged: bool) -> Iterator[str]:
    if expected.body_kind != answer.body_kind:
        yield f"body {answer.body_kind}, Glance {expected.body_kind}"
    elif expected.body_kind == "json":
        yield from shape_differences(expected.body, answer.body, ids, "body", paged)
    elif expected.body_kind == "text" and expected.status < 300 and expected.body != answer.body:
        # Image data: the very bytes uploaded.
        yield f"data of {len(answer.body)} bytes, Glance {len(expected.body)}"


def shape_differences(
    expected: Any, actual: Any, ids: Ids, where: str, paged: bool = False
) -> Iterator[str]:
    """Where `actual` is not shaped like `expected`: JSON types, the keys of every
    object, and which images a list holds (paired by id; on a page, only how many,
    since images created in the same second may come in either order)."""
    if _is_image(expected):
        where = f"image {expected['id']}"  # the recorded id: stable between runs
    if _kind(expected) != _kind(actual):
        yield f"{where}: {_kind(actual)}, Glance {_kind(expected)}"
        return
    if isinstance(expected, dict):
        for key in sorted(expected.keys() - actual.keys()):
            yield f"{where}: no {key!r}"
        for key in sorted(actual.keys() - expected.keys()):
            yield f"{where}: extra {key!r}"
        for key in sorted(expected.keys() & actual.keys()):
            yield from shape_differences(expected[key], actual[key], ids, f"{where}.{key}", paged)
    elif isinstance(expected, list):
        yield from _list_differences(expected, actual, ids, where, paged)


def _list_differences(
    expected: Sequence[Any], actual: Sequence[Any], ids: Ids, where: str, paged: bool
) -> Iterator[str]:
    if any(_is_image(item) for item in [*expected, *actual]):
        wanted = [item for item in expected if item["id"] not in ids.unreplayed]
        by_id = {item["id"]: item for item in actual}
        if paged and len(wanted) != len(actual):
            yield f"{where}: {len(actual)} images, Glance {len(wanted)}"
        for item in wanted:
            served = by_id.pop(ids.served.get(item["id"], item["id"]), None)
            if served is not None:
                yield from shape_differences(item, served, ids, where)
            elif not paged:
                yield f"{where}: no image {item['id']}"
        if not paged:
            yield from (f"{where}: extra image {item['name']!r}" for item in by_id.values())
    elif len(expected) == len(actual):
        # Other lists (versions, stores, members, tags), element by element.
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            yield from shape_differences(want, got, ids, f"{where}[{index}]")
    elif expected and actual:
        for index, item in enumerate(actual):
            yield from shape_differences(expected[0], item, ids, f"{where}[{index}]")
    elif bool(expected) != bool(actual):
        yield f"{where}: {len(actual)} items, Glance {len(expected)}"


def _is_image(value: Any) -> bool:
    return isinstance(value, dict) and str(value.get("self", "")).startswith("/v2/images/")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
