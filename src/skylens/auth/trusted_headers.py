"""Identity from headers set by a trusted caller: the embedded development mode.

Anyone who can reach the port can claim any identity, which is why the service
refuses to serve this mode beyond loopback unless explicitly told to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from urllib.parse import unquote

from skylens.domain.access import RequestContext


@dataclasses.dataclass(frozen=True, slots=True)
class TrustedHeadersAuthenticator:
    default_project: str
    default_user: str
    default_roles: tuple[str, ...]

    async def authenticate(self, headers: Mapping[str, str]) -> RequestContext:
        project = _header(headers, "x-project-id") or _header(headers, "x-tenant-id")
        user = _header(headers, "x-user-id")
        roles = _header(headers, "x-roles")
        if project is None and user is None and roles is None:
            return RequestContext.create(
                self.default_project, self.default_user, self.default_roles
            )
        return RequestContext.create(project or None, user or None, (roles or "").split(","))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value, percent-decoded: python-glanceclient's `identity_headers`
    percent-encode every value (RFC 8187 style), so "member,reader" arrives as
    "member%2Creader". Keystone ids and role names contain no '%' of their own."""
    value = headers.get(name)
    return None if value is None else unquote(value)
