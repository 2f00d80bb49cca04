"""Analyst logins: a LOGIN role with a SCRAM-SHA-256 password, member of `ledger_analyst`.

`ledger_analyst` (sql/001) may read `marts` and nothing else; a login inherits exactly that.
The password never travels as a command-line argument (it would show in `ps` and shell
history): it comes from LEDGER_LOGIN_PASSWORD, a pipe on stdin, or a prompt.
"""

from __future__ import annotations

import getpass
import re
import sys

from psycopg2 import sql

ANALYST_ROLE = "ledger_analyst"
# A plain lower-case identifier: no quoting surprises in psql or pg_hba.
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def read_password() -> str:
    """LEDGER_LOGIN_PASSWORD, else one line of a piped stdin, else a prompt asked twice."""
    from inference_ledger.settings import load_settings

    password = load_settings().login_password
    if password is None and not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    if password is None:
        password = getpass.getpass("password for the new login: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the two passwords differ")
    if len(password) < 8:
        raise ValueError("the password must have at least 8 characters")
    return password


def grant_login(conn, name: str, password: str) -> bool:
    """Create (True) or update (False) LOGIN role `name` with `password`, hashed by the server
    as SCRAM-SHA-256, and make it a member of ledger_analyst. The caller commits."""
    if not _NAME.match(name):
        raise ValueError(f"login name {name!r}: lower-case letters, digits and _ only")
    role = sql.Identifier(name)
    with conn.cursor() as cur:
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (name,))
        row = cur.fetchone()
        if row is not None and row[0]:
            raise ValueError(f"{name} is a superuser: not turned into an analyst login")
        cur.execute("SET LOCAL password_encryption = 'scram-sha-256'")
        verb = sql.SQL("CREATE ROLE" if row is None else "ALTER ROLE")
        cur.execute(
            sql.SQL("{} {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s").format(
                verb, role
            ),
            (password,),
        )
        cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(ANALYST_ROLE), role))
    return row is None
