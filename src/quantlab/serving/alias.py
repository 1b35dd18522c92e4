"""A registry alias read without importing MLflow, where the registry is a local SQLite file.

Importing MLflow and opening its SQLAlchemy store costs seconds: more than a cold `predict`
may take (bench/bench_serving.py). An alias is a few indexed rows of MLflow's own tables
(`registered_model_aliases`, `model_versions`, `model_version_tags`), read here through the
standard library, read-only. Any other registry, or tables this does not recognise, go
through the MLflow client; tests/serving/test_alias.py checks both give the same version.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from quantlab.tracking.registry import ModelRef, Registry

_DEFAULT_WORKSPACE = "default"  # MLflow 3 tables carry a workspace; older ones do not


def sqlite_file(uri: str) -> Path | None:
    """The database file of a `sqlite:///path` tracking URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def _read(path: Path, name: str, alias: str) -> ModelRef | None:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT * FROM registered_model_aliases WHERE name = ? AND alias = ?", (name, alias)
        )
        cols = [d[0] for d in rows.description]
        found = [dict(zip(cols, r, strict=True)) for r in rows.fetchall()]
        found = [r for r in found if r.get("workspace", _DEFAULT_WORKSPACE) == _DEFAULT_WORKSPACE]
        if not found:
            return None
        version = int(found[0]["version"])
        mv = con.execute(
            "SELECT source, run_id FROM model_versions WHERE name = ? AND version = ?",
            (name, version),
        ).fetchone()
        if mv is None:
            return None
        tags = con.execute(
            "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?",
            (name, version),
        ).fetchall()
    finally:
        con.close()
    return ModelRef(name, version, mv[1] or None, mv[0], dict(tags), (alias,))


def read_alias(registry: Registry, name: str, alias: str) -> ModelRef | None:
    """The version `alias` of `name` points to (None: no such alias or model)."""
    path = sqlite_file(registry.uri)
    if path is not None and path.is_file():
        try:
            return _read(path, name, alias)
        except sqlite3.Error:
            pass  # not tables this knows (another MLflow schema): MLflow's client reads them
    return registry.alias(name, alias)
