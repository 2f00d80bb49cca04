"""The landing folder as a whole: files no reader claimed, and a landing with nothing to ingest.

Nothing under the landing folder is ignored without being named: a file that is not a blob,
manifest or FOCUS metadata file of a discovered export run, nor a usage page or finance feed
file that was read (or skipped as unchanged), gets an accounting row with no rows and a
`warning` saying why (audit.input_files.warning), and a log warning by name.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from inference_ledger.ingest import records as R

log = logging.getLogger(__name__)

TOP_FOLDERS = ("billing", "usage", "finance")
# Where each kind of input is expected (the message of a landing with nothing to ingest).
EXPECTED = (
    "billing/azure/**/manifest.json (or _manifest.json) with its part_* blobs",
    "billing/focus/<provider>/**/ data files (.csv, .csv.gz, .parquet), with or without a manifest",
    "usage/<source>/<YYYY-MM-DD>/*.json[l][.gz]",
    "finance/{revenue,settlements,contracts,fx,prices,commitments}/*.csv[.gz]",
)
WHY = {
    "billing": "not claimed by any export manifest or FOCUS run",
    "usage": "not a usage page (usage/<source>/<YYYY-MM-DD>/*.json[l][.gz])",
    "finance": "not a finance feed file (finance/<feed>/*.csv[.gz] of a known feed)",
    None: "outside billing/, usage/ and finance/: no reader takes it",
}


def _top(landing: Path, path: Path) -> str | None:
    first = path.relative_to(landing).parts[0]
    return first if first in TOP_FOLDERS and path.parent != landing else None


def _all_files(landing: Path) -> list[Path]:
    return sorted(p for p in landing.rglob("*") if p.is_file())


def unclaimed(landing: Path, claimed: Iterable[str], read_tops: Iterable[str]) -> list[dict]:
    """Accounting rows (rows 0, a warning) for every file under `landing` that no reader
    claimed. Top folders whose source this ingest did not read (`read_tops`) are left for the
    ingest that reads them; files elsewhere are always reported."""
    claimed, read_tops = set(claimed), set(read_tops)
    out = []
    for path in _all_files(landing):
        top = _top(landing, path)
        if str(path) in claimed or (top is not None and top not in read_tops):
            continue
        why = WHY[top]
        if path.name == "_manifest.json" and top == "billing":
            why = "a second manifest in a folder whose manifest.json was read: not read"
        out.append(named(path, f"{top or 'landing'}.unclaimed", why))
    return out


def named(path: Path, source: str, why: str) -> dict:
    """The accounting row (no rows read, a warning) of a file that is named but not read."""
    log.warning("%s: %s", path, why)
    return {
        "source": source,
        "source_file": str(path),
        "rows_read": 0,
        **{f"rows_{s}": 0 for s in R.STATUSES},
        "checksum_sha256": R.sha256_file(path),
        "byte_count": path.stat().st_size,
        "warning": why,
    }


def nothing_to_ingest(landing: Path) -> R.InputError:
    """The error of a landing with no export run, usage page or finance file: what it holds
    (file counts per top folder) and where inputs are expected."""
    counts = Counter(_top(landing, p) or "other" for p in _all_files(landing))
    found = ", ".join(f"{k}/: {counts[k]}" for k in TOP_FOLDERS) + f", elsewhere: {counts['other']}"
    return R.InputError(
        f"nothing to ingest under {landing}: no export run, usage page or finance file "
        f"(files found: {found}); expected " + "; ".join(EXPECTED)
    )
