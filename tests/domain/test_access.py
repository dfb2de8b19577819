"""Who is asking: the request context and its roles."""

from __future__ import annotations

from skylens.domain.access import RequestContext

ADMIN = RequestContext.create("elsewhere", "u", ["admin"])
OWNER_MEMBER = RequestContext.create("owner", "u", ["member"])


def test_roles_imply_each_other_as_keystone_defaults_do() -> None:
    assert ADMIN.roles == {"admin", "member", "reader"}
    assert OWNER_MEMBER.roles == {"member", "reader"}
    assert RequestContext.create("p", "u", [" Member ", ""]).roles == {"member", "reader"}
