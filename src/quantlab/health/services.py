"""The service checks: MLflow answers, every configured model has a champion, the ledger connects."""

from __future__ import annotations

import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from quantlab.health.result import FAIL, OK, WARN, Result

if TYPE_CHECKING:
    from quantlab.config import Config

TIMEOUT_S = 3.0


def _where(url: str) -> str:
    """A URL without its credentials (what a message may show)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.split('@')[-1]}" if sep else url


def check_mlflow(uri: str, timeout: float = TIMEOUT_S) -> Result:
    """The tracking URI answers: a server's /health, or a local store that opens and lists."""
    where = _where(uri)
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as resp:
                body = resp.read(100).decode(errors="replace").strip()
        except (urllib.error.URLError, OSError) as exc:
            return Result(
                "mlflow",
                FAIL,
                f"MLflow at {where} does not answer ({exc}); start it (`make mlflow-ui`, or the stack's `make stack`) or fix "
                "tracking.uri",
                {"uri": where},
            )
        return Result("mlflow", OK, f"MLflow at {where} answers ({body})", {"uri": where})
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            return Result(
                "mlflow",
                FAIL,
                f"no MLflow store at {path}; run `make run` to create it, or fix tracking.uri",
                {"uri": where},
            )
    try:
        import mlflow

        found = mlflow.MlflowClient(uri).search_experiments(max_results=1000)
    except Exception as exc:  # any failure to read the store is the verdict itself
        return Result("mlflow", FAIL, f"MLflow at {where} fails: {exc}", {"uri": where})
    return Result(
        "mlflow", OK, f"MLflow at {where} answers: {len(found)} experiment(s)", {"uri": where}
    )


def check_champions(config: Config) -> Result:
    """A champion for every configured model (main, and one regime model per symbol)."""
    from quantlab.lifecycle.live import configured_models
    from quantlab.tracking.registry import registry_for

    models = configured_models(config)
    if not models:
        return Result("champions", WARN, "no model is configured (train.register_as is null)")
    # The registry reads a missing alias and an unreachable store alike (no champion), and a
    # client retries a dead server for minutes: ask the store first, with a short timeout.
    store = check_mlflow(config.tracking.uri)
    if store.status == FAIL:
        return Result("champions", FAIL, f"cannot read the model registry: {store.reason}")
    try:
        reg = registry_for(config.tracking.uri)
        champions = {m.name: reg.champion(m.name) for m in models}
    except Exception as exc:  # the registry unreadable is this check's FAIL
        return Result("champions", FAIL, f"cannot read the model registry: {exc}")
    details = {n: (ref.version if ref else None) for n, ref in champions.items()}
    missing = [n for n, ref in champions.items() if ref is None]
    if missing:
        return Result(
            "champions",
            FAIL,
            f"no champion for {', '.join(missing)}; train (`make run`, or the retrain_full DAG) "
            "or pick one with `quantlab model promote VERSION`",
            details,
        )
    listed = ", ".join(f"{n} v{v}" for n, v in details.items())
    return Result("champions", OK, f"{len(models)} model(s) served: {listed}", details)


def check_ledger(url: str, timeout: float = TIMEOUT_S) -> Result:
    """`paper.ledger_url` connects (SQLite file, or PostgreSQL through psycopg2), read only."""
    where = _where(url)
    details = {"ledger": where}
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            return Result(
                "ledger",
                WARN,
                f"no ledger at {path} yet; the paper stage creates it on its first run",
                details,
            )
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
            try:
                tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return Result("ledger", FAIL, f"the ledger {path} does not open: {exc}", details)
        return Result("ledger", OK, f"SQLite ledger {path} opens ({tables} objects)", details)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg2

            conn = psycopg2.connect(url, connect_timeout=max(1, int(timeout)))
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
            finally:
                conn.close()
        except Exception as exc:  # psycopg2 missing or the server refusing: the verdict
            reason = str(exc).replace(url, where).strip().splitlines()[0] if str(exc) else repr(exc)
            return Result(
                "ledger",
                FAIL,
                f"the ledger at {where} does not connect ({reason}); check paper.ledger_url "
                "and that PostgreSQL is up",
                details,
            )
        return Result("ledger", OK, f"PostgreSQL ledger at {where} connects", details)
    return Result(
        "ledger",
        FAIL,
        f"paper.ledger_url {where!r} is not supported; use sqlite:///path/to/ledger.sqlite "
        "or postgresql://user@host:port/db",
        details,
    )
