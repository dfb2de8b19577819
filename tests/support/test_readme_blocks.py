"""The README test's block format and output matching (tests/support/readme.py)."""

from __future__ import annotations

import pytest

from tests.support.readme import Matcher, Mismatch, blocks

README = """# Title

## Set up

<!-- readme-test: service -->
```sh
python3 -m venv .venv && .venv/bin/skylens serve
```

```sh
scripts/test
```

## Use it

```console
$ cat > a.toml << 'EOF'
> [server]
>
> port = 1
> EOF
$ curl -s http://127.0.0.1:9292/v2/images \\
    -H 'Accept: application/json'
{"images": []}
$ true
```

<!-- readme-test: skip -->
```console
$ never
```
"""

A = "c36ed432-e55a-497f-b6bf-94170a330b5c"
B = "f7ad3bf8-4b1c-47de-adbe-350c219ddbe7"
REAL_A = "0e1e2a4c-1111-4a5b-9c1d-000000000001"
REAL_B = "0e1e2a4c-1111-4a5b-9c1d-000000000002"


def test_blocks_are_the_marked_and_the_console_ones_with_their_lines() -> None:
    found = blocks(README)

    assert [(block.kind, block.line, block.section) for block in found] == [
        ("service", 6, "Set up"),
        ("console", 16, "Use it"),
    ]
    heredoc, curl, true = found[1].commands
    assert heredoc.text == "cat > a.toml << 'EOF'\n[server]\n\nport = 1\nEOF"
    assert curl.text == (
        "curl -s http://127.0.0.1:9292/v2/images \\\n    -H 'Accept: application/json'"
    )
    assert (curl.line, curl.expected, curl.expected_line) == (22, ('{"images": []}',), 24)
    assert (true.text, true.expected) == ("true", ())


def test_an_unknown_marker_is_refused_with_its_line() -> None:
    with pytest.raises(ValueError, match=r"line 1: unknown readme-test marker 'skipp'"):
        blocks("<!-- readme-test: skipp -->\n```console\n$ true\n```\n")


def test_an_id_stands_for_the_same_real_id_wherever_the_readme_repeats_it() -> None:
    matcher = Matcher()
    matcher.check((f"| id | {A} |",), [f"| id | {REAL_A} |"])
    matcher.check((f"{A} cirros", f"{B} debian"), [f"{REAL_A} cirros", f"{REAL_B} debian"])

    with pytest.raises(Mismatch) as swapped:
        matcher.check((f"{A} cirros",), [f"{REAL_B} cirros"])
    with pytest.raises(Mismatch):  # a new README id for a real id already named
        Matcher().check((f"{A} {B}",), [f"{REAL_A} {REAL_A}"])
    assert (swapped.value.expected_index, swapped.value.actual) == (0, f"{REAL_B} cirros")


def test_ellipses_dates_and_request_ids_match_what_varies() -> None:
    expected = (
        "date: Sun, 22 Nov 2026 16:46:16 GMT",
        "x-openstack-request-id: req-f0fdcb7c-f63b-41e5-ab95-c71c6a2b4bd7",
        "...",
        '{"created_at": "2026-11-22T16:46:13Z", ...}',
    )
    actual = [
        "date: Mon, 07 Dec 2026 20:42:21 GMT",
        "x-openstack-request-id: req-1a8bfb15-aa5e-48df-a7b0-e5c6bea68352",
        "any line",
        "another",
        '{"created_at": "2026-12-07T20:39:38Z", "name": "x"}',
    ]

    Matcher().check(expected, actual)


def test_a_mismatch_says_which_readme_line_differs_and_what_came_instead() -> None:
    with pytest.raises(Mismatch) as differs:
        Matcher().check(("one", "two", "three"), ["one", "TWO", "three"])
    with pytest.raises(Mismatch) as longer:
        Matcher().check(("one",), ["one", "more"])
    with pytest.raises(Mismatch) as shorter:
        Matcher().check(("one", "two"), ["one"])

    assert (differs.value.expected_index, differs.value.actual) == (1, "TWO")
    assert (longer.value.expected_index, longer.value.actual) == (None, "more")
    assert (shorter.value.expected_index, shorter.value.actual) == (1, None)
