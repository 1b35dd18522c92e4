"""The `monitoring:` section: the monitoring DAG's schedule, each check's thresholds and the
alerts' delivery (`quantlab.monitoring`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from quantlab.config.data import _Model


class FreshnessConfig(_Model):
    """A series is stale when its newest candle is this many intervals behind the newest
    closed one at the check's time."""

    warn_lag_bars: int = Field(default=1, ge=1)
    alert_lag_bars: int = Field(default=3, ge=1)


class DriftConfig(_Model):
    """Population stability index of each feature: recent rows against the champion's
    training rows, on the reference's quantile bins."""

    recent_days: int = Field(default=30, ge=1, description="the recent window, up to the check")
    reference_days: int | None = Field(
        default=180, ge=1, description="the last N days of the champion's training; null: all"
    )
    bins: int = Field(default=10, ge=2, le=100)
    warn_psi: float = Field(default=0.1, gt=0)
    alert_psi: float = Field(default=0.25, gt=0)
    min_rows: int = Field(default=50, ge=1, description="fewer recent rows: not judged")
    top: int = Field(default=10, ge=1, description="features listed as the top drifting")


class AccuracyMonitorConfig(_Model):
    """The champion's live accuracy (the lifecycle tracker's windows) against a floor."""

    warn_below: float = Field(default=0.5, ge=0, le=1)
    alert_below: float = Field(default=0.45, ge=0, le=1)
    min_rows: int = Field(default=24, ge=1, description="fewer resolved rows: not judged")


class PaperMonitorConfig(_Model):
    """Paper P&L, exposure and drawdown against the circuit breakers' levels
    (`risk.kill_drawdown`, `risk.kill_daily_loss`, `paper.limits.reduce_drawdown`)."""

    warn_fraction: float = Field(
        default=0.75, gt=0, le=1, description="warn at this share of a breaker's level"
    )
    max_gross_exposure: float | None = Field(
        default=None,
        gt=0,
        description="gross exposure / equity above this: alert; null: paper.max_gross",
    )


class TasksMonitorConfig(_Model):
    """Task failures and durations of the other DAGs, from Airflow's metadata database."""

    lookback_hours: float = Field(default=24, gt=0)
    dags: tuple[str, ...] = (
        "market_data",
        "research",
        "retrain_incremental",
        "retrain_full",
        "model_monitor",
        "paper_trading",
    )
    alert_failures: int = Field(
        default=3, ge=1, description="failed tries of one task that alert (one: its DAG's callback)"
    )
    slow_factor: float = Field(
        default=3.0, gt=1, description="a task run this many times its median: warn"
    )


class AlertsConfig(_Model):
    """Where alerts go and how often one condition may repeat. The webhook URL is a secret:
    read from `webhook_env`, else the Airflow Connection `connection_id`; never logged."""

    min_level: Literal["warn", "alert"] = "alert"
    repeat_after_hours: float = Field(
        default=6, gt=0, description="a condition still true re-alerts after this long"
    )
    webhook_env: str = "QUANTLAB_ALERT_WEBHOOK_URL"
    connection_id: str = "quantlab_alerts"
    timeout_s: float = Field(default=10, gt=0)


class MonitoringConfig(_Model):
    schedule: str | None = Field(
        default="15 * * * *", description="cron in `timezone` for the monitoring DAG; null: by hand"
    )
    timezone: str = "UTC"
    experiment: str = "quantlab-monitoring"  # the MLflow experiment its metrics go to
    freshness: FreshnessConfig = FreshnessConfig()
    drift: DriftConfig = DriftConfig()
    accuracy: AccuracyMonitorConfig = AccuracyMonitorConfig()
    paper: PaperMonitorConfig = PaperMonitorConfig()
    tasks: TasksMonitorConfig = TasksMonitorConfig()
    alerts: AlertsConfig = AlertsConfig()
