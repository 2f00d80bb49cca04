"""A report query: its SQL, how it runs, and how it is shown to a reviewer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Query:
    name: str
    sql: str  # psycopg2 paramstyle: at most one %(p)s

    def run(self, conn, param=None) -> list[dict]:
        with conn.cursor() as cur:
            cur.execute(self.sql, {"p": param})
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def shown(self, param=None) -> str:
        """The query as a reviewer would type it."""
        text = self.sql.replace("%%", "%")
        if param is None:
            return text
        return text.replace("%(p)s", "'" + str(param).replace("'", "''") + "'")
