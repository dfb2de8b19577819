"""`DiskImageTool` on the `qemu-img` command, as Glance's image_conversion plugin runs it.

`qemu-img info` parses untrusted headers, so it runs under `prlimit` with Glance's
limits (1 GiB of address space, 2 CPU seconds): a crafted image cannot make it eat
the host. It only ever sees files the format inspector already passed as safe.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from skylens.domain.data import DiskImageInfo, DiskImageToolFailed

_INFO_LIMITS = ("--as=1073741824", "--cpu=2")


class QemuImg:
    def __init__(self, command: str = "qemu-img") -> None:
        self._command = command

    def info(self, path: Path, disk_format: str) -> DiskImageInfo:
        limit = shutil.which("prlimit")
        prefix = [limit, *_INFO_LIMITS] if limit else []
        output = self._run(
            [*prefix, self._command, "info", "-f", disk_format, "--output=json", str(path)]
        )
        try:
            info: dict[str, Any] = json.loads(output)
        except ValueError as error:
            raise DiskImageToolFailed(f"qemu-img info gave no JSON: {error}") from error
        specific = info.get("format-specific") or {}
        data = specific.get("data") or {}
        return DiskImageInfo(
            format=info.get("format"),
            virtual_size=info.get("virtual-size"),
            has_backing_file="backing-filename" in info,
            has_data_file=data.get("data-file") is not None,
            vmdk_create_type=data.get("create-type") if info.get("format") == "vmdk" else None,
        )

    def convert(self, source: Path, source_format: str, target: Path, target_format: str) -> None:
        formats = ["-f", source_format, "-O", target_format]
        self._run([self._command, "convert", *formats, str(source), str(target)])

    def _run(self, command: list[str]) -> str:
        try:
            # An argument list, no shell: the paths are the import's own work files and
            # the formats come from the configuration or a checked disk_format.
            done = subprocess.run(command, capture_output=True, check=False)  # noqa: S603
        except OSError as error:
            raise DiskImageToolFailed(f"{command[0]} could not run: {error}") from error
        if done.returncode != 0 or done.stderr.strip():
            reason = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
            raise DiskImageToolFailed(reason)
        return done.stdout.decode(errors="replace")
