"""Directories outside pytest's basetemp, for embedded Postgres servers."""

from __future__ import annotations

import tempfile
from pathlib import Path


def private_tmp_dir(prefix: str) -> Path:
    """A new directory of its own under the system temp, outside pytest's basetemp; the caller
    removes it. An embedded Postgres runs there as another OS user (under root) and needs its
    parents traversable, but pytest re-secures /tmp/pytest-of-<user> (0700) and deletes old
    numbered basetemps whenever a session starts, so a second pytest session running at the
    same time would pull the directory from under a server kept in the basetemp."""
    return Path(tempfile.mkdtemp(prefix=prefix)).resolve()
