"""Security: who may do what in Postgres, no credentials in the repository, SQL built only with
parameters or psycopg2.sql, and command-line values validated before they reach the database."""

from __future__ import annotations

import ast
import re
import secrets
import subprocess

import pytest
from psycopg2 import errors, sql
from sqlalchemy.engine import make_url

from inference_ledger import cli
from inference_ledger.close import close_period, reopen_period
from inference_ledger.db import connect
from tests.reliability_support import REPO


@pytest.fixture
def login(pg_url):
    """LOGIN users holding a group role, as an admin creates them; dropped afterwards."""
    admin = connect(pg_url)
    admin.autocommit = True
    made = []

    def make(group: str):
        name, password = f"{group}_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        admin.cursor().execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(name), sql.Literal(password), sql.Identifier(group)
            )
        )
        made.append(name)
        return make_url(pg_url).set(username=name, password=password)

    yield make
    for name in made:
        admin.cursor().execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
    admin.close()


def _refused(url, statement: str) -> str | None:
    """The error class name if Postgres refused the statement, else None."""
    conn = connect(url)
    conn.autocommit = True  # ALTER SYSTEM refuses to run in a transaction block
    try:
        conn.cursor().execute(statement)
    except (errors.InsufficientPrivilege, errors.ObjectNotInPrerequisiteState) as exc:
        return type(exc).__name__
    finally:
        conn.close()
    return None


def _relations(pg_url, schema: str) -> list[tuple[str, str]]:
    conn = connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT n.nspname, c.relname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind IN ('r', 'v', 'm', 'p') ORDER BY 2",
                (schema,),
            )
            return cur.fetchall()
    finally:
        conn.close()


def _granted(pg_url, role: str, schemas: list[str], privileges: str) -> list[str]:
    """Relations of the schemas on which `role` holds any of the privileges (catalog check, so
    every table counts, including those later migrations add)."""
    conn = connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT c.oid::regclass::text FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'v', 'm', 'p')"
                " AND has_table_privilege(%s, c.oid, %s) ORDER BY 1",
                (schemas, role, privileges),
            )
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def test_analyst_reads_marts_and_nothing_else(pg_url, login):
    analyst = login("ledger_analyst")
    marts, staging, audit = (_relations(pg_url, s) for s in ("marts", "staging", "audit"))
    assert len(marts) >= 4 and len(staging) >= 4 and len(audit) >= 5
    conn = connect(analyst)
    try:
        with conn.cursor() as cur:
            for schema, name in marts:
                cur.execute(
                    sql.SQL("SELECT count(*) FROM {}.{}").format(
                        sql.Identifier(schema), sql.Identifier(name)
                    )
                )
    finally:
        conn.close()
    everything = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"
    assert _granted(pg_url, analyst.username, ["staging", "audit"], everything) == []
    writes = "INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"
    assert _granted(pg_url, analyst.username, ["marts"], writes) == []
    assert len(_granted(pg_url, analyst.username, ["marts"], "SELECT")) == len(marts)
    for statement in (
        "SELECT * FROM audit.quarantine",
        "SELECT * FROM audit.input_files",
        "SELECT * FROM staging.revshare_reconciliation",
        "UPDATE marts.quarterly_summary SET inference_spend_usd = 0",
        "INSERT INTO marts.revshare_reconciliation (period_label) VALUES ('2024-Q1')",
        "SET ROLE ledger_loader",
        "CREATE TABLE public.scratch (x int)",
    ):
        assert _refused(analyst, statement), statement


def test_loader_cannot_alter_roles(pg_url, login):
    loader = login("ledger_loader")
    for statement in (
        "CREATE ROLE intruder LOGIN",
        "ALTER ROLE ledger_analyst LOGIN PASSWORD 'x'",
        "ALTER ROLE ledger_loader SUPERUSER",
        "ALTER ROLE CURRENT_USER CREATEROLE",
        "GRANT ledger_loader TO ledger_analyst",
        "DROP ROLE ledger_analyst",
        "ALTER SYSTEM SET log_statement = 'none'",
    ):
        assert _refused(loader, statement), statement
    conn = connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolbypassrls"
                " FROM pg_roles WHERE rolname IN ('ledger_loader', 'ledger_analyst') ORDER BY 1"
            )
            assert cur.fetchall() == [
                ("ledger_analyst", False, False, False, False, False),
                ("ledger_loader", False, False, False, False, False),
            ]
    finally:
        conn.close()


# ---------------------------------------------------------------- credentials in the repo

SECRET_PATTERNS = {
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:([^\s@/'\"]+)@"),
    "AWS access key id": re.compile(r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b"),
    "AWS secret key": re.compile(r"aws_secret_access_key\s*[=:]\s*['\"]?([A-Za-z0-9/+=]{40})"),
    "Azure storage key": re.compile(r"AccountKey=([A-Za-z0-9+/=]{20,})"),
    "Azure SAS signature": re.compile(r"[?&]sig=([A-Za-z0-9%+/=]{20,})"),
    "private key": re.compile(r"-----BEGIN ((?:[A-Z]+ )*)PRIVATE KEY-----"),
    # A literal after `...password =` / `...secret: `; in Python only a quoted literal (a bare
    # value there is an expression, e.g. `password = secrets.token_urlsafe()`).
    "password assignment": re.compile(
        r"(?i)\b[a-z_]*(?:password|passwd|secret|api_key|token)(?:\s*=\s*|:\s+)"
        r"(?:['\"]([^'\"\s]{4,})['\"]|(?P<bare>[^\s'\"]{4,}))"
    ),
}
# A value that only refers to a secret kept elsewhere, or a documentation placeholder.
PLACEHOLDER = re.compile(
    r"^(\$\{.*|\$\w+|\{\{.*|\{[a-z_]+\}|<[^>]+>|change-me|\*+|x+|(?i:redacted)|"
    r"pw|password|None|null|True|False)$"
)
# Fake credentials that tests feed to the redaction code on purpose (file, value).
KNOWN_TEST_VALUES = {
    ("tests/test_dags.py", "s3cret"),
    ("tests/test_db_connection.py", "secret"),
    ("tests/test_db_connection.py", "p%40ss%3Aw0rd"),
    ("tests/test_cli_options.py", "s3cret-pw"),
}


def find_secrets(path: str, text: str) -> list[str]:
    found = []
    for kind, pattern in SECRET_PATTERNS.items():
        for m in pattern.finditer(text):
            value = next((g for g in m.groups() if g), m.group(0))
            if kind == "password assignment" and m.group("bare") and path.endswith(".py"):
                continue
            if PLACEHOLDER.match(value) or (path, value) in KNOWN_TEST_VALUES:
                continue
            line = text.count("\n", 0, m.start()) + 1
            found.append(f"{path}:{line}: {kind}")
    return found


def test_the_scanner_finds_planted_credentials():
    fake_key = "AKIA" + "ABCDEFGHIJKLMNOP"
    text = "\n".join(
        [
            "url = 'postgresql://app:" + "Hunter2x@db/ledger'",  # split: this file is scanned too
            f"key = {fake_key}",
            "conn = 'DefaultEndpointsProtocol=https;AccountKey=" + "a1B2" * 8 + "=='",
            "-----BEGIN RSA " + "PRIVATE KEY-----",
            "DB_PASSWORD=hunter22",
            "LEDGER_DB_PASSWORD=change-me",
            "url = postgresql://${USER}:${LEDGER_DB_PASSWORD}@db/ledger",
        ]
    )
    kinds = [f.split(": ", 1)[1] for f in find_secrets("planted.txt", text)]
    assert kinds == [
        "password in a URL",
        "AWS access key id",
        "Azure storage key",
        "private key",
        "password assignment",
    ]


def test_repository_holds_no_credentials():
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    found, scanned = [], 0
    for name in filter(None, (f.decode() for f in files)):
        path = REPO / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (parquet, gzip fixtures)
        scanned += 1
        hits = find_secrets(name, text)
        if name == ".env.example":
            # Placeholders only: every assignment there must be one.
            values = re.findall(r"^[A-Z_]*(?:PASSWORD|SECRET|KEY)[A-Z_]*=(.*)$", text, re.M)
            assert values and all(v == "change-me" for v in values), values
        found.extend(hits)
    assert scanned > 100
    assert found == []


# ---------------------------------------------------------------- SQL built from values

CODE_DIRS = ("src", "jobs", "dags")
EXECUTORS = {"execute", "executemany", "copy_expert", "mogrify"}


def _interpolated(node: ast.AST) -> str | None:
    """Why an expression builds SQL text by string interpolation, or None."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.JoinedStr) and any(
            isinstance(v, ast.FormattedValue) for v in sub.values
        ):
            return "f-string"
        if (
            isinstance(sub, ast.BinOp)
            and isinstance(sub.op, ast.Mod)
            and isinstance(sub.left, ast.Constant)
            and isinstance(sub.left.value, str)
        ):
            return "% formatting"
        if (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Attribute)
            and sub.func.attr == "format"
            and isinstance(sub.func.value, ast.Constant)
        ):
            return "str.format"
    return None


def sql_interpolations(path, source: str) -> list[str]:
    """execute()-like calls whose SQL argument, or a local variable it names, is built by
    f-string, % or str.format (psycopg2.sql.SQL(...).format is fine: it quotes)."""
    tree = ast.parse(source)
    out = []
    for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.Module)]:
        assigned = _assignments(func)
        for call in _executor_calls(func):
            why = _sql_interpolated(call.args[0], assigned)
            if why:
                out.append(f"{path}:{call.lineno}: {why}")
    return sorted(set(out))


def _assignments(func: ast.AST) -> dict[str, list[ast.AST]]:
    """Local name -> the values assigned to it anywhere in `func`."""
    assigned: dict[str, list[ast.AST]] = {}
    for n in ast.walk(func):
        if isinstance(n, ast.Assign):
            for t in n.targets:
                if isinstance(t, ast.Name):
                    assigned.setdefault(t.id, []).append(n.value)
    return assigned


def _executor_calls(func: ast.AST) -> list[ast.Call]:
    """The execute()-like calls (EXECUTORS) in `func` that pass an argument."""
    return [
        call
        for call in ast.walk(func)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in EXECUTORS
        and call.args
    ]


def _sql_interpolated(arg: ast.AST, assigned: dict[str, list[ast.AST]]) -> str | None:
    """How the SQL argument, or a local variable it names, is interpolated; None if not."""
    why = _interpolated(arg)
    if why is None:
        for name in {n.id for n in ast.walk(arg) if isinstance(n, ast.Name)}:
            why = next(filter(None, map(_interpolated, assigned.get(name, []))), None)
            if why:
                break
    return why


def test_the_sql_scanner_flags_interpolation():
    source = """
def bad(cur, period):
    cur.execute(f"DELETE FROM marts.x WHERE period_label = '{period}'")
    q = "SELECT * FROM marts.x WHERE p = '%s'" % period
    cur.execute(q)
    cur.execute("SELECT {}".format(period))

def good(cur, period):
    cur.execute("SELECT * FROM marts.x WHERE p = %s", (period,))
    cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(period)))
"""
    assert sql_interpolations("x.py", source) == [
        "x.py:3: f-string",
        "x.py:5: % formatting",
        "x.py:6: str.format",
    ]


def test_sql_with_values_is_parameterised_or_composed():
    found, scanned = [], 0
    for folder in CODE_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            scanned += 1
            found += sql_interpolations(path.relative_to(REPO), path.read_text())
    assert scanned > 30
    assert found == []


# ---------------------------------------------------------------- command-line values

HOSTILE = [
    "2024-Q1'; DROP TABLE marts.quarterly_summary; --",
    "2024-Q1 OR 1=1",
    "2024-Q5",
    "../../etc/passwd",
    "2024-Q1\x00",
    "",
]


@pytest.mark.parametrize("command", ["close", "reopen", "report"])
def test_hostile_period_labels_are_refused_before_the_database(pg_url, capsys, command):
    before = _relations(pg_url, "marts")
    for label in HOSTILE:
        extra = ["--reason", "x"] if command == "reopen" else []
        with pytest.raises(SystemExit) as exc:
            cli.main([command, "--period", label, *extra])
        assert exc.value.code == 2, label
        err = capsys.readouterr().err
        assert "argument --period: period" in err and ("not a" in err or "neither" in err), err
    assert _relations(pg_url, "marts") == before


def test_library_entry_points_validate_labels_too(pg_url):
    with pytest.raises(ValueError, match="not a calendar quarter"):
        close_period(HOSTILE[0], closed_by="t", url=pg_url)
    with pytest.raises(ValueError, match="not a calendar quarter"):
        reopen_period(HOSTILE[0], "why", reopened_by="t", url=pg_url)


def test_a_landing_path_that_is_not_a_folder_is_refused(tmp_path, capsys):
    file = tmp_path / "landing.txt"
    file.write_text("not a folder")
    for landing in (tmp_path / "missing", file):
        with pytest.raises(SystemExit) as exc:
            cli.main(["run", "--landing", str(landing)])
        assert exc.value.code == 2
        assert f"landing folder {landing} " in capsys.readouterr().err
