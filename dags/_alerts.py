"""quantlab's alerts through Airflow's notifier mechanism (a module beside the DAG files that
defines no DAG).

`QuantlabNotifier` logs each alert and posts them, as one Slack-compatible message, to the
webhook whose URL is the environment variable `monitoring.alerts.webhook_env` or else the
Airflow Connection `monitoring.alerts.connection_id` (its host holds the whole URL, or its
extra `webhook_url`). The URL is masked in the task log and never written anywhere. It is
used twice:

- the monitoring DAG's `notify` task calls it on the alerts the run planned (rate-limited by
  `quantlab.monitoring.alerts`), and marks them sent only once it returned;
- every quantlab DAG's `on_failure_callback` (DEFAULT_ARGS) calls it on a task that failed
  for good, with the DAG, task, run, try and error.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier


def webhook_url(connection_id: str, env: str) -> str | None:
    """The webhook URL from `env`, else the Airflow Connection `connection_id`; None: log only."""
    import os

    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.log import mask_secret

    url = os.environ.get(env) or None
    if url is None:
        try:
            conn = Connection.get(connection_id)
        except AirflowNotFoundException:
            return None
        host = conn.host or ""
        url = host if host.startswith(("http://", "https://")) else None
        url = conn.extra_dejson.get("webhook_url") or url
    if url:
        mask_secret(url)
    return url


def failure_alert(context: Any) -> list[dict]:
    """One alert for the task instance that failed in `context`."""
    ti = context["ti"]
    exc = context.get("exception")
    subject = f"{ti.dag_id}.{ti.task_id}"
    what = f"{type(exc).__name__}: {exc}" if exc is not None else "no error recorded"
    return [
        {
            "key": f"task_failure:{subject}:{ti.run_id}",
            "check": "task_failure",
            "subject": subject,
            "level": "alert",
            "status": "fired",
            "message": f"{subject} failed in run {ti.run_id} (try {ti.try_number}): {what}"[:3000]
            + "; read the task's log in the Airflow UI, fix the cause, then clear the task",
        }
    ]


class QuantlabNotifier(BaseNotifier):
    """Alerts to the log and the webhook. `alerts`: monitor_alerts rows to send; None: the
    failed task in the callback's context. `channel` says where the last call sent them."""

    def __init__(self, alerts: list[dict] | None = None):
        super().__init__()
        self.alerts = alerts
        self.channel: str | None = None

    def notify(self, context: Any) -> None:
        import polars as pl

        from quantlab.config import load_config
        from quantlab.monitoring.delivery import send_alerts

        cfg = load_config().monitoring.alerts
        rows = self.alerts if self.alerts is not None else failure_alert(context)
        url = webhook_url(cfg.connection_id, cfg.webhook_env)
        self.channel = send_alerts(pl.DataFrame(rows), url, cfg)
