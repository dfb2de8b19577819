"""The README's serve command installs requirements/runtime.lock only; the test
venv has much more. Prove the service's imports, lazy ones included, need
nothing outside that lock (a missing one once turned uploads into 500s)."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

_EXERCISE = """
import importlib.abc, sys
hidden = set(sys.argv[1].split(","))

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"{name} is not in requirements/runtime.lock")
        return None

sys.meta_path.insert(0, Hide())
import pkgutil, skylens
for module in pkgutil.walk_packages(skylens.__path__, "skylens."):
    if ".migrations" not in module.name:
        __import__(module.name)
from skylens.inspection.formats import OsloFormatInspector
inspector = OsloFormatInspector()
inspector.feed(b"\\0" * 70000)
assert inspector.verdict().name == "raw"
import boto3, botocore, swiftclient, keystoneauth1  # what the s3/swift stores import lazily
"""


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level_modules(distribution: importlib.metadata.Distribution) -> set[str]:
    listed = distribution.read_text("top_level.txt")
    if listed:
        return {line.strip() for line in listed.splitlines() if line.strip()}
    names = set()
    for file in distribution.files or ():
        first = file.parts[0]
        if first.endswith((".dist-info", ".data")) or first == "..":
            continue
        names.add(first.removesuffix(".py"))
    return names


def test_the_service_imports_nothing_outside_the_runtime_lock(repo_root: Path) -> None:
    lock = (repo_root / "requirements" / "runtime.lock").read_text()
    locked = {_normalise(line.split("==")[0]) for line in lock.splitlines() if "==" in line}
    locked.add("skylens")
    needed: set[str] = set()
    hidden: set[str] = set()
    for distribution in importlib.metadata.distributions():
        modules = _top_level_modules(distribution)
        if _normalise(distribution.metadata["Name"]) in locked:
            needed |= modules
        else:
            hidden |= modules
    hidden -= needed  # a module two distributions share stays if a locked one ships it
    hidden.discard("")

    result = subprocess.run(
        [sys.executable, "-c", _EXERCISE, ",".join(sorted(hidden))],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
