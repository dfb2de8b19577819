"""The data plugins on real files, with the real format inspector and `qemu-img`:
what the conversion refuses before `qemu-img` converts anything, and what it sets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from skylens.domain.images import Image, ImageStatus, Visibility, utc_now
from skylens.inspection.formats import OsloFormatInspector
from skylens.inspection.qemu_img import QemuImg
from skylens.services.import_plugins import Conversion, FormatChange, ImportFailed

CONVERSION = Conversion("raw", OsloFormatInspector, QemuImg(), size_cap=16 << 20)


def image(disk_format: str) -> Image:
    now = utc_now()
    return Image(
        "0" * 32, "p", ImageStatus.IMPORTING, Visibility.SHARED, now, now,
        disk_format=disk_format, container_format="bare",
    )  # fmt: skip


def qcow2(directory: Path, *options: str) -> Path:
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", *options, "disk.qcow2", "8M"],
        check=True,
        cwd=directory,
    )
    return directory / "disk.qcow2"


def test_a_qcow2_file_becomes_raw_with_its_virtual_size(tmp_path: Path) -> None:
    path = qcow2(tmp_path)

    change = CONVERSION.apply(image("qcow2"), path)

    assert change == FormatChange("raw", "bare", 8 << 20)
    assert path.stat().st_size == 8 << 20
    assert list(tmp_path.iterdir()) == [path]


def test_a_qcow2_with_a_backing_file_is_refused_before_qemu_img_reads_it(tmp_path: Path) -> None:
    (tmp_path / "base.raw").write_bytes(bytes(1 << 20))
    path = qcow2(tmp_path, "-b", "base.raw", "-F", "raw")
    before = path.read_bytes()

    with pytest.raises(ImportFailed, match=r"^Image has disallowed configuration$"):
        CONVERSION.apply(image("qcow2"), path)
    assert path.read_bytes() == before


def test_data_of_another_format_than_declared_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    path.write_bytes(bytes(1 << 20))

    with pytest.raises(ImportFailed, match=r"^Image format mismatch$"):
        CONVERSION.apply(image("qcow2"), path)


def test_data_already_in_the_output_format_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    path.write_bytes(bytes(1 << 20))

    assert CONVERSION.apply(image("raw"), path) == FormatChange(virtual_size=1 << 20)
    assert path.read_bytes() == bytes(1 << 20)


def test_a_disk_larger_than_the_size_cap_is_not_converted_to_raw(tmp_path: Path) -> None:
    path = tmp_path / "disk.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(path), "17M"],
        check=True,
    )

    with pytest.raises(ImportFailed, match=r"^The image data is larger than this site accepts$"):
        CONVERSION.apply(image("qcow2"), path)
    assert list(tmp_path.iterdir()) == [path]
