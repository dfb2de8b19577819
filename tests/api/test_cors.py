"""CORS as Glance's oslo.middleware filter answers it: off by default (a preflight is
an empty 200 that allows nothing, as recorded from Glance 33), and with
`[cors] allowed_origins` the allowed origins' preflights and answers carry the
Access-Control headers (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import RunningServer, skylens_server

CONSOLE = "https://console.example.com"
ELSEWHERE = "https://evil.example.net"
IDENTITY = {"X-Project-Id": "alpha", "X-Roles": "member,reader"}


@pytest.fixture(scope="module")
def cors_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("cors")
    config = data_dir / "skylens.toml"
    config.write_text(f'[cors]\nallowed_origins = ["{CONSOLE}"]\nmax_age = 600\n')
    with skylens_server(
        data_dir,
        f"sqlite:///{data_dir / 'skylens.db'}",
        "sqlite",
        extra_args=("--config", str(config)),
    ) as server:
        yield server


def _preflight(
    server: RunningServer, origin: str, method: str, headers: str = ""
) -> httpx.Response:
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        sent["Access-Control-Request-Headers"] = headers
    return httpx.options(f"{server.url}/v2/images", headers=sent)


def _says_nothing(answer: httpx.Response) -> None:
    assert answer.status_code == 200
    assert answer.content == b""
    assert "content-type" not in answer.headers
    assert not [name for name in answer.headers if name.startswith("access-control-")]


def test_without_cors_a_preflight_is_an_empty_200_as_in_glance(server: RunningServer) -> None:
    _says_nothing(_preflight(server, "http://example.com", "GET"))


def test_an_allowed_origins_preflight_is_allowed(cors_server: RunningServer) -> None:
    answer = _preflight(cors_server, CONSOLE, "PUT", "X-Auth-Token, Content-Type")

    assert answer.status_code == 200
    assert answer.content == b""
    assert answer.headers["access-control-allow-origin"] == CONSOLE
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert answer.headers["access-control-max-age"] == "600"
    assert answer.headers["access-control-allow-methods"] == "PUT"
    assert answer.headers["access-control-allow-headers"] == "X-Auth-Token,Content-Type"
    assert answer.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        (ELSEWHERE, "GET", ""),  # an origin not listed
        (CONSOLE, "HEAD", ""),  # a method not in allow_methods
        (CONSOLE, "GET", "X-Not-Allowed"),  # a header not in allow_headers
    ],
)
def test_what_cors_does_not_allow_gets_an_empty_200(
    cors_server: RunningServer, origin: str, method: str, headers: str
) -> None:
    _says_nothing(_preflight(cors_server, origin, method, headers))


def test_answers_to_an_allowed_origin_expose_glances_headers(cors_server: RunningServer) -> None:
    answer = httpx.get(f"{cors_server.url}/v2/images", headers={**IDENTITY, "Origin": CONSOLE})

    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == CONSOLE
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert answer.headers["access-control-expose-headers"] == (
        "X-Image-Meta-Checksum,X-Auth-Token,X-Subject-Token,X-Service-Token,X-OpenStack-Request-ID"
    )


def test_trusted_headers_mode_still_refuses_other_origins(cors_server: RunningServer) -> None:
    answer = httpx.get(f"{cors_server.url}/v2/images", headers={**IDENTITY, "Origin": ELSEWHERE})

    assert answer.status_code == 403
    assert "access-control-allow-origin" not in answer.headers


def test_a_request_without_origin_gets_no_cors_headers(cors_server: RunningServer) -> None:
    answer = httpx.get(f"{cors_server.url}/v2/images", headers=IDENTITY)

    assert answer.status_code == 200
    assert not [name for name in answer.headers if name.startswith("access-control-")]
