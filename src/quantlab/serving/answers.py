"""What `quantlab predict` and `quantlab regime current/history` answer, as JSON-ready dicts.

The main model's signal is the project's own rule (`quantlab.portfolio.signals`): the mean
of the newest `signal.smoothing` scores against `signal.threshold`, as the backtest and
risk sizing read it; buy is direction +1, sell -1 (a short, where allowed), hold 0 (flat).
"""

from __future__ import annotations

from typing import Any

from quantlab.serving.model import REGIME_COLUMNS
from quantlab.serving.scorer import Scored, Scorer
from quantlab.vocab import REGIMES

SIGNALS = {1: "buy", 0: "hold", -1: "sell"}
_PROB = {"down": "prob_down", "flat": "prob_flat", "up": "prob_up"}


def _model(scored: Scored) -> dict[str, Any]:
    ref = scored.model.ref
    return {
        "model": ref.name,
        "version": ref.version,
        "uri": ref.uri,
        "klines": f"{scored.klines.name}@v{scored.klines.version}",
    }


def _time(value: Any) -> str:
    return value.isoformat()


def predict(scorer: Scorer, symbol: str) -> dict[str, Any]:
    """The champion's signal for `symbol`'s newest closed bar."""
    from quantlab.portfolio.signals import directions_from_scores, smooth_scores

    cfg = scorer.ctx.config.signal
    scored = scorer.score(scorer.main_name(symbol), symbol, cfg.smoothing)
    rows = scored.rows
    smoothed = smooth_scores(rows.select("symbol", "open_time", "score"), cfg)
    direction = int(directions_from_scores(smoothed, cfg)["direction"][-1])
    newest = rows.row(-1, named=True)
    values = {c: newest[col] for c, col in _PROB.items()}
    if scored.model.task == "binary":  # the booster gives P(up); the classes are down, up
        values["down"] = 1.0 - newest["prob_up"]
    probs = {c: values[c] for c in scored.model.classes if c in values}
    return {
        "symbol": symbol,
        "open_time": _time(newest["open_time"]),
        "signal": SIGNALS[direction],
        "direction": direction,
        "score": newest["score"],
        "smoothed_score": smoothed["score"][-1],
        "smoothing": cfg.smoothing,
        "threshold": cfg.threshold,
        "probabilities": probs,
        "pred_ret": newest["pred_ret"],
        **_model(scored),
        "latency_ms": scored.latency_ms(),
    }


def _regime_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "open_time": _time(row["open_time"]),
        "regime": REGIMES[row["regime"]],
        "confidence": row["confidence"],
        "probabilities": {name: row[c] for name, c in zip(REGIMES, REGIME_COLUMNS, strict=True)},
    }


def regime_current(scorer: Scorer, symbol: str) -> dict[str, Any]:
    """The regime champion's six probabilities for `symbol`'s newest closed bar."""
    scored = scorer.score(scorer.regime_name(symbol), symbol, 1)
    row = _regime_row(scored.rows.row(-1, named=True))
    return {"symbol": symbol, **row, **_model(scored), "latency_ms": scored.latency_ms()}


def regime_history(scorer: Scorer, symbol: str, hours: float) -> dict[str, Any]:
    """One row per closed bar of the last `hours` hours (by the newest bar's close), oldest first."""
    from quantlab.vocab import INTERVAL_MS

    step_h = INTERVAL_MS[scorer.ctx.config.universe.interval] / 3_600_000
    bars = max(1, int(hours / step_h))
    scored = scorer.score(scorer.regime_name(symbol), symbol, bars)
    return {
        "symbol": symbol,
        "hours": hours,
        "rows": [_regime_row(r) for r in scored.rows.iter_rows(named=True)],
        **_model(scored),
        "latency_ms": scored.latency_ms(),
    }
