"""Identity from headers set by a trusted caller: the embedded development mode.

Anyone who can reach the port can claim any identity, which is why the service
refuses to serve this mode beyond loopback unless explicitly told to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from skylens.domain.access import RequestContext


@dataclasses.dataclass(frozen=True, slots=True)
class TrustedHeadersAuthenticator:
    default_project: str
    default_user: str
    default_roles: tuple[str, ...]

    async def authenticate(self, headers: Mapping[str, str]) -> RequestContext:
        project = headers.get("x-project-id") or headers.get("x-tenant-id")
        user = headers.get("x-user-id")
        roles = headers.get("x-roles")
        if project is None and user is None and roles is None:
            return RequestContext.create(
                self.default_project, self.default_user, self.default_roles
            )
        return RequestContext.create(project or None, user or None, (roles or "").split(","))
