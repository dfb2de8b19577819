"""auth.mode = "keystone": Skylens behind a REAL Keystone (tests/support/keystone.py),
driven with real tokens through raw HTTP, openstacksdk and the `openstack` command,
which find Skylens in Keystone's catalogue."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from openstack.image.v2.image import Image

from tests.support.clients import BIN, run_in_terminal
from tests.support.counting_proxy import CountingProxy, counting_proxy
from tests.support.errors import assert_error
from tests.support.keystone import RunningKeystone
from tests.support.servers import RunningServer, free_port, skylens_server

UNAUTHORIZED = (
    "This server could not verify that you are authorized to access the document you "
    "requested. Either you supplied the wrong credentials (e.g., bad password), or your "
    "browser does not understand how to supply the credentials required."
)
CACHE_SECONDS = 2


def keystone_env(keystone: RunningKeystone, auth_url: str | None = None) -> dict[str, str]:
    return {
        "SKYLENS_AUTH_MODE": "keystone",
        "SKYLENS_KEYSTONE_AUTH_URL": auth_url or keystone.auth_url,
        "SKYLENS_KEYSTONE_USERNAME": keystone.service_user,
        "SKYLENS_KEYSTONE_PASSWORD": keystone.passwords[keystone.service_user],
        "SKYLENS_KEYSTONE_PROJECT_NAME": keystone.service_project,
        "SKYLENS_KEYSTONE_CACHE_SECONDS": str(CACHE_SECONDS),
    }


@pytest.fixture(scope="module")
def region(keystone: RunningKeystone) -> str:
    """This module's own catalogue region, so parallel workers' servers never clash."""
    return f"skylens-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory, keystone: RunningKeystone, region: str
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("keystone-auth")
    with skylens_server(
        data_dir, f"sqlite:///{data_dir / 'skylens.db'}", "sqlite", extra_env=keystone_env(keystone)
    ) as server:
        keystone.set_image_endpoint(server.url, region)
        yield server


def client(server: RunningServer, token: str | None) -> httpx.Client:
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["X-Auth-Token"] = token
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


@pytest.mark.parametrize("token", [None, "", "gAAAAAnot-a-fernet-token"])
def test_no_valid_token_is_401_with_a_keystone_challenge(
    guarded: RunningServer, keystone: RunningKeystone, token: str | None
) -> None:
    with client(guarded, token) as anonymous:
        response = anonymous.get("/v2/images")

    assert_error(response, 401, UNAUTHORIZED)
    assert response.headers["WWW-Authenticate"] == f'Keystone uri="{keystone.auth_url}"'


def test_discovery_and_health_need_no_token(guarded: RunningServer) -> None:
    with client(guarded, None) as anonymous:
        assert anonymous.get("/versions").status_code == 200
        assert anonymous.get("/healthcheck").status_code == 200


def test_readiness_asks_keystone(guarded: RunningServer) -> None:
    with client(guarded, None) as anonymous:
        ready = anonymous.get("/healthcheck/ready")

    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["keystone"] == "ok"


def test_an_unreachable_keystone_makes_the_service_not_ready(
    tmp_path: Path, keystone: RunningKeystone
) -> None:
    auth_url = f"http://127.0.0.1:{free_port()}/v3"
    with (
        skylens_server(
            tmp_path,
            f"sqlite:///{tmp_path / 'skylens.db'}",
            "sqlite",
            extra_env=keystone_env(keystone, auth_url),
        ) as server,
        client(server, None) as anonymous,
    ):
        ready = anonymous.get("/healthcheck/ready")
        assert anonymous.get("/healthcheck").status_code == 200

    assert ready.status_code == 503
    assert ready.json()["checks"] == {
        "database": "ok",
        "store local": "ok",
        "keystone": "unreachable",
    }
    assert auth_url not in ready.text
    assert f"Keystone at {auth_url} does not answer" in server.log.read_text()


@pytest.mark.parametrize("schema", ["image", "images", "member", "members"])
def test_the_schemas_need_a_token_as_in_glance(
    guarded: RunningServer, keystone: RunningKeystone, schema: str
) -> None:
    with client(guarded, None) as anonymous:
        refused = anonymous.get(f"/v2/schemas/{schema}")
    with client(guarded, keystone.token("alpha-reader")) as reader:
        served = reader.get(f"/v2/schemas/{schema}")

    assert_error(refused, 401, UNAUTHORIZED)
    assert served.status_code == 200
    assert served.json()["name"] == schema


def test_a_token_is_its_users_project_and_roles(
    guarded: RunningServer, keystone: RunningKeystone
) -> None:
    with client(guarded, keystone.token("alpha-member")) as member:
        created = member.post("/v2/images", json={"name": "alpha", "visibility": "private"})
    with client(guarded, keystone.token("alpha-reader")) as reader:
        seen = reader.get(f"/v2/images/{created.json()['id']}")
        refused = reader.post("/v2/images", json={"name": "nope"})
    with client(guarded, keystone.token("beta-member")) as stranger:
        hidden = stranger.get(f"/v2/images/{created.json()['id']}")

    assert created.status_code == 201
    assert created.json()["owner"] == keystone.projects["alpha"]
    assert seen.status_code == 200
    assert_error(refused, 403, "You are not authorized to complete add_image action.")
    assert hidden.status_code == 404


def test_a_revoked_token_works_only_until_its_cache_entry_expires(
    guarded: RunningServer, keystone: RunningKeystone
) -> None:
    token = keystone.token("beta-member")
    with client(guarded, token) as member:
        assert member.get("/v2/images").status_code == 200  # validated, now cached

        keystone.revoke(token)
        cached = member.get("/v2/images")
        time.sleep(CACHE_SECONDS + 0.5)
        expired = member.get("/v2/images")

    assert cached.status_code == 200  # as keystonemiddleware: cached tokens are not rechecked
    assert_error(expired, 401, UNAUTHORIZED)


def test_an_expired_token_is_refused(guarded: RunningServer, keystone: RunningKeystone) -> None:
    """A token from an application credential expires with the credential."""
    member = keystone.session("alpha-member")
    user_id = keystone.users["alpha-member"]
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    created = member.post(
        f"{keystone.auth_url}/users/{user_id}/application_credentials",
        json={
            "application_credential": {
                "name": f"short-{uuid.uuid4().hex[:8]}",
                "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        },
    ).json()["application_credential"]
    issued = httpx.post(
        f"{keystone.auth_url}/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": {"id": created["id"], "secret": created["secret"]},
                }
            }
        },
    )
    token = issued.headers["X-Subject-Token"]
    with client(guarded, token) as short_lived:
        assert short_lived.get("/v2/images").status_code == 200
        time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 1.5)
        response = short_lived.get("/v2/images")

    assert_error(response, 401, UNAUTHORIZED)


def test_a_system_scoped_admin_token_is_refused_by_the_project_scoped_rules(
    guarded: RunningServer, keystone: RunningKeystone
) -> None:
    token = keystone.admin_session().get_token()
    with client(guarded, token) as system_admin:
        response = system_admin.get("/v2/images")

    assert_error(response, 403, "You are not authorized to complete get_images action.")


def test_keystone_unreachable_is_503(tmp_path: Path, keystone: RunningKeystone) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v3"
    with (
        skylens_server(
            tmp_path,
            f"sqlite:///{tmp_path / 'skylens.db'}",
            "sqlite",
            extra_env=keystone_env(keystone, auth_url=dead),
        ) as server,
        client(server, keystone.token("alpha-member")) as member,
    ):
        response = member.get("/v2/images")

    assert_error(response, 503, "The Keystone service is temporarily unavailable.")


def test_openstacksdk_finds_skylens_in_the_catalogue(
    guarded: RunningServer, keystone: RunningKeystone, region: str, tmp_path: Path
) -> None:
    source = tmp_path / "disk.raw"
    source.write_bytes(b"\x00" * 1024 * 1024)
    alpha = keystone.connection("alpha-member", region=region)
    beta = keystone.connection("beta-member", region=region)
    admin = keystone.connection("admin", project="admin", region=region)

    image = alpha.create_image(
        f"sdk-{uuid.uuid4().hex[:8]}",
        filename=str(source),
        disk_format="raw",
        container_format="bare",
        visibility="private",
        wait=True,
    )

    assert isinstance(image, Image)
    assert image.owner == keystone.projects["alpha"]
    assert image.id in {i.id for i in alpha.image.images()}
    assert image.id not in {i.id for i in beta.image.images()}
    assert image.id in {i.id for i in admin.image.images()}
    target = tmp_path / "saved.raw"
    alpha.download_image(image.id, output_path=str(target))
    assert target.read_bytes() == source.read_bytes()


def test_the_openstack_command_with_keystone(
    guarded: RunningServer, keystone: RunningKeystone, region: str
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    env = keystone.openstack_env("alpha-member", region=region)
    options = [f"--os-{key[3:].lower().replace('_', '-')}={value}" for key, value in env.items()]

    created = run_in_terminal(
        [str(BIN / "openstack"), *options, "image", "create", "--private", name, "-f", "json"]
    )
    listed = run_in_terminal([str(BIN / "openstack"), *options, "image", "list", "-f", "json"])

    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["owner"] == keystone.projects["alpha"]
    assert name in {image["Name"] for image in json.loads(listed.stdout)}


def test_sharing_with_the_openstack_command_across_two_keystone_projects(
    guarded: RunningServer, keystone: RunningKeystone, region: str
) -> None:
    """`openstack image add project` shares with the other project; its member accepts
    with `image set --accept`, then lists the image."""

    def openstack(user: str, *args: str) -> str:
        env = keystone.openstack_env(user, region=region)
        options = [
            f"--os-{key[3:].lower().replace('_', '-')}={value}" for key, value in env.items()
        ]
        result = run_in_terminal([str(BIN / "openstack"), *options, *args])
        assert result.returncode == 0, result.stderr
        return result.stdout

    name = f"shared-{uuid.uuid4().hex[:8]}"
    image_id = json.loads(
        openstack("alpha-member", "image", "create", "--shared", name, "-f", "json")
    )["id"]

    # A member cannot look projects up by name in Keystone: the command takes an id.
    beta = keystone.projects["beta"]
    added = json.loads(
        openstack("alpha-member", "image", "add", "project", name, beta, "-f", "json")
    )
    before = json.loads(openstack("beta-member", "image", "list", "-f", "json"))
    openstack("beta-member", "image", "set", "--accept", image_id)
    after = json.loads(openstack("beta-member", "image", "list", "-f", "json"))
    members = json.loads(openstack("alpha-member", "image", "member", "list", name, "-f", "json"))

    assert added["member_id"] == keystone.projects["beta"]
    assert added["status"] == "pending"
    assert image_id not in {image["ID"] for image in before}
    assert image_id in {image["ID"] for image in after}
    assert [(m["Member ID"], m["Status"]) for m in members] == [
        (keystone.projects["beta"], "accepted")
    ]


@pytest.fixture(scope="module")
def counting(keystone: RunningKeystone) -> Iterator[CountingProxy]:
    with counting_proxy(keystone.url) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def counted(
    tmp_path_factory: pytest.TempPathFactory, keystone: RunningKeystone, counting: CountingProxy
) -> Iterator[RunningServer]:
    """A server validating through the counting proxy, two validations at a time."""
    data_dir = tmp_path_factory.mktemp("keystone-counted")
    env = keystone_env(keystone, auth_url=f"{counting.url}/v3")
    env |= {
        "SKYLENS_KEYSTONE_VALIDATION_THREADS": "2",
        "SKYLENS_KEYSTONE_NEGATIVE_CACHE_SECONDS": "600",
    }
    with skylens_server(
        data_dir, f"sqlite:///{data_dir / 'skylens.db'}", "sqlite", extra_env=env
    ) as server:
        yield server


def _bad_token() -> str:
    return f"gAAAAA{uuid.uuid4().hex}"


def test_repeating_an_invalid_token_asks_keystone_once(
    counted: RunningServer, keystone: RunningKeystone, counting: CountingProxy
) -> None:
    token = _bad_token()
    with client(counted, token) as repeating:
        responses = [repeating.get("/v2/images") for _ in range(50)]
    with client(counted, keystone.token("alpha-reader")) as reader:
        valid = reader.get("/v2/images")

    assert {response.status_code for response in responses} == {401}
    assert responses[-1].headers["WWW-Authenticate"] == f'Keystone uri="{counting.url}/v3"'
    assert counting.validations(token) == 1
    assert valid.status_code == 200


def test_concurrent_requests_with_one_token_share_one_validation(
    counted: RunningServer, counting: CountingProxy
) -> None:
    token = _bad_token()
    counting.delay_validations = 0.5  # so that the requests overlap the validation
    try:
        with client(counted, token) as api, ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(lambda _: api.get("/v2/images").status_code, range(20)))
    finally:
        counting.delay_validations = 0.0

    assert statuses == [401] * 20
    assert counting.validations(token) == 1


def test_validations_run_at_most_validation_threads_at_once(
    counted: RunningServer, counting: CountingProxy
) -> None:
    tokens = [_bad_token() for _ in range(10)]
    counting.delay_validations = 0.5
    counting.reset_most_in_flight()

    def ask(token: str) -> int:
        with client(counted, token) as api:
            return api.get("/v2/images").status_code

    try:
        with ThreadPoolExecutor(len(tokens)) as pool:
            statuses = list(pool.map(ask, tokens))
    finally:
        counting.delay_validations = 0.0

    assert statuses == [401] * len(tokens)
    assert [counting.validations(token) for token in tokens] == [1] * len(tokens)
    assert counting.most_in_flight <= 2


@pytest.mark.parametrize("token", ["tok en-with-a-space", "tökén-not-ascii"])
def test_a_token_no_keystone_could_issue_is_refused_without_asking(
    counted: RunningServer, counting: CountingProxy, token: str
) -> None:
    response = httpx.get(
        f"{counted.url}/v2/images",
        headers={b"X-Auth-Token": token.encode(), b"Accept": b"application/json"},
    )

    assert_error(response, 401, UNAUTHORIZED)
    assert counting.validations(token.encode().decode("latin-1")) == 0


def test_origin_and_host_are_not_checked_with_keystone(
    guarded: RunningServer, keystone: RunningKeystone
) -> None:
    headers = {"Origin": "https://evil.example", "Host": "evil.example"}
    with client(guarded, keystone.token("alpha-reader")) as reader:
        response = reader.get("/v2/images", headers=headers)

    assert response.status_code == 200, response.text
