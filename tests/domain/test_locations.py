"""Glance's rules for an image's locations (`LocationEditor`), without I/O."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pytest

from skylens.domain.errors import (
    Conflict,
    DuplicateLocation,
    Forbidden,
    InvalidLocation,
    InvalidRequest,
    LimitExceeded,
)
from skylens.domain.images import Image, ImageStatus, Location, Visibility
from skylens.domain.locations import (
    ExpectedHash,
    LocationEditor,
    NewLocation,
    check_validation_data,
    expected_hash,
)

NOW = dt.datetime(2026, 12, 7, 12, 0, 0)
EDITOR = LocationEditor(lambda store, image_id: f"file:///{store}/{image_id}", "sha512", quota=3)


def image(status: ImageStatus = ImageStatus.QUEUED, **attributes: object) -> Image:
    base = Image("id-1", "p", status, Visibility.PRIVATE, NOW, NOW)
    return dataclasses.replace(base, **attributes)  # type: ignore[arg-type]


def web(url: str, size: int | None = 10, **validation: str) -> NewLocation:
    return NewLocation(Location(url, "web"), size, validation)


def test_the_own_copies_come_first() -> None:
    located = image(ImageStatus.ACTIVE, stores=("local",), locations=(Location("http://a", "web"),))

    assert [loc.url for loc in EDITOR.locations(located)] == ["file:///local/id-1", "http://a"]


def test_adding_to_a_queued_image_activates_it_with_the_locations_size() -> None:
    added = EDITOR.add(image(), "-", web("http://a", 42), NOW)

    assert (added.status, added.size, added.active_at) == (ImageStatus.ACTIVE, 42, NOW)
    assert added.locations == (Location("http://a", "web"),)


@pytest.mark.parametrize(
    ("position", "expected"), [("0", ["http://b", "http://a"]), ("-", ["http://a", "http://b"])]
)
def test_positions(position: str, expected: list[str]) -> None:
    one = EDITOR.add(image(), "-", web("http://a"), NOW)

    two = EDITOR.add(one, position, web("http://b"), NOW)

    assert [loc.url for loc in two.locations] == expected


@pytest.mark.parametrize("status", [ImageStatus.SAVING, ImageStatus.DEACTIVATED])
def test_only_queued_or_active_images_get_locations(status: ImageStatus) -> None:
    with pytest.raises(Conflict):
        EDITOR.add(image(status), "-", web("http://a"), NOW)


def test_duplicates_the_last_location_and_the_quota() -> None:
    one = EDITOR.add(image(), "-", web("http://a"), NOW)

    with pytest.raises(DuplicateLocation):
        EDITOR.add(one, "-", web("http://a"), NOW)
    with pytest.raises(Forbidden):
        EDITOR.remove(one, "0", NOW)
    three = EDITOR.add(EDITOR.add(one, "-", web("http://b"), NOW), "-", web("http://c"), NOW)
    with pytest.raises(LimitExceeded):
        EDITOR.add(three, "-", web("http://d"), NOW)


def test_removing_reports_an_own_copy() -> None:
    located = image(ImageStatus.ACTIVE, stores=("local",), locations=(Location("http://a", "web"),))

    left, removed = EDITOR.remove(located, "0", NOW)

    assert removed.own
    assert (left.stores, [loc.url for loc in left.locations]) == ((), ["http://a"])
    with pytest.raises(InvalidRequest):
        EDITOR.remove(located, "7", NOW)


def test_replace_keeps_the_urls_of_a_located_image() -> None:
    one = EDITOR.add(image(), "-", web("http://a"), NOW)

    with pytest.raises(InvalidRequest, match="Original locations is not empty"):
        EDITOR.replace(one, [web("http://b")], NOW)
    renamed = EDITOR.replace(one, [NewLocation(Location("http://a", "web", {"k": "v"}), None)], NOW)
    assert renamed.locations == (Location("http://a", "web", {"k": "v"}),)


def test_validation_data_on_a_queued_image() -> None:
    good = hashlib.sha512(b"x").hexdigest()

    assert check_validation_data(
        image(), [{"os_hash_algo": "sha512", "os_hash_value": good}], "sha512"
    ) == {"os_hash_algo": "sha512", "os_hash_value": good}
    with pytest.raises(Conflict, match="os_hash_algo must be sha512, not sha256"):
        check_validation_data(
            image(), [{"os_hash_algo": "sha256", "os_hash_value": good}], "sha512"
        )
    with pytest.raises(Conflict, match="not the correct size"):
        check_validation_data(
            image(), [{"os_hash_algo": "sha512", "os_hash_value": "ab"}], "sha512"
        )
    with pytest.raises(Conflict, match="Conflicting values"):
        check_validation_data(
            image(),
            [{"os_hash_algo": "sha512", "os_hash_value": good}, {"os_hash_value": "cd"}],
            "sha512",
        )


def test_one_digest_check_in_each_api_s_words() -> None:
    short = hashlib.sha512(b"x").hexdigest()[:-2]

    with pytest.raises(Conflict, match=r"^checksum \(ab\) is not the correct size for md5 "):
        check_validation_data(image(), [{"checksum": "ab"}], "sha512")
    with pytest.raises(Conflict, match=r"^checksum \(xy\) is not a valid hexadecimal value$"):
        check_validation_data(image(), [{"checksum": "xy"}], "sha512")
    with pytest.raises(InvalidRequest) as refused:
        expected_hash({"os_hash_algo": "sha512", "os_hash_value": short}, "sha512")
    assert refused.value.message == (
        f"os_hash_value: ({short}) is not the correct size for (sha512) (should be (64) bytes)"
    )
    with pytest.raises(InvalidRequest, match=r"^os_hash_value \(zz\) is not a valid hex"):
        expected_hash({"os_hash_algo": "md5", "os_hash_value": "zz"}, "sha512")


def test_the_location_api_s_validation_data_read_once_checked() -> None:
    given = hashlib.sha256(b"x").hexdigest().upper()

    expected = expected_hash({"os_hash_algo": "sha256", "os_hash_value": given}, "sha512")

    assert expected == ExpectedHash("sha256", given)
    assert expected.validation_data() == {"os_hash_algo": "sha256", "os_hash_value": given}
    assert expected.matches(hashlib.sha256(b"x").hexdigest())
    assert not expected.matches(hashlib.sha256(b"y").hexdigest())
    assert expected_hash({}, "sha512") is None


def test_an_add_is_refused_for_the_quota_then_its_url_then_as_a_duplicate() -> None:
    """Glance's order: the quota proxy counts before the store proxy checks the URL,
    and the URL before looking for a duplicate."""
    three = image(
        ImageStatus.ACTIVE,
        locations=tuple(Location(f"http://{name}", "web") for name in "abc"),
    )
    refused = NewLocation(Location("http://a", "web"), None, {}, "http://a: no store serves it")

    with pytest.raises(LimitExceeded, match="Attempted: 4, Maximum: 3"):
        EDITOR.add(three, "-", refused, NOW)
    two = dataclasses.replace(three, locations=three.locations[:2])
    with pytest.raises(InvalidLocation) as invalid:
        EDITOR.add(two, "-", refused, NOW)
    assert invalid.value.reason == "http://a: no store serves it"
    with pytest.raises(DuplicateLocation):
        EDITOR.add(two, "-", web("http://a"), NOW)


def test_a_replace_checks_each_url_before_its_duplicates() -> None:
    refused = NewLocation(Location("http://b", "web"), None, {}, "http://b: host not allowed")

    with pytest.raises(LimitExceeded):
        EDITOR.replace(image(), [web("http://a"), web("http://b"), refused, web("http://d")], NOW)
    with pytest.raises(DuplicateLocation):
        EDITOR.replace(image(), [web("http://a"), web("http://a"), refused], NOW)
    with pytest.raises(InvalidLocation):
        EDITOR.replace(image(), [refused, web("http://a"), web("http://a")], NOW)
