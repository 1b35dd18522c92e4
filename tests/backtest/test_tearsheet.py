"""quantlab.backtest.tearsheet: one self-contained page, opened offline in headless Chromium.

The page is rendered from a contract-shaped result on real shipped prices, written to a file,
and opened with the network switched off (DevTools offline emulation, and no URL it could
fetch): every chart must draw its SVG, the console must stay free of errors, and the trials
box must show the N, PSR, DSR and MinTRL the statistics computed.
"""

from __future__ import annotations

import re

import pytest

from backtest.result_fixture import build_result, load_bars
from helpers import headless_chromium
from quantlab.backtest import charts
from quantlab.backtest.stats import summarize
from quantlab.backtest.tearsheet import render_tearsheet, trials_box
from quantlab.backtest.trials import TrialSet

PPY = 8760
CHARTS = ("equity", "underwater", "monthly", "rolling", "exposure", "contribution", "costs")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    bars = load_bars()
    result = build_result(bars)
    trials = TrialSet().extend("optuna", [0.5, 1.0, -0.3, 2.0, None], periods_per_year=PPY)
    trials = trials.extend("signal_grid", [0.8, 1.9], periods_per_year=PPY)
    stats = summarize(result, periods_per_year=PPY, benchmark=bars, trials=trials)
    text = render_tearsheet(result, stats, title="fixture <book>", benchmark=bars, trials=trials)
    path = tmp_path_factory.mktemp("tearsheet") / "tearsheet.html"
    path.write_text(text, encoding="utf-8")
    return path, text, stats, result


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium(
        # Belt and braces with the offline emulation below: any fetch goes to a dead proxy.
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        browser_log=True,
    )
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        yield driver
    finally:
        driver.quit()


def test_the_page_needs_no_network(page):
    _, text, _, _ = page
    assert not re.search(r"<script[^>]+src=", text), "every script must be inline"
    assert not re.search(r"<link[^>]+href=", text), "no external stylesheet"
    assert text.count("plotly.js v") == 1  # the library is embedded once, not per chart
    assert len(text) < 12_000_000


def test_the_tearsheet_draws_offline_in_chromium(page, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    path, _, stats, result = page
    browser.get(path.as_uri())
    WebDriverWait(browser, 60).until(
        lambda d: all(
            d.find_elements(By.CSS_SELECTOR, f"#chart-{name} svg.main-svg") for name in CHARTS
        )
    )
    for name in CHARTS:
        traces = browser.execute_script(
            f"return document.getElementById('chart-{name}').data.length"
        )
        assert traces >= 1, name
    assert browser.execute_script("return navigator.onLine") is False  # it really was offline
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []

    box = browser.find_element(By.ID, "trials").text
    assert f"Tried {stats['n_trials']} configuration(s)" in box and stats["n_trials"] == 7
    assert f"DSR = {stats['dsr']:.1%}" in box and f"PSR = {stats['psr']:.1%}" in box
    assert f"{stats['min_trl']:,.0f} bars" in box
    assert "unskilled" in box and "count in N but not in V[SR]" in box

    assert browser.title == "fixture <book>"
    fills = browser.find_elements(By.CSS_SELECTOR, "#fills tbody tr")
    assert len(fills) == result.fills.height
    reasons = browser.find_element(By.ID, "rejection-reasons").text
    assert f"min_notional {result.rejections.height}" in reasons
    kills = browser.find_elements(By.CSS_SELECTOR, "#kills tbody tr")
    assert len(kills) == result.kills.height
    assert "at bar prices" in browser.find_element(By.TAG_NAME, "body").text


def test_monthly_returns_compound_the_bars(page):
    _, _, _, result = page
    months = charts.monthly_returns(result.equity)
    assert months.height == 3
    total = (1 + months["return"]).product() - 1
    assert total == pytest.approx(result.equity["equity"][-1] / result.init_cash - 1, rel=1e-9)


def test_the_trials_box_in_plain_words_for_one_trial():
    stats = {
        "sharpe": 1.3,
        "n_periods": 900,
        "n_trials": 1,
        "psr": 0.91,
        "dsr": 0.91,
        "min_trl": None,
        "dsr_note": "N = 1: no other configuration was recorded, so DSR = PSR(0)",
    }
    box = trials_box(stats)
    assert "Tried <b id='n-trials'>1</b>" in box and "DSR = <b id='dsr'>91.0%</b>" in box
    assert "none</b> is long enough" in box and "DSR = PSR(0)" in box


def test_a_flat_book_renders_with_no_numbers_made_up():
    bars = load_bars()
    flat = build_result(bars, min_notional=1e12)
    stats = summarize(flat, periods_per_year=PPY, benchmark=bars)
    text = render_tearsheet(flat, stats, title="flat", benchmark=bars)
    assert "<b id='dsr'>n/a</b>" in text and "<b id='psr'>n/a</b>" in text
    assert "id='fills-empty'" in text and "The kill-switch never tripped." in text
    assert "id='rejection-reasons'" in text


def test_a_page_that_links_plotly_from_a_cdn_does_not_draw_here(browser, tmp_path):
    """The offline check has teeth: the same chart with plotly.js from its CDN stays blank."""
    from selenium.webdriver.common.by import By

    fig = charts.costs_figure(build_result(load_bars()))
    linked = fig.to_html(full_html=True, include_plotlyjs="cdn", div_id="chart-costs")
    path = tmp_path / "cdn.html"
    path.write_text(linked, encoding="utf-8")
    browser.get(path.as_uri())
    assert browser.find_elements(By.ID, "chart-costs")
    assert browser.execute_script("return typeof Plotly") == "undefined"
    assert not browser.find_elements(By.CSS_SELECTOR, "#chart-costs svg.main-svg")
