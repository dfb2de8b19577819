"""Per-project limits from Keystone's unified limits, as Glance reads them.

Glance asks oslo.limit, which reads the registered (default) limits and the project
limits of the image service's endpoint (`[oslo_limit] endpoint_id`) from Keystone.
Skylens reads the same two collections with the same keystoneauth1 session it
validates tokens with, and keeps each answer for `cache_seconds`. oslo.limit's own
enforcement (ask for usage, compare, then write) is the check-then-act race that
lets Glance overshoot; Skylens needs only the numbers, and checks them where it
writes (see `skylens.domain.quotas`).

As with oslo.limit, a resource with neither a project limit nor a registered limit
has a limit of 0 (fail closed), and the error is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from skylens.auth.keystone import ServiceCredentials, connection_errors
from skylens.domain.errors import IdentityUnavailable
from skylens.domain.quotas import ProjectLimits, Resource

log = logging.getLogger(__name__)

_UNAVAILABLE = "The Keystone service is temporarily unavailable."


class KeystoneLimits:
    enabled = True

    def __init__(
        self, credentials: ServiceCredentials, endpoint_id: str, cache_seconds: float = 60.0
    ) -> None:
        self._api = credentials.auth_url.rstrip("/")
        self._credentials = credentials
        self._endpoint_id = endpoint_id
        self._cache_seconds = cache_seconds
        self._session: Any = None
        self._scope: dict[str, str] | None = None  # service_id (and region_id)
        self._registered: tuple[float, dict[str, int]] | None = None
        self._projects: dict[str, tuple[float, dict[str, int]]] = {}
        self._lock = threading.Lock()
        from keystoneauth1 import exceptions as keystone_errors

        # Keystone unreachable, or refusing the service user's own credentials.
        self._failures: tuple[type[Exception], ...] = (
            *connection_errors(),
            keystone_errors.Unauthorized,
        )

    def limits(self, project_id: str) -> ProjectLimits:
        now = time.monotonic()
        with self._lock:
            registered = self._registered
            project = self._projects.get(project_id)
        if registered is None or now >= registered[0]:
            registered = (now + self._cache_seconds, self._read("registered_limits", {}))
        if project is None or now >= project[0]:
            project = (now + self._cache_seconds, self._read("limits", {"project_id": project_id}))
        with self._lock:
            self._registered = registered
            self._projects[project_id] = project
        values = {}
        for resource in Resource:
            limit = project[1].get(resource.value, registered[1].get(resource.value))
            if limit is None:
                log.error(
                    "Keystone has no registered limit for %s of endpoint %s: limit taken as 0",
                    resource.value,
                    self._endpoint_id,
                )
                limit = 0
            values[resource] = limit
        return ProjectLimits(values)

    def _read(self, collection: str, query: dict[str, str]) -> dict[str, int]:
        """`GET /v3/<collection>` for the image service's endpoint: resource -> limit."""
        field = "default_limit" if collection == "registered_limits" else "resource_limit"
        body = self._get(collection, {**self._endpoint_scope(), **query})
        return {item["resource_name"]: int(item[field]) for item in body[collection]}

    def _endpoint_scope(self) -> dict[str, str]:
        if self._scope is None:
            endpoint = self._get(f"endpoints/{self._endpoint_id}", {})["endpoint"]
            scope = {"service_id": endpoint["service_id"]}
            if endpoint.get("region_id"):
                scope["region_id"] = endpoint["region_id"]
            self._scope = scope
        return self._scope

    def _get(self, path: str, query: dict[str, str]) -> Any:
        if self._session is None:
            self._session = self._credentials.session()
        try:
            response = self._session.get(
                f"{self._api}/{path}", params=query, authenticated=True, raise_exc=False
            )
        except self._failures:
            log.exception("Keystone at %s cannot be asked for limits", self._api)
            raise IdentityUnavailable(_UNAVAILABLE) from None
        if response.status_code != 200:
            log.error(
                "Keystone answered %s to GET /v3/%s (does the service user have the "
                "`reader` role on the system?)",
                response.status_code,
                path,
            )
            raise IdentityUnavailable(_UNAVAILABLE)
        return response.json()
