"""The service checks of `quantlab health`, each with a planted fault: MLflow unreachable or
absent, no champion for a configured model, a ledger URL that does not connect; and how
the checks combine (one that raises is its own FAIL; the Airflow task fails on any FAIL)."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from helpers import write_config
from quantlab.health import FAIL, OK, WARN, Result, Unhealthy, require_healthy, run_checks, worst
from quantlab.health import run as health_run
from quantlab.health.services import check_champions, check_ledger, check_mlflow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"OK" if self.path == "/health" else b"no"
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        return None


def test_mlflow_server_answering_or_not():
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        up = check_mlflow(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert up.status == OK and "(OK)" in up.reason
    down = check_mlflow(f"http://127.0.0.1:{free_port()}", timeout=1)
    assert down.status == FAIL and "does not answer" in down.reason


def test_mlflow_local_store(ctx, tmp_path):
    missing = check_mlflow(f"sqlite:///{tmp_path / 'nope' / 'mlflow.db'}")
    assert missing.status == FAIL and "no MLflow store" in missing.reason
    assert not (tmp_path / "nope").exists()  # the check creates nothing
    from quantlab.tracking import start_experiment

    start_experiment(ctx.config.tracking, "health-test")
    got = check_mlflow(ctx.config.tracking.uri)
    assert got.status == OK and "experiment(s)" in got.reason


def _config(tmp_path, regime: bool):
    from quantlab.config import load_config

    return load_config(
        write_config(
            tmp_path,
            train={"register_as": "quantlab-research"},
            lifecycle={"regime": {"enabled": regime}},
        )
    )


def test_a_configured_model_without_champion_fails(tmp_path):
    from quantlab.tracking import start_experiment
    from quantlab.tracking.registry import registry_for

    config = _config(tmp_path, regime=True)
    start_experiment(config.tracking, "health-test")
    none = check_champions(config)
    assert none.status == FAIL
    assert none.details == {
        "quantlab-research": None,
        "quantlab-regime-BTCUSDT": None,
        "quantlab-regime-ETHUSDT": None,
    }
    reg = registry_for(config.tracking.uri)
    source = (tmp_path / "model").as_uri()
    for name in none.details:
        v = reg.register(name, source, None, {"family": "main"})
        if name != "quantlab-regime-ETHUSDT":
            reg.set_champion(name, v.version, by="test")
    one_short = check_champions(config)
    assert one_short.status == FAIL
    assert "no champion for quantlab-regime-ETHUSDT;" in one_short.reason
    # regime models off: the main model's champion is all it takes
    assert check_champions(_config(tmp_path, regime=False)).status == OK


def test_champions_fail_when_the_registry_is_unreachable(tmp_path):
    config = _config(tmp_path, regime=False)
    config = config.model_copy(
        update={
            "tracking": config.tracking.model_copy(
                update={"uri": f"http://127.0.0.1:{free_port()}"}
            )
        }
    )
    got = check_champions(config)
    assert got.status == FAIL and "cannot read the model registry" in got.reason


def test_ledger_check(tmp_path):
    from quantlab.execution.ledger import Ledger

    path = tmp_path / "ledger.sqlite"
    absent = check_ledger(f"sqlite:///{path}")
    assert absent.status == WARN and not path.exists()  # read only: nothing created
    Ledger.connect(f"sqlite:///{path}").close()
    assert check_ledger(f"sqlite:///{path}").status == OK
    (tmp_path / "dir.sqlite").mkdir()
    assert check_ledger(f"sqlite:///{tmp_path / 'dir.sqlite'}").status == FAIL
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    assert check_ledger(f"sqlite:///{tmp_path / 'junk.sqlite'}").status == FAIL
    url = f"postgresql://quant:s3cret-pw@127.0.0.1:{free_port()}/ledger"
    refused = check_ledger(url, timeout=1)
    assert refused.status == FAIL and "does not connect" in refused.reason
    assert "s3cret-pw" not in refused.reason + str(refused.details)  # no password shown
    assert check_ledger("mysql://u:p@h/db").status == FAIL


def test_checks_combine(ctx, monkeypatch):
    def boom(ctx, now):
        raise RuntimeError("planted")

    monkeypatch.setattr(
        health_run,
        "CHECKS",
        {
            "fine": lambda ctx, now: Result("fine", OK, "ok"),
            "meh": lambda ctx, now: Result("meh", WARN, "lagging"),
            "broken": boom,
        },
    )
    got = run_checks(ctx, datetime(2024, 1, 1, tzinfo=UTC))
    assert [(r.name, r.status) for r in got] == [("fine", OK), ("meh", WARN), ("broken", FAIL)]
    assert "RuntimeError: planted" in got[2].reason
    assert worst(got) == FAIL and worst(got[:2]) == WARN and worst([]) == OK
    with pytest.raises(Unhealthy, match="broken: the check raised RuntimeError"):
        require_healthy(ctx)
    monkeypatch.setitem(health_run.CHECKS, "broken", lambda ctx, now: Result("broken", OK, "x"))
    assert require_healthy(ctx)["status"] == WARN
