"""Glance's property protection file (roles format): parsing, refusing, reloading."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from skylens.domain.access import RequestContext
from skylens.domain.protections import PropertyOperation
from skylens.policy_files.protections import InvalidProtectionsFile, ProtectionsFile, parse_rules

READ = PropertyOperation.READ
CREATE = PropertyOperation.CREATE

SAMPLE = """
# Glance's sample, roles format
[^x_.*]
create = admin,member,_member_
read = admin,member,_member_
update = admin,member,_member_
delete = admin,member,_member_

[.*]
create = admin
read = admin
update = admin
delete = admin
"""


def caller(*roles: str) -> RequestContext:
    return RequestContext.create("p", "u", roles)


def section(pattern: str, **operations: str) -> str:
    values = dict.fromkeys(("create", "read", "update", "delete"), "@") | operations
    return f"[{pattern}]\n" + "".join(f"{op} = {roles}\n" for op, roles in values.items())


def test_glances_sample_file_reads_as_glance_reads_it() -> None:
    rules = parse_rules(SAMPLE)

    assert [rule.pattern.pattern for rule in rules.rules] == ["^x_.*", ".*"]
    assert rules.allows(caller("member"), "x_team", CREATE)
    assert not rules.allows(caller("member"), "os_distro", READ)
    assert rules.allows(caller("admin"), "os_distro", READ)


def test_roles_are_trimmed_and_lowercased_and_options_case_insensitive() -> None:
    rules = parse_rules("[.*]\nCreate = Admin ,  Ops\nread = @\nupdate =\ndelete = !\n")

    (rule,) = rules.rules
    assert rule.roles[CREATE] == {"admin", "ops"}
    assert rules.allows(caller("OPS"), "k", CREATE)
    assert not rules.allows(caller("admin"), "k", PropertyOperation.UPDATE)  # empty: nobody
    assert not rules.allows(caller("admin"), "k", PropertyOperation.DELETE)


def test_a_default_section_fills_in_what_sections_leave_out() -> None:
    rules = parse_rules("[DEFAULT]\nread = @\nupdate = !\ndelete = !\n[.*]\ncreate = admin\n")

    assert rules.allows(caller(), "k", READ)
    assert rules.allows(caller("admin"), "k", CREATE)
    assert not rules.allows(caller("admin"), "k", PropertyOperation.DELETE)


def test_percent_signs_are_taken_literally() -> None:
    rules = parse_rules(section("100%", read="r%le"))

    assert rules.allows(caller("r%le"), "at 100%", READ)


def test_an_empty_file_means_no_protection() -> None:
    assert parse_rules("# nothing yet\n").allows(caller(), "anything", PropertyOperation.DELETE)


def test_an_empty_operation_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        parse_rules(section("^x_", delete=""))

    assert "[^x_]" in caplog.text
    assert "no one will be allowed to delete" in caplog.text


def test_unknown_options_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        parse_rules(section("^x_", craete="admin"))

    assert "option(s) craete ignored" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (section("^x_(", read="@"), "section [^x_(]: invalid regular expression"),
        (section("^x_", read="admin,@,!"), "section [^x_]: read = admin,@,!: '@' and '!' are"),
        ("[^x_]\ncreate = @\nread = @\nupdate = @\n", "section [^x_] has no 'delete'"),
        (section("a") + section("a"), "section 'a' already exists"),
        ("create = @\n", "no section headers"),
    ],
)
def test_a_broken_file_is_refused_naming_the_section(text: str, message: str) -> None:
    with pytest.raises(InvalidProtectionsFile) as refused:
        parse_rules(text, "protections.conf")

    assert str(refused.value).startswith("protections.conf")
    assert message in str(refused.value)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # a visibly new mtime
    return path


def test_the_file_is_reloaded_when_it_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "protections.conf", section("^x_", read="admin"))
    protections = ProtectionsFile(path)
    assert not protections.current().allows(caller("member"), "x_a", READ)

    write(path, section("^x_", read="member"))
    time.sleep(1.1)

    assert protections.current().allows(caller("member"), "x_a", READ)


def test_a_broken_edit_keeps_the_previous_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "protections.conf", section("^x_", read="member"))
    protections = ProtectionsFile(path)

    write(path, section("^x_(", read="@"))
    time.sleep(1.1)
    with caplog.at_level(logging.ERROR):
        rules = protections.current()

    assert rules.allows(caller("member"), "x_a", READ)
    assert not rules.allows(caller("reader"), "x_a", READ)
    assert "not reloaded, its previous version stays in force" in caplog.text
    assert "invalid regular expression" in caplog.text


def test_a_missing_file_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ProtectionsFile(tmp_path / "nowhere.conf")
