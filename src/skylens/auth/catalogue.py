"""The service catalogue a Keystone token carries (a `ServiceCatalogue`).

glance-download finds the other region's image service where Glance finds it: in the
caller's own catalogue (Glance reads the one keystonemiddleware put in the request's
context). A task may run long after the request and in another process, so the
catalogue is read when the task runs, with the caller's token: `GET /v3/auth/catalog`,
which also proves the token still valid.
"""

from __future__ import annotations

import logging
from typing import Any

from skylens.auth.keystone import ServiceCredentials, connection_errors
from skylens.domain.errors import IdentityUnavailable, NotAuthenticated

log = logging.getLogger(__name__)


class KeystoneCatalogue:
    def __init__(self, credentials: ServiceCredentials) -> None:
        self._url = f"{credentials.auth_url.rstrip('/')}/auth/catalog"
        self._session = credentials.session()
        self._connection_errors = connection_errors()

    def endpoint(self, token: str, service_type: str, region: str, interface: str) -> str | None:
        try:
            response = self._session.get(
                self._url, headers={"X-Auth-Token": token}, authenticated=False, raise_exc=False
            )
        except self._connection_errors:
            log.exception("Keystone at %s cannot be reached", self._url)
            raise IdentityUnavailable("The Keystone service is temporarily unavailable.") from None
        if response.status_code in (401, 403, 404):
            raise NotAuthenticated("The identity service no longer accepts the caller's token.")
        if response.status_code != 200:
            log.error("Keystone answered %s to a catalogue request", response.status_code)
            raise IdentityUnavailable("The Keystone service is temporarily unavailable.")
        return find_endpoint(response.json().get("catalog", []), service_type, region, interface)


def find_endpoint(
    catalogue: list[Any], service_type: str, region: str, interface: str
) -> str | None:
    """In a v3 catalogue, the URL of `service_type` at `interface` in `region`: the
    region compared without case, as Glance compares it."""
    for service in catalogue:
        if service.get("type") != service_type:
            continue
        for endpoint in service.get("endpoints", ()):
            named = endpoint.get("region") or endpoint.get("region_id") or ""
            if named.lower() == region.lower() and endpoint.get("interface") == interface:
                url = endpoint.get("url")
                return url if isinstance(url, str) else None
    return None
