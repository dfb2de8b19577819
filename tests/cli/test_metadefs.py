"""`skylens metadefs load | export | unload`, and the catalogue a first start loads."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.test_main import _skylens
from tests.support.identities import admin_of, new_project
from tests.support.servers import postgres_database, skylens_server

CATALOGUE = Path(__file__).resolve().parents[1] / "data" / "metadefs"
NS = "/v2/metadefs/namespaces"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'skylens.db'}"
        return
    with postgres_database(f"skylens_metadefs_{uuid.uuid4().hex[:12]}") as url:
        yield url


def metadefs(url: str, *args: str) -> str:
    done = _skylens("metadefs", *args, "--database-url", url)
    assert done.returncode == 0, done.stderr
    return done.stdout


def files(directory: Path) -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def test_export_unload_load_round_trip_is_identical(database_url: str, tmp_path: Path) -> None:
    assert metadefs(database_url, "load", str(CATALOGUE)).startswith("loaded 2 namespace(s)")
    metadefs(database_url, "export", str(tmp_path / "first"))

    assert metadefs(database_url, "unload") == "unloaded 2 namespace(s)\n"
    metadefs(database_url, "load", str(tmp_path / "first"))
    metadefs(database_url, "export", str(tmp_path / "second"))

    first = files(tmp_path / "first")
    assert len(first) == 2
    assert first == files(tmp_path / "second")
    # What was loaded is what the files say, the loader's defaults included.
    for name, loaded in files(CATALOGUE).items():
        exported = next(d for d in first.values() if d["namespace"] == loaded["namespace"])
        assert exported == {"owner": "admin", **loaded}, name


def test_load_is_idempotent(database_url: str) -> None:
    metadefs(database_url, "load", str(CATALOGUE))

    again = metadefs(database_url, "load", str(CATALOGUE))

    assert again == "loaded 0 namespace(s); 2 already present\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not a JSON document"),
        ("[]", "not a JSON object"),
        ('{"namespace": 3}', "Provided object does not match schema 'namespace': 3 is not of type"),
        ('{"display_name": "x"}', "'namespace' is a required property"),
    ],
)
def test_a_bad_file_loads_nothing_and_is_named(
    database_url: str, tmp_path: Path, content: str, reason: str
) -> None:
    catalogue = tmp_path / "catalogue"
    shutil.copytree(CATALOGUE, catalogue)
    (catalogue / "zz-bad.json").write_text(content)

    done = _skylens("metadefs", "load", str(catalogue), "--database-url", database_url)

    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(f"skylens: {catalogue / 'zz-bad.json'}: ")
    assert reason in done.stderr
    assert metadefs(database_url, "export", str(tmp_path / "out")).startswith("exported 0 ")


def test_the_first_start_loads_the_catalogue_once(database_url: str, tmp_path: Path) -> None:
    config = tmp_path / "metadefs.toml"
    config.write_text(f"[metadefs]\ncatalogue_dir = {json.dumps(str(CATALOGUE))}\n")
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    start = ("--config", str(config))
    admin = admin_of(new_project())
    with (
        skylens_server(tmp_path, database_url, backend, extra_args=start) as server,
        httpx.Client(base_url=server.url, headers=admin.headers, timeout=30) as client,
    ):
        names = {n["namespace"] for n in client.get(NS).json()["namespaces"]}
        assert names == {"Skylens::Test::Watchdog", "Skylens::Test::Private"}
        shown = client.get(f"{NS}/Skylens::Test::Watchdog").json()
        assert (shown["owner"], shown["protected"]) == ("admin", True)
        types = client.get("/v2/metadefs/resource_types").json()["resource_types"]
        assert {t["name"] for t in types} == {"OS::Glance::Image", "OS::Nova::Flavor"}
        assert client.delete(f"{NS}/Skylens::Test::Private").status_code == 204

    # An operator's deletion is not undone by the next start.
    with (
        skylens_server(tmp_path, database_url, backend, extra_args=start) as server,
        httpx.Client(base_url=server.url, headers=admin.headers, timeout=30) as client,
    ):
        names = {n["namespace"] for n in client.get(NS).json()["namespaces"]}
        assert names == {"Skylens::Test::Watchdog"}


SHIPPED = Path(__file__).resolve().parents[2] / "src" / "skylens" / "metadefs_catalogue"


def test_the_shipped_catalogue_round_trips_identically(database_url: str, tmp_path: Path) -> None:
    """Export the shipped catalogue, unload it, load the exported files back: the
    second export is the first, and each namespace is what its shipped file says."""
    shipped = files(SHIPPED)
    loaded = metadefs(database_url, "load", str(SHIPPED))
    assert loaded.startswith(f"loaded {len(shipped)} namespace(s)")
    metadefs(database_url, "export", str(tmp_path / "first"))

    assert metadefs(database_url, "unload") == f"unloaded {len(shipped)} namespace(s)\n"
    metadefs(database_url, "load", str(tmp_path / "first"))
    metadefs(database_url, "export", str(tmp_path / "second"))

    first = files(tmp_path / "first")
    assert first == files(tmp_path / "second")
    exported = {document["namespace"]: document for document in first.values()}
    # What a file leaves out is loaded as its default: no owner is the admin's, and
    # no objects, tags, properties or associations are empty ones.
    defaults: dict[str, Any] = {"owner": "admin", "objects": [], "tags": []}
    defaults |= {"properties": {}, "resource_type_associations": []}

    def by_name(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(items, key=lambda item: str(item["name"]))

    for name, document in shipped.items():
        expected = {**defaults, **document}
        got = dict(exported[document["namespace"]])
        # Associations, objects and tags are sets; an export lists them by name.
        for side in (expected, got):
            for key in ("resource_type_associations", "objects", "tags"):
                side[key] = by_name(side[key])
        assert got == expected, name
