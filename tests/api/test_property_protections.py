"""Property protections (Glance's roles format) over real HTTP.

One server per backend, started with `images.property_protection_file` naming
the file in `tests.support.protections`; callers are told apart by their roles
(trusted headers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from tests.support.errors import assert_error
from tests.support.identities import Identity, admin_of, member_of, new_project, reader_of
from tests.support.protections import ENV, protected_server
from tests.support.servers import RunningServer

PATCH = "application/openstack-images-v2.1-json-patch"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def protected(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp(f"protections-{request.param}")
    with protected_server(data_dir, request.param) as server:
        yield server


@pytest.fixture
def client(protected: RunningServer) -> Iterator[httpx.Client]:
    # Plain HTTP on loopback: no TLS trust store to load.
    with httpx.Client(base_url=protected.url, timeout=30, verify=False) as http:  # noqa: S501
        yield http


def _as(identity: Identity, **headers: str) -> dict[str, str]:
    return {**identity.headers, "Accept": "application/json", **headers}


def _create(client: httpx.Client, identity: Identity, **body: object) -> httpx.Response:
    return client.post("/v2/images", json={"name": "protected", **body}, headers=_as(identity))


def _created(client: httpx.Client, identity: Identity, **body: object) -> str:
    response = _create(client, identity, **body)
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def _patch(
    client: httpx.Client, identity: Identity, image_id: str, *ops: Mapping[str, object]
) -> httpx.Response:
    return client.patch(
        f"/v2/images/{image_id}", json=list(ops), headers=_as(identity, **{"Content-Type": PATCH})
    )


def _show(client: httpx.Client, identity: Identity, image_id: str) -> dict[str, object]:
    response = client.get(f"/v2/images/{image_id}", headers=_as(identity))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.fixture
def project() -> str:
    return new_project()


@pytest.fixture
def admin(project: str) -> Identity:
    return admin_of(project)


@pytest.fixture
def member(project: str) -> Identity:
    return member_of(project)


@pytest.fixture
def reader(project: str) -> Identity:
    return reader_of(project)


# -- create -----------------------------------------------------------------


def test_create_needs_the_create_role_for_each_property(
    client: httpx.Client, admin: Identity, member: Identity
) -> None:
    created = _create(client, member, x_team="blue")
    assert created.status_code == 201, created.text
    assert created.json()["x_team"] == "blue"

    refused = _create(client, member, x_team="blue", x_billing_code="42")
    assert_error(refused, 403, "Attribute 'x_billing_code' is reserved.")

    by_admin = _create(client, admin, x_billing_code="42")
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.json()["x_billing_code"] == "42"


def test_a_property_no_section_matches_is_refused_to_everyone(
    client: httpx.Client, admin: Identity
) -> None:
    assert_error(
        _create(client, admin, os_distro="ubuntu"), 403, "Attribute 'os_distro' is reserved."
    )


def test_any_role_and_no_role(
    client: httpx.Client, admin: Identity, member: Identity, reader: Identity
) -> None:
    # `@`: roles the section does not name may (the section names none).
    created = _create(client, member, x_open_notes="hello")
    assert created.status_code == 201, created.text
    assert _show(client, reader, created.json()["id"])["x_open_notes"] == "hello"

    # `!` refuses admins too: Glance's roles format has no admin exemption.
    assert_error(
        _create(client, admin, x_sealed_key="k"), 403, "Attribute 'x_sealed_key' is reserved."
    )


def test_core_attributes_are_never_protected(client: httpx.Client, member: Identity) -> None:
    # No section matches `name` or `min_ram`: as properties they would be refused.
    image_id = _created(client, member, min_ram=64, tags=["t"])

    response = _patch(client, member, image_id, {"op": "replace", "path": "/name", "value": "n"})

    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["min_ram"]) == ("n", 64)


# -- read ---------------------------------------------------------------------


def test_show_and_list_leave_out_what_the_caller_may_not_read(
    client: httpx.Client, admin: Identity, member: Identity, reader: Identity
) -> None:
    name = f"read-{uuid.uuid4().hex}"
    image_id = _created(client, admin, name=name, x_billing_code="42", x_team="blue", x_secret="s")

    seen = {
        who: {key for key in _show(client, identity, image_id) if key.startswith("x_")}
        for who, identity in (("admin", admin), ("member", member), ("reader", reader))
    }
    assert seen == {
        "admin": {"x_billing_code", "x_team", "x_secret"},
        "member": {"x_billing_code", "x_team"},
        "reader": {"x_team"},
    }
    for identity, expected in ((member, {"x_billing_code", "x_team"}), (reader, {"x_team"})):
        listed = client.get("/v2/images", params={"name": name}, headers=_as(identity))
        assert listed.status_code == 200, listed.text
        (image,) = listed.json()["images"]
        assert {key for key in image if key.startswith("x_")} == expected


def test_the_create_response_leaves_out_what_the_creator_may_not_read(
    client: httpx.Client, admin: Identity, member: Identity
) -> None:
    created = _create(client, member, x_secret="s", x_team="blue")

    assert created.status_code == 201, created.text
    assert "x_secret" not in created.json()
    assert _show(client, admin, created.json()["id"])["x_secret"] == "s"


def test_a_list_filter_on_an_unreadable_property_matches_nothing(
    client: httpx.Client, admin: Identity, member: Identity, reader: Identity
) -> None:
    name = f"filter-{uuid.uuid4().hex}"
    image_id = _created(client, admin, name=name, x_billing_code="42")
    query = {"name": name, "x_billing_code": "42"}

    as_member = client.get("/v2/images", params=query, headers=_as(member)).json()["images"]
    as_reader = client.get("/v2/images", params=query, headers=_as(reader)).json()["images"]

    assert [image["id"] for image in as_member] == [image_id]
    assert as_reader == []


# -- update ---------------------------------------------------------------------


def test_patch_needs_update_for_existing_and_create_for_new_properties(
    client: httpx.Client, admin: Identity, member: Identity
) -> None:
    image_id = _created(client, admin, x_billing_code="42", x_team="blue")

    replaced = _patch(
        client, member, image_id, {"op": "replace", "path": "/x_team", "value": "red"}
    )
    assert replaced.status_code == 200, replaced.text
    added = _patch(client, member, image_id, {"op": "add", "path": "/x_new", "value": "n"})
    assert added.status_code == 200, added.text
    assert (added.json()["x_team"], added.json()["x_new"]) == ("red", "n")

    for op in ("replace", "add"):  # add on an existing property is an update
        refused = _patch(
            client, member, image_id, {"op": op, "path": "/x_billing_code", "value": "0"}
        )
        assert_error(refused, 403, "Attribute 'x_billing_code' is reserved.")
    unmatched = _patch(client, admin, image_id, {"op": "add", "path": "/os_distro", "value": "u"})
    assert_error(unmatched, 403, "Attribute 'os_distro' is reserved.")


def test_patch_remove_needs_delete(client: httpx.Client, admin: Identity, member: Identity) -> None:
    image_id = _created(client, admin, x_billing_code="42", x_team="blue")

    refused = _patch(client, member, image_id, {"op": "remove", "path": "/x_billing_code"})
    assert_error(refused, 403, "Attribute 'x_billing_code' is reserved.")
    removed = _patch(client, member, image_id, {"op": "remove", "path": "/x_team"})
    assert removed.status_code == 200, removed.text
    assert "x_team" not in removed.json()


def test_a_refused_operation_changes_nothing(
    client: httpx.Client, admin: Identity, member: Identity
) -> None:
    image_id = _created(client, admin, x_billing_code="42", x_team="blue")

    refused = _patch(
        client,
        member,
        image_id,
        {"op": "replace", "path": "/x_team", "value": "red"},
        {"op": "remove", "path": "/x_billing_code"},
    )

    assert refused.status_code == 403
    shown = _show(client, admin, image_id)
    assert (shown["x_team"], shown["x_billing_code"]) == ("blue", "42")


def test_an_unreadable_property_is_absent_to_the_caller(
    client: httpx.Client, admin: Identity, member: Identity
) -> None:
    image_id = _created(client, admin, x_secret="s")

    for op in (
        {"op": "replace", "path": "/x_secret", "value": "t"},
        {"op": "remove", "path": "/x_secret"},
    ):
        response = _patch(client, member, image_id, op)
        assert_error(response, 409, "Property x_secret does not exist.", detail=True)
    assert _show(client, admin, image_id)["x_secret"] == "s"


def test_properties_hidden_from_the_caller_survive_its_changes(
    client: httpx.Client, admin: Identity, member: Identity
) -> None:
    image_id = _created(client, member, x_secret="s", x_team="blue")

    response = _patch(
        client,
        member,
        image_id,
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "replace", "path": "/x_team", "value": "red"},
        {"op": "add", "path": "/x_open_notes", "value": "n"},
    )

    assert response.status_code == 200, response.text
    assert "x_secret" not in response.json()
    shown = _show(client, admin, image_id)
    assert (shown["name"], shown["x_team"], shown["x_open_notes"]) == ("renamed", "red", "n")
    assert shown["x_secret"] == "s"


def test_the_property_quota_counts_only_what_the_caller_sees(
    client: httpx.Client, admin: Identity, member: Identity
) -> None:
    """A hidden property once showed through the count: "Attempted: 129" to a caller
    who sees 128 (issue 18, item 12)."""
    visible = {f"x_p{n:03d}": "v" for n in range(127)}
    image_id = _created(client, member, x_secret="s", **visible)  # 128, 127 of them seen

    seen = _patch(client, member, image_id, {"op": "add", "path": "/x_p127", "value": "v"})
    over = _patch(client, member, image_id, {"op": "add", "path": "/x_p128", "value": "v"})

    assert seen.status_code == 200, seen.text
    assert sum(key.startswith("x_") for key in seen.json()) == 128
    assert_error(
        over,
        413,
        "The limit has been exceeded on the number of allowed image properties. "
        "Attempted: 129, Maximum: 128",
    )
    assert _show(client, admin, image_id)["x_secret"] == "s"


# -- start-up -------------------------------------------------------------------


def _serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("SKYLENS_")}
    return subprocess.run(
        [sys.executable, "-m", "skylens.cli.main", "serve", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[^x_(]\ncreate = @\nread = @\nupdate = @\ndelete = @\n", "section [^x_(]: invalid"),
        ("[^x_]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n", "'@' and '!' are mutually"),
        ("[^x_]\ncreate = @\nread = @\nupdate = @\n", "section [^x_] has no 'delete'"),
    ],
)
def test_a_broken_protections_file_exits_2_naming_the_section(
    tmp_path: Path, text: str, message: str
) -> None:
    rules = tmp_path / "protections.conf"
    rules.write_text(text)

    result = _serve(tmp_path, {ENV: str(rules)})

    assert result.returncode == 2
    assert result.stderr.startswith(
        "skylens: configuration error: images.property_protection_file:"
    )
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_protections_file_exits_2(tmp_path: Path) -> None:
    result = _serve(tmp_path, {ENV: str(tmp_path / "nowhere.conf")})

    assert result.returncode == 2
    assert "configuration error: images.property_protection_file:" in result.stderr


def test_the_policies_format_is_refused(tmp_path: Path) -> None:
    result = _serve(tmp_path, {"SKYLENS_IMAGES_PROPERTY_PROTECTION_RULE_FORMAT": "policies"})

    assert result.returncode == 2
    assert 'property_protection_rule_format = "policies" is not supported' in result.stderr


# -- through the Compute API's image metadata ----------------------------------------


def test_compute_metadata_hides_and_guards_protected_properties(
    client: httpx.Client, admin: Identity, member: Identity
) -> None:
    """Metadata is the image's properties, so the same rules apply on /v2.1."""
    image_id = _created(client, admin, x_billing_code="42", x_secret="s", x_team="blue")
    metadata = f"/v2.1/images/{image_id}/metadata"

    seen = client.get(metadata, headers=_as(member)).json()["metadata"]
    refused = client.put(
        f"{metadata}/x_billing_code",
        json={"meta": {"x_billing_code": "43"}},
        headers=_as(member),
    )
    allowed = client.post(metadata, json={"metadata": {"x_team": "red"}}, headers=_as(member))

    assert seen == {"x_billing_code": "42", "x_team": "blue"}  # x_secret: admins only
    assert refused.status_code == 403
    assert "forbidden" in refused.json()
    assert allowed.status_code == 200, allowed.text
    properties = _show(client, admin, image_id)
    assert (properties["x_billing_code"], properties["x_secret"], properties["x_team"]) == (
        "42",
        "s",
        "red",
    )
