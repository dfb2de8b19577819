"""Helpers of the import tests: waiting for an import to end, and a tiny disk."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


def settled(api: httpx.Client, image_id: str, timeout: float = 120) -> dict[str, Any]:
    """The image once no import holds it any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        image: dict[str, Any] = api.get(f"/v2/images/{image_id}").json()
        if "os_glance_import_task" not in image and image["status"] != "importing":
            return image
        time.sleep(0.1)
    raise TimeoutError(f"image {image_id} stayed importing")


@contextlib.contextmanager
def tmpfs(root: Path, size: str) -> Iterator[Path]:
    """`root`, a filesystem of `size` of its own (tmpfs; the tests run as root, as
    CI does), for as long as the block runs."""
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "--lazy", str(root)], check=True)
