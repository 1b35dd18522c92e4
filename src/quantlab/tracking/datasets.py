"""Catalog versions as MLflow dataset inputs: each a `<name>@v<version>` whose digest is the
version's catalog fingerprint, so `datasets.digest = '<fingerprint>'` finds every run it fed.

Nothing is serialised but metadata: the schema, the row count and the lineage facts; the
source names the Delta table and version, which is where the rows are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from quantlab.catalog import Catalog, DatasetRef, Lineage

TRAINING, VALIDATION, TESTING = "training", "validation", "testing"
# A fold's row sets and the context each is logged under.
FOLD_SLICES = (("train", TRAINING), ("valid", VALIDATION), ("test", TESTING))
# Large Delta tables (klines) have a known source type; the UI shows the path and version.
SOURCE_TYPE = "delta_table"


@dataclass(frozen=True)
class DatasetVersion:
    """One catalog version as tracking sees it: its ref, lineage, table URI and column types."""

    ref: DatasetRef
    lineage: Lineage
    uri: str
    schema: dict[str, pl.DataType]

    @property
    def name(self) -> str:
        return str(self.ref)  # features@v3


def describe_versions(catalog: Catalog, refs: Iterable[DatasetRef]) -> list[DatasetVersion]:
    """`refs` and every version they were built from (klines, funding rates, their checks),
    nearest first, each once: what a run read, directly or through its inputs."""
    seen: dict[DatasetRef, Lineage] = {}
    for ref in refs:
        for found, lineage in catalog.walk_lineage(ref):
            seen.setdefault(found, lineage)
    return [
        DatasetVersion(
            ref=ref,
            lineage=lineage,
            uri=catalog.uri(ref.name),
            # The Delta log's schema: no data file is read.
            schema=dict(catalog.scan(ref).collect_schema()),
        )
        for ref, lineage in seen.items()
    ]


def _schema_json(schema: dict[str, pl.DataType]) -> str:
    from mlflow.data.polars_dataset import infer_schema

    return json.dumps({"mlflow_colspec": infer_schema(pl.DataFrame(schema=schema)).to_dict()})


def _t(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def dataset_input(
    version: DatasetVersion,
    context: str,
    *,
    name: str | None = None,
    rows: int | None = None,
    window: dict[str, Any] | None = None,
) -> Any:
    """An MLflow `DatasetInput` for `version` used in `context` (training, validation, testing).

    A slice of the version (one fold's validation rows) passes its own `name`, row count
    and time `window`: MLflow keeps one input per (name, digest) and run, so a fold's three
    slices need three names; they share the version's fingerprint as digest.
    """
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    lin = version.lineage
    source = {
        "path": version.uri,
        "delta_table_version": version.ref.version,
        "dataset": version.ref.name,
        **({"rows": {k: _t(v) for k, v in window.items()}} if window else {}),
    }
    profile = {
        "num_rows": lin.row_count if rows is None else rows,
        "version_rows": lin.row_count,
        "stage": lin.stage,
        "inputs": lin.inputs,
        "config_hash": lin.config_hash,
        "code_version": lin.code_version,
        "created_at": lin.created_at,
    }
    dataset = Dataset(
        name=name or version.name,
        digest=lin.fingerprint,
        source_type=SOURCE_TYPE,
        source=json.dumps(source),
        schema=_schema_json(version.schema),
        profile=json.dumps(profile),
    )
    return DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])


def version_inputs(versions: Sequence[DatasetVersion], context: str = TRAINING) -> list[Any]:
    """Every version whole, under one context: what the parent run records."""
    return [dataset_input(v, context) for v in versions]


def fold_inputs(versions: Sequence[DatasetVersion], fold: dict[str, Any]) -> list[Any]:
    """Each version's train, valid and test slices of one fold, from a row of the fold table
    (`quantlab.train.fold_table`: `<slice>_start`, `<slice>_end`, `<slice>_rows`)."""
    out = []
    for version in versions:
        for part, context in FOLD_SLICES:
            window = {"start": fold[f"{part}_start"], "end": fold[f"{part}_end"]}
            if f"{part}_labels_before" in fold:  # the purge: labels resolved before this
                window["labels_before"] = fold[f"{part}_labels_before"]
            out.append(
                dataset_input(
                    version,
                    context,
                    name=f"{version.name} fold{fold['fold']} {part}",
                    rows=int(fold[f"{part}_rows"]),
                    window=window,
                )
            )
    return out
