"""The dataset registry: every written dataset is declared, and writes are checked against it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.catalog import DATASETS, Catalog, Dataset
from quantlab.errors import DatasetNotFound, SchemaError
from quantlab.schema import KLINES_KEY

SRC = Path(__file__).resolve().parents[2] / "src" / "quantlab"


def _written_names() -> dict[str, set[str]]:
    """Each dataset name passed to a catalog's `write`/`upsert` in src, by module.

    A name given as a constant is resolved by importing its module; an f-string such as
    validate's `f"{ref.name}_checks"` is returned as its literal tail (`*_checks`).
    """
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(("quantlab", *path.relative_to(SRC).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("write", "upsert")
                and ast.unparse(node.func.value).endswith("catalog")
                and node.args
            ):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant):
                name = arg.value
            elif isinstance(arg, ast.Name):
                name = getattr(importlib.import_module(module), arg.id)
            elif isinstance(arg, ast.JoinedStr) and isinstance(arg.values[-1], ast.Constant):
                name = "*" + arg.values[-1].value
            else:
                raise AssertionError(f"{module}: cannot read the dataset name {ast.unparse(arg)}")
            found.setdefault(module, set()).add(name)
    return found


def test_every_dataset_the_code_writes_is_registered():
    written = _written_names()
    names = {n for ns in written.values() for n in ns}
    # The stages that write: ingest, validate, features, labels, train, backtest, risk, paper.
    assert {"klines", "klines_gaps", "features", "predictions", "backtest", "targets"} <= names
    patterns = {n for n in names if n.startswith("*")}
    assert patterns == {"*_checks"}, "only the gate names its output by pattern"
    unregistered = {n for n in names - patterns if n not in DATASETS}
    assert not unregistered, f"written but not registered: {unregistered}"
    for name in DATASETS:
        if name.endswith("_checks"):
            assert name.removesuffix("_checks") in DATASETS
            assert DATASETS[name].producer == "validate"


@pytest.fixture
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog")


def _klines(n: int = 5) -> pl.DataFrame:
    return load_sample_klines("BTCUSDT", ("2023-03",)).head(n)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda df: df.drop("close"), r"lacks column 'close'"),
        (lambda df: df.with_columns(pl.col("trades").cast(pl.Float64)), r"'trades' is Float64"),
        (
            lambda df: df.with_columns(pl.col("open_time").dt.replace_time_zone(None)),
            r"'open_time' is Datetime",
        ),
        (lambda df: df.with_columns(pl.lit(1.0).alias("vwap")), r"'vwap' is not declared"),
    ],
)
def test_write_and_upsert_reject_a_frame_that_breaks_the_schema(catalog, change, message):
    bad = change(_klines())
    with pytest.raises(SchemaError, match=message):
        catalog.write("klines", bad, stage="ingest")
    with pytest.raises(SchemaError, match=message):
        catalog.upsert("klines", bad, KLINES_KEY, stage="ingest")
    assert not catalog.exists("klines")  # nothing was committed


def test_open_datasets_take_extra_columns_only_of_their_declared_dtypes(catalog):
    bars = _klines().select("symbol", "open_time")
    ref = catalog.write("features", bars.with_columns(rsi_14=pl.lit(50.0)), stage="features")
    assert catalog.read(ref).columns == ["symbol", "open_time", "rsi_14"]
    with pytest.raises(SchemaError, match=r"'tag' is String; its extra columns may be"):
        catalog.write("features", bars.with_columns(tag=pl.lit("x")), stage="features")


def test_an_unregistered_name_is_refused_with_the_registered_ones(catalog):
    with pytest.raises(DatasetNotFound, match=r"'bars' is not a registered dataset.*klines"):
        catalog.write("bars", pl.DataFrame({"x": [1]}), stage="s")
    own = Catalog(
        catalog.root, registry=DATASETS.with_datasets(Dataset("bars", {"x": pl.Int64()}, "t"))
    )
    assert own.write("bars", pl.DataFrame({"x": [1]}), stage="s").version == 0


def test_upsert_merges_on_the_registered_key_only(catalog):
    with pytest.raises(SchemaError, match=r"registered key is \['market', 'symbol', 'interval'"):
        catalog.upsert("klines", _klines(), ("symbol", "open_time"), stage="ingest")
    ref = catalog.upsert(
        "klines", _klines(), stage="ingest"
    )  # the key defaults to the registered one
    assert catalog.read(ref).height == 5


def test_registered_partitions_are_the_default_layout(catalog):
    from deltalake import DeltaTable

    catalog.upsert("klines", _klines(), stage="ingest")
    table = DeltaTable(str(catalog.root / "klines"))
    assert table.metadata().partition_columns == list(DATASETS["klines"].partitions)
