"""What every Image API response shares: versions, request ids, errors, methods."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity
from tests.support.images import create_image, patch_image
from tests.support.servers import RunningServer

VERSION_IDS = [
    "v2.15",
    "v2.13",
    "v2.12",
    "v2.11",
    "v2.10",
    "v2.9",
    "v2.8",
    "v2.7",
    "v2.6",
    "v2.5",
    "v2.4",
    "v2.3",
    "v2.2",
    "v2.1",
    "v2.0",
]
REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def without_accept(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send a request with no `Accept` header at all (httpx adds `*/*` by default)."""
    request = client.build_request(method, url, **kwargs)
    del request.headers["accept"]
    return client.send(request)


# -- versions ------------------------------------------------------------------


def test_versions_lists_every_supported_version_with_one_current(
    http: ClientFactory, server: RunningServer
) -> None:
    response = http().get("/versions")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    versions = response.json()["versions"]
    assert [version["id"] for version in versions] == VERSION_IDS
    assert [version["status"] for version in versions] == ["CURRENT"] + ["SUPPORTED"] * 14
    for version in versions:
        assert version["links"] == [{"rel": "self", "href": f"{server.url}/v2/"}]


def test_the_root_is_300_multiple_choices_with_the_same_document(http: ClientFactory) -> None:
    client = http()

    root = client.get("/")

    assert root.status_code == 300
    assert root.json() == client.get("/versions").json()


def test_versions_need_no_identity(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/versions").status_code == 200


def test_version_links_use_the_host_the_client_asked_for(http: ClientFactory) -> None:
    # A loopback name other than the server's address: in trusted-headers mode only
    # loopback names (and server.allowed_hosts) may be named in Host.
    response = http().get("/", headers={"Host": "localhost:9393"})

    hrefs = {link["href"] for version in response.json()["versions"] for link in version["links"]}
    assert hrefs == {"http://localhost:9393/v2/"}


# `/v2.1/...` is the Compute API's image proxy unless compute.prefix moves it (see
# tests/api/compute_v21/test_prefix.py, which checks the Image API's v2.1 there).
@pytest.mark.parametrize("version", ["v2", *(v for v in VERSION_IDS if v != "v2.1")])
def test_every_supported_version_prefix_reaches_the_v2_api(api: httpx.Client, version: str) -> None:
    image_id = create_image(api)["id"]

    assert api.get(f"/{version}/images/{image_id}").json()["id"] == image_id
    assert api.get(f"/{version}/schemas/image").json()["name"] == "image"


@pytest.mark.parametrize("path", ["/v2.99/images", "/v2.14/images", "/v3/", "/v1/images", "/x"])
def test_an_unknown_version_is_300_with_the_version_list(api: httpx.Client, path: str) -> None:
    response = api.get(path)

    assert response.status_code == 300
    assert [version["id"] for version in response.json()["versions"]] == VERSION_IDS


def test_the_bare_v2_root_is_404(api: httpx.Client) -> None:
    assert_error(api.get("/v2/"), 404, "The resource could not be found.")


def test_the_version_may_come_from_the_vendor_media_type_instead_of_the_path(
    api: httpx.Client,
) -> None:
    image_id = create_image(api)["id"]

    response = api.get(
        f"/images/{image_id}", headers={"Accept": "application/vnd.openstack.images-v2.1"}
    )

    assert response.status_code == 200
    assert response.json()["id"] == image_id


# -- request ids ---------------------------------------------------------------


def test_every_response_carries_a_request_id(api: httpx.Client) -> None:
    image_id = create_image(api)["id"]
    responses = [
        api.get("/"),
        api.get("/versions"),
        api.get("/healthcheck"),
        api.get("/v2/schemas/image"),
        api.post("/v2/images", json={}),
        api.get(f"/v2/images/{image_id}"),
        patch_image(api, image_id, [], media_type="application/json"),
        api.put(f"/v2/images/{image_id}/tags/x"),
        api.delete(f"/v2/images/{image_id}"),
        api.get(f"/v2/images/{image_id}"),
        api.put("/v2/images"),
        api.request("PROPFIND", "/v2/images"),
    ]

    assert [r.status_code for r in responses] == [
        300, 200, 200, 200, 201, 200, 415, 204, 204, 404, 405, 501
    ]  # fmt: skip
    ids = [response.headers["x-openstack-request-id"] for response in responses]
    assert all(REQUEST_ID.match(request_id) for request_id in ids), ids
    assert len(set(ids)) == len(ids)


def test_a_well_formed_request_id_from_the_client_is_echoed(api: httpx.Client) -> None:
    request_id = f"req-{uuid.uuid4()}"

    response = api.get("/v2/images", headers={"X-OpenStack-Request-ID": request_id})

    assert response.headers["x-openstack-request-id"] == request_id


@pytest.mark.parametrize(
    "sent",
    ["junk", "req-123", "0f0e8f5e-4b8e-4d0a-9a5c-2c7f3f9d1e6b", "req-" + "a" * 100],
    ids=["junk", "short", "no-prefix", "long"],
)
def test_a_malformed_request_id_from_the_client_is_replaced(api: httpx.Client, sent: str) -> None:
    response = api.get("/v2/images", headers={"X-OpenStack-Request-ID": sent})

    returned = response.headers["x-openstack-request-id"]
    assert REQUEST_ID.match(returned)
    assert returned != sent


# -- error formats -------------------------------------------------------------


def test_errors_are_json_when_the_client_accepts_json(api: httpx.Client) -> None:
    assert_error(api.get("/v2/images/nope"), 404, "No image found with ID nope")


def test_errors_are_plain_text_without_an_accept_header(api: httpx.Client) -> None:
    response = without_accept(api, "GET", "/v2/images/nope")

    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=UTF-8"
    assert response.text == "404 Not Found\n\nNo image found with ID nope\n\n   "


@pytest.mark.parametrize("accept", ["text/plain", "application/json;q=0", "image/png"])
def test_errors_are_plain_text_when_neither_html_nor_json_is_acceptable(
    api: httpx.Client, accept: str
) -> None:
    response = api.get("/v2/images/nope", headers={"Accept": accept})

    assert response.headers["content-type"] == "text/plain; charset=UTF-8"
    assert response.text == "404 Not Found\n\nNo image found with ID nope\n\n   "


@pytest.mark.parametrize("accept", ["*/*", "text/html", "text/*", "application/json;q=0.5, */*"])
def test_errors_are_html_when_html_is_preferred(api: httpx.Client, accept: str) -> None:
    response = api.get("/v2/images/nope", headers={"Accept": accept})

    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=UTF-8"
    assert response.text == (
        "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n"
        "  <h1>404 Not Found</h1>\n  No image found with ID nope<br /><br />\n\n\n\n"
        " </body>\n</html>"
    )


@pytest.mark.parametrize("accept", ["application/json, */*;q=0.1", "application/*"])
def test_errors_are_json_when_json_is_preferred(api: httpx.Client, accept: str) -> None:
    response = api.get("/v2/images/nope", headers={"Accept": accept})

    assert response.headers["content-type"] == "application/json"


def test_html_errors_escape_the_message(api: httpx.Client) -> None:
    response = api.get("/v2/images/<b>", headers={"Accept": "text/html"})

    assert "No image found with ID &lt;b&gt;<br /><br />" in response.text


class TestDetailStyleErrors:
    """Messages Glance passes as webob's detail sit under the generic explanation."""

    @pytest.fixture
    def image_id(self, api: httpx.Client) -> str:
        image_id: str = create_image(api)["id"]
        return image_id

    def remove_name(
        self, client: httpx.Client, image_id: str, accept: str | None
    ) -> httpx.Response:
        url = f"/v2/images/{image_id}"
        body = [{"op": "remove", "path": "/name"}]
        headers = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
        if accept is None:
            return without_accept(client, "PATCH", url, json=body, headers=headers)
        return client.patch(url, json=body, headers={**headers, "Accept": accept})

    def test_as_json(self, api: httpx.Client, image_id: str) -> None:
        response = self.remove_name(api, image_id, "application/json")

        assert response.status_code == 403
        assert response.json() == {
            "message": "Access was denied to this resource.<br /><br />\n"
            "Property name may not be removed.\n\n",
            "code": "403 Forbidden",
            "title": "Forbidden",
        }

    def test_as_plain_text(self, api: httpx.Client, image_id: str) -> None:
        response = self.remove_name(api, image_id, None)

        assert response.text == (
            "403 Forbidden\n\nAccess was denied to this resource.\n\n"
            " Property name may not be removed.  "
        )

    def test_as_html(self, api: httpx.Client, image_id: str) -> None:
        response = self.remove_name(api, image_id, "*/*")

        assert response.text == (
            "<html>\n <head>\n  <title>403 Forbidden</title>\n </head>\n <body>\n"
            "  <h1>403 Forbidden</h1>\n  Access was denied to this resource.<br /><br />\n"
            "Property name may not be removed.\n\n\n </body>\n</html>"
        )


def test_a_multi_line_message_is_one_line_in_plain_text(api: httpx.Client) -> None:
    response = without_accept(api, "POST", "/v2/images", json={"name": 1})

    assert response.status_code == 400
    first, blank, message = response.text.split("\n", 2)
    assert (first, blank) == ("400 Bad Request", "")
    assert message.startswith("Provided object does not match schema 'image': 1 is not of type")
    assert message.endswith("\n\n   ")
    assert "\n" not in message.removesuffix("\n\n   ")


# -- methods -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v2/images", "GET, POST"),
        ("DELETE", "/v2/images", "GET, POST"),
        ("PATCH", "/v2/images", "GET, POST"),
        ("POST", "/v2/images/{id}", "GET, PATCH, DELETE"),
        ("PUT", "/v2/images/{id}", "GET, PATCH, DELETE"),
        ("POST", "/v2/images/{id}/tags/t", "PUT, DELETE"),
        ("DELETE", "/v2/images/{id}/actions/deactivate", "POST"),
        ("PUT", "/v2/schemas/image", "GET"),
        ("POST", "/versions", "GET"),
    ],
)
def test_a_method_a_resource_does_not_serve_is_405_with_allow(
    api: httpx.Client, method: str, path: str, allow: str
) -> None:
    image_id = create_image(api)["id"]

    response = api.request(method, path.format(id=image_id))

    assert_error(response, 405, f"The method {method} is not allowed for this resource.")
    assert response.headers["allow"] == allow


def test_head_is_405_even_where_get_is_served(api: httpx.Client) -> None:
    response = api.head("/v2/images")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize("method", ["PROPFIND", "OPTIONS", "PURGE"])
@pytest.mark.parametrize("path", ["/v2/images", "/v2/no-such-collection"])
def test_a_method_glance_does_not_implement_is_501(
    api: httpx.Client, method: str, path: str
) -> None:
    response = api.request(method, path)

    assert_error(response, 501, f"The request method {method} is not implemented for this server.")


def test_a_method_the_http_parser_does_not_know_is_501_too(api: httpx.Client) -> None:
    response = api.request("FOO", "/v2/images")

    assert response.status_code == 501
    assert response.headers["content-type"] == "text/plain; charset=UTF-8"
    assert response.text.startswith("501 Not Implemented\n\n")
    assert REQUEST_ID.match(response.headers["x-openstack-request-id"])


# -- service endpoints ---------------------------------------------------------


def test_healthcheck_is_200_ok_without_identity(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/healthcheck")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "OK"


def test_healthcheck_answers_only_get(http: ClientFactory, member: Identity) -> None:
    response = http(member).post("/healthcheck")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
