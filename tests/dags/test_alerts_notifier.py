"""QuantlabNotifier: Airflow's notifier mechanism carrying quantlab's alerts to the log and a
Slack-compatible webhook on 127.0.0.1; as every DAG's on_failure_callback, it announces a
task that failed for good."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import ROOT, WebhookReceiver

ROWS = [
    {
        "key": "freshness:spot:BTCUSDT:1h",
        "check": "freshness",
        "subject": "spot:BTCUSDT:1h",
        "level": "alert",
        "message": "5 bars behind",
        "status": "fired",
    }
]


def test_it_posts_the_alerts_to_the_webhook_in_the_environment(monkeypatch):
    from _alerts import QuantlabNotifier

    with WebhookReceiver() as hook:
        monkeypatch.setenv("QUANTLAB_ALERT_WEBHOOK_URL", hook.url)
        notifier = QuantlabNotifier(alerts=ROWS)
        notifier({})
    assert notifier.channel == "webhook"
    (body,) = hook.bodies
    assert "spot:BTCUSDT:1h" in json.dumps(body["blocks"]) and body["text"]


def test_without_a_url_it_only_logs(monkeypatch, caplog):
    from _alerts import QuantlabNotifier

    monkeypatch.delenv("QUANTLAB_ALERT_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_QUANTLAB_ALERTS", raising=False)
    notifier = QuantlabNotifier(alerts=ROWS)
    with caplog.at_level("WARNING", logger="quantlab.monitoring.alerts"):
        notifier({})
    assert notifier.channel == "log"
    assert "spot:BTCUSDT:1h: 5 bars behind" in caplog.text


def test_a_refusing_webhook_raises_so_the_task_retries(monkeypatch):
    from _alerts import QuantlabNotifier
    from quantlab.errors import AlertDeliveryError

    with WebhookReceiver(status=500) as hook:
        monkeypatch.setenv("QUANTLAB_ALERT_WEBHOOK_URL", hook.url)
        with pytest.raises(AlertDeliveryError) as err:
            QuantlabNotifier(alerts=ROWS)({})
    assert "SECRET-TOKEN" not in str(err.value)


_FAILING_DAG = """
import sys
from datetime import datetime
sys.path.insert(0, {dags!r})
from airflow.sdk import dag, task
from _quantlab import DEFAULT_ARGS

@dag(dag_id="doomed", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
     default_args={{**DEFAULT_ARGS, "retries": 0}}, tags=["test"])
def doomed():
    @task
    def explode():
        raise ValueError("the planted failure")
    explode()

doomed()
"""


@pytest.mark.slow
def test_a_failed_task_is_announced_through_the_callback(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "doomed.py").write_text(textwrap.dedent(_FAILING_DAG.format(dags=str(ROOT / "dags"))))
    airflow = str(Path(sys.executable).parent / "airflow")
    with WebhookReceiver() as hook:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # The connection route: the URL in an Airflow Connection, not quantlab's variable.
            "AIRFLOW_CONN_QUANTLAB_ALERTS": json.dumps({"conn_type": "http", "host": hook.url}),
        }
        env.pop("QUANTLAB_ALERT_WEBHOOK_URL", None)
        run = lambda *a: subprocess.run(  # noqa: E731
            [airflow, *a], env=env, capture_output=True, text=True, timeout=300
        )
        assert run("db", "migrate").returncode == 0
        result = run("dags", "test", "doomed")
    assert len(hook.bodies) == 1, (result.stdout + result.stderr)[-4000:]
    text = json.dumps(hook.bodies[0])
    assert "doomed.explode" in text and "the planted failure" in text
    assert "SECRET-TOKEN" not in result.stdout + result.stderr
