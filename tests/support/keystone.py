"""A real OpenStack Keystone on loopback, with two projects' worth of users, for the tests.

`keystone_server(tmp_dir)` runs Keystone (SQLite, fernet tokens, an in-memory cache, no
message bus) from the separate virtualenv `.keystone-venv/` that `scripts/install-keystone`
makes, served by gunicorn; see `keystone_runner.py` for how it is set up and served. The
`keystone` fixture (session scope, started on first use) gives each xdist worker a
Keystone of its own: its own port, database and keys. `tests/conftest.py` imports it once
for the whole suite,

    from tests.support.keystone import keystone_fixture  # noqa: F401

and no module should import it again: each import is its own fixture, with its own
Keystone.

The test world, all in the domain `Default` (id `default`), each user's password being
`password(user)`:

| user | roles |
|---|---|
| `admin` | `admin` on projects `admin`, `alpha` and `beta`, and on the system (bootstrap) |
| `alpha-member`, `beta-member` | `member` on `alpha` / `beta` (implies `reader`) |
| `alpha-reader`, `beta-reader` | `reader` on `alpha` / `beta` |
| `skylens` | `service` and `admin` on project `service`: the image service's own user, |
| | which validates the tokens its callers bring (as keystonemiddleware's would) |

The catalogue has Keystone itself (`identity`, region `RegionOne`) and an `image`
service without endpoints until `set_image_endpoint(url)` gives it one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

if TYPE_CHECKING:
    from openstack.connection import Connection

REPO_ROOT = Path(__file__).resolve().parents[2]
# Relative to the repository root, as in scripts/install-keystone.
KEYSTONE_VENV = REPO_ROOT / os.environ.get("SKYLENS_TEST_KEYSTONE_VENV", ".keystone-venv")
RUNNER = Path(__file__).with_name("keystone_runner.py")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
LOG_TAIL = 60  # lines of keystone.log that a failed start shows

REGION = "RegionOne"  # bootstrap's region, with the identity endpoints
DOMAIN = "default"  # the id of the domain `Default`
SERVICE_USER, SERVICE_PROJECT = "skylens", "service"
IMAGE_SERVICE = "skylens"  # the name of the catalogue's `image` service

# Each user's home project (its default project, and the one `token` scopes to).
HOME = {
    "admin": "admin",
    "alpha-member": "alpha",
    "alpha-reader": "alpha",
    "beta-member": "beta",
    "beta-reader": "beta",
    SERVICE_USER: SERVICE_PROJECT,
}
# (user, project, role) beyond bootstrap's (admin: admin on project admin and the system).
ASSIGNMENTS = (
    ("admin", "alpha", "admin"),
    ("admin", "beta", "admin"),
    ("alpha-member", "alpha", "member"),
    ("alpha-reader", "alpha", "reader"),
    ("beta-member", "beta", "member"),
    ("beta-reader", "beta", "reader"),
    (SERVICE_USER, SERVICE_PROJECT, "service"),
    (SERVICE_USER, SERVICE_PROJECT, "admin"),
)


def password(user: str) -> str:
    """A test user's password: fixed, so a person can sign in by hand to a kept Keystone."""
    return f"{user}-secret"


@dataclasses.dataclass(frozen=True)
class RunningKeystone:
    url: str  # http://127.0.0.1:PORT, also the identity endpoints' URL in the catalogue
    root: Path  # keystone.conf, keystone.db, fernet-keys/, credential-keys/, keystone.log
    pid: int  # the runner: gunicorn's master; its worker is in its process group
    projects: Mapping[str, str]  # name -> id: admin, service, alpha, beta
    users: Mapping[str, str]  # name -> id, for every user in HOME
    passwords: Mapping[str, str]  # name -> password
    image_service_id: str

    region: str = REGION
    domain: str = DOMAIN
    service_user: str = SERVICE_USER
    service_project: str = SERVICE_PROJECT

    @property
    def auth_url(self) -> str:
        return f"{self.url}/v3"

    @property
    def log(self) -> Path:
        return self.root / "keystone.log"

    def session(self, user: str, project: str | None = None) -> ksa_session.Session:
        """A keystoneauth1 session of `user`, scoped to `project` (default: its home)."""
        return _session(self.auth_url, user, self.passwords[user], project or HOME[user])

    def token(self, user: str, project: str | None = None) -> str:
        """A fresh project-scoped token of `user` (password auth), as a client would get."""
        with contextlib.closing(self.session(user, project)) as session:
            token = session.get_token()
        assert token is not None
        return token

    def admin_session(self) -> ksa_session.Session:
        """`admin` scoped to the system (`system_scope="all"`), Keystone's own notion of a
        cloud administrator. For the project-scoped admin of an admin-openrc, use
        `session("admin")`: it is the one this class manages Keystone with, since Keystone
        reads system role assignments without caching them (60 ms more a request)."""
        return _session(self.auth_url, "admin", self.passwords["admin"], None)

    def revoke(self, token: str) -> None:
        """Revoke a token (DELETE /v3/auth/tokens as `admin`)."""
        with contextlib.closing(self.session("admin")) as admin:
            admin.delete(f"{self.auth_url}/auth/tokens", headers={"X-Subject-Token": token})

    def set_image_endpoint(self, url: str, region: str = REGION) -> None:
        """Make the catalogue's public `image` endpoint in `region` `url` (a Skylens).

        One region has one such endpoint: the last URL set wins. Several Skylens servers
        in one session can each have a region of their own (made on first use, with
        Keystone's own public endpoint in it too), which clients then name
        (`region_name`, `OS_REGION_NAME`). Tokens carry the catalogue as
        it is when they are issued or validated, so a change shows at once.
        """
        with contextlib.closing(self.session("admin")) as admin:
            api = self.auth_url
            if admin.get(f"{api}/regions/{region}", raise_exc=False).status_code == 404:
                admin.post(f"{api}/regions", json={"region": {"id": region}})
                # Clients look every service up in their one region: Keystone too.
                identity = admin.get(f"{api}/services", params={"type": "identity"}).json()
                endpoint = {
                    "service_id": identity["services"][0]["id"],
                    "interface": "public",
                    "region_id": region,
                    "url": self.url,
                }
                admin.post(f"{api}/endpoints", json={"endpoint": endpoint})
            query = {"service_id": self.image_service_id, "interface": "public"}
            listed = admin.get(f"{api}/endpoints", params=query).json()["endpoints"]
            existing = [e for e in listed if e["region_id"] == region]
            if existing:
                endpoint = {"url": url}
                admin.patch(f"{api}/endpoints/{existing[0]['id']}", json={"endpoint": endpoint})
            else:
                endpoint = {**query, "region_id": region, "url": url}
                admin.post(f"{api}/endpoints", json={"endpoint": endpoint})

    def openstack_env(
        self, user: str, project: str | None = None, region: str = REGION
    ) -> dict[str, str]:
        """The OS_* variables with which the `openstack` command acts as `user`."""
        return {
            "OS_AUTH_TYPE": "password",
            "OS_AUTH_URL": self.auth_url,
            "OS_IDENTITY_API_VERSION": "3",
            "OS_USERNAME": user,
            "OS_PASSWORD": self.passwords[user],
            "OS_USER_DOMAIN_ID": self.domain,
            "OS_PROJECT_NAME": project or HOME[user],
            "OS_PROJECT_DOMAIN_ID": self.domain,
            "OS_REGION_NAME": region,
            "OS_INTERFACE": "public",
        }

    def connection(self, user: str, project: str | None = None, region: str = REGION) -> Connection:
        """An openstacksdk Connection acting as `user`, which finds Skylens in the
        catalogue (see `set_image_endpoint`)."""
        from openstack.connection import Connection

        return Connection(
            auth_type="password",
            auth={
                "auth_url": self.auth_url,
                "username": user,
                "password": self.passwords[user],
                "user_domain_id": self.domain,
                "project_name": project or HOME[user],
                "project_domain_id": self.domain,
            },
            region_name=region,
            interface="public",
            identity_api_version="3",
            image_api_version="2",
        )


def _session(auth_url: str, user: str, secret: str, project: str | None) -> ksa_session.Session:
    """A keystoneauth1 session of `user`: scoped to `project`, or to the system if None."""
    auth = v3.Password(
        auth_url=auth_url,
        username=user,
        password=secret,
        user_domain_id=DOMAIN,
        project_name=project,  # keystoneauth1 leaves out what is None
        project_domain_id=DOMAIN if project else None,
        system_scope=None if project else "all",
    )
    return ksa_session.Session(auth=auth, timeout=30)


@pytest.fixture(scope="session", name="keystone")
def keystone_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningKeystone]:
    """One real Keystone per xdist worker (or per run without xdist), for the whole session."""
    with keystone_server(tmp_path_factory.mktemp("keystone")) as server:
        yield server


@contextlib.contextmanager
def keystone_server(tmp_dir: Path) -> Iterator[RunningKeystone]:
    """Run a fresh Keystone with its data in `tmp_dir`, provisioned, until the block ends."""
    python = KEYSTONE_VENV / "bin" / "python"
    if not python.exists():
        raise RuntimeError(
            f"Keystone is not installed at {KEYSTONE_VENV}: run scripts/install-keystone"
        )
    root = tmp_dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    config = _write_config(root)
    log = root / "keystone.log"
    # The runner serves on this socket, bound here, so the port is known before Keystone
    # writes it into its catalogue, and no other process can take it in between.
    with socket.socket() as listener, open(log, "wb") as log_file:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        # No OS_* variable (OS_KEYSTONE_CONFIG_FILES, OS_BOOTSTRAP_*) reaches Keystone.
        env = {key: value for key, value in os.environ.items() if not key.startswith("OS_")}
        # -I: neither this file's folder (keystone.py would shadow the keystone package)
        # nor PYTHON* variables leak into Keystone's interpreter.
        command = [str(python), "-I", str(RUNNER), str(config), str(listener.fileno()), url]
        process = subprocess.Popen(
            [*command, password("admin")],
            stdin=subprocess.PIPE,  # the runner stops when this closes
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=env,
            pass_fds=(listener.fileno(),),
            start_new_session=True,  # its own process group, with gunicorn's worker
        )
    try:
        _wait_until_serving(url, process, log)
        try:
            world = _provision(f"{url}/v3")
        except Exception as error:
            raise RuntimeError(f"provisioning Keystone failed ({error!r}){_tail(log)}") from error
        yield RunningKeystone(url=url, root=root, pid=process.pid, **world)
    finally:
        _stop(process)


def _write_config(root: Path) -> Path:
    config = root / "keystone.conf"
    config.write_text(
        f"""\
[DEFAULT]
# Everything to standard error, which the fixture sends to keystone.log.
use_stderr = true

[database]
connection = sqlite:///{root / "keystone.db"}
# No fsync: the database lives as long as the test session.
sqlite_synchronous = false

[token]
provider = fernet
# Four hours: a session-scoped fixture may hold a token for a whole run.
expiration = 14400

[fernet_tokens]
key_repository = {root / "fernet-keys"}

[fernet_receipts]
key_repository = {root / "fernet-keys"}

[credential]
key_repository = {root / "credential-keys"}

[cache]
# In this process's memory: without a cache, Keystone runs some 650 SQL queries to
# validate one token (over a second); with it, 10 ms. One gunicorn worker serves every
# request, so every change (a revocation, a role, an endpoint) invalidates the one cache.
enabled = true
backend = dogpile.cache.memory

[identity]
# bcrypt's smallest cost: users are made and sign in often, and nothing is at stake.
password_hash_rounds = 4
"""
    )
    return config


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until GET /v3 answers (the socket accepts before gunicorn serves: short tries)."""
    deadline = time.monotonic() + START_TIMEOUT
    last: object = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Keystone exited with {process.returncode}{_tail(log)}")
        try:
            response = httpx.get(f"{url}/v3", timeout=1)
            if response.status_code == 200:
                return
            last = response
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.1)
    raise RuntimeError(f"Keystone did not answer in {START_TIMEOUT} s ({last!r}){_tail(log)}")


def _tail(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
    return f"; the end of {log}:\n" + "\n".join(lines)


def _provision(api: str) -> dict[str, Any]:
    """The test world through Keystone's API, as `admin`: projects, users, roles
    and the image service. The fields of RunningKeystone that it determines."""
    with contextlib.closing(_session(api, "admin", password("admin"), "admin")) as admin:

        def create(collection: str, **body: object) -> str:
            kind = collection.removesuffix("s")
            created = admin.post(f"{api}/{collection}", json={kind: body}).json()
            identifier: str = created[kind]["id"]
            return identifier

        roles = {role["name"]: role["id"] for role in admin.get(f"{api}/roles").json()["roles"]}
        projects = {p["name"]: p["id"] for p in admin.get(f"{api}/projects").json()["projects"]}
        for name in sorted(set(HOME.values()) - set(projects)):
            projects[name] = create("projects", name=name, domain_id=DOMAIN)
        users = {u["name"]: u["id"] for u in admin.get(f"{api}/users").json()["users"]}
        for name in sorted(set(HOME) - set(users)):
            users[name] = create(
                "users",
                name=name,
                password=password(name),
                domain_id=DOMAIN,
                default_project_id=projects[HOME[name]],
            )
        for user, project, role in ASSIGNMENTS:
            admin.put(f"{api}/projects/{projects[project]}/users/{users[user]}/roles/{roles[role]}")
        image_service_id = create(
            "services", type="image", name=IMAGE_SERVICE, description="Skylens under test"
        )
    return {
        "projects": projects,
        "users": users,
        "passwords": {name: password(name) for name in HOME},
        "image_service_id": image_service_id,
    }


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to gunicorn's master (its quick shutdown, which stops the worker without
    waiting for open connections); then SIGKILL to whatever is
    left of the process group, while the master, exited but not yet reaped, still holds
    the group's id (so the signal cannot reach a stranger that reused it)."""
    if process.stdin:
        process.stdin.close()
    if process.returncode is not None:  # reaped already: it died while starting
        return
    os.kill(process.pid, signal.SIGINT)  # not send_signal(), which would reap it
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            break
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
