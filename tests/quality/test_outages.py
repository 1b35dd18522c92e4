"""The known-outage list: the shipped file, and the errors a broken one gives."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from quantlab.config import ValidateConfig
from quantlab.errors import ConfigError
from quantlab.quality.outages import load_outages

ENTRY = """
outages:
  - market: spot
    symbols: [BTCUSDT]
    start: {start}
    end: 2023-03-24T14:00:00Z
    reason: halt
    source: announcement
"""


def test_the_shipped_list_holds_the_2023_03_24_spot_halt() -> None:
    (halt,) = [o for o in load_outages(ValidateConfig().known_outages) if o.start.year == 2023]
    assert (halt.market, halt.symbols) == ("spot", "*")
    assert halt.start == datetime(2023, 3, 24, 12, tzinfo=UTC)
    assert halt.end == datetime(2023, 3, 24, 14, tzinfo=UTC)
    assert halt.covers("spot", "SOLUSDT") and not halt.covers("futures_um", "SOLUSDT")
    assert halt.reason and halt.source


def test_relative_paths_resolve_against_quantlab_home(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "mine.yaml").write_text(ENTRY.format(start="2023-03-24T12:00:00Z"))
    monkeypatch.setenv("QUANTLAB_HOME", str(tmp_path))
    (outage,) = load_outages(Path("mine.yaml"))
    assert outage.symbols == ("BTCUSDT",)
    assert load_outages(None) == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ENTRY.format(start="2023-03-24 12:00:00"), "with a zone"),
        (ENTRY.format(start="2023-03-24T15:00:00Z"), "must be after start"),
        (ENTRY.format(start="2023-03-24T12:00:00Z").replace("reason", "reasn"), "reasn"),
        ("outages: [", "not valid YAML"),
        ("outages:\n  - market: margin\n", "market"),
    ],
)
def test_a_broken_list_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "outages.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_outages(path)


def test_a_missing_list_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_outages(tmp_path / "nope.yaml")
