"""Delivering alerts: each one to the log, and all of them in one Slack-compatible message to
the webhook when a URL is configured. The URL is a secret (a Slack webhook's path is its
credential): it comes from the environment (`monitoring.alerts.webhook_env`) or, in Airflow,
from the Connection the DAG layer resolves; it is handed to the log maskers and never logged."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import polars as pl

from quantlab import secrets

if TYPE_CHECKING:
    import httpx

    from quantlab.config.monitoring import AlertsConfig

log = logging.getLogger("quantlab.monitoring.alerts")


def send_alerts(
    rows: pl.DataFrame,
    url: str | None,
    cfg: AlertsConfig,
    *,
    title: str = "quantlab",
    client: httpx.Client | None = None,
) -> str:
    """Log every alert in `rows` (monitor_alerts columns), then post them to `url` as one
    message; the channel used ("webhook", or "log" without a URL). AlertDeliveryError when
    the webhook refuses or does not answer."""
    from quantlab.monitoring.webhook import post_json, slack_payload

    for r in rows.iter_rows(named=True):
        log.warning("alert [%s] %s %s: %s", r["level"], r["check"], r["subject"], r["message"])
    if not url:
        return "log"
    secrets.mask(url)
    post_json(url, slack_payload(rows, title=title), timeout=cfg.timeout_s, client=client)
    return "webhook"


def sender(cfg: AlertsConfig, url: str | None = None) -> Callable[[pl.DataFrame], str]:
    """A `send` for `quantlab.monitoring.stage.deliver`: to `url`, else the URL in the
    environment variable `cfg.webhook_env`, else the log only."""
    target = url or os.environ.get(cfg.webhook_env) or None
    return lambda rows: send_alerts(rows, target, cfg)
