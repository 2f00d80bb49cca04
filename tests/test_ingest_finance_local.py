"""Small finance feeds are read in Python (steps/finance_local.py): the same lake tables,
accounting, quarantine and errors as Spark's reading of the same files, edge cases included."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from inference_ledger import lake
from inference_ledger.ingest import records as R
from inference_ledger.ingest.finance_local import is_small
from inference_ledger.run.context import SOURCE_FEEDS, RunContext
from inference_ledger.steps import ingest_finance as IF

# Each case reads its landing twice, once by each path, ~10 Spark jobs apiece: a check for
# the full run (the finance tests of the fast tier already cover the Python path's rules).
pytestmark = pytest.mark.slow

REV = "entry_id,entry_version,revenue_date,product_line,amount,currency,description"
SET = (
    "statement_id,supersedes_statement_id,agreement_id,direction,counterparty,period_start,"
    "period_end,reported_basis_amount,rate,amount,currency,statement_date,payment_date,reference"
)
CON = (
    "agreement_id,direction,counterparty,basis,rate,effective_from,effective_to,cap_amount,"
    "cap_currency,tolerance_abs,tolerance_pct,payment_terms_days"
)
PRICES = "channel,model,token_type,unit_tokens,unit_price,currency,effective_from,effective_to"
COMMIT = (
    "commitment_id,counterparty,amount,currency,start_date,end_date,eligible_services,"
    "eligible_meters,provider"
)
TABLES = ["fx_rates", "prices", "contract_terms", "revenue_lines", "settlements", "commitments"]

FILES = {
    "fx/a.csv": [
        "rate_date,currency,usd_per_unit",
        "2024-01-10,EUR,1.0928",
        "2024-01-10,EUR,1.0928",
        "2024-01-10,EUR,2",
        "2024-01-11,EUR,NaN",
        "2024-01-10,GBP,1.27",
    ],
    "revenue/a.csv": [
        REV,
        "E-1,1,2024-01-10,api,1.123456789049999,USD,round down",
        "E-2,1,2024-01-10,api,1.12345678905,EUR,round up",
        "E-3,1,2024-01-10,api,  5.5 ,USD,  spaces  ",
        "E-4,1,2024-01-10,api,+3,EUR,plus",
        "E-5,1,2024-01-10,api,-0.00,USD,negative zero",
        '"E-6","1","2024-01-10","api","7.00","USD",""',
        "E-7,1,2024-02-30,api,1,USD,no such day",
        "E-8,1.0,2024-01-10,api,1,USD,decimal version",
        "E-9,99999999999999999999,2024-01-10,api,1,USD,beyond a long",
        "E-10,1,2024-01-10,api,1,USD,twice",
        "E-10,1,2024-01-10,api,1,USD,twice",
        "E-11,1,2024-01-10,api,1,USD,v1",
        "E-11,2,2024-01-10,api,2,USD,v2",
        "E-11,2,2024-01-10,api,3,USD,v2 again, other amount",
        "",
        "   ",
        "E-12,1,2024-01-10,,1,USD,",
        "E-13,1,2024-01-10,api,1,usd,lower case",
        'E-14,1,2024-01-10,api,1,USD,"quoted, ""inner"" comma"',
        "E-15,1,2024-01-10,api,.5,USD,no leading digit",
        "E-16,-1,2024-01-10,api,1,USD,negative version",
        "E-17,1,2024-01-10,api,-12.345678901234567890,GBP,Café ✓",
    ],
    "revenue/b.csv": ["amount,currency,entry_id,entry_version,revenue_date,product_line,x",
                      "10,USD,E-11,2,2024-01-10,api,extra column, no description"],
    "revenue/c.csv": [REV],
    "settlements/a.csv": [
        SET,
        "S-A,,AG,payable,P,2024-01-01,2024-04-01,10,0.2,2,USD,2024-05-01,,",
        "S-B,S-A,AG,payable,P,2024-01-01,2024-04-01,10,0.2,2.5,USD,2024-05-02,,",
        "S-C,S-B,AG,payable,P,2024-01-01,2024-04-01,10,0.2,3,EUR,2024-01-10,2024-06-01,ref",
        "S-D,S-A,AG,payable,P,2024-01-01,2024-04-01,10,0.2,3,USD,2024-05-03,,",
        "S-E,NOPE,AG,payable,P,2024-01-01,2024-04-01,10,0.2,3,USD,2024-05-03,,",
        "S-F,,AG,payable,P, 2024-04-01,2024-01-01,10,0.2,3,USD,2024-05-03,,",
        "S-H,,AG,payable,P,2024-01-01,2024-04-01,,0.2,3,USD,2024-05-03,,",
        "S-H,,AG,payable,P,2024-01-01,2024-04-01,,0.2,3,USD,2024-05-03,,same",
        "S-I,S-X,AG,pay,P,2024-01-01,2024-04-01,,0.2,4,USD,2024-05-03,,",
    ],
    "settlements/b.csv": [SET, "S-H,,AG,payable,P,2024-01-01,2024-04-01,,0.2,5,USD,2024-05-03,,"],
    "commitments/a.csv": [
        COMMIT,
        "C-1,X,0,USD,2024-01-01,2025-01-01,*,,",
        "C-2,X,5,USD,2025-01-01,2024-01-01,*,,",
        "C-3,X,5,USD,2024-01-01,2025-01-01,, ,",
        "C-4,X,5,EUR,2024-01-10,2025-01-01,,meter,P",
        "C-4,X,5,EUR,2024-01-10,2025-01-01,,meter,P",
        "C-4,X,6,EUR,2024-01-10,2025-01-01,,meter,P",
    ],
    "prices/a.csv": [
        PRICES,
        "openai,m,input,0,1,USD,2024-01-01,",
        "openai,m,input,abc,1,USD,2024-01-01,",
        "openai,m,audio,1,1,USD,2024-01-01,",
        " openai ,m2,input,1,1,USD,2024-01-01,",
    ],
    "contracts/a.csv": [
        CON,
        "A-9,payable,P,revenue:API,0.2,2024-01-01,,,,1,0.001,30",
        "A-10,payable,P,reported,0.2,2024-01-01,,,,1,0.001,-1",
        "A-11,payable,P,reported,0.2,2024-01-01,,,,1,0.001,30",
        "A-11,payable,P,reported,0.3,2024-01-01,,,,1,0.001,30",
    ],
}  # fmt: skip


def _landing(root: Path, files: dict[str, list[str]]) -> Path:
    for name, lines in files.items():
        path = root / "finance" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return root


def _ingest(spark, landing: Path, lake_dir: Path, in_python: bool, monkeypatch) -> dict:
    monkeypatch.setattr(IF, "is_small", is_small if in_python else (lambda files: False))
    ctx = RunContext(run_id="r", landing=landing)
    ctx.settings = dataclasses.replace(ctx.settings, lake_uri=str(lake_dir))
    out: dict = {}
    try:
        fx, accounting = IF.ingest_finance(spark, ctx, frozenset(SOURCE_FEEDS["finance"]), False)
        out["fx"] = sorted(map(tuple, fx.collect()), key=repr)
        out["accounting"] = sorted((sorted(r.items()) for r in accounting), key=repr)
    except R.InputError as exc:
        out["error"] = str(exc)
    for name in TABLES:
        if lake.exists(spark, lake.table_path(lake_dir, name)):
            rows = lake.read_table(spark, lake_dir, name).collect()
            out[name] = sorted(map(tuple, rows), key=repr)
    quarantine = lake.run_path(lake_dir, "r", "quarantine")
    if lake.exists(spark, quarantine):
        out["quarantine"] = sorted(map(tuple, spark.read.parquet(quarantine).collect()), key=repr)
    return out


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"revenue/z.csv": [REV, "X-1,1,2024-01-10,api,1,XYZ,no rate"]},
        {"contracts/z.csv": [CON, "A-1,payable,P,revenue:api,0.2,2024-01-01,2024-07-01,,,1,0,30",
                             "A-1,payable,P,revenue:api,0.3,2024-06-01,,,,1,0,30"]},
        {"revenue/z.csv": [REV, "M-1,1,2024-01-10,api,1,USD,x,one field too many"]},
    ],
    ids=["edge-cases", "missing-fx-rate", "overlapping-terms", "malformed-row-read-by-spark"],
)  # fmt: skip
def test_python_reading_equals_spark_reading(spark, tmp_path, monkeypatch, extra):
    landing = _landing(tmp_path / "landing", {**FILES, **extra})
    by_spark = _ingest(spark, landing, tmp_path / "lake-spark", False, monkeypatch)
    calls = []
    monkeypatch.setattr(IF.local, "read_local", _counted(IF.local.read_local, calls))
    in_python = _ingest(spark, landing, tmp_path / "lake-python", True, monkeypatch)
    # Every feed tried in Python, up to the one that stops the run; a feed with a malformed row
    # is then left to Spark.
    assert calls == list(IF.FEEDS)[: len(calls)]
    assert len(calls) == len(IF.FEEDS) or "error" in by_spark
    assert in_python == by_spark
    assert by_spark.get("quarantine") or by_spark.get("error")


def _counted(fn, calls: list):
    def wrapper(*args, **kwargs):
        calls.append(args[2])
        return fn(*args, **kwargs)

    return wrapper
