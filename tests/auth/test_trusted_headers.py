"""Identity from trusted headers, including python-glanceclient's encoded ones."""

from __future__ import annotations

import asyncio

from skylens.auth.trusted_headers import TrustedHeadersAuthenticator
from skylens.domain.access import RequestContext

AUTHENTICATOR = TrustedHeadersAuthenticator("default", "nobody", ("admin",))


def _context(headers: dict[str, str]) -> RequestContext:
    return asyncio.run(AUTHENTICATOR.authenticate(headers))


def test_headers_name_the_identity() -> None:
    context = _context({"x-project-id": "p1", "x-user-id": "u1", "x-roles": "member, reader"})

    assert (context.project_id, context.user_id) == ("p1", "u1")
    assert context.roles == {"member", "reader"}


def test_no_headers_is_the_default_identity() -> None:
    context = _context({})

    assert (context.project_id, context.user_id) == ("default", "nobody")
    assert context.is_admin


def test_percent_encoded_values_are_decoded() -> None:
    # glanceclient's identity_headers send "member,reader" as "member%2Creader".
    context = _context({"x-project-id": "p%2D1", "x-user-id": "u1", "x-roles": "member%2Creader"})

    assert context.project_id == "p-1"
    assert context.roles == {"member", "reader"}


def test_tenant_id_is_the_old_name_of_project_id() -> None:
    assert _context({"x-tenant-id": "p2", "x-roles": "reader"}).project_id == "p2"
