"""The promotion rule, pure: a challenger replaces the champion only when every check passes.

Checks, each recorded with its numbers whether it passed, failed or did not apply:
- `metric`: on the out-of-sample rows both models scored (each model's own out-of-fold or
  held-out or live rows: neither was trained on them), the challenger beats the champion by
  `gate.margin`; fewer than `gate.min_common_rows` such rows is a failure ("not comparable");
- `dsr`: the deflated Sharpe of a backtest of the challenger's predictions reaches
  `gate.dsr_floor` (not applicable until a backtest of them exists);
- `shap_stability`: the median pairwise rank correlation of the folds' mean |SHAP| reaches
  `gate.shap_stability_floor` (not applicable to a model without folds).
The first model of a name becomes champion (decision `first`), its checks recorded.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from quantlab.config.lifecycle import GateConfig
from quantlab.lifecycle.evaluate import better


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool | None  # None: not applicable
    value: float | None = None
    floor: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Evidence:
    """What the gate knows of one challenger against the current champion."""

    metric: str
    challenger_value: float | None
    champion_value: float | None  # None: no champion, or nothing to score it on
    common_rows: int
    champion_version: int | None
    dsr: float | None = None  # None: no backtest of the challenger's predictions
    shap_stability: float | None = None  # None: no fold explanations
    notes: dict[str, str] = field(default_factory=dict)  # why a value is missing


@dataclass(frozen=True)
class Decision:
    decision: str  # first | promoted | kept
    reason: str
    checks: tuple[Check, ...]
    evidence: Evidence

    @property
    def promote(self) -> bool:
        return self.decision in ("first", "promoted")

    def details(self) -> str:
        return json.dumps([asdict(c) for c in self.checks], default=_num)

    def tags(self) -> dict[str, str]:
        """The decision as version tags (`gate.*`), numbers as text."""
        e = self.evidence
        return {
            "gate.decision": self.decision,
            "gate.reason": self.reason,
            "gate.metric": e.metric,
            "gate.challenger_value": _text(e.challenger_value),
            "gate.champion_value": _text(e.champion_value),
            "gate.champion_version": "" if e.champion_version is None else str(e.champion_version),
            "gate.common_rows": str(e.common_rows),
            "gate.dsr": _text(e.dsr),
            "gate.shap_stability": _text(e.shap_stability),
            "gate.checks": self.details(),
        }


def _num(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _text(v: float | None) -> str:
    return "" if v is None else f"{v:.6g}"


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _metric_check(cfg: GateConfig, e: Evidence) -> Check:
    name = f"{e.metric} vs champion v{e.champion_version}"
    if e.common_rows < cfg.min_common_rows:
        return Check(
            name,
            False,
            e.challenger_value,
            e.champion_value,
            f"not comparable: {e.common_rows} common out-of-sample rows, "
            f"gate.min_common_rows is {cfg.min_common_rows}",
        )
    if e.challenger_value is None or e.champion_value is None:
        return Check(
            name, False, e.challenger_value, e.champion_value, f"{e.metric} undefined on the rows"
        )
    ok = better(e.metric, e.challenger_value, e.champion_value, cfg.margin)
    sign = "" if ok else " not"
    return Check(
        name,
        ok,
        e.challenger_value,
        e.champion_value,
        f"{e.metric} {_fmt(e.challenger_value)} does{sign} beat the champion's "
        f"{_fmt(e.champion_value)} by the margin {cfg.margin:g} on {e.common_rows} common rows",
    )


def _floor_check(name: str, value: float | None, floor: float | None, note: str) -> Check:
    if floor is None:
        return Check(name, None, value, None, "off in config")
    if value is None:
        return Check(name, None, None, floor, note or "not available yet")
    ok = value >= floor
    return Check(name, ok, value, floor, f"{_fmt(value)} {'>=' if ok else '<'} floor {floor:g}")


def decide(cfg: GateConfig, e: Evidence) -> Decision:
    """The gate's verdict on `e` (module docstring)."""
    checks = [
        _floor_check("dsr", e.dsr, cfg.dsr_floor, e.notes.get("dsr", "")),
        _floor_check(
            "shap_stability",
            e.shap_stability,
            cfg.shap_stability_floor,
            e.notes.get("shap_stability", ""),
        ),
    ]
    if e.champion_version is None:
        return Decision(
            "first", "no champion yet: the first model becomes champion", tuple(checks), e
        )
    checks.insert(0, _metric_check(cfg, e))
    failed = [c for c in checks if c.passed is False]
    if failed:
        reason = "; ".join(f"{c.name}: {c.note}" for c in failed)
        return Decision("kept", f"stays challenger: {reason}", tuple(checks), e)
    return Decision("promoted", f"promoted: {checks[0].note}", tuple(checks), e)
