"""Take-profit and stop-loss scaled by the EWMA sigma at entry, on crafted paths (synthetic
prices, labelled so): which bar exits, and that the run stays flat until a new direction."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import polars as pl
import pytest

from quantlab.config import RiskConfig, SignalConfig
from quantlab.portfolio.sizing import size_targets

HOURLY = 24 * 365
RAW = SignalConfig(smoothing=1, threshold=0.1, allow_short=True)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
WARM = 30  # bars of alternating +-1% moves: the EWMA sigma settles near 1% per bar


def _synthetic(after: list[float], scores: list[float]):
    """Synthetic closes: WARM bars alternating +-1%, then `after`; each open is the prior close."""
    closes = [100.0]
    for i in range(WARM):
        closes.append(closes[-1] * (1.01 if i % 2 == 0 else 1 / 1.01))
    closes += after
    n = len(closes)
    times = pl.datetime_range(
        T0, T0.replace(day=1 + (n - 1) // 24, hour=(n - 1) % 24), "1h", eager=True
    )
    bars = pl.DataFrame(
        {"symbol": "SYN", "open_time": times, "open": [closes[0], *closes[:-1]], "close": closes}
    ).with_columns(pl.col("open_time").dt.cast_time_unit("ms"))
    full = [0.0] * (n - len(scores)) + scores
    preds = bars.select("symbol", "open_time").with_columns(score=pl.Series(full))
    return bars, preds


def _cfg(**kw):
    return RiskConfig(vol_halflife=None, vol_lambda=0.9, vol_min_bars=10, max_net=10, **kw)


def test_a_long_takes_profit_when_a_close_clears_entry_plus_m_sigma_sqrt_h():
    # Decided long at bar WARM (the last warm-up close); entered at the next open (its close).
    last = 100.0 * 1.01 ** (WARM % 2)  # where the alternating path ends
    path = [last * 1.005, last * 1.012, last * 1.03, last * 1.0, last * 1.0]
    bars, preds = _synthetic(path, [0.9] * 6)
    out = size_targets(preds, bars, _cfg(take_profit=1.0), RAW, HOURLY).sort("open_time")
    sigma = out["vol"][WARM] / math.sqrt(HOURLY)
    entry = bars["open"][WARM + 1]
    for k in range(WARM + 1, WARM + 6):
        h = k - WARM
        hit = bars["close"][k] / entry - 1 >= sigma * math.sqrt(h)
        if hit:
            break
    assert k == WARM + 3  # the +3% close, not the +1.2% one
    exits = out["exit"].to_list()
    assert exits[WARM : WARM + 3] == [0, 0, 0] and exits[WARM + 3 :] == [1, 1, 1]
    weights = out["target_weight"].to_list()
    assert all(w > 0 for w in weights[WARM : WARM + 3])
    assert all(w == 0 for w in weights[WARM + 3 :])  # flat from that close, price back or not


def test_a_short_stops_out_on_a_rise_and_a_new_run_trades_again():
    last = 100.0 * 1.01 ** (WARM % 2)
    path = [last, last * 1.001, last * 1.05, last * 1.05, last * 1.05, last * 1.05]
    scores = [-0.9, -0.9, -0.9, -0.9, 0.9, 0.9, 0.9]  # short from WARM, long from WARM + 4
    bars, preds = _synthetic(path, scores)
    out = size_targets(preds, bars, _cfg(stop_loss=2.0), RAW, HOURLY).sort("open_time")
    # Entered at open[WARM + 1] (= close[WARM]); +0.1% is inside 2 sigma sqrt(2), +5% is not.
    assert out["exit"].to_list()[WARM:] == [0, 0, 0, 2, 0, 0, 0]
    w = out["target_weight"].to_list()[WARM:]
    assert w[0] < 0 and w[1] < 0 and w[2] < 0 and w[3] == 0 and w[4] > 0


def test_exits_off_leave_the_policy_weights_alone():
    last = 100.0 * 1.01 ** (WARM % 2)
    bars, preds = _synthetic([last * 1.2] * 4, [0.9] * 5)
    out = size_targets(preds, bars, _cfg(), RAW, HOURLY)
    assert (out["exit"] == 0).all()
    assert (out["target_weight"] == out["raw_weight"]).all()


@pytest.mark.parametrize("mult", [0.5, 1.0, 3.0])
def test_a_wider_stop_exits_no_earlier(mult):
    last = 100.0 * 1.01 ** (WARM % 2)
    down = [last * (1 - 0.015 * i) for i in range(1, 12)]
    bars, preds = _synthetic(down, [0.9] * 12)
    first = size_targets(preds, bars, _cfg(stop_loss=mult), RAW, HOURLY).sort("open_time")
    wider = size_targets(preds, bars, _cfg(stop_loss=mult * 2), RAW, HOURLY).sort("open_time")
    exit_at = first["exit"].arg_max() if first["exit"].max() else len(first)
    later = wider["exit"].arg_max() if wider["exit"].max() else len(wider)
    assert first["exit"].max() == 2 and later >= exit_at
