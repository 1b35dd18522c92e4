"""Virtual positions on real BTCUSDT 1h bars from the shipped sample: created at the venue's entry,
approached-then-hit, stop first when one bar reaches both, expiry, closed when the venue is flat.

Expected bars come from a plain scan of the real highs and lows (numpy), not from the module."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from execution.fakes import FakeLedger, PositionRow
from helpers import load_sample_klines
from quantlab.config.paper import VirtualConfig
from quantlab.execution.virtual import step
from quantlab.portfolio.matching import BarPrices

H = 3_600_000
SYM = "BTCUSDT"


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    k = load_sample_klines(SYM, ("2023-03",))
    return k.select(
        pl.col("open_time").dt.epoch("ms").alias("t"), "open", "high", "low", "close", "volume"
    )


def _bar(bars: pl.DataFrame, i: int) -> BarPrices:
    r = bars.row(i, named=True)
    return BarPrices(r["t"], r["open"], r["high"], r["low"], r["close"], r["volume"])


def _hold(bars, cfg, entry: int, last: int, qty=0.5, scores=None, ledger=None, opened_ms=None):
    """The session's loop: a position filled at bar `entry`'s open, held through bar `last`, flat
    at the bar after; `step` at each bar's close."""
    ledger = ledger or FakeLedger()
    pos = PositionRow(SYM, qty, bars["open"][entry], 0.0, opened_ms or bars["t"][entry])
    events = []
    for i in range(entry, last + 2):
        positions = {SYM: pos} if i <= last else {}
        events += step(
            ledger, "paper", positions, {SYM: _bar(bars, i)}, scores or {}, cfg, bars["t"][i] + H, H
        )
    return ledger, events


def _first(mask: np.ndarray, start: int) -> int:
    hits = np.flatnonzero(mask[start:])
    return start + int(hits[0]) if len(hits) else 10**9


def _scan(bars, entry, cfg):
    """First bars (by index) where the real highs/lows reach each level for an entry at the open."""
    e = bars["open"][entry]
    hi, lo = bars["high"].to_numpy(), bars["low"].to_numpy()
    return {
        "tp_approached": _first(hi >= e * (1 + cfg.approach * cfg.take_profit), entry),
        "tp_hit": _first(hi >= e * (1 + cfg.take_profit), entry),
        "sl_approached": _first(lo <= e * (1 - cfg.approach * cfg.stop_loss), entry),
        "sl_hit": _first(lo <= e * (1 - cfg.stop_loss), entry),
    }


def _at(events, kind):
    return [(e["detail"].get("bar_ms"), e["price"]) for e in events if e["kind"] == kind]


@pytest.mark.parametrize("side", ["tp", "sl"])
def test_approached_then_hit_on_real_bars(bars, side):
    cfg = VirtualConfig(take_profit=0.03, stop_loss=0.02, approach=0.8, max_bars=48)
    other = "sl" if side == "tp" else "tp"
    for entry in range(len(bars) - cfg.max_bars):
        s = _scan(bars, entry, cfg)
        hit = s[f"{side}_hit"]
        level = bars["open"][entry] * (1 + cfg.take_profit if side == "tp" else 1 - cfg.stop_loss)
        gap = bars["open"][hit] >= level if side == "tp" else bars["open"][hit] <= level
        if s[f"{side}_approached"] < hit < min(s[f"{other}_hit"], entry + cfg.max_bars) and not gap:
            break
    else:
        pytest.fail(f"no entry in March 2023 approaches then hits the {side} level")
    ledger, events = _hold(bars, cfg, entry, hit + 2, scores={SYM: (0.61, 2)})
    t = bars["t"]
    assert _at(events, f"{side}_approached")[0][0] == t[s[f"{side}_approached"]]
    assert _at(events, f"{side}_hit") == [(t[hit], pytest.approx(level))]
    want_other = [t[s[f"{other}_approached"]]] if s[f"{other}_approached"] < hit else []
    assert [b for b, _ in _at(events, f"{other}_approached")] == want_other
    assert not _at(events, f"{other}_hit") and not _at(events, "expired")
    (row,) = ledger.vpos_list("paper", None)
    assert (row["status"], row["close_reason"], row["closed_ms"]) == (
        "closed",
        f"{side}_hit",
        t[hit + 3] + H,
    )
    assert (row["entry_score"], row["entry_class"], row["entry_price"]) == (
        0.61,
        2,
        bars["open"][entry],
    )
    # Excursions stop at the exit: the highs and lows before it, then the exit price.
    e = bars["open"][entry]
    hi = max([*bars["high"][entry:hit].to_list(), level if side == "tp" else e]) / e - 1
    lo = min([*bars["low"][entry:hit].to_list(), level if side == "sl" else e]) / e - 1
    assert (row["max_pnl"], row["min_pnl"]) == (
        pytest.approx(max(hi, 0)),
        pytest.approx(min(lo, 0)),
    )
    kinds = [ev["kind"] for ev in events]
    assert kinds[0] == "created" and kinds[-1] == "closed"
    assert kinds.count("price_update") == hit + 3 - entry  # one per bar held, after the exit too


def test_a_bar_reaching_both_levels_counts_the_stop_first(bars):
    cfg = VirtualConfig(take_profit=0.004, stop_loss=0.004, approach=0.5, max_bars=48)
    o, hi, lo = (bars[c].to_numpy() for c in ("open", "high", "low"))
    both = np.flatnonzero((hi >= o * 1.004) & (lo <= o * 0.996))
    assert len(both), "March 2023 has hourly bars ranging 0.8%"
    i = int(both[0])
    _, events = _hold(bars, cfg, i, i)
    assert [e["kind"] for e in events if e["kind"].endswith("_hit")] == ["sl_hit"]
    assert _at(events, "sl_hit") == [(bars["t"][i], pytest.approx(o[i] * 0.996))]


def test_expires_after_max_bars_at_the_close(bars):
    cfg = VirtualConfig(take_profit=0.5, stop_loss=0.5, approach=0.9, max_bars=6)
    ledger, events = _hold(bars, cfg, 100, 110)
    (exp,) = [e for e in events if e["kind"] == "expired"]
    assert exp["detail"] == {"bar_ms": bars["t"][105], "bars_open": 6}
    assert exp["price"] == bars["close"][105]
    (row,) = ledger.vpos_list("paper", None)
    assert row["close_reason"] == "expired" and row["expires_ms"] == bars["t"][100] + 6 * H
    e = bars["open"][100]
    assert row["max_pnl"] == pytest.approx(max(bars["high"][100:106].max() / e - 1, 0))
    assert row["min_pnl"] == pytest.approx(min(bars["low"][100:106].min() / e - 1, 0))


def test_a_fill_inside_a_bar_does_not_see_that_bars_range(bars):
    cfg = VirtualConfig(take_profit=0.001, stop_loss=0.001, approach=0.5)
    _, events = _hold(bars, cfg, 200, 200, opened_ms=bars["t"][200] + H // 2)
    assert [e["kind"] for e in events] == ["created", "price_update", "closed"]


def test_rerunning_a_bar_writes_nothing_and_dust_is_flat(bars):
    cfg = VirtualConfig(take_profit=0.5, stop_loss=0.5)
    ledger = FakeLedger()
    pos = PositionRow(SYM, 0.5, bars["open"][300], 0.0, bars["t"][300])
    now = bars["t"][300] + H
    first = step(ledger, "paper", {SYM: pos}, {SYM: _bar(bars, 300)}, {}, cfg, now, H)
    assert [e["kind"] for e in first] == ["created", "price_update"]
    assert step(ledger, "paper", {SYM: pos}, {SYM: _bar(bars, 300)}, {}, cfg, now, H) == []
    # Sold everything held: the fills' sum is left at the base fee paid on the buy (0.1%).
    dust = PositionRow(SYM, 0.0005, bars["open"][300], 0.0, bars["t"][300])
    out = step(ledger, "paper", {SYM: dust}, {SYM: _bar(bars, 301)}, {}, cfg, now + H, H)
    assert [e["kind"] for e in out] == ["closed"]
    assert out[0]["detail"]["reason"] == "the venue position went flat"
    assert step(ledger, "paper", {SYM: dust}, {SYM: _bar(bars, 302)}, {}, cfg, now + 2 * H, H) == []
    assert len(ledger.vpos_list("paper", None)) == 1


def test_a_position_reopened_between_steps_gets_a_new_virtual_position(bars):
    cfg = VirtualConfig()
    ledger = FakeLedger()
    a = PositionRow(SYM, 0.5, bars["open"][400], 0.0, bars["t"][400])
    step(ledger, "paper", {SYM: a}, {SYM: _bar(bars, 400)}, {}, cfg, bars["t"][400] + H, H)
    b = PositionRow(SYM, 0.3, bars["open"][402], 0.0, bars["t"][402])
    out = step(ledger, "paper", {SYM: b}, {SYM: _bar(bars, 402)}, {}, cfg, bars["t"][402] + H, H)
    assert [e["kind"] for e in out] == ["closed", "created", "price_update"]
    old, new = ledger.vpos_list("paper", None)
    assert old["status"] == "closed" and new["status"] == "open"
    assert (new["entry_ms"], new["qty"], new["entry_price"]) == (
        bars["t"][402],
        0.3,
        bars["open"][402],
    )
    assert set(ledger.vpos_events("paper")["kind"]) >= {"created", "price_update", "closed"}
