"""The static token file: parsing, matching, reloading, and never logging a token."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from pathlib import Path

import pytest

from skylens.auth.tokens import InvalidTokenFile, StaticTokenAuthenticator
from skylens.domain.access import RequestContext
from skylens.domain.errors import NotAuthenticated

MEMBER_TOKEN = "member-token-0123456789"
READER_TOKEN = "reader-token-9876543210"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def entry(token: str, project: str, roles: str, *, hashed: bool = False, name: str = "") -> str:
    secret = (
        f'sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"'
        if hashed
        else f'token = "{token}"'
    )
    named = f'name = "{name}"\n' if name else ""
    identity = f'project = "{project}"\nuser = "u-{project}"\nroles = {roles}\n'
    return f"[[token]]\n{named}{secret}\n{identity}"


def authenticate(authenticator: StaticTokenAuthenticator, token: str | None) -> RequestContext:
    headers = {} if token is None else {"x-auth-token": token}
    return asyncio.run(authenticator.authenticate(headers))


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return write(
        tmp_path / "tokens.toml",
        entry(MEMBER_TOKEN, "alpha", '["member"]')
        + entry(READER_TOKEN, "beta", '["reader"]', hashed=True),
    )


def test_a_listed_token_is_its_identity(token_file: Path) -> None:
    authenticator = StaticTokenAuthenticator(token_file)

    member = authenticate(authenticator, MEMBER_TOKEN)
    reader = authenticate(authenticator, READER_TOKEN)  # listed by its sha256 only

    assert (member.project_id, member.user_id, member.roles) == (
        "alpha",
        "u-alpha",
        frozenset({"member"}),  # literally the listed roles: `member` alone is not a reader
    )
    assert (reader.project_id, reader.roles) == ("beta", frozenset({"reader"}))


@pytest.mark.parametrize("token", [None, "", "member-token-012345678", MEMBER_TOKEN + "x"])
def test_anything_else_is_not_authenticated(token_file: Path, token: str | None) -> None:
    authenticator = StaticTokenAuthenticator(token_file)

    with pytest.raises(NotAuthenticated):
        authenticate(authenticator, token)


def test_the_file_is_reloaded_when_it_changes(token_file: Path) -> None:
    authenticator = StaticTokenAuthenticator(token_file)
    new_token = "fresh-token-abcdefghij"

    write(token_file, entry(new_token, "gamma", '["admin"]'))
    os.utime(token_file, ns=(time.time_ns(), time.time_ns() + 10**9))  # a visibly new mtime
    time.sleep(1.1)

    assert authenticate(authenticator, new_token).project_id == "gamma"
    with pytest.raises(NotAuthenticated):
        authenticate(authenticator, MEMBER_TOKEN)


@pytest.mark.parametrize(
    ("identity", "reason"),
    [
        ('project = "p"\nroles = "not a list"', "roles must be a list"),
        ('roles = ["member"]', "project is required"),  # an identity owning nothing
    ],
)
def test_a_broken_file_keeps_the_previous_tokens_and_logs_no_token(
    token_file: Path, caplog: pytest.LogCaptureFixture, identity: str, reason: str
) -> None:
    authenticator = StaticTokenAuthenticator(token_file)
    secret = "leaked-secret-token-0000"

    write(token_file, f'[[token]]\ntoken = "{secret}"\n{identity}\n')
    os.utime(token_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    time.sleep(1.1)
    with caplog.at_level(logging.DEBUG):
        context = authenticate(authenticator, MEMBER_TOKEN)
        with pytest.raises(NotAuthenticated):
            authenticate(authenticator, secret)

    assert context.project_id == "alpha"
    assert "not reloaded, its previous version stays in force" in caplog.text
    assert reason in caplog.text
    assert secret not in caplog.text
    assert MEMBER_TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[token]]\nproject = 'p'\n", "give exactly one of token or sha256"),
        (
            f"[[token]]\ntoken = '{MEMBER_TOKEN}'\nsha256 = '{'0' * 64}'\n",
            "give exactly one of token or sha256",
        ),
        ("[[token]]\ntoken = 'short'\n", "16 characters or more"),
        ("[[token]]\nsha256 = 'abc'\n", "64 hexadecimal characters"),
        (f"[[token]]\nsha256 = '{'z' * 64}'\n", "64 hexadecimal characters"),
        (f"[[token]]\ntoken = '{MEMBER_TOKEN}'\nroles = 'admin'\n", "roles must be a list"),
        (f"[[token]]\ntoken = '{MEMBER_TOKEN}'\nprojekt = 'p'\n", "unknown key(s) projekt"),
        ("token = 3\n", "[[token]] entries expected"),
        (f"[[token]]\ntoken = '{MEMBER_TOKEN}'\n", "project is required"),
        (f"[[token]]\ntoken = '{MEMBER_TOKEN}'\nproject = ''\n", "project is required"),
        (
            f"[[token]]\ntoken = '{MEMBER_TOKEN}'\nproject = '{'p' * 256}'\n",
            "project is longer than 255 characters",
        ),
        (
            f"[[token]]\ntoken = '{MEMBER_TOKEN}'\nproject = 'p'\nuser = \"a\\u0000b\"\n",
            "user contains a control character",
        ),
        (
            f"[[token]]\ntoken = '{MEMBER_TOKEN}'\nproject = 'p'\nroles = ['{'r' * 256}']\n",
            "role is longer than 255 characters",
        ),
        ("[[token]\n", "is not valid TOML"),
    ],
)
def test_a_broken_file_at_start_up_is_refused_without_showing_tokens(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "tokens.toml", text)

    with pytest.raises(InvalidTokenFile) as refused:
        StaticTokenAuthenticator(path)

    assert message in str(refused.value)
    assert MEMBER_TOKEN not in str(refused.value)


def test_entries_are_named_in_messages(tmp_path: Path) -> None:
    path = write(tmp_path / "tokens.toml", "[[token]]\nname = 'ci'\ntoken = 'short'\n")

    with pytest.raises(InvalidTokenFile, match="token entry ci: a token must be"):
        StaticTokenAuthenticator(path)


def test_deleting_the_file_revokes_every_token_until_it_is_back(
    token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = StaticTokenAuthenticator(token_file)
    text = token_file.read_text()

    token_file.unlink()
    time.sleep(1.1)
    with caplog.at_level(logging.WARNING), pytest.raises(NotAuthenticated):
        authenticate(authenticator, MEMBER_TOKEN)
    write(token_file, text)
    time.sleep(1.1)
    back = authenticate(authenticator, MEMBER_TOKEN)

    assert f"token file {token_file} is gone" in caplog.text
    assert back.project_id == "alpha"
