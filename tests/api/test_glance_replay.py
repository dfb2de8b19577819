"""Glance 33's recorded exchanges, replayed against Skylens (issue 16).

tests/data/glance-33-exchanges/ holds 241 requests recorded on the wire from a fresh
Glance 33.0.0 with two file stores and identity from keystonemiddleware's headers.
Every request of a group Skylens serves is sent again, in order, to a Skylens
configured the same way (tests.support.replay), with the ids of the images Glance
created swapped for the ids Skylens gave them. Each answer must have Glance's status,
key headers and body shape, except for the deliberate differences below, each of
which docs/compatibility.md lists with the same reason.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.support.replay import (
    SERVED_GROUPS,
    Difference,
    Exchange,
    Ids,
    Replayed,
    load_exchanges,
    recording_config,
    replay_all,
    shape_differences,
)
from tests.support.servers import dedicated_server
from tests.support.web_source import web_source

RECORDING = Path(__file__).resolve().parent.parent / "data" / "glance-33-exchanges"
RECORDED_IDS = json.loads((RECORDING / "index.json").read_text())["vars"]
# Exchanges of the served groups that need no image created by an unserved group:
# a replay that skips more than these has lost some of its coverage.
REPLAYED = 240
# What the web server serves as the recording's `blob.img` (430 bytes of raw data).
BLOB = (b"web-download golden sample " * 16)[:430]


@dataclasses.dataclass(frozen=True)
class Deliberate:
    exchanges: str  # a regular expression the exchange's name matches whole
    aspect: str  # "status", "header", "shape" or "any"
    difference: str  # a regular expression found in the difference's text
    reason: str

    def covers(self, exchange: Exchange, difference: Difference) -> bool:
        return (
            re.fullmatch(self.exchanges, exchange.name) is not None
            and self.aspect in (difference.aspect, "any")
            and re.search(self.difference, difference.text) is not None
        )


_SCHEMA_IMAGE_JSON = (
    "architecture|cinder_encryption_key_deletion_policy|cinder_encryption_key_id|"
    "description|instance_uuid|kernel_id|os_distro|os_version|ramdisk_id"
)
_IMG_FULL = RECORDED_IDS["img_full"]
# What Skylens does differently on purpose (docs/compatibility.md, "Deliberate
# differences from Glance"). Keep it short: anything else is a defect to fix.
DELIBERATE: tuple[Deliberate, ...] = (
    Deliberate(
        "v2-images-noauth(-html)?",
        "any",
        ".",
        "Embedded mode: without identity headers a request is the configured default "
        "identity (auth.default_*); Glance, behind keystonemiddleware, answers 401. In "
        "keystone and tokens modes Skylens answers 401 as well.",
    ),
    Deliberate(
        "create-json-list",
        "status",
        "^400, Glance 500$",
        "A JSON array is a client error (400), not a server error.",
    ),
    Deliberate(
        ".*",
        "header",
        r"^x-openstack-request-id: 'req-[^']+', Glance None$",
        "Every response carries a request id, also those Glance sends before its "
        "context middleware runs (version documents, 401s).",
    ),
    Deliberate(
        "(import-(web-)?)?create.*",
        "header",
        r"^openstack-image-store-ids: 'fast,cheap', Glance 'fast,cheap,"
        r"os_glance_staging_store,os_glance_tasks_store'$",
        "Once it has used them, Glance also announces its internal reserved stores, "
        "which no upload may name.",
    ),
    Deliberate(
        "schema-images?",
        "shape",
        rf"properties: extra '({_SCHEMA_IMAGE_JSON})'$",
        "The image schema carries the properties of Glance's shipped "
        "etc/schema-image.json, which packaged Glances install (the recorded one ran "
        "without it).",
    ),
    Deliberate(
        "info-stores-detail-admin",
        "shape",
        r"\.properties: (no 'chunk_size'|no 'thin_provisioning'|extra 'fsync')$",
        "A store's details are its own settings: Skylens's file store has `fsync`, "
        "and no chunk size or thin provisioning.",
    ),
    Deliberate(
        "download-range-unsatisfiable",
        "header",
        r"^content-range: 'bytes \*/\d+', Glance None$",
        "RFC 9110: a 416 says how long the data is.",
    ),
    Deliberate(
        ".*",
        "shape",
        rf"^image {_IMG_FULL}(: no 'stores'|"
        r"\.(checksum|os_hash_algo|os_hash_value): null, Glance string)$",
        "After an upload refused for its format (upload-format-mismatch), Glance's "
        "queued image keeps the refused data's checksum, hashes and location (`stores`); "
        "Skylens keeps the image as it was before the upload.",
    ),
)
# Not behaviour but the recording: what no replay can reproduce.
UNSTABLE = (
    Deliberate(
        "list-marker",
        "shape",
        r"^body: (extra|no) 'next'$|^body\.images: \d+ images, Glance \d+$",
        "The images around the marker were created in the same second, an order Glance "
        "breaks by (random) id: what follows the marker differs between any two runs, "
        "Glance's own included.",
    ),
)


def unexplained(result: Replayed) -> list[Difference]:
    return [
        difference
        for difference in result.differences
        if not any(rule.covers(result.exchange, difference) for rule in (*DELIBERATE, *UNSTABLE))
    ]


@pytest.fixture(scope="module", params=BACKENDS)
def replayed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Replayed]]:
    data_dir = tmp_path_factory.mktemp(f"replay-{request.param}")
    with web_source() as source:
        source.files["blob.img"] = BLOB
        config = ("--config", str(recording_config(data_dir, source.port)))
        with (
            dedicated_server(data_dir, request.param, extra_args=config) as server,
            httpx.Client(base_url=server.url, timeout=30) as client,
        ):
            yield replay_all(client, load_exchanges(RECORDING), source.url("/files/"))


def test_every_answer_is_glances_but_for_the_deliberate_differences(
    replayed: list[Replayed],
) -> None:
    drifted = {
        f"{result.exchange.number:03} {result.exchange.name}": [
            f"{difference.aspect}: {difference.text}" for difference in found
        ]
        for result in replayed
        if (found := unexplained(result))
    }

    assert drifted == {}


def test_the_replay_covers_every_served_group(replayed: list[Replayed]) -> None:
    groups = collections.Counter(result.exchange.group for result in replayed)

    assert set(groups) == SERVED_GROUPS
    assert len(replayed) == REPLAYED


def test_every_deliberate_difference_is_still_there(replayed: list[Replayed]) -> None:
    # A difference that went away must leave the list (and docs/compatibility.md).
    unseen = [
        rule.reason
        for rule in DELIBERATE
        if not any(
            rule.covers(result.exchange, difference)
            for result in replayed
            for difference in result.differences
        )
    ]

    assert unseen == []


def test_status_and_shape_figures(
    replayed: list[Replayed], capsys: pytest.CaptureFixture[str]
) -> None:
    def matches(aspect: str, explained: bool) -> int:
        return sum(
            not any(
                d.aspect == aspect
                for d in (unexplained(result) if explained else result.differences)
            )
            for result in replayed
        )

    total = len(replayed)
    with capsys.disabled():
        print(
            f"\nGlance 33 replay: {total} exchanges; same status {matches('status', False)}, "
            f"same body shape {matches('shape', False)} "
            f"({matches('shape', True)} counting the deliberate differences as expected)"
        )

    assert matches("status", True) == total
    assert matches("shape", True) / total >= 0.95


def test_the_shape_comparison_sees_keys_types_and_list_members() -> None:
    # The comparison itself: a replay that could not fail would prove nothing.
    ids = Ids()
    ids.served["recorded"] = "served"
    image = {"id": "recorded", "self": "/v2/images/recorded", "size": None, "name": "a"}
    served = {**image, "id": "served", "self": "/v2/images/served"}

    assert list(shape_differences({"images": [image]}, {"images": [served]}, ids, "body")) == []
    assert list(shape_differences(image, {**served, "stores": "fast"}, ids, "body")) == [
        "image recorded: extra 'stores'"
    ]
    assert list(shape_differences(image, {**served, "size": 3}, ids, "body")) == [
        "image recorded.size: number, Glance null"
    ]
    assert list(shape_differences({"images": [image]}, {"images": []}, ids, "body")) == [
        "body.images: no image recorded"
    ]
