"""What a fill costs: maker/taker fees per market and slippage from spread, impact and volatility.

Market orders at the bar's open pay the taker fee on the executed notional. Slippage moves the
executed price against the order by a fraction

    half_spread_bps * 1e-4 + impact_coef * sigma_bar * sqrt(participation)

where participation is the order's notional at the open over the previous bar's quote volume
and sigma_bar an EWMA (RiskMetrics) of one-bar log returns up to the previous bar: both are known
before the bar opens, so the cost cannot peek at the bar it trades in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from quantlab.config import BacktestConfig

# Binance's discount for paying fees in BNB.
BNB_DISCOUNT = {"spot": 0.25, "futures_um": 0.10}


@dataclass(frozen=True)
class CostModel:
    """Fee rates of one market and per-symbol slippage terms (arrays in `symbols` order)."""

    market: str
    symbols: tuple[str, ...]
    maker: float
    taker: float
    half_spread: np.ndarray  # fraction of price (bps * 1e-4)
    impact_coef: np.ndarray
    ewma_lambda: float
    base_half_spread: float  # the section's default, fraction of price

    @classmethod
    def from_config(
        cls, cfg: BacktestConfig, market: str, symbols: tuple[str, ...] | list[str] = ()
    ) -> CostModel:
        if market not in BNB_DISCOUNT:
            raise ValueError(f"unknown market {market!r}; use spot or futures_um")
        tier = getattr(cfg.fees, market)
        keep = 1.0 - BNB_DISCOUNT[market] if cfg.fees.bnb_discount else 1.0
        slip = cfg.slippage
        unknown = sorted(set(slip.per_symbol) - set(symbols)) if symbols else []
        if unknown:
            raise ValueError(
                f"backtest.slippage.per_symbol names {unknown}, which are not in the universe "
                f"{list(symbols)}; fix the symbol or drop the entry"
            )
        spread, impact = [], []
        for s in symbols:
            own = slip.per_symbol.get(s)
            hs = own.half_spread_bps if own and own.half_spread_bps is not None else None
            ic = own.impact_coef if own and own.impact_coef is not None else None
            spread.append((slip.half_spread_bps if hs is None else hs) * 1e-4)
            impact.append(slip.impact_coef if ic is None else ic)
        return cls(
            market=market,
            symbols=tuple(symbols),
            maker=tier.maker * keep,
            taker=tier.taker * keep,
            half_spread=np.array(spread, dtype=np.float64),
            impact_coef=np.array(impact, dtype=np.float64),
            ewma_lambda=slip.ewma_lambda,
            base_half_spread=slip.half_spread_bps * 1e-4,
        )

    def flat_rate(self) -> float:
        """One flat cost per unit of weight traded (taker fee + the default half spread).

        For quick books that trade no orders (a tuning trial's validation Sharpe); the engine
        charges the full model.
        """
        return self.taker + self.base_half_spread


@numba.njit(cache=True)
def slippage_fraction(
    notional: float, prev_quote_volume: float, sigma: float, half_spread: float, impact: float
) -> float:
    """The fraction of the open an order of `notional` pays; no impact without a known volume."""
    frac = half_spread
    if prev_quote_volume > 0.0 and notional > 0.0 and sigma > 0.0:
        frac += impact * sigma * math.sqrt(notional / prev_quote_volume)
    return frac


@numba.njit(cache=True)
def impact_inputs(
    open_: np.ndarray, close: np.ndarray, quote_volume: np.ndarray, has_bar: np.ndarray, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per [bar, symbol]: the previous real bar's quote volume and sigma through that bar.

    sigma is the square root of an EWMA of squared one-bar log returns over the symbol's own
    bars (the first bar's return is close/open); a missing bar carries the state. NaN before a
    symbol's second bar (no impact is charged then).
    """
    n, m = open_.shape
    prev_qv = np.full((n, m), np.nan)
    sigma = np.full((n, m), np.nan)
    for s in range(m):
        var = np.nan
        last_close = np.nan
        last_qv = np.nan
        for t in range(n):
            prev_qv[t, s] = last_qv
            sigma[t, s] = math.sqrt(var) if var == var else np.nan
            if not has_bar[t, s]:
                continue
            base = open_[t, s] if last_close != last_close else last_close
            r = math.log(close[t, s] / base)
            var = r * r if var != var else lam * var + (1.0 - lam) * r * r
            last_close = close[t, s]
            last_qv = quote_volume[t, s]
    return prev_qv, sigma
