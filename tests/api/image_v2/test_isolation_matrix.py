"""The tenant-isolation matrix: every operation x visibility x caller, as Glance answers.

The cells are the product of the three axes (17 operations x 6 visibilities x 6
callers = 612, on each backend), e.g. `test_isolation[sqlite-show-shared_pending-stranger]`.
What each should answer comes from `tests.support.isolation_oracle`, written from
Glance's policy defaults, visibility rule and controllers, never from Skylens. Each cell
checks the status and the exact error, then what the answer did: a success took effect,
a refused write lost nothing.

Every image is made through the API by its owning project. Cells that should change
nothing share one image per visibility and state (per backend and xdist worker); a
cell whose success changes the image gets one of its own.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.errors import assert_error
from tests.support.identities import Identity, admin_of, member_of, new_project, reader_of
from tests.support.images import PATCH_V21, create_image
from tests.support.isolation_oracle import CALLERS, ORACLE, VISIBILITIES, Outcome, expected
from tests.support.servers import RunningServer

DATA = b"isolation matrix\n"
TAG = "matrix"
OCTET = {"Content-Type": "application/octet-stream"}

# Who plays each caller: the project it acts in, and its identity there.
PLAYERS: dict[str, tuple[str, Callable[[str], Identity]]] = {
    "owner": ("owning", member_of),
    "reader": ("owning", reader_of),
    "member": ("member", member_of),
    "member_reader": ("member", reader_of),
    "stranger": ("other", member_of),
    "admin": ("admin", admin_of),
}


# -- one world per server: projects, clients, and the shared read-only images -----------------


@dataclasses.dataclass
class World:
    projects: dict[str, str]  # owning, member, other, admin, bystander
    clients: dict[str, httpx.Client]  # every caller, plus `owner_admin` (makes public images)
    # The shared images by (visibility, state); the unique name each bears, to list it
    # by; and how the owner saw each when it was made.
    images: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    names: dict[str, str] = dataclasses.field(default_factory=dict)
    made: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def owner(self) -> httpx.Client:
        return self.clients["owner"]

    def image(self, visibility: str, state: str = "active", name: str | None = None) -> str:
        """A new image of the owning project in `visibility`: shared ones have the member
        project's membership in the axis's status and a pending bystander; `state` is
        queued, active (holding DATA) or deactivated."""
        image_visibility, member_status = VISIBILITIES[visibility]
        creator = self.clients["owner_admin" if image_visibility == "public" else "owner"]
        image_id: str = create_image(
            creator,
            name=name or f"matrix-{visibility}",
            visibility=image_visibility,
            disk_format="raw",
            container_format="bare",
            tags=[TAG],
        )["id"]
        if member_status is not None:
            for project in ("member", "bystander"):
                added = self.owner.post(
                    f"/v2/images/{image_id}/members", json={"member": self.projects[project]}
                )
                assert added.status_code == 200, added.text
            if member_status != "pending":
                response = self.clients["member"].put(
                    f"/v2/images/{image_id}/members/{self.projects['member']}",
                    json={"status": member_status},
                )
                assert response.status_code == 200, response.text
        if state != "queued":
            uploaded = self.owner.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET)
            assert uploaded.status_code == 204, uploaded.text
        if state == "deactivated":
            done = self.owner.post(f"/v2/images/{image_id}/actions/deactivate")
            assert done.status_code == 204, done.text
        return image_id

    def shared_image(self, visibility: str, state: str) -> str:
        """The image of `visibility` in `state` that the cells which should change nothing
        share; each bears a name of its own to list by."""
        key = (visibility, state)
        if key not in self.images:
            name = f"matrix-{visibility}-{uuid.uuid4().hex}"
            image_id = self.image(visibility, state, name=name)
            self.images[key] = image_id
            self.names[image_id] = name
            self.made[image_id] = self.snapshot(image_id)
        return self.images[key]

    def forget(self, visibility: str, state: str) -> None:
        """Make the next cell build a new shared image: a wrongly allowed write spoilt it."""
        self.images.pop((visibility, state), None)

    def show(self, image_id: str) -> dict[str, Any]:
        response = self.owner.get(f"/v2/images/{image_id}")
        assert response.status_code == 200, response.text
        image: dict[str, Any] = response.json()
        return image

    def members(self, image_id: str) -> dict[str, str]:
        response = self.owner.get(f"/v2/images/{image_id}/members")
        assert response.status_code == 200, response.text
        return {each["member_id"]: each["status"] for each in response.json()["members"]}

    def snapshot(self, image_id: str) -> dict[str, Any]:
        """What a refused write must leave as it was, as the owner sees it."""
        image = self.show(image_id)
        kept = {key: image[key] for key in ("name", "status", "visibility", "size", "checksum")}
        kept["tags"] = sorted(image["tags"])
        if image["visibility"] == "shared":
            kept["members"] = self.members(image_id)
        return kept


class Worlds:
    def __init__(self) -> None:
        self._worlds: dict[str, World] = {}
        self._clients: list[httpx.Client] = []

    def of(self, server: RunningServer) -> World:
        if server.url not in self._worlds:
            self._worlds[server.url] = self._build(server)
        return self._worlds[server.url]

    def _build(self, server: RunningServer) -> World:
        projects = {name: new_project() for name in ("owning", "member", "other", "admin")}
        projects["bystander"] = new_project()
        identities = {
            caller: make(projects[project]) for caller, (project, make) in PLAYERS.items()
        }
        identities["owner_admin"] = admin_of(projects["owning"])
        clients = {name: self._client(server, who) for name, who in identities.items()}
        return World(projects, clients)

    def _client(self, server: RunningServer, identity: Identity) -> httpx.Client:
        headers = {**identity.headers, "Accept": "application/json"}
        client = httpx.Client(base_url=server.url, headers=headers, timeout=30, verify=False)  # noqa: S501
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture(scope="module")
def worlds() -> Iterator[Worlds]:
    built = Worlds()
    yield built
    built.close()


# -- the operations: their request, and what their success leaves behind ----------------------


@dataclasses.dataclass(frozen=True)
class Cell:
    operation: str
    visibility: str
    caller: str

    @property
    def id(self) -> str:
        return f"{self.operation}-{self.visibility}-{self.caller}"

    @property
    def member_status(self) -> str | None:
        return VISIBILITIES[self.visibility][1]


Request = Callable[[httpx.Client, World, Cell, str], httpx.Response]
Effect = Callable[[World, Cell, str, httpx.Response], None]


@dataclasses.dataclass(frozen=True)
class Operation:
    request: Request
    state: str = "active"  # of the image it acts on: queued, active or deactivated
    writes: bool = False  # asks for a change: a refusal must leave the image as it was
    changes: bool = False  # a success changes the image: it gets an image of its own
    effect: Effect | None = None  # checks what a success did


def _path(world: World, template: str, image_id: str) -> str:
    return template.format(id=image_id, member=world.projects["member"])


def _get(template: str) -> Request:
    return lambda client, world, cell, image_id: client.get(_path(world, template, image_id))


def _put(template: str) -> Request:
    return lambda client, world, cell, image_id: client.put(_path(world, template, image_id))


def _post(template: str) -> Request:
    return lambda client, world, cell, image_id: client.post(_path(world, template, image_id))


def _delete(template: str) -> Request:
    return lambda client, world, cell, image_id: client.delete(_path(world, template, image_id))


def _list(filters: Callable[[Cell], dict[str, str]]) -> Request:
    """GET /v2/images narrowed by the image's own name, which only it bears."""

    def send(client: httpx.Client, world: World, cell: Cell, image_id: str) -> httpx.Response:
        params = {"name": world.names[image_id], **filters(cell)}
        return client.get("/v2/images", params=params)

    return send


def _patch_name(client: httpx.Client, world: World, cell: Cell, image_id: str) -> httpx.Response:
    operations = [{"op": "replace", "path": "/name", "value": "patched"}]
    headers = {"Content-Type": PATCH_V21}
    return client.patch(f"/v2/images/{image_id}", json=operations, headers=headers)


def _upload(client: httpx.Client, world: World, cell: Cell, image_id: str) -> httpx.Response:
    return client.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET)


def _add_member(client: httpx.Client, world: World, cell: Cell, image_id: str) -> httpx.Response:
    return client.post(f"/v2/images/{image_id}/members", json={"member": new_project()})


def _set_status(client: httpx.Client, world: World, cell: Cell, image_id: str) -> httpx.Response:
    status = cell.member_status or "accepted"  # images that are not shared have no members
    return client.put(
        _path(world, "/v2/images/{id}/members/{member}", image_id), json={"status": status}
    )


def _expect_show(world: World, cell: Cell, image_id: str, response: httpx.Response) -> None:
    assert response.json()["id"] == image_id


def _expect_name(world: World, cell: Cell, image_id: str, response: httpx.Response) -> None:
    assert response.json()["name"] == "patched"
    assert world.show(image_id)["name"] == "patched"


def _expect_gone(world: World, cell: Cell, image_id: str, response: httpx.Response) -> None:
    assert world.owner.get(f"/v2/images/{image_id}").status_code == 404


def _expect_status(status: str) -> Effect:
    def check(world: World, cell: Cell, image_id: str, response: httpx.Response) -> None:
        assert world.show(image_id)["status"] == status

    return check


def _expect_data(world: World, cell: Cell, image_id: str, response: httpx.Response) -> None:
    assert response.content == DATA


def _expect_tags(*tags: str) -> Effect:
    def check(world: World, cell: Cell, image_id: str, response: httpx.Response) -> None:
        assert sorted(world.show(image_id)["tags"]) == list(tags)

    return check


def _expect_membership(world: World, cell: Cell, image_id: str, response: httpx.Response) -> None:
    body = response.json()
    assert (body["member_id"], body["status"]) == (world.projects["member"], cell.member_status)


def _expect_added(world: World, cell: Cell, image_id: str, response: httpx.Response) -> None:
    added = response.json()["member_id"]
    assert world.members(image_id)[added] == "pending"


def _expect_removed(world: World, cell: Cell, image_id: str, response: httpx.Response) -> None:
    assert world.projects["member"] not in world.members(image_id)


def _change(request: Request, effect: Effect, state: str = "queued") -> Operation:
    """A write whose success changes the image."""
    return Operation(request, state, writes=True, changes=True, effect=effect)


OPERATIONS: dict[str, Operation] = {
    "show": Operation(_get("/v2/images/{id}"), effect=_expect_show),
    "list": Operation(_list(lambda cell: {})),
    "list_visibility": Operation(
        _list(lambda cell: {"visibility": VISIBILITIES[cell.visibility][0]})
    ),
    "list_member_status_all": Operation(_list(lambda cell: {"member_status": "all"})),
    "patch": _change(_patch_name, _expect_name),
    "delete": _change(_delete("/v2/images/{id}"), _expect_gone),
    "upload": _change(_upload, _expect_status("active")),
    "download": Operation(_get("/v2/images/{id}/file"), effect=_expect_data),
    "tag_add": _change(_put("/v2/images/{id}/tags/added"), _expect_tags("added", TAG)),
    "tag_delete": _change(_delete("/v2/images/{id}/tags/" + TAG), _expect_tags()),
    "members_list": Operation(_get("/v2/images/{id}/members")),
    "member_show": Operation(_get("/v2/images/{id}/members/{member}"), effect=_expect_membership),
    "member_add": _change(_add_member, _expect_added),
    # Sets the member project's membership to the status it already has: a write whose
    # success changes nothing, so it runs on the shared images.
    "member_status": Operation(_set_status, writes=True, effect=_expect_membership),
    "member_delete": _change(_delete("/v2/images/{id}/members/{member}"), _expect_removed),
    "deactivate": _change(
        _post("/v2/images/{id}/actions/deactivate"), _expect_status("deactivated"), "active"
    ),
    "reactivate": _change(
        _post("/v2/images/{id}/actions/reactivate"), _expect_status("active"), "deactivated"
    ),
}

CELLS = [Cell(*axes) for axes in itertools.product(OPERATIONS, VISIBILITIES, CALLERS)]


def _assert_answer(response: httpx.Response, outcome: Outcome, image_id: str) -> None:
    if outcome.message is not None:
        assert_error(response, outcome.status, outcome.message.format(id=image_id))
    else:
        assert response.status_code == outcome.status, response.text


# -- the matrix -------------------------------------------------------------------------------


def test_the_matrix_covers_every_operation_of_the_oracle() -> None:
    assert set(OPERATIONS) == set(ORACLE)
    assert len(CELLS) == len(ORACLE) * len(VISIBILITIES) * len(CALLERS)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_the_players_are_the_oracles_callers(caller: str) -> None:
    """Each identity has the roles the oracle assumes, in the project it assumes."""
    project, make = PLAYERS[caller]
    relation = project if project in ("owning", "member") else "other"

    assert frozenset(make(new_project()).roles) == CALLERS[caller].roles
    assert relation == CALLERS[caller].project


@pytest.mark.parametrize("cell", CELLS, ids=lambda cell: cell.id)
def test_isolation(server: RunningServer, worlds: Worlds, cell: Cell) -> None:
    world = worlds.of(server)
    operation = OPERATIONS[cell.operation]
    outcome = expected(cell.operation, cell.visibility, cell.caller)
    refused = outcome.status >= 400
    if operation.changes and not refused:
        image_id = world.image(cell.visibility, operation.state)
    else:
        image_id = world.shared_image(cell.visibility, operation.state)

    response = operation.request(world.clients[cell.caller], world, cell, image_id)
    if operation.writes and refused and response.is_success:
        world.forget(cell.visibility, operation.state)

    _assert_answer(response, outcome, image_id)
    if outcome.listed is not None:
        listed = [image["id"] for image in response.json()["images"]]
        assert listed == ([image_id] if outcome.listed else [])
    elif outcome.members:
        seen = {each["member_id"] for each in response.json()["members"]}
        assert seen == {world.projects[name] for name in outcome.members}
    elif operation.writes and refused:
        assert world.snapshot(image_id) == world.made[image_id], "the refused write changed it"
    elif not refused and operation.effect is not None:
        operation.effect(world, cell, image_id, response)
