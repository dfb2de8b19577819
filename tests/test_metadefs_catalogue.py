"""The shipped metadefs catalogue: every file is in Glance's load_metadefs format.

No server is needed: the files are read from the installed package, the way the
loader reads them, and checked for the format (keys, types, limits of Glance's
metadefs schemas) and for the facts that are easy to get wrong (enum values that
Nova would reject).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import pytest

CATALOGUE = files("skylens") / "metadefs_catalogue"

NAMESPACE_KEYS = {
    "namespace",
    "display_name",
    "description",
    "visibility",
    "protected",
    "owner",
    "resource_type_associations",
    "properties",
    "objects",
    "tags",
}
REQUIRED_NAMESPACE_KEYS = {
    "namespace",
    "display_name",
    "description",
    "visibility",
    "protected",
    "resource_type_associations",
}
# The keys Glance's property schema accepts (its "property" definition).
PROPERTY_KEYS = {
    "title",
    "description",
    "operators",
    "type",
    "required",
    "minimum",
    "maximum",
    "maxLength",
    "minLength",
    "pattern",
    "enum",
    "readonly",
    "default",
    "items",
    "maxItems",
    "minItems",
    "uniqueItems",
    "additionalItems",
}
TYPES = {"array", "boolean", "integer", "number", "object", "string"}
RESOURCE_TYPES = {
    "OS::Glance::Image",
    "OS::Cinder::Volume",
    "OS::Nova::Flavor",
    "OS::Nova::Aggregate",
    "OS::Nova::Server",
}
PROPERTIES_TARGETS = {"image", "metadata", "scheduler_hints"}
NAME_MAX = 80  # Glance's limit for namespace, property, object, tag and prefix names
DESCRIPTION_MAX = 500  # Glance's limit for a namespace description

# What Nova accepts, transcribed from nova/objects/fields.py (the enums behind
# ImageMetaProps), nova/network/model.py (VIF models), nova/virt/arch.py, the
# cursive library (signature hash methods) and nova/api/validation/extra_specs.
# Image property names; a namespace's prefix for OS::Glance::Image is applied first.
_DISK_BUS = {"fdc", "ide", "sata", "scsi", "usb", "virtio", "xen", "lxc", "uml"}
NOVA_ACCEPTS: dict[str, set[str]] = {
    "hw_disk_bus": _DISK_BUS,
    "hw_cdrom_bus": _DISK_BUS,
    "hw_floppy_bus": _DISK_BUS,
    "hw_rescue_bus": _DISK_BUS,
    "hw_rescue_device": {"cdrom", "disk", "floppy", "fs", "lun"},
    "hw_scsi_model": {
        "buslogic",
        "ibmvscsi",
        "lsilogic",
        "lsisas1068",
        "lsisas1078",
        "virtio-scsi",
        "vmpvscsi",
    },
    "hw_vif_model": {
        "virtio",
        "ne2k_pci",
        "pcnet",
        "rtl8139",
        "e1000",
        "e1000e",
        "netfront",
        "spapr-vlan",
        "lan9118",
        "sriov",
        "vmxnet",
        "vmxnet3",
        "igb",
    },
    "hw_video_model": {"cirrus", "qxl", "vga", "vmvga", "xen", "virtio", "gop", "none", "bochs"},
    "hw_watchdog_action": {"none", "pause", "poweroff", "reset", "disabled"},
    "hw_rng_model": {"virtio"},
    "hw_firmware_type": {"uefi", "bios"},
    "hw_cpu_policy": {"dedicated", "shared", "mixed"},
    "hw_cpu_thread_policy": {"prefer", "isolate", "require"},
    "hw_pci_numa_affinity_policy": {"required", "legacy", "preferred", "socket"},
    "hw_pointer_model": {"usbtablet"},
    "hw_input_bus": {"usb", "virtio"},
    "hw_tpm_model": {"tpm-tis", "tpm-crb"},
    "hw_tpm_version": {"1.2", "2.0"},
    "hw_mem_encryption_model": {"amd-sev", "amd-sev-es", "amd-sev-snp"},
    "hw_maxphysaddr_mode": {"passthrough", "emulate"},
    "hw_viommu_model": {"intel", "smmuv3", "virtio", "auto"},
    "hw_sound_model": {"sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "virtio"},
    "hw_usb_model": {"none", "nec-xhci", "qemu-xhci"},
    "hw_ephemeral_encryption_format": {"plain", "luks", "luksv2"},
    "hw_vm_mode": {"hvm", "xen", "uml", "exe"},
    "img_hv_type": {
        "baremetal",
        "bhyve",
        "docker",
        "fake",
        "hyperv",
        "ironic",
        "kqemu",
        "kvm",
        "lxc",
        "lxd",
        "openvz",
        "parallels",
        "vz",
        "phyp",
        "qemu",
        "test",
        "uml",
        "vbox",
        "vmware",
        "xen",
        "zvm",
        "prsm",
    },
    "img_config_drive": {"optional", "mandatory"},
    "img_signature_hash_method": {"SHA-224", "SHA-256", "SHA-384", "SHA-512"},
    "img_signature_key_type": {
        "DSA",
        "ECC_SECP384R1",
        "ECC_SECP521R1",
        "ECC_SECT409K1",
        "ECC_SECT409R1",
        "ECC_SECT571K1",
        "ECC_SECT571R1",
        "RSA-PSS",
    },
    "os_type": {"linux", "windows"},
    "os_secure_boot": {"required", "disabled", "optional"},
    # flavor extra specs
    "os:secure_boot": {"disabled", "required"},
    "hw:emulator_threads_policy": {"isolate", "share"},
    "hw:tpm_secret_security": {"user", "host", "deployment"},
}
_ARCHITECTURES = {
    *("alpha", "armv6", "armv7l", "armv7b", "aarch64", "cris", "i686", "ia64", "lm32"),
    *("m68k", "microblaze", "microblazeel", "mips", "mipsel", "mips64", "mips64el"),
    *("openrisc", "parisc", "parisc64", "ppc", "ppcle", "ppc64", "ppc64le", "ppcemb"),
    *("s390", "s390x", "sh4", "sh4eb", "sparc", "sparc64", "unicore32", "x86_64"),
    *("xtensa", "xtensaeb"),
}
for _name in ("architecture", "hw_architecture", "hw_emulation_architecture"):
    NOVA_ACCEPTS[_name] = _ARCHITECTURES


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    assert not duplicates, f"duplicate keys {duplicates}"
    return dict(pairs)


def _files() -> list[Traversable]:
    return sorted(
        (entry for entry in CATALOGUE.iterdir() if entry.name.endswith(".json")),
        key=lambda entry: entry.name,
    )


def _load(entry: Traversable) -> dict[str, Any]:
    text = entry.read_text(encoding="utf-8")
    document = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    assert isinstance(document, dict), f"{entry.name}: the top level is not an object"
    return document


FILES = _files()
DOCUMENTS = {entry.name: _load(entry) for entry in FILES}


def _all_properties(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from document.get("properties", {}).items()
    for obj in document.get("objects", []):
        yield from obj["properties"].items()


def _image_name(document: dict[str, Any], name: str) -> str:
    """The property's name on an image (or its own name when no image prefix applies)."""
    for association in document["resource_type_associations"]:
        if association["name"] == "OS::Glance::Image" and association.get("prefix"):
            return str(association["prefix"]) + name
    return name


def test_the_catalogue_is_a_sizeable_set_of_files() -> None:
    assert len(FILES) >= 20
    assert sum(len(list(_all_properties(doc))) for doc in DOCUMENTS.values()) >= 150


def test_namespace_names_are_unique_and_name_their_files() -> None:
    names = [doc["namespace"] for doc in DOCUMENTS.values()]
    assert len(names) == len(set(names))
    for file_name, doc in DOCUMENTS.items():
        assert file_name == doc["namespace"].lower().replace("::", "-") + ".json"


@pytest.mark.parametrize("file_name", sorted(DOCUMENTS))
def test_namespace_fields(file_name: str) -> None:
    doc = DOCUMENTS[file_name]
    assert REQUIRED_NAMESPACE_KEYS <= set(doc) <= NAMESPACE_KEYS
    assert re.fullmatch(r"[A-Za-z]+(::[A-Za-z]+)+", doc["namespace"])
    assert len(doc["namespace"]) <= NAME_MAX
    assert isinstance(doc["display_name"], str)
    assert 0 < len(doc["display_name"]) <= NAME_MAX
    assert isinstance(doc["description"], str)
    assert 0 < len(doc["description"]) <= DESCRIPTION_MAX
    assert doc["visibility"] in ("public", "private")
    assert isinstance(doc["protected"], bool)
    assert doc.get("properties") or doc.get("objects"), "a namespace with nothing in it"


@pytest.mark.parametrize("file_name", sorted(DOCUMENTS))
def test_resource_type_associations(file_name: str) -> None:
    associations = DOCUMENTS[file_name]["resource_type_associations"]
    assert isinstance(associations, list)
    names = [association["name"] for association in associations]
    assert len(names) == len(set(names))
    for association in associations:
        assert set(association) <= {"name", "prefix", "properties_target"}
        assert association["name"] in RESOURCE_TYPES
        prefix = association.get("prefix")
        assert prefix is None or (isinstance(prefix, str) and 0 < len(prefix) <= NAME_MAX)
        target = association.get("properties_target")
        assert target is None or target in PROPERTIES_TARGETS
        if association["name"] == "OS::Cinder::Volume":
            # a volume's own metadata is not what Nova reads; its image metadata is
            assert target == "image"


@pytest.mark.parametrize("file_name", sorted(DOCUMENTS))
def test_properties_follow_the_property_schema(file_name: str) -> None:
    doc = DOCUMENTS[file_name]
    longest_prefix = max(
        (len(a.get("prefix") or "") for a in doc["resource_type_associations"]), default=0
    )
    for name, schema in _all_properties(doc):
        where = f"{file_name}: {name}"
        assert re.fullmatch(r"[A-Za-z0-9_:.\-]+", name), where
        assert len(name) + longest_prefix <= NAME_MAX, where
        assert set(schema) <= PROPERTY_KEYS, where
        assert isinstance(schema["title"], str), where
        assert schema["title"], where
        assert isinstance(schema["description"], str), where
        assert schema["description"], where
        assert schema["type"] in TYPES, where
        _check_constraints(where, schema)


def _check_constraints(where: str, schema: dict[str, Any]) -> None:
    type_ = schema["type"]
    if "enum" in schema:
        enum = schema["enum"]
        assert isinstance(enum, list), where
        assert enum, where
        assert all(isinstance(value, str) and value for value in enum), where
        assert len(enum) == len(set(enum)), where
        assert type_ == "string", where
    if "pattern" in schema:
        assert type_ == "string", where
        re.compile(schema["pattern"])
    if "minimum" in schema or "maximum" in schema:
        assert type_ in ("integer", "number"), where
        if "minimum" in schema and "maximum" in schema:
            assert schema["minimum"] <= schema["maximum"], where
    if "items" in schema:
        assert type_ == "array", where
        assert schema["items"].get("type") in TYPES, where
    if "default" in schema:
        _check_default(where, schema)


def _check_default(where: str, schema: dict[str, Any]) -> None:
    default = schema["default"]
    python_type: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
    }
    assert isinstance(default, python_type[schema["type"]]), where
    assert not (schema["type"] != "boolean" and isinstance(default, bool)), where
    if "enum" in schema:
        assert default in schema["enum"], where
    if "pattern" in schema:
        assert re.search(schema["pattern"], str(default)), where
    if "minimum" in schema:
        assert default >= schema["minimum"], where
    if "maximum" in schema:
        assert default <= schema["maximum"], where


@pytest.mark.parametrize("file_name", sorted(DOCUMENTS))
def test_property_names_are_unique_within_a_namespace(file_name: str) -> None:
    names = [name for name, _ in _all_properties(DOCUMENTS[file_name])]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("file_name", sorted(DOCUMENTS))
def test_objects_and_tags(file_name: str) -> None:
    doc = DOCUMENTS[file_name]
    objects = doc.get("objects", [])
    assert isinstance(objects, list)
    assert len({obj["name"] for obj in objects}) == len(objects)
    for obj in objects:
        assert set(obj) <= {"name", "description", "required", "properties"}
        assert isinstance(obj["name"], str)
        assert 0 < len(obj["name"]) <= NAME_MAX
        assert isinstance(obj.get("description", ""), str)
        assert isinstance(obj["properties"], dict)
        assert obj["properties"]
        assert set(obj.get("required", [])) <= set(obj["properties"])
    tags = doc.get("tags", [])
    assert isinstance(tags, list)
    assert all(set(tag) == {"name"} and 0 < len(tag["name"]) <= NAME_MAX for tag in tags)
    assert len({tag["name"] for tag in tags}) == len(tags)


def test_enum_values_are_strings_nova_accepts() -> None:
    checked = set()
    for file_name, doc in DOCUMENTS.items():
        for name, schema in _all_properties(doc):
            full_name = _image_name(doc, name)
            if full_name in NOVA_ACCEPTS and "enum" in schema:
                unknown = set(schema["enum"]) - NOVA_ACCEPTS[full_name]
                assert not unknown, f"{file_name}: {full_name} lists {sorted(unknown)}"
                checked.add(full_name)
    # every transcribed Nova enum is used somewhere, so none of them is a typo
    assert set(NOVA_ACCEPTS) <= checked


def test_the_properties_nova_reads_are_all_there() -> None:
    image_names = {
        _image_name(doc, name) for doc in DOCUMENTS.values() for name, _ in _all_properties(doc)
    }
    expected = {
        *("hw_cpu_sockets", "hw_cpu_cores", "hw_cpu_threads"),
        *("hw_cpu_max_sockets", "hw_cpu_max_cores", "hw_cpu_max_threads"),
        *("hw_cpu_policy", "hw_cpu_thread_policy", "hw_mem_page_size", "hw_numa_nodes"),
        *("hw_disk_bus", "hw_cdrom_bus", "hw_scsi_model", "hw_vif_model", "hw_video_model"),
        *("hw_video_ram", "hw_watchdog_action", "hw_rng_model", "hw_firmware_type"),
        *("hw_machine_type", "hw_qemu_guest_agent", "hw_pointer_model", "hw_boot_menu"),
        *("hw_vif_multiqueue_enabled", "hw_tpm_version", "hw_tpm_model", "hw_pmu"),
        *("hw_input_bus", "hw_mem_encryption", "hw_serial_port_count"),
        *("os_type", "os_distro", "os_version", "os_admin_user", "os_command_line"),
        *("os_require_quiesce", "os_secure_boot", "img_hv_type", "img_hv_requested_version"),
        *("img_config_drive", "img_signature", "img_signature_hash_method"),
        *("img_signature_key_type", "img_signature_certificate_uuid"),
    }
    assert expected <= image_names, sorted(expected - image_names)
