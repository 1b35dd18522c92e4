"""The registry: every dataset quantlab writes, with its schema, key, partitions and producer.

`Catalog.write` and `Catalog.upsert` check a frame against its dataset's entry before
committing, so a stage that drops or retypes a column fails at its own write, not in the
stage that reads it next. A dataset whose lineage carries facts other stages read names its
typed model (`quantlab.catalog.extras`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from quantlab.catalog._lifecycle_datasets import lifecycle_datasets
from quantlab.catalog._monitor_datasets import monitor_datasets
from quantlab.catalog._paper_datasets import paper_datasets
from quantlab.catalog.extras import (
    BacktestRun,
    ExplainRun,
    Extra,
    GateVerdict,
    RiskRun,
    TrainingRun,
)
from quantlab.catalog.refs import Lineage
from quantlab.errors import DatasetNotFound, SchemaError
from quantlab.schema import (
    EXCHANGE_INFO_KEY,
    EXCHANGE_INFO_SCHEMA,
    FUNDING_RATES_KEY,
    FUNDING_RATES_SCHEMA,
    GAPS_KEY,
    GAPS_SCHEMA,
    KLINES_KEY,
    KLINES_PARTITIONS,
    KLINES_SCHEMA,
    MARK_KLINES_SCHEMA,
    UTC_MS,
)

# -- the registry ---------------------------------------------------------------------


def _same_dtype(got: pl.DataType, want: pl.DataType) -> bool:
    # Storage keeps microseconds and `scan` hands back milliseconds: a timestamp's unit is
    # the catalog's business, its time zone is the data's.
    if isinstance(want, pl.Datetime):
        return isinstance(got, pl.Datetime) and got.time_zone == want.time_zone
    return got == want


@dataclass(frozen=True)
class Dataset:
    """One dataset's contract. `open_dtypes`: the dtypes columns beyond `schema` may have
    (features and labels name theirs from config); None means no other column is allowed."""

    name: str
    schema: Mapping[str, pl.DataType]
    producer: str
    key: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    open_dtypes: tuple[pl.DataType, ...] | None = None
    extra: type[Extra] | None = None

    def check(self, df: pl.DataFrame) -> None:
        """Raise SchemaError naming the first column of `df` that breaks this contract."""
        where = "quantlab/catalog/datasets.py"
        for column, want in self.schema.items():
            if column not in df.columns:
                raise SchemaError(
                    f"{self.name}: the frame lacks column {column!r} ({want}); the {self.producer} "
                    f"stage must produce every column {where} declares: {list(self.schema)}"
                )
            if not _same_dtype(got := df.schema[column], want):
                raise SchemaError(
                    f"{self.name}: column {column!r} is {got}, {where} declares {want}; "
                    f"cast it in the {self.producer} stage (or change the declaration)"
                )
        for column in df.columns:
            if column in self.schema:
                continue
            got = df.schema[column]
            if self.open_dtypes is None:
                raise SchemaError(
                    f"{self.name}: column {column!r} is not declared in {where}; drop it "
                    f"or declare it there (declared: {list(self.schema)})"
                )
            if not any(_same_dtype(got, t) for t in self.open_dtypes):
                raise SchemaError(
                    f"{self.name}: column {column!r} is {got}; its extra columns may be "
                    f"{[str(t) for t in self.open_dtypes]}; cast it in the {self.producer} stage"
                )

    def check_extra(self, extra: dict[str, Any]) -> None:
        """Raise SchemaError unless `extra` reads as this dataset's typed model."""
        if self.extra is None:
            return
        try:
            self.extra.model_validate(extra)
        except ValueError as exc:
            raise SchemaError(
                f"{self.name}: its lineage extra does not read as {self.extra.__name__}: {exc}"
            ) from None

    def extra_of(self, lineage: Lineage) -> Extra:
        if self.extra is None:
            raise SchemaError(f"{self.name} declares no typed extra; read `lineage.extra`")
        return self.extra.of(lineage)


class Registry(Mapping[str, Dataset]):
    """The datasets a catalog accepts, by name."""

    def __init__(self, datasets: Iterable[Dataset]):
        self._by_name = {d.name: d for d in datasets}

    def __getitem__(self, name: str) -> Dataset:
        try:
            return self._by_name[name]
        except KeyError:
            raise DatasetNotFound(
                f"{name!r} is not a registered dataset (registered: {', '.join(self)}); "
                "declare it in quantlab/catalog/datasets.py before writing it"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_name))

    def __len__(self) -> int:
        return len(self._by_name)

    def with_datasets(self, *datasets: Dataset) -> Registry:
        """A copy with `datasets` added, replacing entries of the same name (for tests)."""
        return Registry([*self._by_name.values(), *datasets])


_CHECKS_SCHEMA: dict[str, pl.DataType] = {
    "check": pl.String(),
    "severity": pl.String(),
    "success": pl.Boolean(),
    "unexpected_count": pl.Int64(),
    "examples": pl.String(),
    "dataset": pl.String(),
    "version": pl.Int32(),
}
_BAR = {"symbol": pl.String(), "open_time": UTC_MS}


def _checks(of: str) -> Dataset:
    return Dataset(f"{of}_checks", _CHECKS_SCHEMA, "validate", extra=GateVerdict)


PAPER_DATASETS = paper_datasets(Dataset)
MONITOR_DATASETS = monitor_datasets(Dataset)
LIFECYCLE_DATASETS = lifecycle_datasets(Dataset, _BAR)

DATASETS = Registry(
    [
        Dataset("klines", KLINES_SCHEMA, "ingest", KLINES_KEY, KLINES_PARTITIONS),
        Dataset("klines_gaps", GAPS_SCHEMA, "ingest", GAPS_KEY),
        Dataset(
            "exchange_info",
            {**EXCHANGE_INFO_SCHEMA, "snapshot_time": UTC_MS},
            "ingest",
            (*EXCHANGE_INFO_KEY, "snapshot_time"),
            ("market",),
        ),
        Dataset("funding_rates", FUNDING_RATES_SCHEMA, "ingest", FUNDING_RATES_KEY),
        # USD-M mark-price candles, keyed and laid out as klines (quantlab.ingest.freqtrade).
        Dataset("mark_klines", MARK_KLINES_SCHEMA, "ingest", KLINES_KEY, KLINES_PARTITIONS),
        _checks("klines"),
        _checks("mark_klines"),
        _checks("exchange_info"),
        _checks("funding_rates"),
        # Feature columns come from the feature registry and config; a regime is an Int8.
        Dataset(
            "features",
            _BAR,
            "features",
            ("symbol", "open_time"),
            open_dtypes=(pl.Float64(), pl.Int8()),
        ),
        Dataset(
            "labels",
            {**_BAR, "label_time": UTC_MS, "label_up": pl.Int8()},
            "labels",
            ("symbol", "open_time"),
            # per-horizon returns, directions and times, triple-barrier columns
            open_dtypes=(pl.Float64(), pl.Int8(), pl.Int32(), UTC_MS),
        ),
        Dataset(
            "factor_report",
            {
                "feature": pl.String(),
                "horizon": pl.Int32(),
                "n_obs": pl.UInt32(),
                "n_periods": pl.UInt32(),
                **dict.fromkeys(
                    ("ic", "rank_ic", "rank_ic_sd", "icir", "rank_icir", "hit_rate"), pl.Float64()
                ),
                **dict.fromkeys(
                    ("q_spread", "monotonicity", "turnover", "t_stat", "ic_decay"), pl.Float64()
                ),
                "grade": pl.String(),
            },
            "evaluate",
            ("feature", "horizon"),
        ),
        Dataset(
            "predictions",
            {
                **_BAR,
                "model": pl.String(),
                "fold": pl.Int32(),
                # Null where the target does not give them: P(up) for binary and 3-class,
                # P(down) and P(flat) for 3-class, the predicted return for regression.
                "prob_up": pl.Float64(),
                "prob_down": pl.Float64(),
                "prob_flat": pl.Float64(),
                "pred_ret": pl.Float64(),
                "score": pl.Float64(),  # in [-1, 1], what signals trade (quantlab.train.targets)
            },
            "train",
            ("symbol", "open_time", "model"),  # one row per bar and booster kind (train.models)
            extra=TrainingRun,
        ),
        Dataset(
            "feature_importance",
            {
                "model": pl.String(),
                "fold": pl.Int32(),
                "output": pl.Int32(),  # the class index for a multi-class model, else 0
                "feature": pl.String(),
                "mean_abs_shap": pl.Float64(),
                "mean_shap": pl.Float64(),
                "rank": pl.Int32(),
                "rows": pl.Int32(),  # the test rows explained: a seeded sample of the fold's
            },
            "train",  # SHAP of each fold's model on its test rows, beside `predictions`
            ("model", "fold", "output", "feature"),
            extra=ExplainRun,
        ),
        # The backtest of the sized targets (quantlab.backtest.engine): per bar close the book.
        # equity, cash and the exposures are money at that close (gross: sum of |qty x close|,
        # net: sum of qty x close); gross_pnl, fees, slippage and funding are that bar's cash
        # amounts, so equity moves by gross_pnl - fees - slippage + funding. Its fills, funding payments and rejected
        # orders are datasets of their own, written with it.
        Dataset(
            "backtest",
            {
                "open_time": UTC_MS,
                **dict.fromkeys(
                    (
                        "equity",
                        "cash",
                        "gross_exposure",
                        "net_exposure",
                        "returns",
                        "gross_pnl",
                        "fees",
                        "slippage",
                        "funding",
                        "drawdown",
                    ),
                    pl.Float64(),
                ),
            },
            "backtest",
            ("open_time",),
            extra=BacktestRun,
        ),
        Dataset(
            "backtest_fills",
            {
                **_BAR,  # the bar whose open fills it (decided at the previous bar's close)
                "side": pl.String(),
                **dict.fromkeys(("qty", "price", "fee", "slippage_cost", "notional"), pl.Float64()),
            },
            "backtest",
        ),
        Dataset(
            "backtest_funding",
            {
                "symbol": pl.String(),
                "funding_time": UTC_MS,
                **dict.fromkeys(("qty", "mark_price", "rate", "payment"), pl.Float64()),
                "price_source": pl.String(),  # mark | funding_rates | bar (no mark price known)
            },
            "backtest",
            ("symbol", "funding_time"),
        ),
        Dataset(  # quantlab backtest sweep: a study, every row a trial of later backtests
            "backtest_sweep",
            {
                "config_id": pl.Int32(),
                "params": pl.String(),
                **dict.fromkeys(
                    ("sharpe", "sharpe_per_period", "total_return", "max_drawdown"), pl.Float64()
                ),
                **dict.fromkeys(("fills", "rejections", "kills"), pl.Int64()),
            },
            "backtest",
            ("config_id",),
        ),
        Dataset(
            "backtest_rejections",
            {
                **_BAR,
                "side": pl.String(),
                **dict.fromkeys(("qty", "price", "notional"), pl.Float64()),
                "reason": pl.String(),
                "detail": pl.String(),
            },
            "backtest",
        ),
        Dataset(
            "targets",  # quantlab.portfolio.sizing.size_targets
            {
                **_BAR,
                **dict.fromkeys(("score", "vol", "direction", "raw_weight"), pl.Float64()),
                "exit": pl.Int8(),  # 0, 1 after a take-profit, 2 after a stop-loss in the run
                "book_vol": pl.Float64(),
                "target_weight": pl.Float64(),  # decided at the close of open_time
                "fold": pl.Int32(),  # the prediction's fold; -1: the newest bars
            },
            "risk",
            ("symbol", "open_time"),
            extra=RiskRun,
        ),
        Dataset(
            "calibration",  # reliability of prob_up per fold, beside `targets`
            {
                "fold": pl.Int32(),
                "bin": pl.Int32(),
                "lower": pl.Float64(),
                "upper": pl.Float64(),
                "count": pl.Int64(),
                "mean_predicted": pl.Float64(),
                "observed": pl.Float64(),
            },
            "risk",
            ("fold", "bin"),
        ),
        *PAPER_DATASETS,  # the paper-execution bridge: catalog/_paper_datasets.py
        *MONITOR_DATASETS,  # the monitoring DAG: catalog/_monitor_datasets.py
        *LIFECYCLE_DATASETS,  # the model lifecycle: catalog/_lifecycle_datasets.py
    ]
)
