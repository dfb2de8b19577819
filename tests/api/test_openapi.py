"""GET /openapi.json describes exactly the routes the service serves."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from skylens.api.routing import ResourceEndpoint
from tests.support import routes as support_routes
from tests.support.servers import RunningServer

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
UNAUTHENTICATED = {
    ("/", "get"),
    ("/versions", "get"),
    ("/healthcheck", "get"),
    ("/healthcheck/ready", "get"),
    ("/metrics", "get"),  # Prometheus metrics: no tenant data in them
    ("/openapi.json", "get"),
    ("/v2.1", "get"),  # the Compute proxy's version document
    ("/v2.1/", "get"),
}


@pytest.fixture(scope="module")
def served_routes(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """(path, method) for every operation of an app built as `skylens serve` builds it."""
    routes: set[tuple[str, str]] = set()
    for served in support_routes.served_routes(tmp_path_factory.mktemp("openapi")):
        route = served.route
        if isinstance(route.endpoint, ResourceEndpoint):
            operations = route.endpoint.resource.operations
            routes.update((route.path, operation.method.lower()) for operation in operations)
        else:  # a route added outside the resource tables still counts
            routes.update((route.path, method.lower()) for method in route.methods or ())
    return routes


@pytest.fixture
def document(server: RunningServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def test_the_document_describes_exactly_the_served_routes(
    document: dict[str, Any], served_routes: set[tuple[str, str]]
) -> None:
    described = {(path, method) for path, method, _ in operations(document)}

    assert described == served_routes
    assert ("/openapi.json", "get") in described


def test_the_openapi_version_and_info(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "Skylens"
    assert isinstance(document["info"]["version"], str)
    assert document["info"]["version"]


def test_every_path_declares_exactly_its_template_parameters(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        assert path.startswith("/")
        template = re.findall(r"{(\w+)}", path)
        declared = item.get("parameters", [])
        assert [parameter["name"] for parameter in declared] == template, path
        assert all(p["in"] == "path" and p["required"] is True for p in declared), path


def test_every_operation_has_a_summary_a_tag_and_one_success_response(
    document: dict[str, Any],
) -> None:
    for path, method, operation in operations(document):
        assert operation["summary"], (path, method)
        assert operation["tags"], (path, method)
        codes = list(operation["responses"])
        assert all(re.fullmatch(r"[1-5]\d\d", code) for code in codes), (path, method)
        successes = [code for code in codes if code[0] in "23"]
        assert len(successes) == 1, (path, method, codes)
        assert all(response["description"] for response in operation["responses"].values())


def _error_schema(path: str) -> str:
    """The Compute proxy answers Compute faults; everything else Glance's errors."""
    return "compute_fault" if path.startswith("/v2.1") else "error"


def test_error_responses_use_their_surface_s_error_schema(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for code, response in operation["responses"].items():
            if code[0] in "45":
                schema = response["content"]["application/json"]["schema"]
                expected = {"$ref": f"#/components/schemas/{_error_schema(path)}"}
                assert schema == expected, (path, method, code)


@pytest.mark.parametrize("path", ["/v2/images/{}", "/v2.1/images/{}"])
def test_real_error_bodies_match_the_declared_schema(
    document: dict[str, Any], server: RunningServer, path: str
) -> None:
    """`{"itemNotFound": {...}}` from the Compute proxy, Glance's body elsewhere."""
    response = httpx.get(
        f"{server.url}{path.format(uuid.uuid4())}", headers={"Accept": "application/json"}
    )

    assert response.status_code == 404
    schemas = document["components"]["schemas"]
    validator = jsonschema.Draft202012Validator(schemas[_error_schema(path)])
    validator.validate(response.json())
    other = "error" if _error_schema(path) == "compute_fault" else "compute_fault"
    assert not jsonschema.Draft202012Validator(schemas[other]).is_valid(response.json())


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    refs = set(references(document["paths"])) | set(references(schemas))

    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_every_component_is_a_valid_json_schema(document: dict[str, Any]) -> None:
    for name, schema in document["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as error:  # pragma: no cover - the failure message
            pytest.fail(f"components.schemas.{name}: {error.message}")


def test_only_discovery_and_service_endpoints_are_unauthenticated(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    assert document["security"]
    for requirement in document["security"]:
        assert set(requirement) <= set(schemes)

    public = {(p, m) for p, m, operation in operations(document) if operation.get("security") == []}

    assert public == UNAUTHENTICATED


def test_request_bodies_name_the_media_types_the_service_accepts(
    document: dict[str, Any],
) -> None:
    create = document["paths"]["/v2/images"]["post"]["requestBody"]["content"]
    update = document["paths"]["/v2/images/{image_id}"]["patch"]["requestBody"]["content"]

    assert set(create) == {"application/json"}
    assert set(update) == {
        "application/openstack-images-v2.1-json-patch",
        "application/openstack-images-v2.0-json-patch",
    }
