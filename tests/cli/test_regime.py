"""`quantlab regime current|history SYMBOL` on a catalog with per-symbol regime champions
(tests/serving/support.py: small six-class LightGBMs on the real features)."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import datetime, timedelta

import pytest

from quantlab.cli import main
from quantlab.vocab import REGIMES


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_regime_current_json_has_the_six_probabilities_in_order(served):
    code, out, _ = _run("--config", str(served.config), "regime", "current", "BTCUSDT", "--json")
    assert code == 0
    answer = json.loads(out)
    probs = answer["probabilities"]
    assert list(probs) == list(REGIMES)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12)
    assert answer["regime"] in REGIMES
    assert answer["regime"] == max(probs, key=probs.get)
    assert answer["confidence"] == max(probs.values())
    assert answer["model"] == "quantlab-regime-BTCUSDT"
    assert answer["latency_ms"] > 0


def test_regime_history_json_has_one_row_per_hour(served):
    argv = ("--config", str(served.config), "regime", "history", "ETHUSDT", "--hours", "6")
    code, out, _ = _run(*argv, "--json")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert len(rows) == 6
    times = [datetime.fromisoformat(r["open_time"]) for r in rows]
    assert times[-1] - times[0] == timedelta(hours=5)
    for row in rows:
        assert list(row["probabilities"]) == list(REGIMES)
        assert row["confidence"] == row["probabilities"][row["regime"]]
    code, text, _ = _run(*argv)
    assert code == 0 and len(text.splitlines()) == 6 + 3  # title, header, rows, latency


def test_regime_of_a_symbol_without_a_model_says_what_to_do(served):
    code, out, err = _run("--config", str(served.config), "regime", "current", "SOLUSDT")
    assert code == 2 and out == ""
    assert "SOLUSDT is not in universe.symbols" in err


def test_hours_must_be_positive(served):
    with pytest.raises(SystemExit):
        _run("--config", str(served.config), "regime", "history", "BTCUSDT", "--hours", "0")
