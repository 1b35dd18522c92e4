"""`quantlab predict SYMBOL [--json]` on a trained, judged catalog (tests/serving/support.py)."""

from __future__ import annotations

import contextlib
import io
import json

import polars as pl

from quantlab.cli import main


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_predict_json_is_the_champions_signal_for_the_newest_bar(served):
    code, out, _ = _run("--config", str(served.config), "predict", "btcusdt", "--json")
    assert code == 0
    answer = json.loads(out)
    newest = (
        served.ctx.catalog.read(served.predictions)
        .filter(pl.col("symbol") == "BTCUSDT", pl.col("fold") == -1)
        .sort("open_time")
        .row(-1, named=True)
    )
    assert answer["symbol"] == "BTCUSDT"
    assert answer["open_time"] == newest["open_time"].isoformat()
    assert answer["score"] == newest["score"]
    assert answer["signal"] in ("buy", "hold", "sell")
    assert list(answer["probabilities"]) == ["down", "up"]
    assert sum(answer["probabilities"].values()) == 1.0
    assert answer["uri"] == f"models:/{answer['model']}/{answer['version']}"
    assert answer["latency_ms"] > 0


def test_predict_prints_the_signal_the_model_and_the_latency(served):
    code, out, _ = _run("--config", str(served.config), "predict", "ETHUSDT")
    assert code == 0
    assert out.startswith("ETHUSDT bar ")
    assert "quantlab-research v" in out and " ms" in out


def test_an_unknown_symbol_is_an_error_that_says_what_to_do(served):
    code, out, err = _run("--config", str(served.config), "predict", "DOGEUSDT", "--json")
    assert code == 2 and out == ""
    assert "DOGEUSDT is not in universe.symbols" in err and "make run" in err


def test_no_catalog_is_an_error_that_says_what_to_do(tmp_path):
    from helpers import write_config

    code, _, err = _run("--config", str(write_config(tmp_path)), "predict", "BTCUSDT")
    assert code == 2
    assert "make run" in err
