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

The root may also be an object-store URI (`s3://bucket/prefix`, `quantlab.catalog._store`).
Writers on other machines share no lock file there, so each commit is conditional on the
version it was computed from (Delta's log is written with put-if-absent): a writer whose
version was taken reads again and redoes its fingerprint check, row count and commit.

Every dataset is declared in the registry (`quantlab.catalog.datasets`): a write is
checked against its schema and key before anything is committed, and files that belong
to a version (reports) are staged and published with it (`quantlab.catalog.artifacts`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from quantlab.catalog import _commits
from quantlab.catalog import artifacts as _artifacts
from quantlab.catalog._frames import to_storage as _to_storage
from quantlab.catalog._store import Store, retry_conflicts
from quantlab.catalog.artifacts import ArtifactWriter
from quantlab.catalog.datasets import DATASETS, Extra, Registry
from quantlab.catalog.export import export_dataset
from quantlab.catalog.refs import DatasetRef, Lineage, VersionInfo, fingerprint
from quantlab.errors import ConfigError, DatasetNotFound, DuplicateKeyError, SchemaError
from quantlab.locks import file_lock

if TYPE_CHECKING:
    from quantlab.config.data import PathsConfig

E = TypeVar("E", bound=Extra)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Catalog:
    """Named, versioned datasets stored as Delta tables under one root folder or URI.

    `registry` lists the datasets it accepts (default: every dataset quantlab writes);
    a test writing a dataset of its own passes `DATASETS.with_datasets(...)`. A URI root
    (`s3://bucket/prefix`) takes deltalake `storage_options`; its locks and artifacts live
    in the local `work_dir` (without one, `artifacts` fails and writers share no lock).
    """

    def __init__(
        self,
        root: Path | str,
        registry: Registry = DATASETS,
        *,
        storage_options: dict[str, str] | None = None,
        work_dir: Path | None = None,
    ):
        self._store = Store.of(root, storage_options)
        self.root = self._store.root  # a Path, or the URI string of an object store
        self.registry = registry
        self._work_dir = Path(work_dir) if work_dir is not None else None

    @classmethod
    def from_paths(cls, paths: PathsConfig, registry: Registry = DATASETS) -> Catalog:
        """The catalog `paths` configures: `paths.catalog`, on S3 with its storage options."""
        return cls(
            paths.catalog,
            registry,
            storage_options=paths.storage_options(),
            work_dir=paths.data if paths.catalog_uri else None,
        )

    # -- addressing -------------------------------------------------------
    @property
    def remote(self) -> bool:
        """Whether the catalog lives in an object store rather than a local folder."""
        return self._store.remote

    def uri(self, name: str) -> str:
        """Table `name`'s address: `file:///...` for a local catalog, `s3://...` otherwise."""
        location = self._table_uri(name)
        return location if self.remote else Path(location).resolve().as_uri()

    def _table_path(self, name: str) -> Path:
        """Table `name`'s folder in a local catalog (tests open it with deltalake directly)."""
        if self.remote:
            raise ConfigError(f"the catalog at {self.root} is an object store, not a folder")
        return Path(self._table_uri(name))

    def _table_uri(self, name: str) -> str:
        if not _NAME.match(name):
            raise DatasetNotFound(
                f"{name!r} is not a valid dataset name; use lower_snake_case such as 'klines'"
            )
        return self._store.table_uri(name)

    def _table(self, name: str, version: int | None = None) -> DeltaTable:
        uri = self._table_uri(name)
        try:
            return DeltaTable(uri, version=version, storage_options=self._store.storage_options())
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
        return self._store.names()

    def exists(self, name: str) -> bool:
        self._table_uri(name)  # a malformed name is reported as such
        return self._store.has_commit(name)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold dataset `name`'s write lock, across processes; reentrant within a thread.

        On an object store it is held in `work_dir` (one machine's writers take turns),
        or not at all without one: commits there are conditional on their base version.
        """
        self._table_uri(name)  # a malformed name is reported as such
        if not self.remote:
            locks: Path | None = Path(self.root).parent / "locks"
        else:
            locks = self._work_dir / "locks" if self._work_dir is not None else None
        with file_lock(locks / f"{name}.lock") if locks else contextlib.nullcontext():
            yield

    def _open(self, name: str) -> DeltaTable | None:
        """The table to commit to, or None when `name` has no commit yet."""
        return self._table(name) if self.exists(name) else None

    def latest(self, name: str) -> DatasetRef:
        return DatasetRef(name, self._table(name).version())

    def artifacts(self, ref: DatasetRef) -> Path:
        """The folder of files published with version `ref` (its `write(artifacts=...)`)."""
        path = _artifacts.version_dir(self._artifacts_root, ref)
        if not path.is_dir():
            raise DatasetNotFound(
                f"{ref} has no artifacts at {path}; run the stage that writes {ref.name} "
                "(a version written without artifacts has none)"
            )
        return path

    @property
    def _artifacts_root(self) -> Path:
        if not self.remote:
            return Path(self.root).parent / "artifacts"
        if self._work_dir is None:
            raise ConfigError(
                f"the catalog at {self.root} keeps artifacts in a local work folder and has "
                "none: build it with Catalog.from_paths(config.paths) or pass work_dir="
            )
        return self._work_dir / "artifacts"

    def extra(self, ref: DatasetRef, model: type[E]) -> E:
        """Version `ref`'s lineage facts, read as `model`, the type its dataset declares."""
        declared = self.registry[ref.name].extra
        if declared is not model:
            raise SchemaError(
                f"{ref.name}'s lineage extra is declared as "
                f"{declared.__name__ if declared else 'untyped'}, not {model.__name__}; "
                "see quantlab/catalog/datasets.py"
            )
        return model.of(self.lineage(ref))

    def export(self, name: str, out: Path, version: int | None = None) -> tuple[DatasetRef, int]:
        """Copy `name` at `version` (default: latest) to the Parquet file `out`; its rows."""
        return export_dataset(self, name, out, version)

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
            raw = entry.get(_commits.LINEAGE_KEY)
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
        artifacts: ArtifactWriter | None = None,
    ) -> DatasetRef:
        """Write `df` as the next version of `name` (a full snapshot), atomically.

        If the latest version already has this fingerprint, nothing is written
        and that version is returned (with the artifacts it has). Otherwise `artifacts`,
        if given, writes the version's files into a staging folder before the commit;
        they are published as `artifacts(ref)` once the commit is made.
        """
        parts = self._check(name, df, extra, partition_by)
        df = _to_storage(df)
        fp = fingerprint(stage, inputs, config_hash)

        def attempt() -> DatasetRef:
            if (existing := self.find(name, fp)) is not None:
                return existing
            lineage = _commits.make_lineage(stage, inputs, config_hash, fp, df.height, extra)
            table = self._open(name)
            planned = DatasetRef(name, 0 if table is None else table.version() + 1)
            staged = (
                _artifacts.stage(self._artifacts_root, planned, artifacts) if artifacts else None
            )
            try:
                ref = self._snapshot(name, table, df, parts, lineage)
            except BaseException:
                _artifacts.discard(staged)
                raise
            if staged is not None:
                _artifacts.publish(staged, _artifacts.version_dir(self._artifacts_root, ref))
            return ref

        with self.lock(name):
            return retry_conflicts(attempt, self._store.commit_attempts)

    def _snapshot(
        self,
        name: str,
        table: DeltaTable | None,
        df: pl.DataFrame,
        parts: list[str] | None,
        lineage: Lineage,
    ) -> DatasetRef:
        if table is None:
            return DatasetRef(name, self._create(name, df, parts, lineage))
        return DatasetRef(name, _commits.overwrite(table, df, parts, lineage, remote=self.remote))

    def _create(
        self, name: str, df: pl.DataFrame, parts: Sequence[str] | None, lineage: Lineage
    ) -> int:
        options = self._store.storage_options()
        uri = self._table_uri(name)
        return _commits.create(uri, df, parts, lineage, remote=self.remote, storage_options=options)

    def _check(
        self,
        name: str,
        df: pl.DataFrame,
        extra: dict[str, Any] | None,
        partition_by: Sequence[str] | None,
    ) -> list[str] | None:
        """Check `df` and `extra` against `name`'s registry entry; the partition columns."""
        self._table_uri(name)  # a malformed name is reported as such
        dataset = self.registry[name]
        dataset.check(df)
        dataset.check_extra(extra or {})
        parts = list(partition_by) if partition_by is not None else list(dataset.partitions)
        return parts or None

    def upsert(
        self,
        name: str,
        df: pl.DataFrame,
        key: Sequence[str] | None = None,
        *,
        stage: str,
        inputs: Sequence[DatasetRef] = (),
        config_hash: str = "",
        extra: dict[str, Any] | None = None,
        partition_by: Sequence[str] | None = None,
    ) -> DatasetRef | None:
        """Merge `df` into `name` on `key`: matching rows are updated, new rows inserted.

        `key` defaults to the registered one, and must equal it when given. Returns the
        version this merge committed, or None when `df` is empty (nothing to commit). The
        key lookup and the commit happen under the dataset's lock, so the row count in the
        lineage is that of the version committed.
        """
        if df.is_empty():
            return None
        partition_by = self._check(name, df, extra, partition_by)
        registered = self.registry[name].key
        if key is not None and tuple(key) != registered:
            raise SchemaError(
                f"upsert into {name!r} on {list(key)}, but its registered key is "
                f"{list(registered)}; merge on the registered key"
            )
        if not registered:
            raise SchemaError(f"{name!r} declares no key to merge on; `write` it whole instead")
        key = registered
        dupes = df.height - df.select(list(key)).unique().height
        if dupes:
            raise DuplicateKeyError(
                f"upsert into {name!r}: {dupes} rows repeat the key {list(key)}; "
                f"keep one row per key (e.g. `df.unique(subset={list(key)}, keep='last')`)"
            )
        df = _to_storage(df)
        fp = fingerprint(stage, inputs, config_hash)
        with self.lock(name):
            return retry_conflicts(
                lambda: self._merge(
                    name, df, key, partition_by, stage, inputs, config_hash, fp, extra
                ),
                self._store.commit_attempts,
            )

    def _merge(
        self,
        name: str,
        df: pl.DataFrame,
        key: Sequence[str],
        partition_by: list[str] | None,
        stage: str,
        inputs: Sequence[DatasetRef],
        config_hash: str,
        fp: str,
        extra: dict[str, Any] | None,
    ) -> DatasetRef:
        """One try of `upsert`'s count and commit, from the table as it is now."""

        def lineage_of(rows: int) -> Lineage:
            return _commits.make_lineage(stage, inputs, config_hash, fp, rows, extra)

        table = self._open(name)
        if table is None:  # mode "error": this commit creates the table, version 0
            return DatasetRef(name, self._create(name, df, partition_by, lineage_of(df.height)))
        return DatasetRef(name, _commits.merge(table, df, key, lineage_of, remote=self.remote))
