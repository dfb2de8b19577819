"""The log of a real `skylens serve`: one access line per request with who, what and
how much; the request id on every line of that request; text or JSON (issue 15)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import RunningServer, skylens_server

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
TOKEN = "the-secret-token-value-0001"


def _request_id() -> str:
    return f"req-{uuid.uuid4()}"


def _lines_with(server: RunningServer, needle: str) -> list[str]:
    # The access line is written once the response is sent: the client may see the
    # answer a moment before the line is in the file.
    for _ in range(100):
        lines = [line for line in server.log.read_text().splitlines() if needle in line]
        if lines:
            return lines
        time.sleep(0.05)
    return []


@pytest.fixture
def access_logged(tmp_path: Path) -> Iterator[RunningServer]:
    with skylens_server(
        tmp_path,
        f"sqlite:///{tmp_path / 'skylens.db'}",
        "sqlite",
        extra_env={"SKYLENS_SERVER_ACCESS_LOG": "true"},
    ) as server:
        yield server


def test_each_request_is_one_text_line_with_who_what_and_how_much(
    access_logged: RunningServer,
) -> None:
    request_id = _request_id()
    headers = {
        "X-Openstack-Request-Id": request_id,
        "X-Project-Id": "alpha",
        "X-User-Id": "alice",
        "X-Roles": "member,reader",
    }
    body = b'{"name": "logged", "disk_format": "raw", "container_format": "bare"}'
    created = httpx.post(
        f"{access_logged.url}/v2/images",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert created.status_code == 201

    [line] = _lines_with(access_logged, request_id)
    sent = len(body)
    assert re.fullmatch(
        rf"{TIMESTAMP} INFO skylens\.access \[{request_id}\] POST /v2/images 201 "
        rf"\d+\.\dms in={sent} out={len(created.content)} project=alpha user=alice",
        line,
    ), line


def test_uvicorns_access_line_is_replaced(access_logged: RunningServer) -> None:
    request_id = _request_id()
    httpx.get(f"{access_logged.url}/versions", headers={"X-Openstack-Request-Id": request_id})

    assert len(_lines_with(access_logged, request_id)) == 1
    assert '"GET /versions HTTP/1.1"' not in access_logged.log.read_text()


def test_a_static_tokens_name_is_logged_never_the_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(
        f'[[token]]\nname = "ci-bot"\ntoken = "{TOKEN}"\nproject = "alpha"\n'
        'user = "ci"\nroles = ["member", "reader"]\n'
    )
    with skylens_server(
        tmp_path,
        f"sqlite:///{tmp_path / 'skylens.db'}",
        "sqlite",
        extra_env={
            "SKYLENS_SERVER_ACCESS_LOG": "true",
            "SKYLENS_AUTH_MODE": "tokens",
            "SKYLENS_AUTH_TOKEN_FILE": str(tokens),
        },
    ) as server:
        request_id = _request_id()
        listed = httpx.get(
            f"{server.url}/v2/images",
            headers={"X-Auth-Token": TOKEN, "X-Openstack-Request-Id": request_id},
        )
        assert listed.status_code == 200
        [line] = _lines_with(server, request_id)
        refused_id = _request_id()
        httpx.get(
            f"{server.url}/v2/images",
            headers={"X-Auth-Token": TOKEN + "x", "X-Openstack-Request-Id": refused_id},
        )
        [refused] = _lines_with(server, refused_id)

    assert line.endswith(" project=alpha user=ci token_name=ci-bot")
    assert " GET /v2/images 401 " in refused
    assert TOKEN not in server.log.read_text()


def test_json_lines_carry_the_request_id_into_skylens_own_events(tmp_path: Path) -> None:
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", "b.qcow2"],
        check=True,
        cwd=tmp_path,
    )
    with skylens_server(
        tmp_path,
        f"sqlite:///{tmp_path / 'skylens.db'}",
        "sqlite",
        extra_env={"SKYLENS_SERVER_ACCESS_LOG": "true", "SKYLENS_SERVER_LOG_FORMAT": "json"},
    ) as server:
        request_id = _request_id()
        headers = {
            "X-Openstack-Request-Id": request_id,
            "X-Project-Id": "alpha",
            "X-Roles": "member,reader",
        }
        image = httpx.post(
            f"{server.url}/v2/images",
            json={"disk_format": "qcow2", "container_format": "bare"},
            headers=headers,
        ).json()
        data = (tmp_path / "b.qcow2").read_bytes()
        refused = httpx.put(
            f"{server.url}/v2/images/{image['id']}/file",
            content=data,
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        assert refused.status_code == 415
        lines = _lines_with(server, '"PUT"')
        # Every line but `serve`'s own start-up line (printed before logging starts).
        text = server.log.read_text().splitlines()
        entries = [json.loads(line) for line in text if not line.startswith("skylens ")]

    assert lines
    ours = [entry for entry in entries if entry["request_id"] == request_id]
    assert {entry["logger"] for entry in ours} >= {"skylens.access", "skylens.services.image_data"}
    refusal = next(entry for entry in ours if entry["logger"] == "skylens.services.image_data")
    assert refusal["level"] == "INFO"
    assert refusal["message"].startswith("data refused, unsafe qcow2 data")
    access = next(e for e in ours if e["logger"] == "skylens.access" and e["method"] == "PUT")
    assert access["path"] == f"/v2/images/{image['id']}/file"
    assert access["route"] == "/v2/images/{image_id}/file"
    assert access["status"] == 415
    assert access["bytes_in"] == len(data)
    assert access["project"] == "alpha"
    assert re.fullmatch(TIMESTAMP, access["time"])
    assert isinstance(access["duration_ms"], float)
