"""Who is asking: the request context and its roles."""

from __future__ import annotations

from skylens.domain.access import RequestContext

ADMIN = RequestContext.create("elsewhere", "u", ["admin"])
OWNER_MEMBER = RequestContext.create("owner", "u", ["member"])


def test_roles_are_taken_literally_as_glance_checks_them() -> None:
    # Keystone puts implied roles in its tokens itself; nothing is added here, so
    # `member` alone is not a `reader` (Glance 33 refuses it the image list).
    assert ADMIN.roles == {"admin"}
    assert OWNER_MEMBER.roles == {"member"}
    assert RequestContext.create("p", "u", [" Member ", ""]).roles == {"member"}
