"""Real ISO 9660 images, made by xorriso as distributions make their installer ISOs.

A "hybrid" ISO also carries a GPT (behind a protective MBR) in front of the ISO 9660
volume, with an EFI system partition appended, so that the same file boots from a
CD and from a USB stick: the layout of Ubuntu's and most other installer ISOs
(`xorriso -as mkisofs ... -append_partition 2 0xef efi.img -appended_part_as_gpt`).
Format inspectors see both an ISO and a GPT in it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_iso(directory: Path, name: str, *, hybrid: bool) -> Path:
    """An ISO of one small file at `directory / name`; `hybrid` adds the GPT."""
    content = directory / f"{name}.content"
    content.mkdir()
    (content / "README").write_text("Skylens test volume\n")
    options: list[str] = []
    if hybrid:
        efi = directory / f"{name}.efi"
        efi.write_bytes(bytes(64 * 1024))
        options = ["-append_partition", "2", "0xef", str(efi), "-appended_part_as_gpt"]
    path = directory / name
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-o", str(path), "-V", "SKYLENS", *options, str(content)],
        check=True,
        capture_output=True,
    )
    return path
