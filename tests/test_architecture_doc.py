"""docs/architecture.md is held to the code.

The image status table equals `STATUS_TRANSITIONS`, the task status table
`TASK_TRANSITIONS`; every module, file and name the document
mentions exists; its folder tree lists every module there is; and its import rules name
every contract in pyproject.toml. Change one without the other and a test here fails.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from skylens.asgi_extensions import READ_INTO
from skylens.domain.images import STATUS_TRANSITIONS, ImageStatus
from skylens.domain.tasks import TASK_TRANSITIONS, TaskStatus

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "skylens"
DOC_PATH = ROOT / "docs" / "architecture.md"
DOC = DOC_PATH.read_text(encoding="utf-8")

# Names that look like module paths but are ASGI extension names: what they must equal.
EXTENSION_NAMES = {"skylens.http.request.readinto": READ_INTO}
TOP_LEVEL: tuple[str, ...] = ("api", "auth", "cli", "db", "domain", "inspection")
TOP_LEVEL += ("policy_files", "remote", "server", "services", "storage")
S = TypeVar("S", bound=StrEnum)


def section(title: str) -> str:
    """The text of the `## title` section, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", DOC, re.M | re.S)
    assert match, f"docs/architecture.md has no section '## {title}'"
    return match.group(1)


def present() -> set[str]:
    """Every file and directory under src/skylens/ (relative, with `/`)."""
    return {
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*")
        if "__pycache__" not in path.parts
    }


# -- the status machines -------------------------------------------------------------


def documented_transitions(title: str, kind: type[S]) -> dict[S, frozenset[S]]:
    """The `| `from` | `to`, ... |` rows of section `title`'s status table."""
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \|$", section(title), re.M)
    table: dict[S, frozenset[S]] = {}
    for source, targets in rows:
        status = kind(source)
        assert status not in table, f"{source} has two rows in the table of '{title}'"
        table[status] = frozenset(kind(t) for t in re.findall(r"`(\w+)`", targets))
    return table


def test_the_status_table_is_the_transitions_table() -> None:
    documented = documented_transitions("Image status machine", ImageStatus)
    assert documented == dict(STATUS_TRANSITIONS)


def test_every_status_has_a_row() -> None:
    assert set(documented_transitions("Image status machine", ImageStatus)) == set(ImageStatus)


def test_the_task_status_table_is_the_task_transitions_table() -> None:
    documented = documented_transitions("Task status machine", TaskStatus)
    assert documented == dict(TASK_TRANSITIONS)


def test_every_task_status_has_a_row() -> None:
    assert set(documented_transitions("Task status machine", TaskStatus)) == set(TaskStatus)


# -- module and file paths -----------------------------------------------------------


def _module(parts: list[str]) -> ModuleType:
    return importlib.import_module(".".join(["skylens", *parts]))


def test_every_dotted_skylens_name_exists() -> None:
    paths = present()
    for dotted in sorted(set(re.findall(r"\bskylens(?:\.\w+)+", DOC))):
        if dotted in EXTENSION_NAMES:
            continue
        parts = dotted.split(".")[1:]
        # The longest prefix that is a module or package; the rest are its attributes.
        for cut in range(len(parts), 0, -1):
            relative = "/".join(parts[:cut])
            if f"{relative}.py" in paths or relative in paths:
                break
        else:
            raise AssertionError(f"{dotted}: no such module")
        if cut < len(parts):
            value: object = _module(parts[:cut])
            for attribute in parts[cut:]:
                assert hasattr(value, attribute), f"{dotted}: no {attribute}"
                value = getattr(value, attribute)


def test_extension_names_are_the_ones_the_code_uses() -> None:
    for name, value in EXTENSION_NAMES.items():
        assert name in DOC
        assert name == value


def test_every_file_path_exists() -> None:
    paths = present()
    top = "|".join(TOP_LEVEL)
    relative = re.findall(rf"`((?:src/skylens/)?(?:{top})(?:/[\w.-]+)+/?)`", DOC)
    assert relative, "the pattern finds the document's paths"
    for path in relative:
        inside = path.removeprefix("src/skylens/").rstrip("/")
        assert inside in paths, f"{path}: no such file under src/skylens/"
    for path in re.findall(r"`((?:tests|docs|scripts)/[\w./-]+)`", DOC):
        assert (ROOT / path).exists(), f"{path}: no such file"


# -- the folder tree -----------------------------------------------------------------


def tree_entries() -> set[str]:
    """The paths the folder tree lists (`dir`, `dir/module.py`), relative to src/skylens."""
    block = re.search(r"```\nsrc/skylens/\n(.*?)```", section("The folder tree"), re.S)
    assert block, "the folder tree is a code block that starts with src/skylens/"
    entries: set[str] = set()
    stack: list[str] = []
    for line in block.group(1).splitlines():
        match = re.match(r"([│ ]*)[├└]── (\S+)", line)
        if match is None:
            continue  # a description's second line
        depth = len(match.group(1)) // 4
        name = match.group(2).rstrip("/")
        stack[depth:] = [name]
        entries.add("/".join(stack))
    return entries


def test_the_tree_lists_only_what_exists() -> None:
    missing = sorted(tree_entries() - present())
    assert not missing, f"the folder tree lists what does not exist: {missing}"


def test_the_tree_lists_every_module() -> None:
    modules = {
        path
        for path in present()
        if path.endswith(".py")
        and not path.endswith("__init__.py")
        and not path.startswith("db/migrations/")
    }
    packages = {path.rsplit("/", 1)[0] for path in modules if "/" in path}
    unlisted = sorted((modules | packages) - tree_entries())
    assert not unlisted, f"add these to the folder tree in docs/architecture.md: {unlisted}"


# -- names and contracts -------------------------------------------------------------


def test_every_name_in_backticks_occurs_in_the_code() -> None:
    code = "\n".join(
        path.read_text(encoding="utf-8")
        for path in SRC.rglob("*")
        if path.suffix in {".py", ".json", ".mako"}
    )
    code += (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # contract types
    words = set(re.findall(r"\w+", code))
    identifier = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?:\(\))?")
    unknown = set()
    for span in re.findall(r"`([^`\n]+)`", DOC):
        if not identifier.fullmatch(span) or re.search(r"\.(toml|py|md|json)$", span):
            continue
        unknown |= {part for part in span.removesuffix("()").split(".") if part not in words}
    assert not unknown, f"names the code does not have: {sorted(unknown)}"


def test_the_import_rules_name_every_contract() -> None:
    with open(ROOT / "pyproject.toml", "rb") as file:
        contracts = tomllib.load(file)["tool"]["importlinter"]["contracts"]
    rules = section("Import rules")
    for contract in contracts:
        assert f'"{contract["name"]}"' in rules, f"import rules lack: {contract['name']}"
