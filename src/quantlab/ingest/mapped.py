"""What one mapped ingest run (one symbol, or one market, of a DAG run) reports.

The report carries the dataset version the run left, so a DAG passes it on as a
reference, and the counts a log or a test reads. It crosses Airflow's XCom as a plain
dict (`to_dict` / `from_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quantlab.catalog import DatasetRef


@dataclass(frozen=True)
class IngestReport:
    """One mapped ingest run: the version it left (None: nothing stored yet) and its counts.

    `counts` holds what only one dataset has: for klines `known_gaps`, `gaps_recorded` and
    `seconds`; for exchange_info `symbols`, `snapshot_time` and `written`.
    """

    dataset: str
    ref: DatasetRef | None
    market: str
    symbol: str | None = None
    interval: str | None = None
    rows_added: int = 0
    requests: int = 0
    weight_used: int = 0
    caught_up_from: str | None = None
    not_fetched: dict[str, str] | None = None
    counts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "ref": self.ref.to_dict() if self.ref else None,
            "market": self.market,
            "symbol": self.symbol,
            "interval": self.interval,
            "rows_added": self.rows_added,
            "requests": self.requests,
            "weight_used": self.weight_used,
            "caught_up_from": self.caught_up_from,
            "not_fetched": self.not_fetched,
            "counts": dict(self.counts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestReport:
        ref = data.get("ref")
        return cls(**{**data, "ref": DatasetRef.from_dict(ref) if ref else None})
