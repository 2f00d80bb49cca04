"""A billing file's dialect, recognised from its header by what it carries (billing.py
describes the dialects)."""

from __future__ import annotations

from dataclasses import dataclass

from inference_ledger.ingest import records as R
from inference_ledger.ingest.billing_columns import ALIASES, FOCUS_VERSION_COLUMNS, REQUIRED


@dataclass(frozen=True)
class Dialect:
    name: str  # azure-ea | azure-mca | focus-1.0 ... focus-1.4
    columns: dict[str, str | None]  # intermediate -> the file's column (None: absent)

    @property
    def family(self) -> str:
        return "focus" if self.name.startswith("focus") else "azure"


def _resolve(aliases: dict[str, list[str]], header: tuple[str, ...]) -> dict[str, str | None]:
    by_lower = {h.lower(): h for h in header}
    return {
        target: next((by_lower[c.lower()] for c in names if c.lower() in by_lower), None)
        for target, names in aliases.items()
    }


def _lacking(family: str, cmap: dict[str, str | None]) -> list[str]:
    """The required columns the file lacks, each named by its accepted source names."""
    out = []
    for need in REQUIRED[family]:
        group = need if isinstance(need, tuple) else (need,)
        if all(cmap[g] is None for g in group):
            out.append(" or ".join(sorted({n for g in group for n in ALIASES[family][g]})))
    return out


def _version(family: str, header: tuple[str, ...], cmap: dict[str, str | None]) -> str:
    if family == "focus":
        names = {h.lower() for h in header}
        found = (v for v, cols in FOCUS_VERSION_COLUMNS if any(c.lower() in names for c in cols))
        return f"focus-{next(found, '1.0')}"
    matched = [c for c in cmap.values() if c]
    camel = sum(1 for c in matched if c[:1].islower())
    return "azure-mca" if 2 * camel > len(matched) else "azure-ea"


def resolve_dialect(header: tuple[str, ...], path: str) -> Dialect:
    """The dialect whose required columns the header carries, else an InputError naming the
    file, the closest dialect and what it lacks."""
    tried = []
    for family, aliases in ALIASES.items():
        cmap = _resolve(aliases, header)
        lacking = _lacking(family, cmap)
        name = _version(family, header, cmap)
        if not lacking:
            return Dialect(name, cmap)
        share = 1 - len(lacking) / len(REQUIRED[family])
        tried.append((share, name, lacking, bool(cmap["billed_cost"] and cmap["charge_start"])))
    share, name, lacking, recognised = max(tried, key=lambda t: (t[3], t[0]))
    if recognised:  # its money and date columns are there: that dialect, incomplete
        raise R.InputError(
            f"{path}: {name} file is missing required column(s) {', '.join(lacking)}"
        )
    raise R.InputError(
        f"{path}: not a known billing export (header: {', '.join(header[:6])}, ...); the "
        f"closest dialect is {name}, which needs column(s) {', '.join(lacking)}"
    )


def detect_dialect(header: tuple[str, ...]) -> str | None:
    try:
        return resolve_dialect(header, "").name
    except R.InputError:
        return None
