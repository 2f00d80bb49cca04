"""Paging marks of `.jsonl` usage files: the Arrow reading of has_more / next_page gives exactly
what reading every line with `json.loads` gives, or steps aside for it."""

from __future__ import annotations

import gzip
import json

import pytest

from inference_ledger.ingest import usage_pulls as P


def _line_by_line(raw: bytes) -> list[P.PageMark]:
    """What the line-by-line reading gives: the reference the Arrow path must equal."""
    text = raw.decode("utf-8")
    return [P._mark(n, line) for n, line in enumerate(text.splitlines(True), 1) if line.strip()]


def _page(more, cursor, **extra) -> str:
    return json.dumps(
        {"object": "page", "data": [], "has_more": more, "next_page": cursor, **extra}
    )


PLAIN = [
    # Plain pulls: Arrow reads them, and they equal the line-by-line marks.
    (_page(True, "cur-1") + "\n" + _page(False, None) + "\n").encode(),
    (_page(True, "cur-1") + "\n" + _page(True, "cur-2")).encode(),  # no final newline
    ('{"object": "page", "data": []}\n' + _page(None, None) + "\n").encode(),  # absent, null
    (_page(True, "c", v=float("nan"), big=10**30) + "\n").encode(),  # NaN, a 100-bit number
    ("  " + _page(True, "ü-cur") + "  \n" + _page(False, None, user="名前") + "\n").encode(),
    (_page(True, "a") + "\t \n" + _page(False, None)).encode(),  # spaces and tabs at an end
    (_page(True, "a") + "\n  ").encode(),  # only spaces after the last newline
]
ODD = [
    # Anything else: the line-by-line reading decides (Arrow would read it differently).
    (_page(True, "a") + "\r\n" + _page(False, None) + "\r\n").encode(),  # CRLF line ends
    b"\xef\xbb\xbf" + (_page(True, "a") + "\n").encode(),  # byte-order mark
    (_page(True, "a") + "\n\n" + _page(True, "b") + "\n").encode(),  # a blank line
    (_page(True, "a") + "\n   \n" + _page(True, "b") + "\n").encode(),  # a whitespace line
    (_page(True, "a") + "\n\n").encode(),  # a blank line before the last newline
    ("\u00a0" + _page(True, "a") + "\n").encode(),  # a non-ASCII space str.strip strips
    (_page(True, "a") + " " + _page(True, "b") + "\n").encode(),  # two pages on one line
    (_page(True, "a") + " garbage\n").encode(),  # not JSON after the page
    (_page("true", "a") + "\n").encode(),  # has_more a string
    (_page(True, 7) + "\n").encode(),  # next_page a number
    b'{"has_more": true, "has_more": false}\n',  # a key twice (json.loads keeps the last)
    b"[1, 2]\n" + (_page(True, "a") + "\n").encode(),  # a line that is not an object
    b'{"has_more": true, "next_page": "\\ud800"}\n',  # a lone surrogate json.loads accepts
    b"not json at all\n",
    b"",
    b"\n\n",
]


@pytest.mark.parametrize("raw", PLAIN)
def test_arrow_reads_plain_pulls_exactly_as_json_loads(raw):
    fast = P._jsonl_marks(raw)
    assert fast is not None
    assert fast == _line_by_line(raw)


@pytest.mark.parametrize("raw", ODD)
def test_anything_else_is_left_to_the_line_by_line_reading(tmp_path, raw):
    assert P._jsonl_marks(raw) is None
    path = tmp_path / "pull.jsonl.gz"
    path.write_bytes(gzip.compress(raw))
    expected = [P._mark(n, line) for n, line in _universal_lines(raw) if line.strip()]
    assert P._page_marks(path) == expected


def _universal_lines(raw: bytes):
    """Lines as a text-mode file iterates them (\\r\\n and \\r end a line too)."""
    text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    return enumerate(text.splitlines(True), start=1)


def test_a_plain_file_is_read_by_arrow(tmp_path, monkeypatch):
    path = tmp_path / "page-0001.jsonl.gz"
    path.write_bytes(gzip.compress(PLAIN[0]))
    monkeypatch.setattr(P.json, "loads", None)  # the Arrow path never parses a page in Python
    marks = P._page_marks(path)
    assert [(m.position, m.has_more, m.next_page) for m in marks] == [
        (1, True, "cur-1"),
        (2, False, None),
    ]
