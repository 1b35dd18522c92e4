"""Copy one dataset version out of the catalog into a plain Parquet file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from quantlab.catalog.refs import DatasetRef

if TYPE_CHECKING:
    from quantlab.catalog._core import Catalog


def export_dataset(
    catalog: Catalog, name: str, out: Path, version: int | None = None
) -> tuple[DatasetRef, int]:
    """Write `name` at `version` (default: latest) to `out`; return the version and its row count.

    The file is written beside `out` first and renamed into place, so a reader never sees
    half a file. Timestamps keep the catalog's millisecond UTC type.
    """
    ref = DatasetRef(name, version) if version is not None else catalog.latest(name)
    lf = catalog.scan(ref)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    lf.sink_parquet(partial)
    partial.replace(out)
    return ref, pl.scan_parquet(out).select(pl.len()).collect().item()
