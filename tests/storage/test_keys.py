"""Storage keys: only a whole image id names data (issue 18, item 11)."""

from __future__ import annotations

import pytest

from skylens.domain.errors import InvalidBlobKey
from skylens.storage.keys import check_key, image_data_key, location_key, url_of_location_key

ID = "2d5d4e9a-6b3c-4f0e-9a8b-1c2d3e4f5a6b"


def test_an_image_id_names_its_sharded_key() -> None:
    assert image_data_key(ID) == f"images/2d/{ID}"


def test_an_upper_case_id_of_an_older_image_still_names_its_key() -> None:
    assert image_data_key(ID.upper()) == f"images/2D/{ID.upper()}"


@pytest.mark.parametrize(
    "image_id", [f"{ID}\n", f"{ID}\x00", f" {ID}", f"{ID}0", "not-a-uuid", "../../etc", ""]
)
def test_anything_else_names_no_key(image_id: str) -> None:
    with pytest.raises(InvalidBlobKey):
        image_data_key(image_id)


@pytest.mark.parametrize("key", [f"images/2d/{ID}\n", "images/\n/x", "images/2d/..", "a//b"])
def test_a_key_segment_is_matched_whole(key: str) -> None:
    """`$` would let a segment end in a newline."""
    with pytest.raises(InvalidBlobKey):
        check_key(key)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/cirros.raw",
        "https://mirror.example.com/a/../b?x=1&y=%2F#frag",
        "http://example.com/" + "x" * 236,  # the schema's longest (255)
        "http://example.com/ünïcode",
    ],
)
def test_a_url_names_a_key_it_comes_back_from(url: str) -> None:
    key = location_key(url)

    check_key(key)
    assert key.startswith("web/u")
    assert url_of_location_key(key) == url


@pytest.mark.parametrize("key", [f"images/2d/{ID}", "web", "web/x", "web/u!!", "staging/u"])
def test_other_keys_name_no_url(key: str) -> None:
    assert url_of_location_key(key) is None
