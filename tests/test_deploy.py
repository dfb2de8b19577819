"""deploy/ agrees with the code: the example configuration loads and passes every
check `serve` makes, the systemd units verify and run real CLI commands, the file
limit leaves room for the connection cap, nginx accepts the proxy configuration and
streams an upload through TLS to a real server, and the Containerfile copies what
exists, installs the runtime lock and runs a real command. (No container runtime
runs here, so the image itself is not built.)"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from skylens.api.components import check_settings
from skylens.cli.main import _check_exposure, _parser
from skylens.config import Settings, load
from skylens.server.options import ANSWERED_PAST_CAP, AUTO_CAP, RESERVED_DESCRIPTORS, connection_cap
from tests.support.servers import dedicated_server, free_port

UNITS = ("skylens.service", "skylens-sweep.service", "skylens-sweep.timer")
INSTALLED = "/opt/skylens/bin/skylens"


@pytest.fixture
def deploy(repo_root: Path) -> Path:
    return repo_root / "deploy"


def _environment_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines())
    return {key: value for key, value in (p for p in pairs if len(p) == 2) if key[0] != "#"}


def _example_settings(deploy: Path, extra: dict[str, str] | None = None) -> Settings:
    environ = {**_environment_file(deploy / "skylens.env.example"), **(extra or {})}
    return load(str(deploy / "skylens.toml"), environ=environ)


def _unit(path: Path) -> dict[str, list[str]]:
    """A unit file's settings, each name with its values in order."""
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            name, value = line.split("=", 1)
            values.setdefault(name.strip(), []).append(value.strip())
    return values


def test_the_example_configuration_passes_every_check_serve_makes(deploy: Path) -> None:
    settings = _example_settings(deploy)

    check_settings(settings)  # the stores, Keystone, import methods: as `serve` checks
    _check_exposure(settings)
    assert settings.auth.mode == "keystone"
    assert settings.database_url.startswith("postgresql://skylens:")
    assert settings.storage.sweep_interval_seconds < 0  # the timer sweeps instead
    assert {store["kind"] for store in settings.stores.values()} == {"s3", "swift"}


def test_the_units_run_real_commands_on_the_example_configuration(deploy: Path) -> None:
    for name in ("skylens.service", "skylens-sweep.service"):
        (command,) = _unit(deploy / name)["ExecStart"]
        program, *arguments = shlex.split(command)
        parsed = _parser().parse_args(arguments)

        assert program == INSTALLED
        assert parsed.command == {"skylens.service": "serve"}.get(name, "sweep")
        assert parsed.config == "/etc/skylens/skylens.toml"
        assert parsed.data_dir == _example_settings(deploy).data_dir
        assert _unit(deploy / name)["EnvironmentFile"] == ["-/etc/skylens/skylens.env"]


def test_the_units_pass_systemd_analyze_verify(deploy: Path, tmp_path: Path) -> None:
    # The units name the installed program; here, this checkout's stands in for it.
    here = str(Path(sys.prefix) / "bin" / "skylens")
    for name in UNITS:
        (tmp_path / name).write_text((deploy / name).read_text().replace(INSTALLED, here))

    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in UNITS)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_service_is_hardened(deploy: Path) -> None:
    unit = _unit(deploy / "skylens.service")
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(deploy / "skylens.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    exposure = re.search(r"Overall exposure level for skylens.service: ([\d.]+)", result.stdout)

    assert exposure is not None, result.stdout + result.stderr
    assert float(exposure.group(1)) <= 2.0, result.stdout  # systemd calls up to 2.0 "OK"
    assert unit["User"] == ["skylens"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["PrivateTmp"] == unit["NoNewPrivileges"] == ["yes"]
    assert unit["StateDirectory"] == ["skylens"]
    sysusers = (deploy / "skylens.sysusers").read_text().split()
    assert sysusers[sysusers.index("u") + 1] == "skylens"


def test_the_file_limit_holds_the_connection_cap_and_the_stop_the_shutdown(
    deploy: Path,
) -> None:
    unit = _unit(deploy / "skylens.service")
    (limit,) = map(int, unit["LimitNOFILE"])
    (stop,) = (int(value.removesuffix("s")) for value in unit["TimeoutStopSec"])
    settings = _example_settings(deploy)

    assert connection_cap(settings.server.max_connections, limit) == AUTO_CAP
    # Room for a file held open by every connection's download, and the reserve.
    assert limit >= 2 * AUTO_CAP + RESERVED_DESCRIPTORS + ANSWERED_PAST_CAP
    assert stop > settings.server.shutdown_timeout_seconds


def test_the_containerfile_installs_the_runtime_lock_and_runs_a_real_command(
    deploy: Path, repo_root: Path
) -> None:
    text = (deploy / "Containerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    instructions = [(line.split()[0], line.partition(" ")[2]) for line in lines if line[0] != "#"]
    ignored = (repo_root / ".dockerignore").read_text().splitlines()
    env: dict[str, str] = {}
    for kind, argument in instructions:
        if kind == "ENV":
            env.update(pair.partition("=")[::2] for pair in shlex.split(argument))
        if kind == "COPY" and "--from" not in argument:
            *sources, _target = argument.split()
            for source in sources:
                assert (repo_root / source).exists(), source
                assert f"!{source.rstrip('/')}" in {line.rstrip("/") for line in ignored}
    runs = " ".join(argument for kind, argument in instructions if kind == "RUN")
    volume = next(argument for kind, argument in instructions if kind == "VOLUME")
    user = [argument for kind, argument in instructions if kind == "USER"]
    entrypoint = next(argument for kind, argument in instructions if kind == "ENTRYPOINT")
    command = next(argument for kind, argument in instructions if kind == "CMD")
    argv = json.loads(entrypoint) + json.loads(command)
    parsed = _parser().parse_args(argv[1:])
    settings = _example_settings(deploy, {k: v for k, v in env.items() if k.startswith("SKYLENS")})

    assert "-r /src/requirements/runtime.lock" in runs
    assert "--no-deps /src" in runs  # Skylens itself brings nothing unpinned
    assert "qemu-utils" in runs
    assert user
    assert user[-1] not in ("root", "0")
    assert json.loads(volume) == [env["SKYLENS_DATA_DIR"]] == [settings.data_dir]
    assert (argv[0], parsed.command, parsed.config) == (
        "skylens",
        "serve",
        "/etc/skylens/skylens.toml",
    )
    _check_exposure(settings)  # 0.0.0.0 in the container: fine with Keystone
    assert "/healthcheck'" in next(
        argument for kind, argument in instructions if kind == "HEALTHCHECK"
    )


@contextlib.contextmanager
def _nginx(deploy: Path, directory: Path, upstream_port: int) -> Iterator[int]:
    """nginx with deploy/nginx-skylens.conf, its certificate a fresh self-signed one,
    listening on a free port and proxying to `upstream_port`; yields the port."""
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=image.example.com", "-keyout", "key.pem", "-out", "cert.pem"),
            *("-addext", "subjectAltName=DNS:image.example.com,IP:127.0.0.1"),
        ],
        cwd=directory,
        capture_output=True,
        check=True,
    )
    port = free_port()
    site = (
        (deploy / "nginx-skylens.conf")
        .read_text()
        .replace("/etc/ssl/certs/image.example.com.pem", str(directory / "cert.pem"))
        .replace("/etc/ssl/private/image.example.com.key", str(directory / "key.pem"))
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
        .replace("listen [::]:443 ssl;", "")
        .replace("server 127.0.0.1:9292;", f"server 127.0.0.1:{upstream_port};")
    )
    (directory / "site.conf").write_text(site)
    (directory / "nginx.conf").write_text(
        f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {directory}/body;\n"
        f"  proxy_temp_path {directory}/proxy;\n  include {directory}/site.conf;\n}}\n"
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    command = [nginx, "-p", str(directory), "-c", str(directory / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen([*command, "-g", "daemon off;"])
    try:
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"https://127.0.0.1:{port}/healthcheck", verify=_tls(directory))
                break
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _tls(directory: Path) -> ssl.SSLContext:
    """Trusting the test's own certificate (for image.example.com and 127.0.0.1)."""
    return ssl.create_default_context(cafile=directory / "cert.pem")


def test_nginx_streams_an_upload_over_tls_to_skylens(deploy: Path, tmp_path: Path) -> None:
    public = "https://image.example.com"
    environment = {"SKYLENS_SERVER_PUBLIC_ENDPOINT": public}
    with (
        dedicated_server(tmp_path / "server", "sqlite", extra_env=environment) as server,
        _nginx(deploy, tmp_path, server.port) as port,
        httpx.Client(
            base_url=f"https://127.0.0.1:{port}",
            verify=_tls(tmp_path),
            headers={"Host": "image.example.com", "Accept": "application/json"},
        ) as client,
    ):
        _round_trip(client, public)


def _round_trip(client: httpx.Client, public: str) -> None:
    request_id = f"req-{uuid.uuid4()}"
    created = client.post(
        "/v2/images",
        json={"name": "through-nginx", "disk_format": "raw", "container_format": "bare"},
        headers={"X-Openstack-Request-Id": request_id, "X-Roles": "reader"},
    )
    image = created.json()
    data = bytes(range(256)) * 4096 * 8  # 8 MiB, sent chunked: no Content-Length

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 1 << 20):
            yield data[start : start + (1 << 20)]

    uploaded = client.put(
        f"/v2/images/{image['id']}/file",
        content=chunks(),
        headers={"Content-Type": "application/octet-stream"},
    )
    downloaded = client.get(f"/v2/images/{image['id']}/file")

    assert created.status_code == 201, created.text
    # Absolute links from server.public_endpoint; the request id passed through.
    assert created.headers["Location"] == f"{public}/v2/images/{image['id']}"
    assert created.headers["X-Openstack-Request-Id"] == request_id
    # The client's X-Roles never reached Skylens: it acted as the default admin.
    assert image["owner"] == "default"
    assert uploaded.status_code == 204, uploaded.text
    assert hashlib.sha256(downloaded.content).digest() == hashlib.sha256(data).digest()
