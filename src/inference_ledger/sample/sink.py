"""Byte-reproducible file writing and the seeded randomness the generators share."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any


def rng_for(seed: int, *parts: object) -> random.Random:
    """An independent stream per (seed, component): a str seed is hashed with SHA-512 by
    `random`, so it does not depend on PYTHONHASHSEED, and adding one component's draws does
    not shift another's."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


def uuid_from(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def money(amount: Decimal) -> str:
    """Plain 2-decimal string: no exponent, no thousands separator."""
    return f"{amount:.2f}"


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def json_bytes(doc: Any, *, indent: int | None = None) -> bytes:
    if indent is None:
        return json.dumps(doc, separators=(",", ":")).encode("utf-8")
    return (json.dumps(doc, indent=indent) + "\n").encode("utf-8")


def gzip_bytes(data: bytes) -> bytes:
    # mtime=0 and no file name in the header: the same input always gives the same bytes.
    return gzip.compress(data, compresslevel=6, mtime=0)


class Sink:
    """Writes files under one root and counts them."""

    def __init__(self, root: Path):
        self.root = root
        self.files = 0
        self.bytes = 0

    def write(self, rel_path: str, data: bytes, mtime: int | None = None) -> int:
        """`mtime` (unix seconds) dates a file when its age means something, e.g. an earlier
        usage pull that a newer one must win over."""
        path = self.root / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        self.files += 1
        self.bytes += len(data)
        return len(data)
