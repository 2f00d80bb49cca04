"""Small finance feeds read and checked in plain Python, the same way Spark does it
(`records.read_csv_by_header` + `finance.with_feed_checks`), without a Spark job.

A feed of at most SMALL_FEED_BYTES is read here: a Spark job costs a fixed fraction of a second
whatever its size, and a feed of a few thousand rows took a dozen of them. The rules mirror the
Spark expressions one for one: values are read as Spark's CSV reader reads them (an empty field,
quoted or not, is null; nothing is trimmed), then parsed and checked as `_typed` does (Spark's
`trim` removes spaces only; decimals round half-up to the contract's scale and are null when
they do not fit). What this reader does not mimic exactly -- a malformed CSV row, quoting
other than whole quoted fields, control characters, a gzip that does not inflate -- raises
`Unsupported`, before anything is written, and the feed is read by Spark as before.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from pathlib import Path

from inference_ledger import contracts
from inference_ledger.ingest import records as R

# Feeds up to this size (all of a feed's files, as delivered) are read in Python; larger ones
# by Spark, whose fixed cost per job is then small next to the work.
SMALL_FEED_BYTES = 8 << 20

_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LINES = re.compile(r"\r\n|\r|\n")  # Hadoop's line reader: LF, CRLF or CR
# Characters where Java and Python regexes, trims or JSON escapes differ: left to Spark.
_ODD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029]")
_FIELD = r'(?:"(?:[^"]|"")*"|[^",]*)'
_QUOTED_LINE = re.compile(rf"{_FIELD}(?:,{_FIELD})*")


class Unsupported(Exception):
    """Input this reader does not read exactly as Spark would: Spark reads the feed."""


@dataclass
class Row:
    """One input row: raw strings as Spark's CSV reader gives them, typed values, the first
    failed check."""

    source_file: str
    raw: dict[str, str | None]
    typed: dict
    reason: str | None = None
    field: str | None = None


def is_small(files: list[Path]) -> bool:
    return sum(p.stat().st_size for p in files) <= SMALL_FEED_BYTES


def spark_trim(value: str | None) -> str | None:
    """Spark's `trim`: spaces only."""
    return None if value is None else value.strip(" ")


def is_blank(value: str | None) -> bool:
    return value is None or spark_trim(value) == ""


def read_rows(files: list[Path], contract: str) -> list[Row] | None:
    """The feed's rows (None when no file has a header: nothing to read), file by file in
    order, every contract column as a raw string (null when the file lacks it)."""
    wanted = [c.name for c in contracts.columns("inputs", contract)]
    required = contracts.required_columns("inputs", contract)
    headers = []
    for path in files:  # the same checks, in the same order, as read_csv_by_header
        header = R.read_header(path)
        if header:
            missing = [c for c in required if c not in header]
            if missing:
                raise R.InputError(f"{path}: missing required column(s) {', '.join(missing)}")
        headers.append(header)
    if not any(headers):
        return None
    rows: list[Row] = []
    for path, header in zip(files, headers, strict=True):
        if not header:
            continue
        if len(set(header)) != len(header):
            raise Unsupported(f"{path}: a column named twice")
        where = [header.index(c) if c in header else None for c in wanted]
        for tokens in _data_lines(path, len(header)):
            raw = {
                c: (tokens[i] if i is not None else None)
                for c, i in zip(wanted, where, strict=True)
            }
            rows.append(Row(str(path), raw, {}))
    return rows


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        text = data.decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise Unsupported(f"{path}: {exc}") from exc  # Spark names the cause
    text = text.removeprefix("\ufeff")  # a byte-order mark sits in the header line, dropped
    if _ODD.search(text):
        raise Unsupported(f"{path}: control characters")
    return text


def _data_lines(path: Path, width: int):
    """Tokens of each data line: the first non-blank line is the header, blank lines are
    skipped (Scala's `trim`: spaces and tabs here), an empty field is null."""
    lines = [line for line in _LINES.split(_text(path)) if line.strip(" \t")]
    if lines and '"' in lines[0] and not _QUOTED_LINE.fullmatch(lines[0]):
        raise Unsupported(f"{path}: a header quoted across lines")
    for line in lines[1:]:
        if '"' in line:
            if not _QUOTED_LINE.fullmatch(line):
                raise Unsupported(f"{path}: quoting Spark's reader may read otherwise")
            tokens = next(csv.reader([line]))
        else:
            tokens = line.split(",")
        if len(tokens) != width:  # a malformed row: Spark's `_corrupt_record`
            raise Unsupported(f"{path}: malformed CSV row")
        yield [t if t != "" else None for t in tokens]


def parse_decimal(value: str | None, precision: int, scale: int) -> Decimal | None:
    """try_cast to DecimalType(precision, scale) of plain decimal text (trimmed)."""
    txt = spark_trim(value)
    if txt is None or not _DECIMAL.fullmatch(txt):
        return None
    try:
        with localcontext(Context(prec=precision + 200)):
            d = Decimal(txt).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    if abs(d) >= Decimal(10) ** (precision - scale):
        return None
    return abs(d) if d == 0 else d


def parse_int(value: str | None) -> int | None:
    txt = spark_trim(value)
    if txt is None or not _INTEGER.fullmatch(txt):
        return None
    n = int(txt)
    return n if _LONG_MIN <= n <= _LONG_MAX else None


def parse_date(value: str | None) -> date | None:
    txt = spark_trim(value)
    if txt is None or not _ISO_DATE.fullmatch(txt):
        return None
    try:
        return date.fromisoformat(txt)
    except ValueError:
        if txt.startswith("0000"):  # year 0: Java's proleptic calendar has it, Python not
            raise Unsupported(f"date {txt}") from None
        return None
