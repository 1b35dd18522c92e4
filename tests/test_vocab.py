"""One vocabulary: every config model and command accepts the same markets and intervals."""

from __future__ import annotations

import pytest

from quantlab.vocab import INTERVAL_MS, INTERVALS, MARKETS, bars_per_year


def test_intervals_and_their_lengths_are_one_list():
    assert tuple(INTERVAL_MS) == INTERVALS
    assert list(INTERVAL_MS.values()) == sorted(INTERVAL_MS.values())


@pytest.mark.parametrize(("interval", "bars"), [("1h", 24 * 365), ("4h", 6 * 365), ("1d", 365)])
def test_bars_per_year_counts_a_365_day_year(interval, bars):
    assert bars_per_year(interval) == bars


@pytest.mark.parametrize("interval", INTERVALS)
def test_the_research_universe_and_the_market_data_dag_accept_the_same_intervals(interval):
    from quantlab.config import UniverseConfig
    from quantlab.markets import MarketSpec

    assert UniverseConfig(interval=interval).interval == interval
    assert MarketSpec(symbols=("BTCUSDT",), intervals=(interval,)).intervals == (interval,)


@pytest.mark.parametrize("market", MARKETS)
def test_every_market_is_a_universe_market_and_an_outage_market(market):
    from datetime import UTC, datetime

    from quantlab.config import UniverseConfig
    from quantlab.quality.outages import Outage

    assert UniverseConfig(market=market).market == market
    when = datetime(2023, 3, 24, tzinfo=UTC)
    outage = Outage(market=market, start=when, end=when.replace(hour=1), reason="r", source="s")
    assert outage.covers(market, "BTCUSDT")


def test_the_row_key_is_defined_once():
    """No module keeps its own copy of `KEY`: they all import quantlab.vocab's."""
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "quantlab"
    copies = [
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if re.search(r'^\w*KEY = [(\[]"symbol", "open_time"[)\]]', path.read_text(), re.M)
        and path.name != "vocab.py"
    ]
    assert copies == []


@pytest.mark.parametrize(
    ("at", "newest_closed"),
    [("11:00:00", "10:00:00"), ("10:59:59", "09:00:00"), ("11:00:01", "10:00:00")],
)
def test_last_closed_open_ms_is_the_candle_that_closed_by_then(at, newest_closed):
    from datetime import datetime

    from quantlab.vocab import INTERVAL_MS, last_closed_open_ms

    def ms(t: str) -> int:
        return int(datetime.fromisoformat(f"2023-03-24T{t}+00:00").timestamp() * 1000)

    assert last_closed_open_ms(ms(at), INTERVAL_MS["1h"]) == ms(newest_closed)
