"""The registry: every dataset quantlab writes, with its schema, key, partitions and producer.

`Catalog.write` and `Catalog.upsert` check a frame against its dataset's entry before
committing, so a stage that drops or retypes a column fails at its own write, not in the
stage that reads it next. A dataset whose lineage carries facts other stages read (the
gate's verdict, the backtest's statistics, the training run, the kill-switch) names a typed
model for them; readers go through `Catalog.extra(ref, Model)` or `Model.of(lineage)`
instead of picking keys out of another stage's dict. The stored JSON keeps its shape, so
versions written before the models existed read the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

import polars as pl
from pydantic import BaseModel, ConfigDict

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

# -- typed lineage facts --------------------------------------------------------------


class Extra(BaseModel):
    """Base of the typed `extra` models: frozen; keys a model does not name are kept as
    they are in the stored JSON and ignored when reading."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def of(cls, lineage: Lineage) -> Self:
        """The model read from a version's lineage."""
        return cls.model_validate(lineage.extra)


class GateVerdict(Extra):
    """A `<name>_checks` version's verdict, what `require_passed` reads."""

    passed: bool = False
    failed_checks: list[str] = []
    counts: dict[str, int] = {}
    data_docs: str | None = None
    # Checks not run because the source lacks their columns (freqtrade keeps OHLCV only):
    # check -> why. Empty before it was kept.
    skipped: dict[str, str] = {}


class BacktestStats(Extra):
    """The figures of one backtest run; None where undefined (no closed trade, ...)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    total_return: float | None = None
    sharpe: float | None = None  # annualised, from the per-bar returns of the out-of-fold span
    max_drawdown: float | None = None
    trades: int | None = None
    psr: float | None = None  # P(true Sharpe > 0); None before it was kept
    # The deflation (Bailey & Lopez de Prado), per bar: None on versions before it was kept.
    sharpe_per_period: float | None = None
    n_periods: int | None = None
    skew: float | None = None
    kurtosis: float | None = None  # raw (Pearson): 3 for normal returns
    n_trials: int | None = None  # every configuration tried: Optuna trials, signal/sizing grids
    trials_sharpe_var: float | None = None  # variance of the trials' per-bar Sharpes
    dsr: float | None = None  # P(true Sharpe > the best of n_trials unskilled tries)
    min_trl: float | None = None  # bars of track record needed for PSR(0) at 95%


class BacktestRun(Extra):
    """A `backtest` version's lineage facts: its statistics, read by risk and the summary."""

    stats: BacktestStats = BacktestStats()
    kills: list[dict[str, Any]] = []  # kill-switch trips on the path: open_time, reason, equity
    rejections: dict[str, int] = {}  # orders the venue would reject, by reason
    trials: dict[str, int] = {}  # the configurations behind n_trials, by where they were tried


class FoldMetrics(Extra):
    """One fold's test metrics; which are set depends on train.target (None: not computed
    for this target, or undefined on the fold: `quantlab.metrics` returns None then)."""

    model: str = "lightgbm"  # the booster kind; versions before train.models were all LightGBM
    fold: int
    auc: float | None = None  # binary
    macro_f1: float | None = None  # 3-class
    logloss: float | None = None  # binary and 3-class
    accuracy: float | None = None  # binary and 3-class
    rmse: float | None = None  # regression
    ic: float | None = None  # every target: the score against the forward return
    rank_ic: float | None = None
    hit_rate: float | None = None
    train_rows: int
    test_rows: int
    trials: int | None = None  # the Optuna trials this fold's tuning ran; None before it was kept


class TrainingRun(Extra):
    """A `predictions` version's training run: the MLflow (parent) run, its seed, its folds'
    metrics, how many configurations the tuning tried in all and where each trial's record
    (parameters, value, validation Sharpe) is: `runs:/<run id>/optuna/trials.csv`. None on
    versions before it was kept."""

    mlflow_run_id: str | None = None
    mlflow_experiment: str | None = None
    seed: int | None = None
    trials: int | None = None
    trials_artifact: str | None = None
    trial_sharpes: list[float | None] | None = None  # annualised, per trial; None before kept
    fold_metrics: list[FoldMetrics] = []


class ShapStability(Extra):
    """How one model's (and output's) SHAP importances agree across the walk-forward folds."""

    model: str
    output: int = 0
    folds: int
    top_k: int
    rank_corr_median: float | None = None  # pairwise Spearman of the folds' mean |SHAP|
    rank_corr_min: float | None = None
    topk_jaccard_median: float | None = None  # pairwise overlap of the folds' top-k features
    topk_jaccard_min: float | None = None
    sign_flips: int = 0  # features whose mean SHAP is > 0 in one fold and < 0 in another


class ExplainRun(Extra):
    """A `feature_importance` version's facts: the MLflow run holding its plots and tables,
    and the stability of its importances across folds."""

    mlflow_run_id: str | None = None
    stability: list[ShapStability] = []
    flipped: list[str] = []  # "model/output/feature" of each sign flip


class KillSwitch(Extra):
    """A kill-switch state and why (`quantlab.portfolio.killswitch.kill_path` on an equity
    path). `targets` versions written before the engine applied the switch on its path
    carried it; newer ones read as not killed."""

    killed: bool = False
    kill_reason: str = ""


class RiskRun(Extra):
    """A `targets` version's sizing: the policy, what it sized, and how calibrated the
    class probabilities were (Brier score of prob_up per fold; the reliability table is the
    `calibration` dataset written beside it; empty for a regression model)."""

    policy: str = ""
    rows: int = 0
    oof_rows: int = 0  # rows of out-of-fold bars (fold >= 0); the rest are the newest bars
    newest_open_time: str | None = None
    brier: dict[str, float] = {}  # fold -> Brier score of prob_up against the outcome
    base_rate: dict[str, float] = {}  # fold -> share of up outcomes (Brier of a constant guess)


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
        Dataset(
            "paper_orders",
            {
                "client_order_id": pl.String(),
                "symbol": pl.String(),
                "side": pl.String(),
                **dict.fromkeys(("qty", "price", "fee", "target_weight"), pl.Float64()),
            },
            "paper",
            ("client_order_id",),
        ),
    ]
)
