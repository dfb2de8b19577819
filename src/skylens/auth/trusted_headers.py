"""Identity from headers set by a trusted caller: the embedded development mode.

Anyone who can reach the port can claim any identity, which is why the service
refuses to serve this mode beyond loopback unless explicitly told to, and why
`skylens.api.middleware.TrustedOrigins` refuses what a web browser could send
on behalf of another site.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from urllib.parse import unquote

from skylens.auth import identity_values
from skylens.domain.access import RequestContext
from skylens.domain.errors import InvalidRequest

# Header names as clients send them, for messages.
_NAMES = {
    "x-project-id": "X-Project-Id",
    "x-tenant-id": "X-Tenant-Id",
    "x-user-id": "X-User-Id",
    "x-roles": "X-Roles",
}


@dataclasses.dataclass(frozen=True, slots=True)
class TrustedHeadersAuthenticator:
    default_project: str
    default_user: str
    default_roles: tuple[str, ...]

    async def authenticate(self, headers: Mapping[str, str]) -> RequestContext:
        project, tenant = _header(headers, "x-project-id"), _header(headers, "x-tenant-id")
        project = project or tenant
        user = _header(headers, "x-user-id")
        roles = _header(headers, "x-roles")
        if project is None and user is None and roles is None:
            return RequestContext.create(
                self.default_project, self.default_user, self.default_roles
            )
        # Without a project the context is not project-scoped: every image rule refuses it.
        return RequestContext.create(project or None, user or None, (roles or "").split(","))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value, percent-decoded: python-glanceclient's `identity_headers`
    percent-encode every value (RFC 8187 style), so "member,reader" arrives as
    "member%2Creader". Keystone ids and role names contain no '%' of their own.
    A value no identity can have (too long, control characters) is a bad request."""
    value = headers.get(name)
    if value is None:
        return None
    value = unquote(value)
    parts = value.split(",") if name == "x-roles" else [value]
    for part in parts:
        problem = identity_values.problem(part)
        if problem is not None:
            what = "A role in X-Roles" if name == "x-roles" else _NAMES[name]
            raise InvalidRequest(f"{what} {problem}.")
    return value
