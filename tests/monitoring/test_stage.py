"""The monitoring stage on a small real catalog: the checks write their datasets, a failed
delivery leaves the alerts pending for the retry, and nothing is sent twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.errors import AlertDeliveryError

# BTC through March 2023, ETH only through March 20: ETH is the stale series on April 1.
AS_OF = datetime(2023, 4, 1, tzinfo=UTC)


@pytest.fixture
def catalog_ctx(ctx):
    from quantlab.schema import KLINES_KEY

    btc = load_sample_klines("BTCUSDT", ("2023-03",))
    eth = load_sample_klines("ETHUSDT", ("2023-03",)).filter(
        pl.col("open_time") < datetime(2023, 3, 20, tzinfo=UTC)
    )
    ctx.catalog.upsert("klines", pl.concat([btc, eth]), KLINES_KEY, stage="ingest")
    return ctx


class FlakySend:
    """Refuses the first `failures` calls, then records what it is sent."""

    def __init__(self, failures: int):
        self.failures = failures
        self.sent: list[list[str]] = []

    def __call__(self, rows: pl.DataFrame) -> str:
        if self.failures:
            self.failures -= 1
            raise AlertDeliveryError("webhook at http://127.0.0.1 answered 500")
        self.sent.append(rows["key"].to_list())
        return "webhook"


def test_a_failed_send_leaves_the_alerts_pending_and_none_is_sent_twice(catalog_ctx):
    from quantlab.monitoring import stage

    ctx, send = catalog_ctx, FlakySend(failures=1)
    with pytest.raises(AlertDeliveryError):
        stage.run(ctx, AS_OF, send=send)
    history = stage.alert_history(ctx)
    assert history.filter(pl.col("sent_at").is_null())["key"].to_list() == [
        "freshness:spot:ETHUSDT:1h"
    ]
    # The retry sends what is pending; a later run with the condition still true sends nothing.
    assert stage.deliver(ctx, send).height == 1
    later = stage.run(ctx, AS_OF + timedelta(hours=1), send=send)
    assert send.sent == [["freshness:spot:ETHUSDT:1h"]]
    assert later.delivered.is_empty()
    fresh = ctx.catalog.read(later.refs["monitor_freshness"])
    btc = fresh.filter(pl.col("subject") == "spot:BTCUSDT:1h").sort("as_of")
    # An hour on, BTC's April 1 00:00 candle (not in the catalog) is one bar late: warn.
    assert btc["level"].to_list() == ["ok", "warn"] and btc["value"].to_list() == [0.0, 1.0]
    assert later.page.exists() and "spot:ETHUSDT:1h" in later.page.read_text()


def test_the_cli_runs_it_and_exits_1_on_an_alert(catalog_ctx, tmp_path, capsys, monkeypatch):
    from quantlab.cli import main

    monkeypatch.delenv("QUANTLAB_ALERT_WEBHOOK_URL", raising=False)
    config = tmp_path / "config.yaml"  # the ctx fixture's (helpers.write_config)
    code = main(["--config", str(config), "monitor", "--as-of", AS_OF.isoformat()])
    out = capsys.readouterr().out
    assert code == 1 and "ALERT freshness spot:ETHUSDT:1h" in out and "status page:" in out
