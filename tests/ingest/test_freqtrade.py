"""The freqtrade source: real USD-M files (data/freqtrade, a trim of Binance data freqtrade
downloaded) into klines, mark_klines and funding_rates, through the catalog and the gate."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from helpers import ROOT, write_config
from quantlab.catalog import GateVerdict
from quantlab.cli import main
from quantlab.context import RunContext
from quantlab.errors import ConfigError, DataError, SchemaError
from quantlab.ingest import import_freqtrade, to_ms
from quantlab.ingest.freqtrade import pair_name, read_series, with_mark_price
from quantlab.schema import SOURCE_OPTIONAL

FREQTRADE = ROOT / "data" / "freqtrade"
# Two weeks around the truncated ETHUSDT candle of 2024-10-28 21:00 (a real quirk, kept).
START, END = date(2024, 10, 21), date(2024, 11, 4)
HOURS = 14 * 24


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    cfg = write_config(
        tmp_path,
        universe={"market": "futures_um", "start": str(START), "end": str(END)},
        exchange={"source": "freqtrade", "freqtrade_root": str(FREQTRADE)},
    )
    return RunContext.load(cfg)


@pytest.fixture
def imported(ctx: RunContext):
    return import_freqtrade(
        ctx,
        FREQTRADE,
        symbols=["BTCUSDT", "ETHUSDT"],
        interval="1h",
        start_ms=to_ms(START),
        end_ms=to_ms(END),
    )


def _file(symbol: str, kind: str) -> pl.DataFrame:
    df = pl.read_ipc(FREQTRADE / f"{pair_name(symbol)}-1h-{kind}.feather")
    lo, hi = (datetime.combine(d, datetime.min.time(), UTC) for d in (START, END))
    return df.with_columns(pl.col("date").cast(pl.Datetime("ms", "UTC"))).filter(
        pl.col("date") >= lo, pl.col("date") < hi
    )


def test_klines_keep_the_files_values_and_derive_only_the_close_time(ctx, imported):
    klines = ctx.catalog.read(imported.refs["klines"]).sort("symbol", "open_time")
    assert imported.rows_written["klines"] == klines.height == 2 * HOURS
    for symbol in ("BTCUSDT", "ETHUSDT"):
        got = klines.filter(pl.col("symbol") == symbol)
        raw = _file(symbol, "futures")
        assert got["open_time"].to_list() == raw["date"].to_list()
        for c in ("open", "high", "low", "close", "volume"):
            assert got[c].to_list() == raw[c].to_list(), c
    assert (klines["close_time"] - klines["open_time"] == timedelta(hours=1, milliseconds=-1)).all()
    assert set(klines["market"]) == {"futures_um"} and set(klines["interval"]) == {"1h"}
    # Not in freqtrade's files: null on every row, never zero.
    for c in SOURCE_OPTIONAL:
        assert klines[c].null_count() == klines.height, c
    # The truncated candle is stored as Binance's REST served it.
    eth = klines.filter(
        pl.col("symbol") == "ETHUSDT",
        pl.col("open_time") == datetime(2024, 10, 28, 21, tzinfo=UTC),
    )
    assert eth.select("open", "high", "low", "close").row(0) == (2515.96, 2520.0, 2514.54, 2518.92)


def test_mark_klines_have_prices_only_and_funding_takes_the_mark_open(ctx, imported):
    mark = ctx.catalog.read(imported.refs["mark_klines"]).sort("symbol", "open_time")
    assert "volume" not in mark.columns and mark.height == 2 * HOURS
    funding = ctx.catalog.read(imported.refs["funding_rates"]).sort("symbol", "funding_time")
    assert funding.height == 2 * 14 * 3  # every 8 hours
    for symbol in ("BTCUSDT", "ETHUSDT"):
        raw_mark, raw_rate = _file(symbol, "mark"), _file(symbol, "funding_rate")
        got = mark.filter(pl.col("symbol") == symbol)
        assert got["close"].to_list() == raw_mark["close"].to_list()
        rates = funding.filter(pl.col("symbol") == symbol)
        assert rates["funding_rate"].to_list() == raw_rate["open"].to_list()
        at = raw_mark.filter(pl.col("date").is_in(rates["funding_time"].implode()))
        assert rates["mark_price"].to_list() == at["open"].to_list()


def test_mark_price_is_null_where_no_mark_candle_opens_at_the_funding_time():
    # In the full files BTCUSDT's mark candles start 2019-12-23 11:00, months after its first
    # funding records; here the mark candles are cut to start mid-window instead.
    whole = read_series(FREQTRADE, "BTCUSDT", "1h", start_ms=to_ms(START), end_ms=to_ms(END))
    rates = whole.funding_rates.drop("mark_price")
    marks = whole.mark_klines.filter(pl.col("open_time") >= datetime(2024, 10, 28, tzinfo=UTC))
    out = with_mark_price(rates, marks)
    before = out.filter(pl.col("funding_time") < datetime(2024, 10, 28, tzinfo=UTC))
    assert before.height and before["mark_price"].null_count() == before.height
    assert (
        out.filter(pl.col("funding_time") >= datetime(2024, 10, 28, tzinfo=UTC))[
            "mark_price"
        ].null_count()
        == 0
    )


def test_the_gate_passes_and_lists_the_checks_it_skipped(ctx, imported):
    assert set(imported.checks) == {"klines", "mark_klines", "funding_rates"}
    klines = GateVerdict.of(ctx.catalog.lineage(imported.checks["klines"]))
    assert klines.passed
    assert set(klines.skipped) == {
        *(f"not_null.{c}" for c in SOURCE_OPTIONAL),
        *(f"non_negative.{c}" for c in SOURCE_OPTIONAL),
        "taker_volume_within_total",
    }
    assert "quote_volume" in klines.skipped["not_null.quote_volume"]
    # What the source has is still checked.
    ran = set(ctx.catalog.read(imported.checks["klines"])["check"])
    assert {"not_null.volume", "close_time_exact", "ohlc_consistent", "calendar_gaps"} <= ran
    assert not ran & set(klines.skipped)
    mark = GateVerdict.of(ctx.catalog.lineage(imported.checks["mark_klines"]))
    assert mark.passed and {"not_null.volume", "zero_volume"} <= set(mark.skipped)
    assert GateVerdict.of(ctx.catalog.lineage(imported.checks["funding_rates"])).passed


def test_importing_again_writes_nothing(ctx, imported):
    again = import_freqtrade(
        ctx,
        FREQTRADE,
        symbols=["BTCUSDT", "ETHUSDT"],
        interval="1h",
        start_ms=to_ms(START),
        end_ms=to_ms(END),
        gate=False,
    )
    assert again.rows_written == {"klines": 0, "mark_klines": 0, "funding_rates": 0}
    assert again.refs == imported.refs


def _copy(tmp_path: Path, symbol: str = "BTCUSDT") -> Path:
    root = tmp_path / "ft"
    root.mkdir()
    for kind in ("futures", "mark", "funding_rate"):
        name = f"{pair_name(symbol)}-1h-{kind}.feather"
        shutil.copy(FREQTRADE / name, root / name)
    return root


def test_a_missing_file_says_how_to_download_it(tmp_path):
    root = _copy(tmp_path)
    (root / "BTC_USDT_USDT-1h-mark.feather").unlink()
    with pytest.raises(DataError, match=r"mark candles of BTCUSDT.*freqtrade download-data"):
        read_series(root, "BTCUSDT", "1h")
    with pytest.raises(DataError, match="ETHUSDT"):
        read_series(root, "ETHUSDT", "1h")


def test_wrong_columns_are_refused(tmp_path):
    root = _copy(tmp_path)
    path = root / "BTC_USDT_USDT-1h-futures.feather"
    pl.read_ipc(path).rename({"volume": "vol"}).write_ipc(path)
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['volume'\]"):
        read_series(root, "BTCUSDT", "1h")


def test_a_date_going_back_is_refused(tmp_path):
    root = _copy(tmp_path)
    path = root / "BTC_USDT_USDT-1h-futures.feather"
    df = pl.read_ipc(path)
    swapped = pl.concat([df.slice(0, 10), df.slice(11, 1), df.slice(10, 1), df.slice(12)])
    swapped.write_ipc(path)
    with pytest.raises(DataError, match="not strictly increasing at row 11"):
        read_series(root, "BTCUSDT", "1h")


def test_a_file_that_is_not_feather_is_refused(tmp_path):
    root = _copy(tmp_path)
    (root / "BTC_USDT_USDT-1h-funding_rate.feather").write_text("date,open\n")
    with pytest.raises(DataError, match="not a readable Feather"):
        read_series(root, "BTCUSDT", "1h")


def test_spot_and_unknown_quotes_are_refused(ctx):
    with pytest.raises(ConfigError, match="USD-M"):
        import_freqtrade(ctx, FREQTRADE, symbols=["BTCUSDT"], interval="1h", market="spot")
    with pytest.raises(SchemaError, match="quote asset"):
        pair_name("BTCEUR")


def test_the_cli_imports_and_reports(ctx, tmp_path, capsys):
    cfg = tmp_path / "config.yaml"
    args = ["--config", str(cfg), "data", "ingest", "--source", "freqtrade", "--market", "um"]
    args += ["--symbols", "ETHUSDT", "--interval", "1h", "--start", "2024-10-28"]
    assert main([*args, "--end", "2024-10-29", "--root", str(FREQTRADE)]) == 0
    out = capsys.readouterr().out
    assert "klines         +24 rows" in out and "gate passed" in out
    assert "kept null (the source has none): quote_volume" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*args, "--end", "2024-10-29", "--root", str(empty)]) == 2
    assert "freqtrade download-data" in capsys.readouterr().err
