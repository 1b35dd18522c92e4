"""How one catalog version is committed to its Delta table: the first commit, a whole
snapshot over the last, or a merge; each carrying the version's lineage as commit metadata.

`Catalog.write` and `Catalog.upsert` decide what to commit (fingerprints, locks, retries on
a lost race); these functions make one try of the commit itself. On an object store
(`remote`) a commit is never rebased onto another writer's version: its row count and
planned version were worked out from the table it read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import polars as pl
from deltalake import CommitProperties, DeltaTable, write_deltalake

from quantlab.catalog._frames import partitions_of
from quantlab.catalog.refs import Lineage
from quantlab.codeversion import code_version

LINEAGE_KEY = "quantlab.lineage"


def make_lineage(
    stage: str,
    inputs: Iterable[Any],
    config_hash: str,
    fp: str,
    rows: int,
    extra: dict[str, Any] | None,
) -> Lineage:
    """The lineage of a version about to be committed with `rows` rows."""
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


def properties(lineage: Lineage, *, remote: bool) -> CommitProperties:
    return CommitProperties(
        custom_metadata={LINEAGE_KEY: json.dumps(asdict(lineage))},
        max_commit_retries=0 if remote else None,
    )


def create(
    uri: str,
    df: pl.DataFrame,
    parts: Sequence[str] | None,
    lineage: Lineage,
    *,
    remote: bool,
    storage_options: dict[str, str] | None,
) -> int:
    """The table's first commit ("error" mode guarantees it is version 0)."""
    write_deltalake(
        uri,
        df.to_arrow(),
        mode="error",
        partition_by=list(parts) if parts else None,
        commit_properties=properties(lineage, remote=remote),
        storage_options=storage_options,
    )
    return 0


def overwrite(
    table: DeltaTable,
    df: pl.DataFrame,
    parts: Sequence[str] | None,
    lineage: Lineage,
    *,
    remote: bool,
) -> int:
    """`df` as a whole new snapshot over the table's latest version; the version made."""
    write_deltalake(
        table,
        df.to_arrow(),
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=list(parts) if parts else None,
        commit_properties=properties(lineage, remote=remote),
    )
    return table.version()  # deltalake moved `table` to our commit


def merge(
    table: DeltaTable,
    df: pl.DataFrame,
    key: Sequence[str],
    lineage_of: Callable[[int], Lineage],
    *,
    remote: bool,
) -> int:
    """Merge `df` into `table` on `key` (update matches, insert the rest); the version made.
    `lineage_of(rows)` gives the lineage for the row count the merge leaves."""
    # Only the partitions `df` falls in can match: the merge and the count below read
    # those, not the whole table (else each merge costs as much as all stored before).
    partitions = table.metadata().partition_columns
    within, sql = partitions_of(df, partitions)
    # The lineage goes into the merge commit itself, so the row count after
    # the merge is worked out first: rows now, plus source keys not yet stored.
    before = pl.scan_delta(table).select(pl.len()).collect().item()
    stored = pl.scan_delta(table).filter(within).select(list(key))
    matched = stored.join(df.lazy().select(list(key)), on=list(key), how="semi")
    n_matched = matched.select(pl.len()).collect().item()
    commit = properties(lineage_of(before + df.height - n_matched), remote=remote)
    if n_matched == 0:  # all new (a backfill, the next bars): an append, no join to do
        write_deltalake(
            table,
            df.to_arrow(),
            mode="append",
            partition_by=partitions or None,
            commit_properties=commit,
        )
        return table.version()  # deltalake moved `table` to our commit
    predicate = " AND ".join([*sql, *(f"t.{k} = s.{k}" for k in key)])
    (
        table.merge(
            df.to_arrow(),
            predicate=predicate,
            source_alias="s",
            target_alias="t",
            commit_properties=commit,
        )
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    return table.version()
