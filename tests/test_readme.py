"""The README runs: every console block, in order, as a new user pastes it into a
shell in the checkout (a fresh HOME, so a fresh data directory; no virtualenv on
PATH; the `openstack` and `glance` CLIs of the test dependencies), with the service
started as the README says; each command prints what the README shows. The block
format is in tests/support/readme.py and docs/development.md#the-readme-runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support.readme import (
    Block,
    Command,
    Matcher,
    Mismatch,
    ServiceDown,
    Shell,
    blocks,
    system_path,
)

COMMAND_TIMEOUT = 60.0


def test_every_console_block_of_the_readme_prints_what_it_shows(
    repo_root: Path, tmp_path: Path
) -> None:
    readme = (repo_root / "README.md").read_text()
    found = blocks(readme)
    assert [block.kind for block in found][:1] == ["service"], (
        "README.md: the first block run must start the service (<!-- readme-test: service -->)"
    )
    home, workdir = tmp_path / "home", tmp_path / "checkout"
    home.mkdir()
    workdir.mkdir()
    # The checkout, as far as the console blocks see it: its virtualenv is this one.
    (workdir / ".venv").symlink_to(Path(sys.prefix))
    environ = {
        "HOME": str(home),
        "PATH": system_path(),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "TERM": "dumb",
        "USER": os.environ.get("USER", "root"),
    }
    shell = Shell(workdir, environ)
    matcher = Matcher()
    try:
        for block in found:
            for command in block.commands:
                _step(shell, matcher, block, command)
    finally:
        shell.close()


def _step(shell: Shell, matcher: Matcher, block: Block, command: Command) -> None:
    where = f"README.md line {command.line} (block at line {block.line}, “{block.section}”)"
    if block.kind == "service":
        # The test's virtualenv stands for the set-up before the last `&&`.
        try:
            shell.start_service(command.text.rsplit("&&", 1)[-1].strip(), COMMAND_TIMEOUT)
        except (ServiceDown, TimeoutError) as error:
            failure = f"{where}: `{_first(command)}`: {error}"
        else:
            return
        pytest.fail(failure, pytrace=False)
    try:
        output = shell.run(command.text, COMMAND_TIMEOUT)
    except TimeoutError:
        pytest.fail(f"{where}: `{_first(command)}` did not end in {COMMAND_TIMEOUT:.0f} s")
    actual = output.splitlines()
    while actual and not actual[-1].strip():  # a code block cannot show trailing blank lines
        actual.pop()
    try:
        matcher.check(command.expected, actual)
    except Mismatch as mismatch:
        failure = _report(where, command, actual, mismatch)
    else:
        return
    pytest.fail(failure, pytrace=False)


def _report(where: str, command: Command, actual: list[str], mismatch: Mismatch) -> str:
    if mismatch.expected_index is None:
        line = "(after its last line)"
        shown = "(nothing more)"
    else:
        line = f"line {command.expected_line + mismatch.expected_index}"
        shown = command.expected[mismatch.expected_index]
    got = "(nothing more)" if mismatch.actual is None else mismatch.actual or "(an empty line)"
    printed = "\n".join(f"    {text}" for text in actual) or "    (nothing)"
    return (
        f"{where}: `{_first(command)}` printed other than the README shows.\n"
        f"  README.md {line}: {shown}\n"
        f"  printed instead:  {got}\n"
        f"  everything it printed:\n{printed}"
    )


def _first(command: Command) -> str:
    return command.text.splitlines()[0]


def test_the_readme_shows_the_two_set_up_commands_and_ci_runs_the_second(
    repo_root: Path,
) -> None:
    readme = (repo_root / "README.md").read_text()
    ci = (repo_root / ".ci" / "run").read_text().strip().splitlines()
    serve = blocks(readme)[0].commands[0].text

    assert serve.endswith("&& .venv/bin/skylens serve")
    assert "-r requirements/runtime.lock" in serve
    assert "```sh\nscripts/test\n```" in readme
    assert ci[-1] == "exec scripts/test"
