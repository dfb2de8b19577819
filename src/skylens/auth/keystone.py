"""Identity from Keystone v3 tokens, validated with the service's own credentials.

Like keystonemiddleware's auth_token (which Glance runs), a token is validated with
`GET /v3/auth/tokens` (`X-Subject-Token`) through a keystoneauth1 session that holds
the service user's token. A successful validation is cached for `cache_seconds`
(keystonemiddleware's `token_cache_time`, 300 s by default), so a revoked token
keeps working until its entry expires, exactly as with Glance. The token's own
expiry is checked on every request. Tokens are cached under their SHA-256, never
stored or logged as such.

A refused token is remembered for `negative_cache_seconds` (10 s), so a client
repeating a bad token costs Keystone one call, not one per request; concurrent
requests with one token share one call. Validations run on a pool of their own,
`validation_threads` wide: however many unknown tokens arrive, they neither take
the threads uploads and database work run on, nor ask Keystone more than that
many questions at once (the rest wait their turn).

keystonemiddleware itself is WSGI middleware built on webob; this is the same
protocol over the same library (keystoneauth1), without a WSGI bridge per request.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import hashlib
import logging
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from skylens.domain.access import RequestContext
from skylens.domain.errors import IdentityUnavailable, NotAuthenticated

log = logging.getLogger(__name__)

# What a token can be: printable ASCII (Keystone's are base64url or JWS). Anything
# else is refused without asking Keystone, and could not even be sent to it.
_TOKEN = re.compile(r"[\x21-\x7e]+")


@dataclasses.dataclass(frozen=True, slots=True)
class _Validated:
    context: RequestContext
    expires_at: float  # the token's own expiry (Unix time)
    cached_until: float


@dataclasses.dataclass(frozen=True)
class ServiceCredentials:
    """The image service's own Keystone user, and how to reach Keystone."""

    auth_url: str
    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    cafile: str = ""
    insecure: bool = False
    timeout: float = 10.0

    def session(self) -> Any:
        """A keystoneauth1 session that authenticates as the service user."""
        from keystoneauth1 import session as keystone_session
        from keystoneauth1.identity import v3

        service = v3.Password(
            auth_url=self.auth_url.rstrip("/"),
            username=self.username,
            password=self.password,
            project_name=self.project_name,
            user_domain_name=self.user_domain_name,
            project_domain_name=self.project_domain_name,
        )
        return keystone_session.Session(
            auth=service, verify=self.cafile or not self.insecure, timeout=self.timeout
        )


def connection_errors() -> tuple[type[Exception], ...]:
    """keystoneauth1's ways of saying Keystone could not be reached."""
    from keystoneauth1 import exceptions as keystone_errors

    return (
        keystone_errors.ConnectFailure,
        keystone_errors.ConnectTimeout,
        keystone_errors.DiscoveryFailure,
        keystone_errors.RetriableConnectionFailure,
        keystone_errors.SSLError,
    )


def keystone_answers(credentials: ServiceCredentials) -> None:
    """Return when Keystone answers at `auth_url` (its version document, asked for
    without a token); raise `IdentityUnavailable` when it does not. For readiness."""
    from keystoneauth1 import exceptions as keystone_errors

    url = credentials.auth_url.rstrip("/")
    try:
        credentials.session().get(url, authenticated=False, raise_exc=False)
    except keystone_errors.ClientException as error:
        log.warning("Keystone at %s does not answer: %s", url, error)
        raise IdentityUnavailable("Keystone does not answer.") from error


class KeystoneAuthenticator:
    def __init__(
        self,
        credentials: ServiceCredentials,
        *,
        www_authenticate_uri: str = "",
        cache_seconds: float = 300.0,
        cache_size: int = 10_000,
        negative_cache_seconds: float = 10.0,
        validation_threads: int = 8,
    ) -> None:
        from keystoneauth1 import exceptions as keystone_errors

        self._auth_url = credentials.auth_url.rstrip("/")
        self._challenge = f'Keystone uri="{www_authenticate_uri or self._auth_url}"'
        self._cache_seconds = cache_seconds
        self._negative_cache_seconds = negative_cache_seconds
        self._cache_size = cache_size
        # Both caches are only touched on the event loop: no lock.
        self._cache: collections.OrderedDict[bytes, _Validated] = collections.OrderedDict()
        self._refused: collections.OrderedDict[bytes, float] = collections.OrderedDict()
        self._pending: dict[bytes, asyncio.Future[_Validated | None]] = {}
        self._pool = ThreadPoolExecutor(validation_threads, thread_name_prefix="keystone")
        self._connection_errors = connection_errors()
        self._unauthorized: type[Exception] = keystone_errors.Unauthorized
        self._session = credentials.session()

    async def authenticate(self, headers: Mapping[str, str]) -> RequestContext:
        token = headers.get("x-auth-token") or headers.get("x-storage-token")
        if not token or not _TOKEN.fullmatch(token):
            raise NotAuthenticated(challenge=self._challenge)
        key = hashlib.sha256(token.encode()).digest()
        now = time.time()
        cached = self._cache.get(key)
        if cached is not None and now < cached.cached_until:
            if now >= cached.expires_at:
                raise NotAuthenticated(challenge=self._challenge)
            return cached.context
        refused_until = self._refused.get(key)
        if refused_until is not None and now < refused_until:
            raise NotAuthenticated(challenge=self._challenge)
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._ask_keystone(key, token, now))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        # Shielded: a client that leaves does not cancel the answer others wait for.
        validated = await asyncio.shield(pending)
        if validated is None:
            raise NotAuthenticated(challenge=self._challenge)
        return validated.context

    async def _ask_keystone(self, key: bytes, token: str, now: float) -> _Validated | None:
        """Validate on the pool and remember the answer; None: Keystone refused it."""
        loop = asyncio.get_running_loop()
        try:
            validated = await loop.run_in_executor(self._pool, self._validate, token, now)
        except NotAuthenticated:
            if self._negative_cache_seconds > 0:
                _remember(self._refused, key, now + self._negative_cache_seconds, self._cache_size)
            return None
        _remember(self._cache, key, validated, self._cache_size)
        return validated

    def _validate(self, token: str, now: float) -> _Validated:
        try:
            response = self._session.get(
                f"{self._auth_url}/auth/tokens",
                headers={"X-Subject-Token": token},
                authenticated=True,
                raise_exc=False,
            )
        except self._unauthorized:
            # The service's own credentials were refused: an operator must fix them.
            log.error("Keystone refused the service credentials used to validate tokens")
            raise IdentityUnavailable("The Keystone service is temporarily unavailable.") from None
        except self._connection_errors:
            log.exception("Keystone at %s cannot be reached", self._auth_url)
            raise IdentityUnavailable("The Keystone service is temporarily unavailable.") from None
        if response.status_code in (401, 403, 404):
            raise NotAuthenticated(challenge=self._challenge)
        if response.status_code != 200:
            log.error("Keystone answered %s to a token validation", response.status_code)
            raise IdentityUnavailable("The Keystone service is temporarily unavailable.")
        body: dict[str, Any] = response.json()["token"]
        expires_at = _unix_time(body["expires_at"])
        if expires_at <= now:
            raise NotAuthenticated(challenge=self._challenge)
        cached_until = min(expires_at, now + self._cache_seconds)
        return _Validated(_context_of(body), expires_at, cached_until)


def _remember(
    cache: collections.OrderedDict[bytes, Any], key: bytes, value: Any, size: int
) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


def _context_of(token: Mapping[str, Any]) -> RequestContext:
    roles = [role["name"] for role in token.get("roles", ())]
    user_id = token.get("user", {}).get("id")
    if "project" in token:
        return RequestContext.create(token["project"]["id"], user_id, roles)
    scope = "system" if "system" in token else "domain" if "domain" in token else "unscoped"
    return RequestContext.create(None, user_id, roles, scope=scope)


def _unix_time(value: str) -> float:
    """Keystone's `2026-11-22T20:15:00.000000Z`."""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()
