"""Property protections as real clients meet them: refusals and hidden properties."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from glanceclient import exc
from openstack import exceptions

from tests.support.clients import glance_client, sdk_connection
from tests.support.identities import admin_of, member_of, new_project, reader_of
from tests.support.protections import protected_server
from tests.support.servers import RunningServer


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with protected_server(tmp_path_factory.mktemp("protections-clients"), "sqlite") as server:
        yield server


def test_glanceclient_is_refused_a_protected_property_and_never_shown_one(
    protected: RunningServer,
) -> None:
    project = new_project()
    member = glance_client(protected.url, member_of(project))
    admin = glance_client(protected.url, admin_of(project))
    reader = glance_client(protected.url, reader_of(project))

    with pytest.raises(exc.HTTPForbidden) as refused:
        member.images.create(name="billing", x_billing_code="42")
    # webob's HTML error page, as glanceclient asks for none: the quotes are escaped.
    assert "Attribute &#x27;x_billing_code&#x27; is reserved." in str(refused.value)

    image = admin.images.create(name="billing", x_billing_code="42", x_team="blue")
    as_reader = reader.images.get(image.id)

    assert as_reader["x_team"] == "blue"
    assert "x_billing_code" not in as_reader
    assert member.images.get(image.id)["x_billing_code"] == "42"


def test_openstacksdk_sees_only_readable_properties(protected: RunningServer) -> None:
    project = new_project()
    admin = sdk_connection(protected.url, admin_of(project))
    reader = sdk_connection(protected.url, reader_of(project))
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    created = admin.image.create_image(
        name=name,
        disk_format="qcow2",
        container_format="bare",
        allow_duplicates=True,
        x_secret="s",
        x_team="blue",
    )

    fetched = reader.image.get_image(created.id)
    (listed,) = reader.image.images(name=name)

    for image in (fetched, listed):
        assert image.properties.get("x_team") == "blue"
        assert "x_secret" not in image.properties
    with pytest.raises(exceptions.ForbiddenException):
        admin.image.update_image(created.id, x_sealed_key="k")
    admin.close()
    reader.close()
