"""`quantlab health [--json]`: a table or one JSON object, exit 1 on any FAIL."""

from __future__ import annotations

import json

from helpers import write_config
from quantlab.cli import main
from quantlab.health import FAIL, OK, WARN, Result
from quantlab.health import run as health_run


def test_a_fresh_project_fails_and_says_what_is_missing(tmp_path, capsys):
    config = write_config(tmp_path, train={"register_as": "quantlab-research"})
    code = main(["--config", str(config), "health", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["status"] == FAIL
    names = [c["name"] for c in out["checks"]]
    assert names == [
        "catalog",
        "klines_freshness",
        "gate",
        "mlflow",
        "champions",
        "ledger",
        "paper",
    ]
    by_name = {c["name"]: c for c in out["checks"]}
    assert by_name["catalog"]["status"] == FAIL and "make run" in by_name["catalog"]["reason"]
    assert by_name["mlflow"]["status"] == FAIL
    assert by_name["ledger"]["status"] == WARN  # the paper stage has not created it yet
    assert by_name["paper"]["status"] == WARN


def test_warnings_alone_exit_zero_and_print_a_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        health_run,
        "CHECKS",
        {
            "catalog": lambda ctx, now: Result("catalog", OK, "12 datasets"),
            "klines_freshness": lambda ctx, now: Result(
                "klines_freshness", WARN, "BTCUSDT: 3 bars behind"
            ),
        },
    )
    code = main(["--config", str(write_config(tmp_path)), "health"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].split() == ["OK", "catalog", "12", "datasets"]
    assert lines[1].startswith("WARN  klines_freshness  BTCUSDT: 3 bars behind")
    assert lines[-1] == WARN
