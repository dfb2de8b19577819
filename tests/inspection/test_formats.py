"""The format inspector over oslo.utils, fed as the upload feeds it: views of reused
blocks, which are overwritten as soon as `feed` returns."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from skylens.domain.data import DataFormat
from skylens.inspection.formats import OsloFormatInspector
from skylens.services.ingest import BLOCK_SIZE
from tests.support.isos import make_iso

MIB = 1 << 20


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real images made by qemu-img, safe and unsafe, small and past the first blocks."""
    directory = tmp_path_factory.mktemp("qemu")

    def qemu_img(*args: str) -> None:
        subprocess.run(["qemu-img", *args], check=True, capture_output=True, cwd=directory)

    qemu_img("create", "-q", "-f", "qcow2", "plain.qcow2", "64M")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", "backing.qcow2")
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "flat.vmdk", "1M")
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", "stream.vmdk", "8M")
    qemu_img("create", "-q", "-f", "vhdx", "disk.vhdx", "32M")
    qemu_img("create", "-q", "-f", "vpc", "disk.vhd", "24M")
    # Past the inspector's finely sliced first 16 MiB: whole blocks.
    (directory / "random.raw").write_bytes(os.urandom(20 * MIB + 7))
    make_iso(directory, "plain.iso", hybrid=False)
    make_iso(directory, "hybrid.iso", hybrid=True)
    return {path.name: path for path in directory.iterdir() if path.is_file()}


def verdict_of_copies(data: bytes) -> DataFormat:
    """The verdict over immutable copies of each block: nothing can change under it."""
    inspector = OsloFormatInspector()
    for start in range(0, len(data), BLOCK_SIZE):
        inspector.feed(bytes(data[start : start + BLOCK_SIZE]))
    return inspector.verdict()


def verdict_of_reused_blocks(data: bytes) -> DataFormat:
    """The verdict over one reused block, scribbled over after every feed."""
    inspector = OsloFormatInspector()
    block = bytearray(BLOCK_SIZE)
    view = memoryview(block)
    for start in range(0, len(data), BLOCK_SIZE):
        piece = data[start : start + BLOCK_SIZE]
        view[: len(piece)] = piece
        inspector.feed(view[: len(piece)])
        view[:] = b"\xa5" * BLOCK_SIZE
    return inspector.verdict()


@pytest.mark.parametrize(
    ("name", "detected", "unsafe"),
    [
        ("plain.qcow2", "qcow2", False),
        ("backing.qcow2", "qcow2", True),
        ("flat.vmdk", "vmdk", True),
        ("stream.vmdk", "vmdk", False),
        ("disk.vhdx", "vhdx", False),
        ("disk.vhd", "vhd", False),
        ("random.raw", "raw", False),
        ("plain.iso", "iso", False),
        # ISO 9660 behind a GPT: both formats match; the pair is the ISO (Glance 33).
        ("hybrid.iso", "iso", False),
    ],
)
def test_a_reused_buffer_gets_the_verdict_of_copies(
    images: dict[str, Path], name: str, detected: str | None, unsafe: bool
) -> None:
    data = images[name].read_bytes()

    verdict = verdict_of_reused_blocks(data)

    assert verdict == verdict_of_copies(data)
    assert (verdict.name, verdict.unsafe_reason is not None) == (detected, unsafe)


def test_a_hybrid_iso_is_the_iso_with_its_size(images: dict[str, Path]) -> None:
    data = images["hybrid.iso"].read_bytes()

    verdict = verdict_of_copies(data)

    assert (verdict.name, verdict.unsafe_reason) == ("iso", None)
    # The ISO volume's size, not the file's (which the GPT's partition extends).
    assert verdict.virtual_size is not None
    assert 0 < verdict.virtual_size < len(data)


def test_any_other_pair_of_formats_is_refused(images: dict[str, Path]) -> None:
    """Only ISO + GPT is a legitimate pair: an ISO whose first sector is a qcow2
    header may be hiding one format in the other."""
    data = bytearray(images["plain.iso"].read_bytes())
    data[:512] = images["plain.qcow2"].read_bytes()[:512]

    verdict = verdict_of_copies(bytes(data))

    assert verdict.unsafe_reason is not None
    assert "Multiple formats detected" in verdict.unsafe_reason
