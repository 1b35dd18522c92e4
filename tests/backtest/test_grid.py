"""Sweep grids: parsed from the CLI's form, applied to the config, refused where they would cheat."""

from __future__ import annotations

import pytest

from quantlab.backtest.grid import combinations, parse_grid
from quantlab.config import load_config
from quantlab.errors import ConfigError


def test_every_combination_is_a_validated_config_with_the_values_set():
    grid = parse_grid(
        ["signal.threshold=0.1,0.2,0.3", "signal.smoothing=1,4", "risk.max_weight=0.5"]
    )
    assert grid == {
        "signal.threshold": [0.1, 0.2, 0.3],
        "signal.smoothing": [1, 4],
        "risk.max_weight": [0.5],
    }
    combos = combinations(load_config(), grid)
    assert len(combos) == 6
    seen = {(c.signal.threshold, c.signal.smoothing) for _, c in combos}
    assert seen == {(t, s) for t in (0.1, 0.2, 0.3) for s in (1, 4)}
    for chosen, config in combos:
        assert config.signal.threshold == chosen["signal.threshold"]
        assert config.risk.max_weight == 0.5


@pytest.mark.parametrize(
    ("items", "says"),
    [
        (["backtest.init_cash=1,2"], "varies only"),
        (["universe.symbols=BTCUSDT"], "varies only"),
        (["signal.threshold"], "SECTION.KEY=V1,V2"),
        (["signal.threshold=0.1", "signal.threshold=0.2"], "twice"),
        ([], "empty grid"),
    ],
)
def test_a_grid_that_cannot_be_swept_honestly_is_refused(items, says):
    with pytest.raises(ConfigError, match=says):
        parse_grid(items)


def test_a_typo_or_a_bad_value_fails_before_anything_runs():
    with pytest.raises(ConfigError, match="no 'treshold'"):
        combinations(load_config(), parse_grid(["signal.treshold=0.1"]))
    with pytest.raises(ConfigError, match="not a valid config"):
        combinations(load_config(), parse_grid(["signal.smoothing=0"]))
