"""One DB-API connection to the ledger, for SQLite (stdlib) or PostgreSQL (psycopg2).

The ledger's SQL is written once with `?` placeholders; `Tx` adapts it to psycopg2's `%s`.
Every write goes through `Db.tx()`: one transaction that commits when the block ends and
rolls back when it raises, so no caller ever sees half a write. SQLite runs in autocommit
mode with an explicit `BEGIN IMMEDIATE`, which takes the write lock up front: two writers
queue instead of failing half-way on a lock upgrade.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from quantlab.errors import ConfigError
from quantlab.execution.ledger.errors import LedgerError

Dialect = Literal["sqlite", "postgresql"]
MEMORY = ":memory:"
_BUSY_TIMEOUT_MS = 30_000


def redact(url: str) -> str:
    """`url` with its password replaced by ***: what may appear in a message or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def parse_url(url: str) -> tuple[Dialect, str]:
    """(dialect, target): the SQLite file path (or :memory:) or the libpq URL for psycopg2."""
    if url.startswith("sqlite:///"):
        return "sqlite", url.removeprefix("sqlite:///")
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql", "postgresql://" + url.removeprefix(prefix)
    raise ConfigError(
        f"paper.ledger_url {redact(url)!r} is not supported; use sqlite:///path/to/ledger.sqlite "
        "or postgresql://user@host:5432/db"
    )


def connect_postgres(target: str, url: str) -> Any:
    """A psycopg2 connection; an unreachable server is a LedgerError that hides the password."""
    import psycopg2

    try:
        return psycopg2.connect(target, connect_timeout=10)
    except psycopg2.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LedgerError(
            f"cannot open the ledger at {redact(url)}: {first}; start PostgreSQL or fix "
            "paper.ledger_url"
        ) from None


class Tx:
    """A cursor inside one transaction, speaking `?` placeholders on both dialects."""

    def __init__(self, cur: Any, dialect: Dialect):
        self._cur = cur
        self.dialect = dialect
        # Row locks for read-then-write sequences; SQLite's BEGIN IMMEDIATE locks the file.
        self.for_update = " FOR UPDATE" if dialect == "postgresql" else ""

    def _sql(self, sql: str) -> str:
        if self.dialect == "postgresql":
            return sql.replace("%", "%%").replace("?", "%s")
        return sql

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute one statement; the number of rows it changed."""
        self._cur.execute(self._sql(sql), tuple(params))
        return self._cur.rowcount

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        self._cur.execute(self._sql(sql), tuple(params))
        return self._cur.fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        self._cur.execute(self._sql(sql), tuple(params))
        return list(self._cur.fetchall())

    def dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._cur.execute(self._sql(sql), tuple(params))
        names = [d[0] for d in self._cur.description]
        return [dict(zip(names, row, strict=True)) for row in self._cur.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]


class Db:
    """The connection and its dialect; `path` is the SQLite file (None on PostgreSQL)."""

    def __init__(self, url: str):
        self.url = url
        self.dialect, target = parse_url(url)
        self.path: Path | None = None
        self.target = target
        if self.dialect == "sqlite":
            if target != MEMORY:
                self.path = Path(target)
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                target, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000
            )
            self.conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            if self.path is not None:
                self.conn.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
        else:
            self.conn = connect_postgres(target, url)
        self._depth = 0

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def tx(self, write: bool = True) -> Iterator[Tx]:
        """One transaction: committed when the block ends, rolled back when it raises.
        A read (`write=False`) on SQLite does not take the write lock."""
        if self._depth:
            raise LedgerError("a ledger transaction was opened inside another; this is a bug")
        self._depth += 1
        cur = self.conn.cursor()
        try:
            if self.dialect == "sqlite":
                cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield Tx(cur, self.dialect)
        except BaseException:
            if self.dialect == "sqlite":
                if self.conn.in_transaction:
                    cur.execute("ROLLBACK")
            else:
                self.conn.rollback()
            raise
        else:
            if self.dialect == "sqlite":
                cur.execute("COMMIT")
            else:
                self.conn.commit()
        finally:
            cur.close()
            self._depth -= 1
