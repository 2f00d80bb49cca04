"""Locate the repo-level `schemas/` and `sql/` folders (installed or in a checkout) and the
package's own config files."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
# The driver's log4j config: every Spark session (in process, or a spark-submit job) uses it.
LOG4J_CONFIG = _PACKAGE_DIR / "config" / "log4j2.properties"


def resource_dir(name: str) -> Path:
    """`schemas` or `sql`: packaged copy in a wheel, else the checkout's top-level folder."""
    packaged = _PACKAGE_DIR / "_resources" / name
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE_DIR.parent.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"resource folder {name!r} not found (looked in {packaged}, {checkout})"
    )
