"""Postgres' binary COPY format (PGCOPY) built from Arrow record batches, column at a time.

Why: with CSV the server parses every value back from text (numeric_in, date_in, ...), which is
most of what a COPY costs; binary values are taken as they are. Each field is built as bytes by
numpy or Arrow over the whole column (no Python loop per row) and Arrow joins the fields of each
row into one buffer.

Only pairs of (Arrow type, Postgres type) whose binary value is the same as what the CSV path
stores are encoded; for any other pair `plan` returns None and the caller uses CSV. Exactness:
decimals go from Arrow's 128-bit unscaled integer to NUMERIC's base-10000 digits by integer
division (no float, no text); dates and timestamps by integer arithmetic; text as its UTF-8
bytes. A NULL is length -1 and an empty string length 0, so the two stay apart.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, no header extension
TRAILER = b"\xff\xff"
PG_EPOCH_DAYS = 10957  # 2000-01-01, Postgres' epoch, in days since 1970-01-01
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400_000_000
NUMERIC_NEG = 0x4000
INTEGERS = {"bigint": ">i8", "integer": ">i4", "smallint": ">i2"}
FLOATS = {"double precision": ">f8", "real": ">f4"}
TEXT = ("text", "character varying")

# A column's fields as bytes: one byte string for every row (a constant), a uint8 matrix with
# one row per row (fixed width), or a binary array without NULLs.
Piece = bytes | np.ndarray | pa.Array
Encoder = Callable[[pa.Array], list[Piece]]


def _fixed(values: np.ndarray, valid: np.ndarray | None) -> list[Piece]:
    """Length-prefixed fields from an (n, width) big-endian byte matrix; NULL rows, where
    `valid` is False, become length -1 with no value."""
    n, width = values.shape
    if valid is None:
        return [np.asarray(width, ">i4").tobytes(), values]
    lengths = np.where(valid, width, -1).astype(">i4").view(np.uint8).reshape(n, 4)
    return [lengths, _binary(values[valid], np.where(valid, width, 0))]


def _binary(values: np.ndarray, lengths: np.ndarray | None = None) -> pa.Array:
    """A binary array of `lengths` bytes a row (each row of the matrix when not given) taken
    from the rows of `values` in turn. It has no NULLs: Arrow joins those a third faster."""
    n, width = values.shape
    if lengths is None:
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    else:
        n = len(lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int32)]).astype(np.int32)
    data = pa.py_buffer(np.ascontiguousarray(values))
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), data])


def _valid(arr: pa.Array) -> np.ndarray | None:
    if arr.null_count == 0:
        return None
    return pc.is_valid(arr).to_numpy(zero_copy_only=False)


def _bytes(values: np.ndarray, dtype: str) -> np.ndarray:
    big = values.astype(dtype, copy=False)
    return big.view(np.uint8).reshape(len(values), big.dtype.itemsize)


def _numbers(arr: pa.Array, arrow_type: pa.DataType, dtype: str) -> list[Piece]:
    valid = _valid(arr)
    values = pc.fill_null(arr.cast(arrow_type), 0).to_numpy(zero_copy_only=False)
    return _fixed(_bytes(values, dtype), valid)


def _text(arr: pa.Array) -> list[Piece]:
    if not pa.types.is_string(arr.type):
        # The CSV path writes these as Arrow casts them to text; so does this one.
        arr = pc.cast(arr, pa.string())
    lengths = pc.fill_null(pc.binary_length(arr), -1).to_numpy(zero_copy_only=False)
    return [_bytes(lengths, ">i4"), _without_nulls(arr)]


def _without_nulls(arr: pa.Array) -> pa.Array:
    """The strings as binary with NULLs as empty values: the same buffers without the validity
    bitmap when the NULL slots are already empty (as Arrow's readers leave them)."""
    if arr.null_count == 0:
        return arr.cast(pa.binary())
    offsets = np.frombuffer(arr.buffers()[1], np.int32, len(arr) + 1, arr.offset * 4)
    valid = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    if np.diff(offsets)[~valid].any():
        return pc.fill_null(arr, "").cast(pa.binary())
    buffers = [None, arr.buffers()[1], arr.buffers()[2]]
    return pa.Array.from_buffers(pa.binary(), len(arr), buffers, offset=arr.offset)


def _date(arr: pa.Array) -> list[Piece]:
    days = pc.fill_null(arr.cast(pa.int32()), 0).to_numpy(zero_copy_only=False)
    return _fixed(_bytes(days.astype(np.int32) - PG_EPOCH_DAYS, ">i4"), _valid(arr))


def _timestamp(arr: pa.Array) -> list[Piece]:
    """Microseconds since 2000-01-01 of the instant (UTC wall time for a naive value, as the
    CSV path's text is read in a UTC session)."""
    unit = arr.type.unit
    raw = pc.fill_null(arr.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    if unit == "ns":
        # Postgres reads the 9 fraction digits of the CSV text as a double and rounds with
        # rint(frac * 1e6); the same arithmetic here gives the same microsecond.
        seconds, frac_ns = np.divmod(raw, 1_000_000_000)
        micros = seconds * 1_000_000 + np.rint((frac_ns / 1e9) * 1e6).astype(np.int64)
    else:
        micros = raw * {"s": 1_000_000, "ms": 1_000, "us": 1}[unit]
    return _fixed(_bytes(micros - PG_EPOCH_US, ">i8"), _valid(arr))


def _bool(arr: pa.Array) -> list[Piece]:
    values = pc.fill_null(arr, False).to_numpy(zero_copy_only=False)
    return _fixed(values.astype(np.uint8).reshape(len(arr), 1), _valid(arr))


def _magnitude(arr: pa.Array) -> tuple[list[np.ndarray], np.ndarray]:
    """|unscaled value| of each decimal as int64 limbs (most significant first: one limb when
    every value fits 63 bits, else four of 32 bits) and whether it is negative."""
    n = len(arr)
    words = np.frombuffer(arr.buffers()[1], "<i8", count=2 * (arr.offset + n))[2 * arr.offset :]
    lo, hi = words[0::2], words[1::2]
    negative = hi < 0
    # Two's complement negation of (hi, lo): the carry reaches hi only when lo is 0.
    lo = np.where(negative, -lo, lo)
    hi = np.where(negative, ~hi + (lo == 0), hi)
    if not hi.any() and (lo >= 0).all():
        return [lo], negative
    low32 = np.int64(0xFFFFFFFF)
    limbs = [(hi >> 32) & low32, hi & low32, (lo >> 32) & low32, lo & low32]
    return _trimmed(limbs), negative


def _trimmed(limbs: list[np.ndarray]) -> list[np.ndarray]:
    while len(limbs) > 1 and not limbs[0].any():
        limbs = limbs[1:]
    return limbs


def _divide(limbs: list[np.ndarray], divisor: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Long division of the limbs by divisor <= 10,000 (each step stays below 2^46, and numpy
    divides int64 by a constant without a hardware division)."""
    quotient, rest = [], None
    for limb in limbs:
        part = limb if rest is None else (rest << 32) | limb
        q = part // divisor
        rest = part - q * divisor
        quotient.append(q)
    return _trimmed(quotient), rest


def _numeric(arr: pa.Array) -> list[Piece]:
    """NUMERIC's binary form: ndigits, weight, sign, dscale, then base-10,000 digits aligned on
    the decimal point. The batch shares one digit count (the widest value's; a smaller value
    has leading zero digits, which Postgres strips), so every field has the same width."""
    if pa.types.is_integer(arr.type):
        arr = arr.cast(pa.decimal128(20, 0))
    scale = arr.type.scale
    limbs, negative = _magnitude(pc.fill_null(arr, 0))
    digits = []  # least significant first
    if scale % 4:
        # Align to the decimal point: the last fraction digit holds the remaining places.
        limbs, rest = _divide(limbs, 10 ** (scale % 4))
        digits.append(rest * 10 ** (4 - scale % 4))
    while len(digits) < -(-scale // 4) or limbs[0].any():
        limbs, rest = _divide(limbs, 10_000)
        digits.append(rest)
    n, width = len(arr), len(digits)
    fields = np.empty((n, 4 + width), ">u2")
    fields[:, 0] = width
    fields[:, 1] = np.uint16((width - -(-scale // 4) - 1) & 0xFFFF)
    fields[:, 2] = np.where(negative, NUMERIC_NEG, 0)
    fields[:, 3] = scale
    for i, digit in enumerate(reversed(digits)):
        fields[:, 4 + i] = digit
    return _fixed(fields.view(np.uint8).reshape(n, 8 + 2 * width), _valid(arr))


def _encoder(arrow: pa.DataType, pg: str, utc_session: bool) -> Encoder | None:
    """How to write an Arrow column into a Postgres column of type `pg` (its regtype name),
    or None when only the CSV path is known to store the same value."""
    t = pa.types
    if pg in TEXT:
        castable = (t.is_string, t.is_large_string, t.is_integer, t.is_floating, t.is_decimal)
        castable += (t.is_boolean, t.is_date32, t.is_timestamp)
        return _text if any(check(arrow) for check in castable) else None
    if pg == "numeric" and (t.is_integer(arrow) or (t.is_decimal128(arrow) and arrow.scale >= 0)):
        return _numeric
    if pg in INTEGERS and t.is_integer(arrow):
        width = {"bigint": pa.int64(), "integer": pa.int32(), "smallint": pa.int16()}[pg]
        return lambda arr: _numbers(arr, width, INTEGERS[pg])
    if pg in FLOATS and (t.is_float32(arrow) or (t.is_float64(arrow) and pg != "real")):
        return lambda arr: _numbers(
            arr, {">f8": pa.float64(), ">f4": pa.float32()}[FLOATS[pg]], FLOATS[pg]
        )
    if pg == "date" and t.is_date32(arrow):
        return _date
    if pg == "boolean" and t.is_boolean(arrow):
        return _bool
    if t.is_timestamp(arrow):
        # CSV text of a naive value is read in the session's zone; of a zoned one, with its
        # offset (which a column without time zone ignores, keeping the wall time).
        utc = arrow.tz in ("UTC", "+00:00", "Z", "Etc/UTC")
        if pg == "timestamp with time zone" and (arrow.tz is not None or utc_session):
            return _timestamp
        if pg == "timestamp without time zone" and (arrow.tz is None or utc):
            return _timestamp
    return None


def plan(
    arrow_types: list[pa.DataType | None],
    pg_types: list[str],
    constants: list[str | None],
    utc_session: bool,
) -> list[Encoder | bytes] | None:
    """One step per target column: an encoder for a column from the file, the field bytes of a
    constant (text columns only); None if any column has no exact binary form."""
    steps: list[Encoder | bytes] = []
    for arrow, pg, constant in zip(arrow_types, pg_types, constants, strict=True):
        if constant is not None:
            if pg not in TEXT:
                return None
            value = constant.encode()
            steps.append(len(value).to_bytes(4, "big") + value)
            continue
        encoder = _encoder(arrow, pg, utc_session)
        if encoder is None:
            return None
        steps.append(encoder)
    return steps


def rows(steps: list[Encoder | bytes], columns: list[pa.Array | None], n: int) -> bytes:
    """The batch's n rows in PGCOPY tuple format (no file header or trailer)."""
    pieces: list[Piece] = [len(steps).to_bytes(2, "big")]
    for step, column in zip(steps, columns, strict=True):
        pieces.extend([step] if isinstance(step, bytes) else step(column))
    return _join(pieces, n)


def _join(pieces: list[Piece], n: int) -> bytes:
    """Concatenate each row's pieces: runs of fixed-width pieces into one byte matrix, then
    Arrow joins the matrices and the variable-width pieces row by row."""
    arrays: list[np.ndarray | pa.Array] = []
    run: list[bytes | np.ndarray] = []
    for piece in [*pieces, None]:
        if isinstance(piece, bytes | np.ndarray):
            run.append(piece)
            continue
        if run:
            arrays.append(_matrix(run, n))
            run = []
        if piece is not None:
            arrays.append(piece)
    if len(arrays) == 1 and isinstance(arrays[0], np.ndarray):
        return arrays[0].tobytes()
    binaries = [_binary(a) if isinstance(a, np.ndarray) else a for a in arrays]
    joined = pc.binary_join_element_wise(*binaries, b"")
    offsets = np.frombuffer(joined.buffers()[1], np.int32, n + 1, joined.offset * 4)
    return joined.buffers()[2][int(offsets[0]) : int(offsets[-1])].to_pybytes()


def _matrix(run: list[bytes | np.ndarray], n: int) -> np.ndarray:
    widths = [len(p) if isinstance(p, bytes) else p.shape[1] for p in run]
    out = np.empty((n, sum(widths)), np.uint8)
    at = 0
    for piece, width in zip(run, widths, strict=True):
        out[:, at : at + width] = (
            np.frombuffer(piece, np.uint8) if isinstance(piece, bytes) else piece
        )
        at += width
    return out
