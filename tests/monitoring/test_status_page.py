"""The status page: rendered from small frames in the monitor_* schemas, escaped, with no URL
to load, written atomically, and drawn offline by headless Chromium with a clean console."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantlab.catalog.datasets import DATASETS
from quantlab.monitoring.status_page import EMPTY, StatusData, render_status, write_status

T = datetime(2024, 3, 1, 12, tzinfo=UTC)
EVIL = "<script>alert('x')</script>"


def rows(name: str, *records: dict) -> pl.DataFrame:
    """A frame of dataset `name`: the records, every column not given null."""
    schema = DATASETS[name].schema
    full = [{c: r.get(c) for c in schema} for r in records]
    frame = pl.DataFrame(full, schema=schema, orient="row")
    DATASETS[name].check(frame)
    return frame


def common(check: str, subject: str, level: str, value, threshold, message: str) -> dict:
    return dict(as_of=T, check=check, subject=subject, level=level, value=value,
                threshold=threshold, message=message)  # fmt: skip


def drift_row(feature: str, psi: float | None, rank: int | None, level: str) -> dict:
    return common("drift", f"lgbm/{feature}", level, psi, 0.25, f"{feature} drifted") | {
        "model": "lgbm", "model_version": 3, "feature": feature, "psi": psi, "rank": rank,
        "recent_rows": 168, "reference_rows": 2000,
    }  # fmt: skip


def paper_row(measure: str, value: float, threshold: float | None, level: str) -> dict:
    return common("paper", f"main/{measure}", level, value, threshold, f"{measure} is {value}") | {
        "account": "main", "measure": measure, "time": T, "equity": 9_500.0,
    }  # fmt: skip


def data(**override) -> StatusData:
    base = dict(
        as_of=T,
        freshness=rows(
            "monitor_freshness",
            common("freshness", "spot:BTCUSDT:1h", "alert", 5.0, 3.0, "5 bars behind: run market_data")
            | {"market": "spot", "symbol": "BTCUSDT", "interval": "1h", "lag_bars": 5,
               "newest_open": T - timedelta(hours=6)},
            common("freshness", EVIL, "ok", 0.0, 3.0, "fresh") | {"lag_bars": 0},
        ),
        gate=rows("monitor_gate", common("gate", "klines_checks", "ok", 1.0, 1.0, "passed")
                  | {"dataset": "klines_checks", "version": 7, "passed": True, "failed_checks": ""}),
        drift=rows("monitor_drift", drift_row("ret_24", 0.41, 1, "alert"),
                   drift_row("vol_24", 0.12, 2, "warn"), drift_row("rsi_14", 0.01, 3, "ok")),
        accuracy=rows("monitor_accuracy", *(
            common("accuracy", f"lgbm/{d}d/BTCUSDT", lvl, acc, 0.45, "live accuracy")
            | {"model": "lgbm", "model_version": 3, "window_days": d, "symbol": "BTCUSDT",
               "rows": 24 * d, "accuracy": acc, "source": "live"}
            for d, acc, lvl in ((7, 0.44, "alert"), (14, 0.52, "ok"), (30, 0.55, "ok"))
        )),
        paper=rows("monitor_paper", paper_row("pnl", -500.0, None, "ok"),
                   paper_row("drawdown", 0.2, 0.25, "warn"),
                   paper_row("exposure", 0.6, 1.0, "ok")),
        tasks=rows("monitor_tasks", common("tasks", "research.train", "alert", 1.0, 1.0, "failed")
                   | {"dag_id": "research", "task_id": "train", "tries": 2, "failed": 1}),
        alerts=rows("monitor_alerts",
                    {"key": "freshness:spot:BTCUSDT:1h", "check": "freshness", "status": "fired",
                     "subject": "spot:BTCUSDT:1h", "level": "alert", "message": "stale", "at": T}),
        equity=pl.DataFrame({
            "account": "main",
            "time": [T - timedelta(hours=h) for h in (48, 36, 24, 12, 0, -1)],
            "equity": [10_000.0, 11_000.0, 10_200.0, 8_800.0, 9_500.0, 1.0],  # the last: after as_of
            "cash": 5_000.0, "gross_exposure": 5_000.0,
        }).with_columns(pl.col("time").cast(pl.Datetime("ms", "UTC"))),
        history=pl.DataFrame([
            common("freshness", "spot:BTCUSDT:1h", "ok", float(v), 3.0, "") | {"as_of": T - timedelta(hours=h)}
            for h, v in ((3, 0), (2, 2), (1, 4))
        ]).with_columns(pl.col("as_of").cast(pl.Datetime("ms", "UTC"))),
    )  # fmt: skip
    return StatusData(**(base | override))


def empty() -> StatusData:
    return StatusData(
        as_of=T.replace(tzinfo=None),  # naive: read as UTC
        **{k: pl.DataFrame(schema=DATASETS[f"monitor_{k}"].schema) for k in
           ("freshness", "gate", "drift", "accuracy", "paper", "tasks", "alerts")},
    )  # fmt: skip


def test_the_page_escapes_every_value_and_loads_nothing():
    page = render_status(data())
    assert "<script" not in page and html_escaped(EVIL) in page
    assert not re.search(r"(src|href)\s*=", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page
    assert page.count("<section id=") == 6


def html_escaped(text: str) -> str:
    import html

    return html.escape(text)


def test_the_headline_names_the_worst_level_and_the_counts():
    page = render_status(data())
    headline = re.search(r"<div class='box' id='headline'>.*?</div>", page, re.S).group(0)
    assert "id='worst-level' class='badge level-alert'>alert<" in headline
    # freshness 1 alert 1 ok, gate ok, drift alert warn ok, accuracy alert ok ok, paper
    # ok warn ok, tasks alert: 4 alert, 2 warn, 7 ok
    assert "4 alert, 2 warn, 7 ok, 0 n/a" in headline and "across 13 checks" in headline
    assert "<b id='alerts-fired'>1</b> alert(s) fired, 0 resolved" in headline


def test_empty_sections_say_why_and_the_headline_is_n_a():
    page = render_status(empty())
    for key in ("freshness", "gate", "drift", "accuracy", "paper", "tasks", "alerts"):
        assert html_escaped(EMPTY[key]) in page, key
    assert "class='badge level-n/a'>n/a<" in page and "<svg" not in page
    assert "as of 2024-03-01 12:00 UTC" in page


def test_drift_lists_unjudged_features_and_plots_only_the_judged():
    na = rows("monitor_drift", drift_row("ret_24", None, None, "n/a"))
    page = render_status(data(drift=na))
    assert "ret_24 drifted" in page and "id='psi-chart'" not in page
    assert html_escaped(EMPTY["drift"]) not in page


def test_write_status_replaces_the_page_atomically(tmp_path):
    path = write_status(data(), tmp_path / "status" / "index.html")
    first = path.read_text()
    assert "spot:BTCUSDT:1h" in first
    assert path.stat().st_mode & 0o777 == 0o644  # readable by whoever serves the page
    broken = data(freshness=pl.DataFrame({"level": ["alert"]}))  # no subject: rendering fails
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        write_status(broken, path)
    assert path.read_text() == first  # the old page stays whole
    assert [p.name for p in path.parent.iterdir()] == ["index.html"]  # no temp file left
    write_status(empty(), path)
    assert "No series checked" in path.read_text()


def test_the_page_draws_offline_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By

    from helpers import headless_chromium

    path = write_status(data(), tmp_path / "status.html")
    driver = headless_chromium(
        "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>", browser_log=True
    )
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        driver.get(path.as_uri())
        assert driver.title == "quantlab status 2024-03-01 12:00 UTC"
        assert driver.find_element(By.ID, "worst-level").text == "alert"
        for key in ("freshness", "drift", "accuracy", "paper", "tasks", "alerts"):
            assert driver.find_element(By.ID, key).is_displayed(), key
        chart = driver.find_element(By.ID, "psi-chart")
        assert chart.size["width"] > 300 and chart.size["height"] > 50
        bars = chart.find_elements(By.TAG_NAME, "rect")
        assert (
            len(bars) == 3 and bars[0].size["width"] > bars[1].size["width"] > bars[2].size["width"]
        )
        equity = driver.find_element(By.CSS_SELECTOR, "svg.equity[data-account='main']")
        assert equity.size["height"] > 100
        assert "drawdown 20.0% max" in equity.text  # 8,800 against the 11,000 peak
        sparks = driver.find_elements(By.CSS_SELECTOR, "#freshness-table svg.spark")
        assert len(sparks) == 1  # only BTCUSDT has earlier runs
        acc = driver.find_elements(By.CSS_SELECTOR, "#accuracy-table tbody tr")
        assert [r.find_elements(By.TAG_NAME, "td")[2].text for r in acc] == ["7", "14", "30"]
        assert EVIL in driver.find_element(By.ID, "freshness-table").text  # shown as text
        alerts = driver.find_element(By.ID, "alerts-table").text
        assert "fired" in alerts and "stale" in alerts
        assert driver.execute_script("return navigator.onLine") is False
        assert driver.execute_script("return document.scripts.length") == 0
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        driver.quit()
