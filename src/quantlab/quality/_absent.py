"""The klines checks a source cannot feed: those reading a column it does not have.

freqtrade's klines hold quote volume, trade count and taker volumes null on every row, and
mark-price candles have no volume at all: the checks on those columns are not run, and the
report says which and why (`CheckReport.skipped`), rather than failing or passing on zeros.
"""

from __future__ import annotations

from collections.abc import Collection

from quantlab.quality._gx import Check

AMOUNTS = ("volume", "quote_volume", "trades", "taker_buy_base_volume", "taker_buy_quote_volume")


# The checks that read each column beyond `not_null.<c>` and `non_negative.<c>`.
_READS = {
    "taker_volume_within_total": (
        "volume",
        "quote_volume",
        "taker_buy_base_volume",
        "taker_buy_quote_volume",
    ),
    "zero_volume": ("volume",),
}


def skip_absent(checks: list[Check], absent: Collection[str]) -> tuple[list[Check], dict[str, str]]:
    """`checks` without those that read a column in `absent`, and why each was left out."""
    if not absent:
        return checks, {}
    reads = {
        **{f"{kind}.{c}": (c,) for c in AMOUNTS for kind in ("not_null", "non_negative")},
        **_READS,
    }
    kept, skipped = [], {}
    for c in checks:
        missing = [col for col in reads.get(c.name, ()) if col in absent]
        if missing:
            skipped[c.name] = f"the source has no {', '.join(missing)} (null on every row)"
        else:
            kept.append(c)
    return kept, skipped
