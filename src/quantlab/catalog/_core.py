"""The dataset catalog: every dataset is addressed by name and version, nothing else knows a path.

Each dataset is one Delta Lake table under `<data>/catalog/<name>`; Delta's
table versions are the dataset versions. A Delta commit is atomic (a killed
writer leaves at most unreferenced Parquet files, never a half-visible
version) and a version never changes once committed. Every commit carries the
version's lineage as commit metadata, so `show` can walk a result back to its
raw inputs without a hand-made manifest.

Re-running a stage with the same inputs, config and code is a no-op: the
stage's fingerprint is compared with the latest version's and the existing
version is returned instead of writing a copy.

Writers of one dataset take turns: `write` and `upsert` hold the dataset's lock
(`<data>/locks/<name>.lock`, shared by every process on the data folder) from
the fingerprint lookup through the commit, and return the version their own
commit made, never whatever is latest by the time they look.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from quantlab.catalog.refs import DatasetRef, Lineage, VersionInfo, fingerprint
from quantlab.codeversion import code_version
from quantlab.errors import DatasetNotFound
from quantlab.locks import file_lock

_LINEAGE_KEY = "quantlab.lineage"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# A commit or checkpoint file of a Delta log; a writer killed before its first commit
# leaves `_delta_log/` without one (at most a temporary file), and no table.
_LOG_ENTRY = re.compile(r"^\d{20}\.(json|checkpoint\b.*\.parquet)$")


def _partitions_of(df: pl.DataFrame, columns: Sequence[str]) -> tuple[pl.Expr, list[str]]:
    """The partitions holding `df`'s rows, as a polars filter and as merge predicate terms.

    Only string partition columns without nulls are narrowed (the tables partition by
    market, interval and symbol); any other column is left unconstrained, which is exact,
    only slower.
    """
    within, sql = pl.lit(True), []
    for c in columns:
        if c not in df.columns or df[c].dtype != pl.String or df[c].null_count():
            continue
        values = df[c].unique().sort().to_list()
        within &= pl.col(c).is_in(values)
        quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
        sql.append(f"t.{c} IN ({quoted})")
    return within, sql


def _has_commit(table_path: Path) -> bool:
    """Whether the folder holds a Delta table: its log has at least one commit or checkpoint."""
    try:
        with os.scandir(table_path / "_delta_log") as entries:
            return any(_LOG_ENTRY.match(e.name) for e in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


def _to_storage(df: pl.DataFrame) -> pl.DataFrame:
    """Delta stores timestamps in microseconds; cast up front so merges compare like with like.

    quantlab's timestamps have millisecond precision (Binance's), and `scan` casts them back.
    """
    casts = [
        pl.col(name).cast(pl.Datetime("us", dtype.time_zone))
        for name, dtype in df.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_unit != "us"
    ]
    return df.with_columns(casts) if casts else df


class Catalog:
    """Named, versioned datasets stored as Delta tables under one root folder."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    # -- addressing -------------------------------------------------------
    def _table_path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise DatasetNotFound(
                f"{name!r} is not a valid dataset name; use lower_snake_case such as 'klines'"
            )
        return self.root / name

    def _table(self, name: str, version: int | None = None) -> DeltaTable:
        path = self._table_path(name)
        try:
            return DeltaTable(str(path), version=version)
        except TableNotFoundError:
            known = ", ".join(self.names()) or "none yet"
            raise DatasetNotFound(
                f"dataset {name!r} does not exist in the catalog at {self.root} "
                f"(known: {known}); run the stage that produces it first"
            ) from None
        except Exception as exc:
            if version is not None and "version" in str(exc).lower():
                raise DatasetNotFound(
                    f"dataset {name!r} has no version {version}; "
                    f"`quantlab datasets show {name}` lists its versions"
                ) from None
            raise

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if _has_commit(p))

    def exists(self, name: str) -> bool:
        return _has_commit(self._table_path(name))

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold dataset `name`'s write lock, across processes; reentrant within a thread."""
        with file_lock(self.root.parent / "locks" / f"{self._table_path(name).name}.lock"):
            yield

    def _open(self, name: str) -> DeltaTable | None:
        """The table to commit to, or None when `name` has no commit yet."""
        return DeltaTable(str(self._table_path(name))) if self.exists(name) else None

    def latest(self, name: str) -> DatasetRef:
        return DatasetRef(name, self._table(name).version())

    def artifact_dir(self, ref: DatasetRef) -> Path:
        """A folder for files that belong to one version (reports, plots)."""
        path = self.root.parent / "artifacts" / ref.name / f"v{ref.version}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- reading ----------------------------------------------------------
    def read(self, ref: DatasetRef) -> pl.DataFrame:
        """Read exactly the version `ref` names."""
        return self.scan(ref).collect()

    def scan(self, ref: DatasetRef) -> pl.LazyFrame:
        """Lazily read exactly the version `ref` names, timestamps back in milliseconds."""
        lf = pl.scan_delta(self._table(ref.name, ref.version))
        return lf.with_columns(
            pl.col(name).cast(pl.Datetime("ms", dtype.time_zone))
            for name, dtype in lf.collect_schema().items()
            if isinstance(dtype, pl.Datetime)
        )

    def partitions(
        self, ref: DatasetRef, columns: Sequence[str]
    ) -> list[dict[str, str | None]] | None:
        """The distinct values of `columns` the version's files hold, from its log (no file is
        read), each as {column: value} with None for a missing value; None when the version is
        not partitioned by all of `columns` (then a filter on them reads every file)."""
        table = self._table(ref.name, ref.version)
        if not set(columns) <= set(table.metadata().partition_columns):
            return None
        found = {tuple(p.get(c) for c in columns) for p in table.partitions()}
        return [dict(zip(columns, values, strict=True)) for values in found]

    def load(self, name: str, version: int | None = None) -> pl.DataFrame:
        """Notebook convenience: a dataset by name, latest version unless one is given."""
        ref = DatasetRef(name, version) if version is not None else self.latest(name)
        return self.read(ref)

    def versions(self, name: str) -> list[VersionInfo]:
        history = self._table(name).history()
        out = []
        for entry in sorted(history, key=lambda h: h["version"]):
            raw = entry.get(_LINEAGE_KEY)
            out.append(
                VersionInfo(
                    ref=DatasetRef(name, int(entry["version"])),
                    operation=str(entry.get("operation", "")),
                    lineage=Lineage.from_json(raw) if raw else None,
                )
            )
        return out

    def lineage(self, ref: DatasetRef) -> Lineage:
        for info in self.versions(ref.name):
            if info.ref.version == ref.version:
                if info.lineage is None:
                    raise DatasetNotFound(f"{ref} was not written by quantlab: it has no lineage")
                return info.lineage
        raise DatasetNotFound(
            f"dataset {ref.name!r} has no version {ref.version}; "
            f"`quantlab datasets show {ref.name}` lists its versions"
        )

    def walk_lineage(self, ref: DatasetRef) -> list[tuple[DatasetRef, Lineage]]:
        """`ref` and every version it was built from, nearest first."""
        seen: dict[DatasetRef, Lineage] = {}
        queue = [ref]
        while queue:
            current = queue.pop(0)
            if current in seen:
                continue
            lineage = self.lineage(current)
            seen[current] = lineage
            queue.extend(DatasetRef(n, v) for n, v in sorted(lineage.inputs.items()))
        return list(seen.items())

    def find(self, name: str, fp: str) -> DatasetRef | None:
        """The latest version of `name` if it has fingerprint `fp`, else None."""
        if not self.exists(name):
            return None
        last = self.versions(name)[-1]
        if last.lineage is not None and last.lineage.fingerprint == fp:
            return last.ref
        return None

    # -- writing ----------------------------------------------------------
    def write(
        self,
        name: str,
        df: pl.DataFrame,
        *,
        stage: str,
        inputs: Sequence[DatasetRef] = (),
        config_hash: str = "",
        extra: dict[str, Any] | None = None,
        partition_by: Sequence[str] | None = None,
    ) -> DatasetRef:
        """Write `df` as the next version of `name` (a full snapshot), atomically.

        If the latest version already has this fingerprint, nothing is written
        and that version is returned.
        """
        df = _to_storage(df)
        fp = fingerprint(stage, inputs, config_hash)
        with self.lock(name):
            if (existing := self.find(name, fp)) is not None:
                return existing
            lineage = self._lineage(stage, inputs, config_hash, fp, df.height, extra)
            table = self._open(name)
            if table is None:  # the first commit: "error" guarantees it is version 0
                write_deltalake(
                    str(self._table_path(name)),
                    df.to_arrow(),
                    mode="error",
                    partition_by=list(partition_by) if partition_by else None,
                    commit_properties=self._commit(lineage),
                )
                return DatasetRef(name, 0)
            write_deltalake(
                table,
                df.to_arrow(),
                mode="overwrite",
                schema_mode="overwrite",
                partition_by=list(partition_by) if partition_by else None,
                commit_properties=self._commit(lineage),
            )
            return DatasetRef(name, table.version())  # deltalake moved `table` to our commit

    def upsert(
        self,
        name: str,
        df: pl.DataFrame,
        key: Sequence[str],
        *,
        stage: str,
        inputs: Sequence[DatasetRef] = (),
        config_hash: str = "",
        extra: dict[str, Any] | None = None,
        partition_by: Sequence[str] | None = None,
    ) -> DatasetRef | None:
        """Merge `df` into `name` on `key`: matching rows are updated, new rows inserted.

        Returns the version this merge committed, or None when `df` is empty (nothing to
        commit). The key lookup and the commit happen under the dataset's lock, so the
        row count in the lineage is that of the version committed.
        """
        if df.is_empty():
            return None
        df = _to_storage(df)
        dupes = df.height - df.select(list(key)).unique().height
        if dupes:
            raise ValueError(f"upsert into {name!r}: {dupes} rows repeat the key {list(key)}")
        fp = fingerprint(stage, inputs, config_hash)
        with self.lock(name):
            path = str(self._table_path(name))
            table = self._open(name)
            if table is None:
                lineage = self._lineage(stage, inputs, config_hash, fp, df.height, extra)
                write_deltalake(
                    path,
                    df.to_arrow(),
                    mode="error",
                    partition_by=list(partition_by) if partition_by else None,
                    commit_properties=self._commit(lineage),
                )
                return DatasetRef(name, 0)  # mode "error": this commit created the table
            # Only the partitions `df` falls in can match: the merge and the count below read
            # those, not the whole table (else each merge costs as much as all stored before).
            partitions = table.metadata().partition_columns
            within, sql = _partitions_of(df, partitions)
            # The lineage goes into the merge commit itself, so the row count after
            # the merge is worked out first: rows now, plus source keys not yet stored.
            before = pl.scan_delta(table).select(pl.len()).collect().item()
            stored = pl.scan_delta(table).filter(within).select(list(key))
            matched = stored.join(df.lazy().select(list(key)), on=list(key), how="semi")
            n_matched = matched.select(pl.len()).collect().item()
            lineage = self._lineage(
                stage, inputs, config_hash, fp, before + df.height - n_matched, extra
            )
            if n_matched == 0:  # all new (a backfill, the next bars): an append, no join to do
                write_deltalake(
                    table,
                    df.to_arrow(),
                    mode="append",
                    partition_by=partitions or None,
                    commit_properties=self._commit(lineage),
                )
                return DatasetRef(name, table.version())  # deltalake moved `table` to our commit
            predicate = " AND ".join([*sql, *(f"t.{k} = s.{k}" for k in key)])
            (
                table.merge(
                    df.to_arrow(),
                    predicate=predicate,
                    source_alias="s",
                    target_alias="t",
                    commit_properties=self._commit(lineage),
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
            return DatasetRef(name, table.version())

    @staticmethod
    def _lineage(
        stage: str,
        inputs: Iterable[DatasetRef],
        config_hash: str,
        fp: str,
        rows: int,
        extra: dict[str, Any] | None,
    ) -> Lineage:
        return Lineage(
            stage=stage,
            inputs={r.name: r.version for r in inputs},
            config_hash=config_hash,
            code_version=code_version(),
            row_count=rows,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            fingerprint=fp,
            extra=extra or {},
        )

    @staticmethod
    def _commit(lineage: Lineage) -> CommitProperties:
        return CommitProperties(custom_metadata={_LINEAGE_KEY: json.dumps(asdict(lineage))})
