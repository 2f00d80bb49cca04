"""Usage pages as delivered, chained page to page to tell a partial pull from a complete one
(`usage.partial_pulls` states the rule)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pa_json

# A page file's name: stem, page number, tail; the next page of the same pull is the file with
# the same stem and tail and the next number (`page-0002.json` after `page-0001.json`).
_PAGE_NAME = re.compile(r"^(?P<stem>.*?)(?P<number>\d+)(?P<tail>\D*?)\.jsonl?(?:\.gz)?$")


@dataclass(frozen=True)
class PageMark:
    """What chaining needs of a delivered page: its position N (the line of a `.jsonl`, the
    number in a page file's name, else 1), its paging fields and a digest of its text."""

    position: int
    has_more: object
    next_page: object
    digest: str


def _page_marks(path: Path) -> list[PageMark]:
    """The pages of a file in delivery order. A page that is not JSON still arrived (the ingest
    quarantines it) but has no paging fields; an empty file holds no page."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        fast = _jsonl_marks(raw) if ".jsonl" in path.name else None
        if fast is not None:
            return fast
        # The same bytes read as a text-mode file reads them (universal newlines).
        f = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")
        if ".jsonl" in path.name:
            texts = list(enumerate(f, start=1))
        else:
            m = _PAGE_NAME.match(path.name)
            texts = [(int(m["number"]) if m else 1, f.read())]
    except (OSError, EOFError, UnicodeDecodeError):
        return []  # unreadable: the ingest names the file (and stops)
    return [_mark(n, text) for n, text in texts if text.strip()]


def _mark(n: int, text: str, paging: dict | None = None) -> PageMark:
    text = text.strip()
    if paging is None:
        try:
            page = json.loads(text)
        except ValueError:
            page = None
        paging = page if isinstance(page, dict) else {}
    digest = hashlib.sha256(text.encode()).hexdigest()
    return PageMark(n, paging.get("has_more"), paging.get("next_page"), digest)


_PAGING = pa.schema([("has_more", pa.bool_()), ("next_page", pa.string())])


def _jsonl_marks(raw: bytes) -> list[PageMark] | None:
    """The marks of a `.jsonl` with its paging fields read by Arrow's JSON reader instead of
    building every page as Python objects (1M results: 0.4 s instead of 3.5 s), and each page
    digested where it lies in the file's bytes rather than as a decoded and re-encoded copy
    (10M results, 3.6 GB of pages: 20.3 s -> 17.6 s; on threads, `Delivery.of`, 13.2 s); None
    when the file is anything but plain lines of objects whose has_more is a boolean and
    next_page a string: then the line-by-line reading decides, as it always did."""
    if b"\r" in raw or raw.startswith(b"\xef\xbb\xbf"):
        return None  # other line ends or a byte-order mark: the text reader's rules apply
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    spans = _line_spans(raw)
    if not spans:
        return None
    options = pa_json.ParseOptions(explicit_schema=_PAGING, unexpected_field_behavior="ignore")
    try:
        paging = pa_json.read_json(io.BytesIO(raw), parse_options=options).to_pylist()
    except pa.ArrowInvalid:
        return None  # a line that is not an object, or paging fields of another type
    if len(paging) != len(spans):
        return None
    view = memoryview(raw)
    return [
        PageMark(n, p.get("has_more"), p.get("next_page"), hashlib.sha256(view[a:b]).hexdigest())
        for n, ((a, b), p) in enumerate(zip(spans, paging, strict=True), start=1)
    ]


# The ASCII characters str.strip() strips (str.isspace): stripping them from the bytes gives
# the bytes of the stripped text, so the digests equal `_mark`'s.
_SPACE = frozenset(c for c in range(128) if chr(c).isspace())


def _line_spans(raw: bytes) -> list[tuple[int, int]] | None:
    """(start, end) of each line's stripped text; None when a line is blank (Arrow skips blank
    lines: positions would shift) or starts or ends with a non-ASCII character (which str.strip
    may strip too). A blank last line (the final newline) is not a line."""
    spans, start, size = [], 0, len(raw)
    while start < size:
        stop = raw.find(b"\n", start)
        stop = size if stop < 0 else stop
        a, b = start, stop
        while a < b and raw[a] in _SPACE:
            a += 1
        while b > a and raw[b - 1] in _SPACE:
            b -= 1
        if a == b:
            if stop == size:
                break  # whitespace after the last newline: not a line
            return None
        if raw[a] >= 0x80 or raw[b - 1] >= 0x80:
            return None
        spans.append((a, b))
        start = stop + 1
    return spans


def _delivery_order(path: Path, mark: PageMark) -> tuple:
    """Folder (day), page-file number, line: the order pages of a delivery were written in."""
    name = _PAGE_NAME.match(path.name)
    return (str(path.parent), int(name["number"]) if name else 0, mark.position, path.name)


@dataclass(frozen=True)
class Delivery:
    """The pages of a set of files, indexed for chaining: where each page's text was first
    delivered, and the first page of each numbered page file."""

    marks: dict[Path, list[PageMark]]
    first_seen: dict[str, tuple]
    first_pages: dict[tuple, tuple[Path, PageMark]]

    @classmethod
    def of(cls, files: list[Path]) -> Delivery:
        # Reading is mostly decompressing, parsing and hashing, which release the GIL.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            marks = dict(zip(files, pool.map(_page_marks, files), strict=True))
        first_seen: dict[str, tuple] = {}
        first_pages = {}
        for p, pages in marks.items():
            for mark in pages:
                at = _delivery_order(p, mark)
                first_seen[mark.digest] = min(first_seen.get(mark.digest, at), at)
            name = _PAGE_NAME.match(p.name)
            if name and pages:
                key = (p.parent, name["stem"], name["tail"], int(name["number"]))
                first_pages[key] = (p, pages[0])
        return cls(marks, first_seen, first_pages)

    def continued(self, p: Path, i: int) -> bool:
        """Page i of file p has its continuation: the page after it by position, arrived there
        first (not a copy of a page delivered earlier)."""
        if i + 1 < len(self.marks[p]):
            nxt_path, nxt = p, self.marks[p][i + 1]
        else:
            name = _PAGE_NAME.match(p.name)
            key = name and (p.parent, name["stem"], name["tail"], int(name["number"]) + 1)
            if not key or key not in self.first_pages:
                return False
            nxt_path, nxt = self.first_pages[key]
        return self.first_seen[nxt.digest] == _delivery_order(nxt_path, nxt)

    def cursors(self) -> tuple[dict[Path, set], list[tuple[Path, PageMark]]]:
        """(the cursors answered in each folder, the pages with has_more=true not continued)."""
        answered: dict[Path, set] = defaultdict(set)
        unanswered = []
        for p, pages in self.marks.items():
            for i, mark in enumerate(pages):
                if mark.has_more is not True:
                    continue
                if self.continued(p, i):
                    answered[p.parent].add(mark.next_page)
                else:
                    unanswered.append((p, mark))
        return answered, unanswered


def unanswered_warnings(
    answered: dict[Path, set], unanswered: list[tuple[Path, PageMark]]
) -> dict[str, str]:
    """{file: warning} naming the file that first delivered each cursor never answered."""
    flagged, named = {}, set()
    for p, m in sorted(unanswered, key=lambda pm: _delivery_order(*pm)):
        if m.next_page in answered[p.parent] or m.next_page in named:
            continue  # answered, or a copy of a page already named
        if m.next_page is not None:
            named.add(m.next_page)
        cursor = m.next_page if m.next_page is not None else "null"
        flagged[str(p)] = (
            f"partial pull: page {m.position} has has_more=true and next_page {cursor} "
            "never arrived"
        )
    return flagged
