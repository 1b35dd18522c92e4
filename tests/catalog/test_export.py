"""`Catalog.export`: one version out to a plain Parquet file."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from helpers import load_sample_klines
from quantlab.catalog import Catalog, DatasetRef


def test_export_writes_the_asked_version_whole_and_atomically(tmp_path):
    catalog = Catalog(tmp_path / "catalog")
    real = load_sample_klines("BTCUSDT", ("2023-03",))
    catalog.upsert("klines", real.head(10), stage="ingest")
    catalog.upsert("klines", real.slice(10, 5), stage="ingest")
    out = tmp_path / "out" / "klines.parquet"

    ref, rows = catalog.export("klines", out, version=0)
    assert (ref, rows) == (DatasetRef("klines", 0), 10)
    assert_frame_equal(pl.read_parquet(out), catalog.read(ref))

    latest, rows = catalog.export("klines", out)
    assert (latest, rows) == (DatasetRef("klines", 1), 15)
    assert pl.read_parquet(out).schema["open_time"] == pl.Datetime("ms", "UTC")
    assert sorted(p.name for p in out.parent.iterdir()) == ["klines.parquet"]  # no partial left
