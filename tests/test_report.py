"""Reports on hand-built marts (a database of their own): the year page reproduces the
public-figures table, every figure in a table is what the query printed under it returns,
statuses carry their colours and explanations, CSVs match, and the page renders in headless
Chromium (Debian's `chromium`; CI installs it, a laptop without it skips)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from datetime import date
from decimal import Decimal as D
from html.parser import HTMLParser

import pytest
from psycopg2 import sql
from sqlalchemy.engine import make_url

from inference_ledger.db import connect, migrate
from inference_ledger.report import QUARTER_CSVS, render, write_period_report, write_reports

# 2024 quarters as in DESIGN.md (spend, paid, implied = paid / 20%) + invented receipts.
DESIGN_2024 = {
    "2024-Q1": ("FY24-Q3", "546800000.00", "77300000.00", "8215432.18"),
    "2024-Q2": ("FY24-Q4", "748300000.00", "109500000.00", "11073905.42"),
    "2024-Q3": ("FY25-Q1", "1005000000.00", "139200000.00", "14586220.96"),
    "2024-Q4": ("FY25-Q2", "1467000000.00", "167800000.00", "18940117.35"),
}
RUN = "run-test-report"
# An earlier run that read the revenue file 2024-Q2 rests on; RUN published without re-reading it.
READ_RUN = "run-test-read"
REVENUE_FILE = "/l/finance/revenue/r.csv"


def _quarter_bounds(label):
    year, q = int(label[:4]), int(label[-1])
    start = date(year, 3 * q - 2, 1)
    end = date(year + (q == 4), (3 * q) % 12 + 1, 1)
    return start, end


def _recon(label, agreement, direction, status, **cols):
    start, end = _quarter_bounds(label)
    row = {
        "period_label": label,
        "period_start": start,
        "period_end": end,
        "agreement_id": agreement,
        "direction": direction,
        "counterparty": "Partner",
        "status": status,
        "is_adjustment": False,
    }
    row.update(cols)
    return row


def _insert(cur, table, row):
    cur.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.SQL(table),
            sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(sql.Placeholder() * len(row)),
        ),
        list(row.values()),
    )


RECON_Q1 = [
    _recon(
        "2024-Q1", "PAY", "payable", "matched",
        basis_definition="revenue:api|chat", basis_usd=D("386500000.00"), basis_entry_count=291,
        rate=D("0.2"), expected_usd=D("77300000.00"), settled_usd=D("77300000.00"),
        variance_usd=D("0"), variance_ratio=D("0"), tolerance_usd=D("77300.00"),
        implied_basis_usd=D("386500000.00"), cap_used_usd=D("77300000.00"),
        cap_remaining_usd=D("91922700000.00"), statement_ids="S1-R1",
        superseded_statement_ids="S1", statement_basis_usd=D("386500000.00"),
        payment_due_date=date(2024, 5, 31),
    ),
    _recon(
        "2024-Q1", "RCV", "receivable", "matched",
        basis_definition="reported", basis_usd=D("41077160.90"), rate=D("0.2"),
        expected_usd=D("8215432.18"), settled_usd=D("8215432.18"), variance_usd=D("0"),
        variance_ratio=D("0"), tolerance_usd=D("8215.43"), implied_basis_usd=D("41077160.90"),
        statement_ids="R1", statement_basis_usd=D("41077160.90"),
        usage_estimate_usd=D("40000000.00"), usage_estimate_variance_usd=D("1077160.90"),
        usage_estimate_variance_ratio=D("0.0269290225"), usage_unpriced_tokens=0,
        payment_due_date=date(2024, 5, 31),
    ),
]  # fmt: skip
# 2024-Q2: every other status, and a prior-period adjustment of 2024-Q1.
RECON_Q2 = [
    _recon(
        "2024-Q2", "PAY", "payable", "underpaid",
        basis_definition="revenue:api|chat", basis_usd=D("547500000.00"), basis_entry_count=300,
        rate=D("0.2"), expected_usd=D("109500000.00"), settled_usd=D("109450000.00"),
        variance_usd=D("-50000.00"), variance_ratio=D("-0.0004566210"),
        tolerance_usd=D("1000.00"), implied_basis_usd=D("547250000.00"),
        statement_ids="S2", statement_basis_usd=D("547250000.00"),
        payment_due_date=date(2024, 8, 30),
    ),
    _recon(
        "2024-Q2", "PAY-2", "payable", "overpaid",
        basis_definition="revenue:api", basis_usd=D("1000.00"), basis_entry_count=2,
        rate=D("0.1"), expected_usd=D("100.00"), settled_usd=D("150.00"),
        variance_usd=D("50.00"), variance_ratio=D("0.5"), tolerance_usd=D("1.00"),
        implied_basis_usd=D("1500.00"), statement_ids="T2", statement_basis_usd=D("1000.00"),
        payment_due_date=date(2024, 8, 30),
    ),
    _recon(
        "2024-Q2", "PAY-3", "payable", "missing_settlement",
        basis_definition="revenue:api", basis_usd=D("500.00"), basis_entry_count=1,
        rate=D("0.1"), expected_usd=D("50.00"), tolerance_usd=D("1.00"),
        payment_due_date=date(2024, 7, 31),
    ),
    _recon(
        "2024-Q2", "OLD", "payable", "unexpected_settlement",
        settled_usd=D("10.00"), variance_usd=D("10.00"), statement_ids="U1",
    ),
    _recon(
        "2024-Q2", "RCV", "receivable", "pending",
        basis_definition="reported", rate=D("0.2"), usage_estimate_usd=D("55000000.00"),
        usage_unpriced_tokens=1234, payment_due_date=date(2099, 8, 30),
    ),
    _recon(
        "2024-Q2", "PAY", "payable", "underpaid",
        is_adjustment=True, basis_definition="revenue:api|chat", basis_usd=D("1000000.00"),
        basis_entry_count=1, rate=D("0.2"), expected_usd=D("200000.00"), settled_usd=D("0"),
        variance_usd=D("-200000.00"), variance_ratio=D("-1"), implied_basis_usd=D("0"),
        statement_ids="S1-R1", adjustment_of_period="2024-Q1",
        adjustment_reason="2024-Q1: basis +1,000,000.00, expected +200,000.00, settled +0.00",
        adjustment_inputs="finance/revenue/late.csv (new)",
    ),
]  # fmt: skip


def _spend(day, sku, model, direction, workload, cost, status, qty=None, unit=None):
    return {
        "usage_date": date.fromisoformat(day), "provider": "Microsoft", "service_name": "Azure OpenAI",
        "region": "eastus", "sku": sku, "model_id": model, "token_direction": direction,
        "workload": workload, "billed_cost_usd": D(cost), "effective_cost_usd": D(cost),
        "consumed_quantity": D(qty) if qty else None, "consumed_unit": unit, "month_status": status,
    }  # fmt: skip


# 2024-Q1's bill: January final, February partly restated (provisional), March not delivered.
SPEND_Q1 = [
    _spend("2024-01-05", "Input Tokens", "gpt-4o", "input", "inference", "100.25", "final", "40100000", "Tokens"),
    _spend("2024-01-06", "Input Tokens", "gpt-4o", "input", "inference", "0.75", "final", "300000", "Tokens"),
    _spend("2024-01-05", "Output Tokens", "gpt-4o", "output", "inference", "50.00", "final", "5000000", "Tokens"),
    _spend("2024-01-05", "D2 v3", "(none)", "(none)", "other", "10.00", "final", "24", "1 Hour"),
    _spend("2024-02-01", "Input Tokens", "o1", "input", "inference", "30.00", "provisional", "2000000", "Tokens"),
    _spend("2024-02-02", "Input Tokens", "o1", "input", "inference", "20.00", "final", "1000000", "Tokens"),
    _spend("2024-04-01", "Input Tokens", "o1", "input", "inference", "7.00", "final", "1", "Tokens"),
]  # fmt: skip


@pytest.fixture(scope="module")
def db(pg_url):
    name = f"report_{secrets.token_hex(4)}"
    admin = connect(pg_url)
    admin.autocommit = True
    admin.cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    conn = connect(url)
    with conn.cursor() as cur:
        for run_id, command in ((READ_RUN, "test:read"), (RUN, "test")):
            _insert(
                cur,
                "audit.runs",
                {"run_id": run_id, "command": command, "status": "succeeded",
                 "as_of": date(2024, 7, 15)},
            )  # fmt: skip
        for label, (fiscal, spend, paid, received) in DESIGN_2024.items():
            start, end = _quarter_bounds(label)
            paid_d, received_d = D(paid), D(received)
            _insert(
                cur,
                "marts.quarterly_summary",
                {
                    "period_label": label,
                    "period_start": start,
                    "period_end": end,
                    "fiscal_period_label": fiscal,
                    "inference_spend_usd": D(spend),
                    "revshare_paid_usd": paid_d,
                    "implied_revenue_usd": paid_d / D("0.2"),
                    "revshare_received_usd": received_d,
                    "net_revshare_usd": received_d - paid_d,
                    "spend_to_implied_revenue_ratio": (D(spend) / (paid_d / D("0.2"))).quantize(
                        D("0.0000000001")
                    ),
                    "revshare_paid_adjustment_usd": D("0"),
                    "revshare_received_adjustment_usd": D("0"),
                },
            )
            _insert(
                cur,
                "audit.published_periods",
                {"table_name": "quarterly_summary", "period_value": label, "run_id": RUN, "row_count": 1},
            )  # fmt: skip
        for row in RECON_Q1 + RECON_Q2:
            _insert(cur, "marts.revshare_reconciliation", row)
        for row in SPEND_Q1:
            _insert(cur, "marts.inference_spend_daily", row)
        for suite, exp, col, sev, ok, obs in (
            ("staging.revshare_reconciliation", "expect_column_values_to_not_be_null", "status", "critical", True, "0"),
            ("staging.revshare_reconciliation", "expect_column_values_to_be_in_set", "status", "warning", False, "4"),
            ("staging.quarterly_summary", "expect_column_values_to_be_unique", "period_label", "critical", True, "0"),
        ):  # fmt: skip
            _insert(
                cur,
                "audit.dq_results",
                {"run_id": RUN, "suite": suite, "expectation": exp, "column_name": col,
                 "severity": sev, "success": ok, "observed_value": obs},
            )  # fmt: skip
        _insert(
            cur,
            "audit.dq_results",
            {"run_id": READ_RUN, "suite": "ingest.input_files", "check_name": "quarantine_share",
             "expectation": "expect_column_values_to_be_between", "column_name": "rows_quarantined",
             "severity": "warning", "success": False, "observed_value": "3"},
        )  # fmt: skip
        _insert(
            cur,
            "audit.input_files",
            {"run_id": READ_RUN, "source": "finance.revenue", "path": REVENUE_FILE,
             "checksum_sha256": "0" * 64, "byte_count": 10, "rows_read": 12, "rows_loaded": 8,
             "rows_quarantined": 3, "rows_superseded": 1, "rows_deduplicated": 0,
             "months_loaded": ["2024-04", "2024-05"], "months_quarantined": ["2024-05"]},
        )  # fmt: skip
        for line, field, reason, amount, currency in (
            (3, "currency", "currency is not an ISO 4217 code", D("100.50"), "US$"),
            (7, "currency", "currency is not an ISO 4217 code", D("20.25"), "US$"),
            (5, "amount", "amount is not a plain decimal number", None, "USD"),
        ):
            _insert(
                cur,
                "audit.quarantine",
                {"run_id": READ_RUN, "source": "finance.revenue", "path": REVENUE_FILE,
                 "line_number": line, "field": field, "reason": reason,
                 "period_month": "2024-05", "amount": amount, "currency": currency},
            )  # fmt: skip
        _insert(
            cur,
            "audit.period_inputs",
            {"period_label": "2024-Q2", "path": REVENUE_FILE, "source": "finance.revenue",
             "read_by_run_id": READ_RUN, "published_by_run_id": RUN},
        )  # fmt: skip
    conn.commit()
    yield conn
    conn.close()
    admin.cursor().execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


@pytest.fixture(scope="module")
def reports(db, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    paths = write_reports(db, out)
    assert [p.relative_to(out).as_posix() for p in paths] == [
        "2024-Q1/index.html",
        "2024-Q2/index.html",
        "2024-Q3/index.html",
        "2024-Q4/index.html",
        "2024/index.html",
    ]
    return out


# ---------------------------------------------------------------- a small HTML reader


class Page(HTMLParser):
    """Tables (with their data-sql), every <pre id=sql-...>, list items, pills."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.sql, self.items, self.pills = [], {}, [], []
        self._table = self._row = self._cell = self._pre = self._li = self._pill = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = {"id": a.get("id"), "sql": a.get("data-sql"), "cells": []}
            self.tables.append(self._table)
        elif tag == "tr" and self._table is not None:
            self._row = a.get("data-sql") or self._table["sql"]
        elif tag == "td" and self._table is not None:
            sql_id = a.get("data-sql") or self._row
            self._cell = {"col": a.get("data-col"), "sql": sql_id, "text": ""}
        elif tag == "pre" and a.get("id", "").startswith("sql-"):
            self._pre = a["id"]
            self.sql[self._pre] = ""
        elif tag == "li":
            self._li = ""
        elif tag == "span" and "pill" in (a.get("class") or ""):
            self._pill = {"style": a.get("style"), "text": ""}

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._table["cells"].append(self._cell)
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "pre":
            self._pre = None
        elif tag == "li" and self._li is not None:
            self.items.append(self._li)
            self._li = None
        elif tag == "span" and self._pill is not None:
            self.pills.append(self._pill)
            self._pill = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._pre is not None:
            self.sql[self._pre] += data
        if self._li is not None:
            self._li += data
        if self._pill is not None:
            self._pill["text"] += data

    def table(self, table_id):
        t = next(t for t in self.tables if t["id"] == table_id)
        return t["cells"]


NUMERIC = re.compile(r"^-?\$?-?[\d,]+(\.\d+)?[%M]?$")
FORMATS = (
    render.money,
    render.millions,
    render.dollars_m,
    render.pct,
    render.rate,
    render.integer,
    render.ratio_text,
)


def _shown(value) -> set[str]:
    if isinstance(value, str):
        return {value}
    if value is None or isinstance(value, bool) or not isinstance(value, (int, D)):
        return set()
    out = set()
    for fmt in FORMATS:
        with contextlib.suppress(TypeError, ValueError, ArithmeticError):
            out.add(fmt(value))
    return out


def _query_values(conn, text):
    with conn.cursor() as cur:
        cur.execute(text)
        rows = cur.fetchall()
    conn.rollback()
    return {
        s
        for row in rows
        for v in row
        for s in _shown(v) | _shown(abs(v) if isinstance(v, D) else None)
    }


# ---------------------------------------------------------------- tests


def test_templates_escape_every_value_as_html_escape_does_and_keep_marked_svg():
    """Autoescaped like the pages always were (html.escape: &quot; and &#x27;, not
    markupsafe's &#34; and &#39;); an SVG chart marked safe is written as it is."""
    import html

    from markupsafe import Markup

    from inference_ledger.report.templating import environment

    env = environment()
    assert {"base.html.j2", "quarter.html.j2", "year.html.j2", "index.html.j2"} <= set(
        env.list_templates()
    )
    for name in env.list_templates(extensions=["j2"]):
        env.get_template(name)  # every template (package data) parses
    text = "A & B <C> \"q\" 'x'"
    page = env.get_template("base.html.j2").render(title=text, heading=text, nav=[])
    assert f"<title>{html.escape(text)}</title>" in page
    assert "&#x27;x&#x27;" in page and "&quot;q&quot;" in page
    macros = env.get_template("macros.html.j2").module
    svg = Markup('<svg id="c"><title>a &amp; b</title></svg>')
    assert str(macros.charts([svg])) == f'<div class="charts">{svg}</div>'


def test_the_2024_page_shows_the_public_figures_table(reports):
    page = Page((reports / "2024" / "index.html").read_text())
    cells = page.table("year-quarters")
    rows = [[c["text"] for c in cells[i : i + 6]] for i in range(0, len(cells), 6)]
    assert [r[:4] for r in rows] == [
        ["2024 Q1", "$546.8M", "$77.3M", "$386.5M"],
        ["2024 Q2", "$748.3M", "$109.5M", "$547.5M"],
        ["2024 Q3", "$1,005.0M", "$139.2M", "$696.0M"],
        ["2024 Q4", "$1,467.0M", "$167.8M", "$839.0M"],
        ["2024", "$3,767.1M", "$493.8M", "$2,469.0M"],
    ]
    assert rows[-1][4:] == ["$52.8M", "-$441.0M"]
    assert [c["text"] for c in page.table("half-years")][:4] == [
        "2024 H1",
        "$1,295.1M",
        "$186.8M",
        "$934.0M",
    ]
    csv = (reports / "2024" / "summary.csv").read_text().splitlines()
    assert csv[5].startswith(
        "2024,3767100000.0000000000,493800000.0000000000,2469000000.0000000000,"
    )


def test_every_table_figure_is_what_its_query_returns(reports, db):
    checked = 0
    for page_path in sorted(reports.glob("*/index.html")) + [reports / "index.html"]:
        page = Page(page_path.read_text())
        cache = {}
        for table in page.tables:
            for cell in table["cells"]:
                text = cell["text"].strip()
                if not cell["sql"] or not NUMERIC.match(text):
                    continue
                if cell["sql"] not in cache:
                    cache[cell["sql"]] = _query_values(db, page.sql[cell["sql"]])
                assert text in cache[cell["sql"]], f"{page_path}: {cell} not in {cell['sql']}"
                checked += 1
    assert checked > 200


def test_explanations_figures_come_from_the_shown_queries(reports, db):
    page = Page((reports / "2024-Q2" / "index.html").read_text())
    allowed = _query_values(db, page.sql["sql-reconciliation"]) | _query_values(
        db, page.sql["sql-explanation"]
    )
    figures = [m for item in page.items for m in re.findall(r"\$(-?[\d,]+\.\d{2})", item)]
    assert len(figures) > 15
    assert [f for f in figures if f not in allowed] == []


def test_statuses_colours_explanations_and_adjustments(reports):
    text = (reports / "2024-Q2" / "index.html").read_text()
    page = Page(text)
    colours = {p["text"]: p["style"] for p in page.pills}
    for status, (fg, bg) in render.STATUS_COLOURS.items():
        assert colours[status] == f"color:{fg};background:{bg}"
    items = " | ".join(page.items)
    assert "Underpaid: variance $-50,000.00 (-0.046%) exceeds the tolerance of $1,000.00." in items
    assert "Overpaid: variance $50.00 (50.000%) exceeds the tolerance of $1.00." in items
    assert "Missing settlement: no statement, and payment was due by 2024-07-31." in items
    assert "Pending: no statement yet; payment is due by 2099-08-30." in items
    assert "No contract terms are in effect for this agreement in the period." in items
    assert "1,234 tokens had no USD price in effect" in items
    assert (
        "The statements report a basis of $547,250,000.00, $250,000.00 less than the ledger's; "
        "at the rate that accounts for $-50,000.00 of the variance." in items
    )
    assert (
        "Prior-period adjustment posted into this open period for closed 2024-Q1: recomputed "
        "figures minus what the closed period holds — 2024-Q1: basis +1,000,000.00, "
        "expected +200,000.00, settled +0.00." in items
    )
    assert "finance/revenue/late.csv (new)" in items
    assert "<tr class='adjustment'>" in text
    # The closed... rather, the corrected period lists where its adjustment went.
    q1 = Page((reports / "2024-Q1" / "index.html").read_text())
    assert [c["text"] for c in q1.table("adjustments-of")][:3] == ["2024-Q2", "PAY", "payable"]
    q1_items = " | ".join(q1.items)
    assert "which replaced S1 (superseded, not counted)" in q1_items
    assert "the reported basis is $1,077,160.90 above it (2.693%)" in q1_items


def test_data_quality_quarantine_and_csv_files(reports):
    folder = reports / "2024-Q2"
    page = Page((folder / "index.html").read_text())
    failed = [c["text"] for c in page.table("dq-failed")]
    assert failed == [
        "ingest.input_files", "expect_column_values_to_be_between", "rows_quarantined",
        "warning", "FAILED", "3",
        "staging.revshare_reconciliation", "expect_column_values_to_be_in_set", "status",
        "warning", "FAILED", "4",
    ]  # fmt: skip
    # The inputs 2024-Q2 rests on were read by an earlier run than the one that published it.
    assert [c["text"] for c in page.table("quarantine")] == [
        "finance.revenue", "currency", "currency is not an ISO 4217 code", "US$", "2", "120.75", "1",
        "finance.revenue", "amount", "amount is not a plain decimal number", "USD", "1", "", "1",
    ]  # fmt: skip
    text = (folder / "index.html").read_text()
    assert (
        '<p id="quarantine-total"><strong>3 rows</strong> quarantined from this period\'s '
        "inputs, US$ 120.75 at stake (not in the figures above).</p>"
    ) in text
    assert f"Published by run <code>{RUN}</code> at " in text
    assert "settlement statuses as of <strong>2024-07-15</strong>; 1 of 3 months final." in text
    assert [c["text"] for c in page.table("inputs")] == [
        "finance.revenue", "1", "12", "8", "3", "1", "0", "1",
    ]  # fmt: skip
    assert (folder / "quarantine.csv").read_text().splitlines() == [
        "source,path,field,reason,currency,rows,amount,run_id",
        f"finance.revenue,{REVENUE_FILE},amount,amount is not a plain decimal number,USD,1,,{READ_RUN}",
        f"finance.revenue,{REVENUE_FILE},currency,currency is not an ISO 4217 code,US$,2,"
        f"120.7500000000,{READ_RUN}",
    ]
    for csv_name in QUARTER_CSVS:
        assert (folder / csv_name).is_file() and f'href="{csv_name}"' in text
    # 2024-Q1 rests on no recorded input file: none of the revenue file's rows are in it.
    q1 = (reports / "2024-Q1" / "index.html").read_text()
    assert '<p class="empty" id="quarantine" data-sql="sql-quarantine">' in q1
    assert '<p class="empty" id="inputs" data-sql="sql-input_files">' in q1
    assert 'id="quarantine-total"' not in q1
    rec = (folder / "reconciliation.csv").read_text().splitlines()
    assert len(rec) == 1 + len(RECON_Q2)
    assert rec[0].startswith("period_label,agreement_id,direction,counterparty,is_adjustment,")
    assert len((folder / "explanations.csv").read_text().splitlines()) == 1 + len(RECON_Q2)
    assert (
        (folder / "summary.csv").read_text().splitlines()[1].endswith(",0.0000000000,0.0000000000")
    )
    assert (
        (folder / "summary.csv")
        .read_text()
        .splitlines()[1]
        .startswith(
            "2024-Q2,FY24-Q4,748300000.0000000000,109500000.0000000000,547500000.0000000000,"
        )
    )
    index = (reports / "index.html").read_text()
    for label in DESIGN_2024:
        assert f'href="{label}/index.html"' in index
    assert 'href="2024/index.html"' in index


def test_quarter_shows_each_month_provisional_or_final_and_spend_csv(reports):
    folder = reports / "2024-Q1"
    text = (folder / "index.html").read_text()
    cells = [c["text"] for c in Page(text).table("spend-months")]
    assert cells == [
        "2024-01", "151.00", "161.00", "4", "final",
        "2024-02", "50.00", "50.00", "2", "provisional",
        "2024-03", "0.00", "0.00", "0", "no spend published",
    ]  # fmt: skip
    assert (
        '<span class="badge ok">2024-01 final</span> '
        '<span class="badge prov">2024-02 provisional</span> '
        '<span class="badge none">2024-03 no spend published</span>'
    ) in text
    assert 'href="spend.csv"' in text
    assert (folder / "spend.csv").read_text().splitlines() == [
        "month,provider,service_name,region,sku,model_id,token_direction,workload,month_status,"
        "billed_cost_usd,effective_cost_usd,consumed_quantity,consumed_unit",
        "2024-01,Microsoft,Azure OpenAI,eastus,D2 v3,(none),(none),other,final,"
        "10.0000000000,10.0000000000,24.0000000000,1 Hour",
        "2024-01,Microsoft,Azure OpenAI,eastus,Input Tokens,gpt-4o,input,inference,final,"
        "101.0000000000,101.0000000000,40400000.0000000000,Tokens",
        "2024-01,Microsoft,Azure OpenAI,eastus,Output Tokens,gpt-4o,output,inference,final,"
        "50.0000000000,50.0000000000,5000000.0000000000,Tokens",
        "2024-02,Microsoft,Azure OpenAI,eastus,Input Tokens,o1,input,inference,final,"
        "20.0000000000,20.0000000000,1000000.0000000000,Tokens",
        "2024-02,Microsoft,Azure OpenAI,eastus,Input Tokens,o1,input,inference,provisional,"
        "30.0000000000,30.0000000000,2000000.0000000000,Tokens",
    ]
    q2 = [c["text"] for c in Page((reports / "2024-Q2" / "index.html").read_text()).table("spend-months")]  # fmt: skip
    assert q2[:5] == ["2024-04", "7.00", "7.00", "1", "final"]
    assert q2[9::5] == ["no spend published", "no spend published"]


def test_report_period_must_be_a_quarter_or_a_year(db, tmp_path):
    with pytest.raises(ValueError, match="neither a calendar quarter"):
        write_period_report(db, "2024-13", tmp_path)
    with pytest.raises(ValueError, match="2023-Q1 has no published figures"):
        write_period_report(db, "2023-Q1", tmp_path)


# ---------------------------------------------------------------- headless Chromium


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") or os.environ.get("LEDGER_TEST_REQUIRE_CHROMIUM"):
        pytest.fail("chromium is required in CI (.ci/run installs Debian's chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")


def _chromium_args(binary, profile):
    return [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]


def png_colours(data: bytes) -> tuple[int, int, dict[tuple[int, int, int], int]]:
    """(width, height, how many pixels of each RGB colour) of a screenshot."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
        counts = rgb.getcolors(maxcolors=rgb.width * rgb.height)
        return rgb.width, rgb.height, {colour: n for n, colour in counts}


def test_report_renders_in_headless_chromium(reports, tmp_path):
    binary = _chromium()
    page = reports / "2024-Q2" / "index.html"
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                *_chromium_args(binary, profile),
                f"--screenshot={shot}",
                "--window-size=1400,6000",
                page.as_uri(),
            ],
            capture_output=True,
            timeout=180,
        )
    assert shot.is_file(), proc.stderr.decode(errors="replace")[-2000:]
    width, height, colours = png_colours(shot.read_bytes())
    assert (width, height) == (1400, 6000)
    non_white = width * height - colours.get((255, 255, 255), 0)
    assert non_white / (width * height) > 0.2, "the screenshot is (nearly) blank"
    # The header band, the charts' spend bars and the matched / underpaid pills were painted.
    assert (15, 23, 42) in colours  # header #0f172a
    assert (30, 58, 138) in colours  # inference spend bars #1e3a8a
    assert (254, 215, 170) in colours  # underpaid / overpaid pill #fed7aa

    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [*_chromium_args(binary, profile), "--dump-dom", page.as_uri()],
            capture_output=True,
            timeout=180,
            text=True,
        ).stdout
    rendered = Page(dom)
    summary = [c["text"] for c in rendered.table("summary")]
    assert summary[:5] == [
        "2024-Q2",
        "FY24-Q4",
        "748,300,000.00",
        "109,500,000.00",
        "547,500,000.00",
    ]
    assert dom.count("<svg") == 3 and dom.count("<rect") > 20
    # The audit behind the period and the drill-down, as the browser laid them out.
    assert 'id="quarantine-total"' in dom and "US$ 120.75 at stake" in dom
    assert "settlement statuses as of <strong>2024-07-15</strong>" in dom
    assert [c["text"] for c in rendered.table("breakdown-workload")] == [
        "inference", "1", "7.00", "7.00", "100.000%",
    ]  # fmt: skip
    for section_id in ("spend-breakdown", "unit-cost", "data-quality", "inputs"):
        assert f'<section id="{section_id}">' in dom


def test_quarter_breaks_spend_down_with_the_rest_as_all_others_and_shows_unit_cost(db, tmp_path):
    """2024-Q3 gets seven regions' spend (the five largest shown, two as "(all others)") and
    two months of unit cost for one model; the rows are removed afterwards."""
    regions = [("r1", "40"), ("r2", "20"), ("r3", "15"), ("r4", "10"), ("r5", "5"),
               ("r6", "6"), ("r7", "4")]  # fmt: skip
    rows = []
    for region, cost in regions:
        row = _spend("2024-07-01", "Input Tokens", "gpt-4o", "input", "inference", cost, "final")
        rows.append({**row, "region": region, "sku": f"sku-{region}"})
    rows.append(
        {**rows[0], "sku": "training-sku", "workload": "training", "billed_cost_usd": D("0")}
    )
    unit = [
        {"usage_month": date(2024, m, 1), "channel": "openai", "model": "gpt-4o",
         "input_tokens": t, "input_cached_tokens": 0, "output_tokens": 0, "total_tokens": t,
         "num_model_requests": 10, "allocated_spend_usd": D(spend),
         "cost_per_1m_tokens_usd": D(spend) * 1000000 / t}
        for m, t, spend in ((7, 2_000_000, "5"), (8, 1_000_000, "4"))
    ]  # fmt: skip
    with db.cursor() as cur:
        for row in rows:
            _insert(cur, "marts.inference_spend_daily", row)
        for row in unit:
            _insert(cur, "marts.unit_cost_monthly", row)
    db.commit()
    try:
        page = Page(write_period_report(db, "2024-Q3", tmp_path).read_text())
        breakdown = (tmp_path / "2024-Q3" / "spend_breakdown.csv").read_text().splitlines()
    finally:
        with db.cursor() as cur:
            cur.execute("DELETE FROM marts.inference_spend_daily WHERE usage_date >= '2024-07-01'")
            cur.execute("DELETE FROM marts.unit_cost_monthly WHERE usage_month >= '2024-07-01'")
        db.commit()
    cells = [c["text"] for c in page.table("breakdown-region")]
    assert cells == [
        "r1", "1", "40.00", "40.00", "40.000%",
        "r2", "1", "20.00", "20.00", "20.000%",
        "r3", "1", "15.00", "15.00", "15.000%",
        "r4", "1", "10.00", "10.00", "10.000%",
        "r6", "1", "6.00", "6.00", "6.000%",
        "(all others)", "2", "9.00", "9.00", "9.000%",
    ]  # fmt: skip
    assert [c["text"] for c in page.table("breakdown-workload")] == [
        "inference", "1", "100.00", "100.00", "100.000%",
        "training", "1", "0.00", "0.00", "0.000%",
    ]  # fmt: skip
    # $9 over 3M tokens in the quarter: $3 per million, not the mean of the months' $2.5 and $4.
    assert [c["text"] for c in page.table("unit-cost")] == [
        "openai",
        "gpt-4o",
        "3,000,000",
        "20",
        "9.00",
        "3.0000",
    ]
    assert breakdown[0] == (
        "dimension,value,value_count,billed_cost_usd,inference_spend_usd,share_of_billed"
    )
    assert "region,(all others),2,9.0000000000,9.0000000000,0.0900000000" in breakdown[1:]
