"""Identity from a static token file, for small deployments without Keystone.

    # tokens.toml
    [[token]]
    name = "ci"                       # for logs; never the token itself
    sha256 = "9f86d081884c7d65..."    # or: token = "s3cret" (prefer the hash)
    project = "alpha"
    user = "ci-bot"
    roles = ["member", "reader"]

A request presents its token in `X-Auth-Token`, as with Keystone. The presented
token's SHA-256 is compared with every entry's in constant time, so neither which
entry matched nor how much of it matched shows in the response time. Every entry
names a project: an identity without one would own nothing and could create images
that nobody owns. The file is re-read when it changes (checked at most once a
second); a file that no longer parses keeps the previous tokens in force and logs
why, without any token in the log, while a file that is deleted revokes every token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skylens.auth import identity_values
from skylens.domain.access import RequestContext
from skylens.domain.errors import NotAuthenticated
from skylens.logs import note_credential
from skylens.reloading import ReloadingFile

log = logging.getLogger(__name__)

_HEX_SHA256_LENGTH = 64


class InvalidTokenFile(ValueError):
    """The token file cannot be used; the message names the entry, never a token."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    digest: bytes
    context: RequestContext


class StaticTokenAuthenticator:
    def __init__(self, path: str | Path) -> None:
        # A broken file at start-up is fatal; a broken edit keeps the previous tokens.
        # A deleted file revokes every token: deleting it is how an operator says "no one".
        self._file = ReloadingFile(
            Path(path),
            _read,
            what="token file",
            invalid=(InvalidTokenFile,),
            when_missing=_no_tokens,
        )

    async def authenticate(self, headers: Mapping[str, str]) -> RequestContext:
        token = headers.get("x-auth-token")
        if not token:
            raise NotAuthenticated()
        digest = hashlib.sha256(token.encode()).digest()
        matched: _Entry | None = None
        for entry in self._file.current():
            # Compare with every entry, whichever matches, so the time taken is the same.
            if hmac.compare_digest(entry.digest, digest):
                matched = entry
        if matched is None:
            raise NotAuthenticated()
        note_credential(matched.name)  # the access log names the entry, never the token
        return matched.context


def _no_tokens() -> tuple[_Entry, ...]:
    return ()


def _read(path: Path) -> tuple[_Entry, ...]:
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise InvalidTokenFile(f"{path} is not valid TOML: {error}") from None
    tokens = document.get("token", [])
    if not isinstance(tokens, list):
        raise InvalidTokenFile(f"{path}: [[token]] entries expected")
    return tuple(_entry(i, item) for i, item in enumerate(tokens, start=1))


def _entry(number: int, item: Any) -> _Entry:
    if not isinstance(item, dict):
        raise InvalidTokenFile(f"token entry {number} is not a table")
    name = str(item.get("name", f"#{number}"))
    where = f"token entry {name}"
    unknown = set(item) - {"name", "token", "sha256", "project", "user", "roles"}
    if unknown:
        raise InvalidTokenFile(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if ("token" in item) == ("sha256" in item):
        raise InvalidTokenFile(f"{where}: give exactly one of token or sha256")
    if "token" in item:
        if not isinstance(item["token"], str) or len(item["token"]) < 16:
            raise InvalidTokenFile(f"{where}: a token must be a string of 16 characters or more")
        digest = hashlib.sha256(item["token"].encode()).digest()
    else:
        value = item["sha256"]
        if not isinstance(value, str) or len(value) != _HEX_SHA256_LENGTH:
            raise InvalidTokenFile(f"{where}: sha256 must be 64 hexadecimal characters")
        try:
            digest = bytes.fromhex(value)
        except ValueError:
            raise InvalidTokenFile(f"{where}: sha256 must be 64 hexadecimal characters") from None
    roles = item.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidTokenFile(f"{where}: roles must be a list of strings")
    project, user = item.get("project"), item.get("user")
    if not project:
        raise InvalidTokenFile(f"{where}: project is required (the project the token acts in)")
    for key, value in (("project", project), ("user", user)):
        if value is not None and not isinstance(value, str):
            raise InvalidTokenFile(f"{where}: {key} must be a string")
    for key, value in (("project", project), ("user", user or ""), *(("role", r) for r in roles)):
        problem = identity_values.problem(value)
        if problem is not None:
            raise InvalidTokenFile(f"{where}: {key} {problem}")
    return _Entry(name, digest, RequestContext.create(project, user, roles))
