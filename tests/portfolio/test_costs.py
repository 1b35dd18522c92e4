"""Fees per market, the BNB discount, per-symbol slippage, and impact inputs that cannot peek."""

from __future__ import annotations

import numpy as np
import pytest

import engine_data as data
from quantlab.config import BacktestConfig
from quantlab.portfolio.costs import CostModel, impact_inputs, slippage_fraction


@pytest.mark.parametrize(
    ("market", "bnb", "maker", "taker"),
    [
        ("spot", False, 0.001, 0.001),
        ("spot", True, 0.00075, 0.00075),
        ("futures_um", False, 0.0002, 0.0005),
        ("futures_um", True, 0.00018, 0.00045),
    ],
)
def test_fees_per_market_and_the_bnb_discount(market, bnb, maker, taker):
    cfg = BacktestConfig(fees={"bnb_discount": bnb})
    model = CostModel.from_config(cfg, market, ["BTCUSDT"])
    assert model.maker == pytest.approx(maker) and model.taker == pytest.approx(taker)


def test_per_symbol_slippage_overrides_only_what_it_sets():
    cfg = BacktestConfig(slippage={"per_symbol": {"SOLUSDT": {"half_spread_bps": 4.0}}})
    model = CostModel.from_config(cfg, "spot", ["BTCUSDT", "SOLUSDT"])
    assert list(model.half_spread) == pytest.approx([1e-4, 4e-4])
    assert list(model.impact_coef) == [1.0, 1.0]
    assert model.flat_rate() == pytest.approx(0.001 + 1e-4)
    with pytest.raises(ValueError, match="DOGEUSDT"):
        CostModel.from_config(
            BacktestConfig(slippage={"per_symbol": {"DOGEUSDT": {"impact_coef": 2.0}}}),
            "spot", ["BTCUSDT"],
        )  # fmt: skip


def test_slippage_grows_with_participation_and_volatility():
    base = slippage_fraction(1_000.0, 1e6, 0.01, 1e-4, 1.0)
    assert base == pytest.approx(1e-4 + 0.01 * np.sqrt(1e-3))
    assert slippage_fraction(4_000.0, 1e6, 0.01, 1e-4, 1.0) > base
    assert slippage_fraction(1_000.0, 1e6, 0.02, 1e-4, 1.0) > base
    assert slippage_fraction(1_000.0, np.nan, 0.01, 1e-4, 1.0) == 1e-4  # no volume known


def test_impact_inputs_use_only_bars_before_the_order():
    bars = data.load_klines("BTCUSDT", "2023-03")
    o, c, qv = (bars[k].to_numpy()[:, None].copy() for k in ("open", "close", "quote_volume"))
    has = np.ones_like(o, dtype=bool)
    prev_qv, sigma = impact_inputs(o, c, qv, has, 0.94)
    cut = 200
    c2, qv2 = c.copy(), qv.copy()
    c2[cut:] *= 1.5  # perturb bar `cut` and after
    qv2[cut:] *= 10
    prev_qv2, sigma2 = impact_inputs(o, c2, qv2, has, 0.94)
    np.testing.assert_array_equal(sigma[: cut + 1], sigma2[: cut + 1])
    np.testing.assert_array_equal(prev_qv[: cut + 1], prev_qv2[: cut + 1])
    assert sigma[cut + 1, 0] != sigma2[cut + 1, 0]
    assert prev_qv[1, 0] == qv[0, 0] and np.isnan(prev_qv[0, 0])
