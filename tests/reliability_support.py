"""Shared by the reliability, bad-input and security tests: an isolated ledger (its own
database on the session's embedded server and its own LEDGER_HOME, empty or a copy of the
session's baseline publish), tiny generated landings, marts fingerprints and small landing
edits (new export runs, late files)."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import secrets
import shutil
import sys
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from psycopg2 import sql
from sqlalchemy.engine import make_url

from inference_ledger.db import connect, migrate
from inference_ledger.ingest import exports

AS_OF = date(2026, 11, 27)
REPO = Path(__file__).resolve().parents[1]
MARTS = (
    "quarterly_summary",
    "revshare_reconciliation",
    "inference_spend_daily",
    "unit_cost_monthly",
    "workload_share_monthly",
    "unit_margin_monthly",
    "quarterly_forecast",
    "cap_projection",
)


@dataclass(frozen=True)
class Baseline:
    """One generated 2024-Q1 landing published once on a fresh ledger (the `reliability_baseline`
    session fixture): `landing` is shared, so tests copy it before changing it; `database` is a
    template and `home` the LEDGER_HOME (lake) of that run, both copied by `isolated_ledger`."""

    landing: Path
    home: Path
    database: str
    hashes: dict[str, tuple[str, int]]
    result: Any = None  # the run's RunResult


def _admin(pg_url: str):
    conn = connect(pg_url)
    conn.autocommit = True
    return conn


def _url_of(pg_url: str, name: str) -> str:
    return make_url(pg_url).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def environment(**values: str):
    """`values` set in the environment (the way the CLI reads its settings), the previous
    values restored on exit."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def current_ledger(home: Path, url: str):
    """`home` and `url` made current through the environment, the way the CLI reads them."""
    with environment(LEDGER_HOME=str(home), LEDGER_DATABASE_URL=url):
        yield url


def drop_database(pg_url: str, name: str) -> None:
    admin = _admin(pg_url)
    try:
        admin.cursor().execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    finally:
        admin.close()


def create_database(pg_url: str, name: str, template: str | None = None) -> None:
    """An empty database `name` on the server, or a copy of database `template`."""
    admin = _admin(pg_url)
    try:
        with admin.cursor() as cur:
            if template is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                return
            # A template must have no other session: a pooled connection of the run that
            # made it would make CREATE DATABASE fail.
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (template,),
            )
            cur.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
    finally:
        admin.close()


@contextlib.contextmanager
def isolated_ledger(pg_url: str, home: Path, prefix: str, copy_of: Baseline | None = None):
    """A fresh migrated database and LEDGER_HOME, made current through the environment the
    way the CLI reads it; both dropped and restored on exit. `copy_of`: instead of empty, a
    copy of the baseline's database (CREATE DATABASE ... TEMPLATE) and of its LEDGER_HOME."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    url = _url_of(pg_url, name)
    try:
        create_database(pg_url, name, copy_of.database if copy_of else None)
        if copy_of is None:
            migrate(url)
        else:
            shutil.copytree(copy_of.home, home, copy_function=shutil.copy2)
        with current_ledger(home, url):
            yield url
    finally:
        drop_database(pg_url, name)


def make_baseline(pg_url: str, root: Path, landing: Path | None = None) -> Baseline:
    """`landing` (default `generate_small` 2024-Q1) published by one run (as of AS_OF) on a
    fresh ledger."""
    from inference_ledger.pipeline import run_pipeline

    landing = landing or generate_small(root / "landing")
    name = f"baseline_{secrets.token_hex(4)}"
    url = _url_of(pg_url, name)
    create_database(pg_url, name)
    migrate(url)
    home = root / "home"
    with current_ledger(home, url):
        result = run_pipeline(landing, as_of=AS_OF)
    return Baseline(landing, home, name, marts_hash(url), result)


def query(url: str, statement: str, params=None) -> list[tuple]:
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.rollback()
        conn.close()


def marts_hash(url: str) -> dict[str, tuple[str, int]]:
    """md5 and row count of every mart's full content (marts carry no run id)."""
    out = {}
    for t in MARTS:
        stmt = sql.SQL(
            "SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')), count(*)"
            " FROM marts.{} x"
        ).format(sql.Identifier(t))
        conn = connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute(stmt)
                out[t] = cur.fetchone()
        finally:
            conn.close()
    return out


def accounting_balances(url: str) -> list[tuple]:
    """Input files of any run whose rows do not add up (must be empty)."""
    return query(
        url,
        "SELECT run_id, path, rows_read, rows_loaded, rows_quarantined, rows_superseded,"
        " rows_deduplicated FROM audit.input_files WHERE rows_read <>"
        " rows_loaded + rows_quarantined + rows_superseded + rows_deduplicated",
    )


def generate_small(out: Path, start: str = "2024-Q1", end: str = "2024-Q1", **kw) -> Path:
    from inference_ledger.sample import generate_landing

    generate_landing(out, start=start, end=end, scale=0.05, **kw)
    return out


def read_blob(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode("utf-8")


def newest_run(landing: Path, month_folder: str, export: str = "ea-actualcost-daily") -> Path:
    """The manifest of the newest run of the generated export for a billing period folder
    (YYYYMMDD-YYYYMMDD)."""
    # Any depth: Cost Management's layout has an export-time folder above the run folder.
    manifests = [
        p
        for p in (landing / "billing" / "azure").rglob("manifest.json")
        if export in p.parts and month_folder in p.parts
    ]
    return max(manifests, key=lambda p: json.loads(p.read_text())["runInfo"]["submittedTime"])


def blob_rows(manifest: Path) -> tuple[list[str], list[dict]]:
    doc = json.loads(manifest.read_text())
    # Blob names are container paths in Cost Management's layout: resolved as discovery does.
    text = read_blob(exports.blob_path(manifest.parent, doc["blobs"][0]["blobName"]))
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames), list(reader)


def is_period_folder(name: str) -> bool:
    first, _, last = name.partition("-")
    return len(first) == len(last) == 8 and (first + last).isdigit()


def write_export_run(
    landing: Path,
    base_manifest: Path,
    body: bytes | str,
    *,
    export_name: str | None = None,
    scope: str | None = None,
    submitted: str | None = None,
    declared_rows: int | None = None,
    blob_name: str = "part_1.csv",
) -> Path:
    """A new export run next to `base_manifest`'s (same billing period), with one blob holding
    `body` verbatim. Another export name/scope makes it a separate scope (it supersedes
    nothing); the same scope and a later `submitted` makes it the month's newest run."""
    doc = json.loads(base_manifest.read_text())
    run_id = str(uuid.uuid4())
    period = next(part for part in base_manifest.parts if is_period_folder(part))
    name = export_name or doc["exportConfig"]["exportName"]
    run_dir = landing / "billing" / "azure" / name / period / run_id
    run_dir.mkdir(parents=True)
    data = body.encode("utf-8") if isinstance(body, str) else body
    (run_dir / blob_name).write_bytes(data)
    if declared_rows is None:
        raw = gzip.decompress(data) if blob_name.endswith(".gz") else data
        declared_rows = max(len(raw.decode("utf-8", "replace").strip("\n").split("\n")) - 1, 0)
    doc["exportConfig"]["exportName"] = name
    if scope:
        doc["exportConfig"]["resourceId"] = scope
    doc["runInfo"]["runId"] = run_id
    if submitted:
        doc["runInfo"]["submittedTime"] = submitted
    doc["blobs"] = [{"blobName": blob_name, "byteCount": len(data), "dataRowCount": declared_rows}]
    doc["dataRowCount"] = declared_rows
    doc["blobCount"] = 1
    (run_dir / "manifest.json").write_text(json.dumps(doc, indent=2))
    return run_dir / blob_name


def to_csv(header: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def copy_landing(src: Path, dst: Path) -> Path:
    # copy2 keeps modification times: usage redeliveries are ordered by them.
    shutil.copytree(src, dst, copy_function=shutil.copy2)
    return dst


def ledger_command() -> list[str]:
    return [sys.executable, "-m", "inference_ledger.cli"]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env.setdefault("LEDGER_SPARK_MASTER", "local[2]")
    env.setdefault("LEDGER_SHUFFLE_PARTITIONS", "2")
    return env
