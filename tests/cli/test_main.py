"""The `skylens` command, run as the installed console script."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory

import skylens.db
from skylens import __version__
from tests.support.servers import POSTGRES_URL, free_port, postgres_database, skylens_server

SKYLENS = str(Path(sys.executable).parent / "skylens")
# The newest migration: what `db upgrade` must reach.
HEAD = ScriptDirectory(str(Path(skylens.db.__file__).parent / "migrations")).get_current_head()


def _skylens(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("SKYLENS_")}
    return subprocess.run(
        [SKYLENS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
        check=False,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'skylens.db'}"
        return
    with postgres_database(f"skylens_cli_{uuid.uuid4().hex[:12]}") as url:
        yield url


def test_version() -> None:
    result = _skylens("--version")

    assert result.returncode == 0
    assert result.stdout.strip() == f"skylens {__version__}"


def test_no_command_prints_help_and_fails() -> None:
    result = _skylens()

    assert result.returncode == 2
    assert "serve" in result.stdout
    assert "db" in result.stdout


def test_db_upgrade_then_current(database_url: str) -> None:
    before = _skylens("db", "current", "--database-url", database_url)
    assert before.returncode == 0, before.stderr
    assert before.stdout.strip() == "empty"

    upgraded = _skylens("db", "upgrade", "--database-url", database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"database at revision {HEAD}"

    again = _skylens("db", "upgrade", "--database-url", database_url)
    assert again.returncode == 0, again.stderr

    current = _skylens("db", "current", "--database-url", database_url)
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == HEAD


def test_db_upgrade_uses_the_data_dir(tmp_path: Path) -> None:
    result = _skylens("db", "upgrade", env={"SKYLENS_DATA_DIR": str(tmp_path / "data")})

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "skylens.db").is_file()


def test_serve_refuses_to_expose_trusted_headers(tmp_path: Path) -> None:
    result = _skylens(
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path),
    )

    assert result.returncode == 2
    assert "trusted-headers" in result.stderr
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert "allow_remote_trusted_headers" in result.stderr
    assert not (tmp_path / "skylens.db").exists()  # it stopped before touching anything


def test_serve_on_all_interfaces_when_told_a_proxy_sets_the_headers(tmp_path: Path) -> None:
    # Listens on 0.0.0.0 only for as long as one request takes.
    with skylens_server(
        tmp_path,
        f"sqlite:///{tmp_path / 'skylens.db'}",
        "sqlite",
        extra_env={"SKYLENS_AUTH_ALLOW_REMOTE_TRUSTED_HEADERS": "true"},
        extra_args=("--host", "0.0.0.0"),
    ) as server:
        assert httpx.get(f"{server.url}/v2/images", timeout=10).status_code == 200
    assert "serving on http://0.0.0.0:" in server.log.read_text()


def test_serve_upgrades_the_embedded_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'skylens.db'}"

    with skylens_server(tmp_path, url, "sqlite") as server:
        assert httpx.get(f"{server.url}/v2/images", timeout=10).status_code == 200

    assert _skylens("db", "current", "--database-url", url).stdout.strip() == HEAD


def test_serve_refuses_an_unmigrated_database_when_told_not_to_migrate(
    database_url: str, tmp_path: Path
) -> None:
    result = _skylens(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path),
        "--database-url",
        database_url,
        env={"SKYLENS_DATABASE_AUTO_UPGRADE": "false"},
    )

    assert result.returncode == 2
    assert result.stderr.startswith("skylens: database error: ")
    assert f"is at schema revision none, this release needs {HEAD}" in result.stderr
    assert "skylens db upgrade" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert _skylens("db", "current", "--database-url", database_url).stdout.strip() == "empty"


def test_serve_leaves_a_migrated_schema_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'skylens.db'}"
    assert _skylens("db", "upgrade", "--database-url", url).returncode == 0

    with skylens_server(
        tmp_path, url, "sqlite", extra_env={"SKYLENS_DATABASE_AUTO_UPGRADE": "false"}
    ) as server:
        assert httpx.get(f"{server.url}/v2/images", timeout=10).status_code == 200


def _one_line_exit_2(result: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for part in parts:
        assert part in result.stderr


COMMANDS = [("serve", "--port", "0"), ("db", "upgrade"), ("db", "current"), ("sweep",)]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_database_that_does_not_exist_is_one_line(tmp_path: Path, command: tuple[str]) -> None:
    missing = f"skylens_missing_{uuid.uuid4().hex[:12]}"
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{missing}"

    result = _skylens(*command, "--data-dir", str(tmp_path), "--database-url", url)

    _one_line_exit_2(result, "skylens: database error: cannot use ", f'"{missing}" does not exist')


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_unreachable_database_is_one_line_without_its_password(
    tmp_path: Path, command: tuple[str]
) -> None:
    url = f"postgresql://skylens:hunter2@127.0.0.1:{free_port()}/skylens"

    result = _skylens(*command, "--data-dir", str(tmp_path), "--database-url", url)

    _one_line_exit_2(result, "skylens: database error: cannot use postgresql", "skylens:***@")
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("mysql://root:hunter2@db/skylens", "unsupported scheme 'mysql'"),
        ("mysql+pymysql://db/skylens", "unsupported scheme 'mysql+pymysql'"),
        ("/var/lib/skylens.db", "unsupported a URL without a scheme"),
    ],
)
def test_an_unsupported_database_url_names_the_supported_schemes(
    tmp_path: Path, command: tuple[str], url: str, named: str
) -> None:
    result = _skylens(*command, "--data-dir", str(tmp_path), "--database-url", url)

    _one_line_exit_2(
        result,
        f"skylens: configuration error: database.url: {named}",
        "(supported: sqlite, postgresql, postgresql+psycopg)",
    )
    assert "hunter2" not in result.stderr


def _socket_owners(port: int) -> set[int]:
    """Pids of the processes holding the server side of established connections."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # ESTABLISHED
                    inodes.add(f"socket:[{fields[9]}]")
    owners = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                owners.add(int(pid))
        except OSError:
            continue
    return owners


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_serve_with_two_workers_answers_from_both(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'skylens.db'}"
    with skylens_server(tmp_path, url, "sqlite", extra_args=("--workers", "2")) as server:
        port = int(server.url.rsplit(":", 1)[1])
        connections: list[http.client.HTTPConnection] = []
        owners: set[int] = set()
        deadline = time.monotonic() + 30
        try:
            # Keep every connection open, so each stays with the worker that took it.
            while len(owners) < 2 and time.monotonic() < deadline and len(connections) < 200:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/v2/images", headers={"Accept": "application/json"})
                response = connection.getresponse()
                assert response.status == 200
                response.read()
                connections.append(connection)
                owners = _socket_owners(port)
                time.sleep(0.02)
        finally:
            for connection in connections:
                connection.close()

    assert len(owners) == 2, f"only {owners} answered {len(connections)} connections"
    assert os.getpid() not in owners


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 9292\n", "unknown option(s): server.prot"),
        ("[server]\nport = 'high'\n", "invalid value for server.port"),
    ],
)
def test_bad_config_file_exits_2_naming_the_option(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "skylens.toml"
    config.write_text(text)

    for command in (("serve",), ("db", "current")):
        result = _skylens(*command, "--config", str(config), "--data-dir", str(tmp_path))

        assert result.returncode == 2
        assert result.stderr.startswith("skylens: configuration error:")
        assert message in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_unknown_auth_mode_exits_2_before_serving(tmp_path: Path, workers: str) -> None:
    config = tmp_path / "skylens.toml"
    config.write_text("[auth]\nmode = 'kerberos'\n")

    result = _skylens(
        "serve", "--config", str(config), "--data-dir", str(tmp_path), "--workers", workers
    )

    assert result.returncode == 2
    assert "configuration error: unknown auth.mode 'kerberos'" in result.stderr
    assert "serving on" not in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"get_image": "role:reader and"\n', "rule 'get_image': cannot parse check string"),
        ("get_image: [unclosed\n", "is neither YAML nor JSON"),
        ('{"get_image": "rule:typo"}', "rule 'get_image' refers to undefined rule 'typo'"),
    ],
)
def test_a_broken_policy_file_exits_2_before_serving(
    tmp_path: Path, text: str, message: str
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)

    result = _skylens(
        "serve", "--data-dir", str(tmp_path), env={"SKYLENS_AUTH_POLICY_FILE": str(policy)}
    )

    assert result.returncode == 2
    assert result.stderr.startswith("skylens: configuration error: auth.policy_file:")
    assert message in result.stderr
    assert "serving on" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_policy_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = _skylens(
        "serve", "--data-dir", str(tmp_path), env={"SKYLENS_AUTH_POLICY_FILE": str(missing)}
    )
    assert result.returncode == 2
    assert "configuration error: auth.policy_file:" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[quotas]\nsource = 'ldap'\n", "unknown quotas.source 'ldap'"),
        (
            "[quotas]\nsource = 'config'\n[quotas.projects.alpha]\nimage_count = 3\n",
            "quotas.projects.alpha.image_count: unknown resource",
        ),
        (
            "[quotas]\nsource = 'config'\n[quotas.projects.alpha]\nimage_count_total = 'many'\n",
            "quotas.projects.alpha.image_count_total: not an integer",
        ),
        (
            "[quotas]\nsource = 'keystone'\n",
            'quotas.source = "keystone" needs keystone.endpoint_id',
        ),
        (
            "[quotas]\nsource = 'keystone'\n[keystone]\nendpoint_id = 'e1'\n",
            'quotas.source = "keystone" needs keystone.auth_url, keystone.username',
        ),
    ],
)
def test_broken_quota_settings_exit_2_before_serving(
    tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "skylens.toml"
    config.write_text(text)

    result = _skylens("serve", "--config", str(config), "--data-dir", str(tmp_path))

    assert result.returncode == 2
    assert message in result.stderr
    assert "serving on" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_web_download_ca_bundle_exits_2_before_serving(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"

    result = _skylens(
        "serve", "--data-dir", str(tmp_path), env={"SKYLENS_WEB_DOWNLOAD_CAFILE": str(missing)}
    )

    assert result.returncode == 2
    assert result.stderr.startswith("skylens: configuration error: web_download.cafile:")
    assert "serving on" not in result.stderr
    assert "Traceback" not in result.stderr
