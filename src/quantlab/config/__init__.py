"""Typed, frozen configuration loaded once from YAML in `configs/`.

Unknown keys are errors (`extra="forbid"`), so a typo fails loudly instead of
silently falling back to a default. `${VAR}` and `${VAR:-default}` in string
values are expanded from the environment, which is where secrets come from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from quantlab import secrets
from quantlab.errors import ConfigError
from quantlab.vocab import Interval, Market

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Variables whose values are handed to the log maskers when a config expands them.
_SECRET_VAR = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|FERNET", re.IGNORECASE)
# A URI scheme of two or more characters, so a Windows drive letter stays a path.
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


_M = TypeVar("_M", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsConfig(_Model):
    data: Path = Path("data")
    experiments: Path = Path("experiments")

    @property
    def catalog(self) -> Path:
        return self.data / "catalog"

    @property
    def reports(self) -> Path:
        return self.data / "reports"


# Binance's symbol pattern, ^[A-Z0-9-_.]{1,20}$, less symbols of dots alone: a symbol also
# names a folder of bulk files.
SYMBOL = re.compile(r"(?=.*[A-Z0-9_-])[A-Z0-9_.-]{1,20}")
# Hosts of the real exchange, reached only over https; http stays for a local replay.
_BINANCE_HOSTS = ("binance.com", "binance.vision", "binancefuture.com", "binance.us")


def check_symbol(symbol: object) -> str:
    """`symbol` when it is spelled like a Binance symbol; a ConfigError naming it otherwise."""
    if isinstance(symbol, str) and SYMBOL.fullmatch(symbol):
        return symbol
    raise ConfigError(
        f"symbol {symbol!r} is not a Binance symbol (^[A-Z0-9-_.]{{1,20}}$): spell it like "
        "BTCUSDT, in capitals, without spaces or slashes"
    )


class UniverseConfig(_Model):
    market: Market = "spot"
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    interval: Interval = "1h"
    start: date = date(2023, 1, 1)
    end: date = date(2025, 1, 1)

    @model_validator(mode="after")
    def _check_range(self) -> UniverseConfig:
        if self.end <= self.start:
            raise ValueError(
                f"universe.end ({self.end}) must be after universe.start ({self.start})"
            )
        if not self.symbols:
            raise ValueError("universe.symbols is empty; list at least one symbol such as BTCUSDT")
        for symbol in self.symbols:
            try:
                check_symbol(symbol)
            except ConfigError as exc:
                raise ValueError(f"universe.symbols: {exc}") from None
        return self


class ExchangeConfig(_Model):
    source: Literal["replay", "binance"] = "replay"
    base_url: str | None = None
    replay_root: Path = Path("data/sample")
    timeout_s: float = Field(default=10.0, gt=0, description="seconds per HTTP request")
    max_retries: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _check_url(self) -> ExchangeConfig:
        if self.source == "binance" and not self.base_url:
            raise ValueError("exchange.base_url is required when exchange.source is 'binance'")
        url = urlsplit(self.base_url or "")
        host = (url.hostname or "").lower()
        if url.scheme == "http" and any(
            host == h or host.endswith("." + h) for h in _BINANCE_HOSTS
        ):
            raise ValueError(
                f"exchange.base_url {self.base_url!r} reaches Binance over plain http; use "
                f"https://{url.netloc}{url.path} (http is for a local replay on 127.0.0.1)"
            )
        return self


# Every check the gate's suites run (klines, funding_rates, exchange_info), by name: what
# `validate.severity` may name. tests/quality/test_severity.py keeps it equal to the suites'.
VALIDATE_CHECKS = (
    "columns_match",
    *[f"not_null.{c}" for c in ("market", "symbol", "interval", "open_time", "close_time")],
    *[f"not_null.{c}" for c in ("open", "high", "low", "close", "volume", "quote_volume")],
    *[f"not_null.{c}" for c in ("trades", "taker_buy_base_volume", "taker_buy_quote_volume")],
    *[f"not_null.{c}" for c in ("funding_time", "funding_rate")],
    *[f"not_null.{c}" for c in ("status", "base_asset", "quote_asset")],
    "unique_key",
    "interval_matches",
    *[f"price_positive.{c}" for c in ("open", "high", "low", "close")],
    *[f"non_negative.{c}" for c in ("volume", "quote_volume", "trades")],
    *[f"non_negative.{c}" for c in ("taker_buy_base_volume", "taker_buy_quote_volume")],
    "open_time_in_range",
    "close_time_in_range",
    "open_time_aligned",
    "open_time_increasing",
    "close_time_within_bar",
    "ohlc_consistent",
    "taker_volume_within_total",
    "close_time_exact",
    "zero_volume",
    "return_outlier",
    "calendar_gaps",
    "known_gaps",
    "stale_series",
    "market_is_futures",
    "funding_time_in_range",
    "funding_time_increasing",
    "funding_rate_within_cap",
    "funding_rate_extreme",
    "mark_price_positive",
    "funding_interval",
    "market_known",
    "status_known",
    "tick_size_positive",
    "step_size_positive",
    "min_notional_non_negative",
    "price_range",
    "qty_range",
    "symbol_matches_assets",
)
CheckSeverity = Literal["error", "warning", "off"]


class ValidateConfig(_Model):
    """The data-quality gate (`quantlab.quality`): thresholds, the known-outage list and
    each check's severity where it is not the default."""

    min_price: float = 1e-8
    max_return_sigmas: float = Field(default=12.0, gt=0)
    min_year: int = 2017
    max_year: int = 2100
    known_outages: Path | None = Field(
        default=Path("configs/known_outages.yaml"),
        description="YAML list of exchange outages (relative: to the project root); null: none",
    )
    max_stale_bars: int = Field(
        default=2,
        ge=0,
        description="a series whose last candle is more than this many bars older than the "
        "last closed one at the reference time is stale (a warning)",
    )
    severity: dict[str, CheckSeverity] = Field(
        default_factory=dict,
        description="per check name: error (fails the gate), warning (reported) or off (not "
        "run); a check not named keeps its default. The summary lists every change",
    )

    @model_validator(mode="after")
    def _known_checks(self) -> ValidateConfig:
        unknown = [name for name in self.severity if name not in VALIDATE_CHECKS]
        if unknown:
            raise ValueError(
                f"validate.severity: unknown check {unknown[0]!r}; name one of "
                + ", ".join(VALIDATE_CHECKS)
            )
        return self


_TIMEFRAME = Literal["5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"]


class CrossSectionConfig(_Model):
    """Features compared across symbols at each timestamp: `cs_rank_<f>` in [0, 1], `cs_z_<f>`."""

    rank: tuple[str, ...] = ("logret_24",)
    zscore: tuple[str, ...] = ("rsi_14",)
    min_symbols: int = Field(default=2, ge=2, description="fewer symbols at a timestamp -> null")


class NormalizeConfig(_Model):
    """Rolling per-symbol z-scores over the past `window` bars: `<f>_rz<window>`."""

    window: int = Field(default=720, ge=2)
    columns: tuple[str, ...] = ("natr_14", "bb_width_20")


class RegimeConfig(_Model):
    """Six regimes from trend strength (ADX) and volatility percentiles over past bars only."""

    adx_window: int = Field(default=14, ge=2)
    atr_window: int = Field(default=14, ge=2)
    bb_window: int = Field(default=20, ge=2)
    lookback: int = Field(default=720, ge=20, description="bars behind each percentile")
    strong_adx: float = Field(default=25.0, gt=0)
    weak_adx: float = Field(default=20.0, gt=0)
    high_vol_pct: float = Field(default=0.70, gt=0, lt=1)
    spike_pct: float = Field(default=0.95, gt=0, le=1)
    squeeze_pct: float = Field(default=0.10, gt=0, lt=1)

    @model_validator(mode="after")
    def _check_order(self) -> RegimeConfig:
        if self.weak_adx >= self.strong_adx:
            raise ValueError("regime.weak_adx must be below regime.strong_adx")
        if not self.squeeze_pct < self.high_vol_pct < self.spike_pct:
            raise ValueError(
                "regime percentiles must satisfy squeeze_pct < high_vol_pct < spike_pct"
            )
        return self


class EvaluateConfig(_Model):
    """`quantlab features evaluate`: IC per period, quantile spreads, grades."""

    mode: Literal["auto", "time_series", "cross_section"] = "auto"
    cross_section_min: int = Field(default=10, ge=3, description="symbols for auto cross-section")
    period: Literal["1d", "1w", "1mo"] = "1w"
    quantiles: int = Field(default=5, ge=2, le=20)
    min_obs: int = Field(default=30, ge=3, description="rows a period needs for its IC")
    top: int = Field(default=12, ge=1, description="features plotted in the HTML report")


class FeaturesConfig(_Model):
    """The feature set a run builds; every name is in the registry (`quantlab features list`)."""

    columns: tuple[str, ...] = (
        "logret_1",
        "logret_4",
        "logret_24",
        "rsi_7",
        "rsi_14",
        "macd_pct_12_26_9",
        "macd_hist_pct_12_26_9",
        "stoch_k_14_3_3",
        "willr_14",
        "roc_48",
        "ema_dist_21",
        "ema_dist_50",
        "ema_dist_200",
        "adx_14",
        "plus_di_14",
        "minus_di_14",
        "natr_14",
        "bb_width_20",
        "bb_pctb_20",
        "kc_pos_20",
        "rvol_24",
        "parkinson_24",
        "garman_klass_24",
        "mfi_14",
        "obv_flow_24",
        "volume_z_24",
        "vwap_dist_24",
        "taker_buy_ratio_24",
        "trades_z_24",
        "range_hl",
        "close_pos",
        "regime",
    )
    timeframes: dict[_TIMEFRAME, tuple[str, ...]] = Field(
        default_factory=lambda: {"4h": ("logret_1", "rsi_14"), "1d": ("logret_1", "natr_14")},
        description="higher timeframe -> registry features on its closed bars: `<f>_<tf>`",
    )
    cross_section: CrossSectionConfig = CrossSectionConfig()
    normalize: NormalizeConfig = NormalizeConfig()
    regime: RegimeConfig = RegimeConfig()
    funding: tuple[str, ...] = Field(
        default=("funding_rate", "funding_mean_21", "funding_z_90"),
        description="built only when a `funding_rates` frame is given (perpetuals)",
    )
    evaluate: EvaluateConfig = EvaluateConfig()

    @model_validator(mode="after")
    def _check_unique(self) -> FeaturesConfig:
        seen = [*self.columns, *self.funding]
        dupes = sorted({c for c in seen if seen.count(c) > 1})
        if dupes:
            raise ValueError(f"features lists {dupes} more than once")
        return self


class BarrierConfig(_Model):
    """Triple barrier: take-profit / stop-loss at `mult * sigma * sqrt(vertical)` from the entry close."""

    vertical: int | None = Field(default=None, ge=1, description="bars; None = labels.horizon")
    tp_mult: float = Field(default=1.0, gt=0)
    sl_mult: float = Field(default=1.0, gt=0)
    vol_window: int = Field(default=24, ge=2, description="bars of past log returns behind sigma")
    touch: Literal["high_low", "close"] = "high_low"


class RegimeLabelConfig(_Model):
    """The regime `horizon` bars ahead as a label: `regime_<horizon>`."""

    horizon: int = Field(default=24, ge=1)
    rules: RegimeConfig = RegimeConfig()


class LabelsConfig(_Model):
    horizon: int = Field(default=4, ge=1, description="bars ahead of the primary (trained) label")
    horizons: tuple[int, ...] = Field(
        default=(1, 4, 24), description="forward-return horizons; the primary one is always added"
    )
    dead_zone: float = Field(
        default=0.003, ge=0, description="|log return| at or below this is 'flat' (round-trip cost)"
    )
    barrier: BarrierConfig | None = BarrierConfig()
    regime: RegimeLabelConfig | None = RegimeLabelConfig()

    @model_validator(mode="after")
    def _check_horizons(self) -> LabelsConfig:
        if any(h < 1 for h in self.horizons):
            raise ValueError("labels.horizons must all be >= 1 bar")
        return self

    @property
    def all_horizons(self) -> tuple[int, ...]:
        """`horizons` plus the primary `horizon`, sorted, without repeats."""
        return tuple(sorted({*self.horizons, self.horizon}))


# A calendar period polars' datetime_range steps by: 12h, 30d, 2w, 1mo, 1y.
_PERIOD = re.compile(r"[1-9][0-9]*(h|d|w|mo|q|y)")


class TrainConfig(_Model):
    """Walk-forward training; the windows (`quantlab.train.make_splits`) are by time.

    The test blocks are `folds` equal blocks after the initial span, or blocks of `test_bars`
    bars, or of a calendar `test_period`: exactly one of the three is set. The training window
    grows (expanding) or keeps `train_bars` bars (sliding); its last `valid_fraction` (or
    `valid_bars`) is the inner validation slice that tunes the model.
    """

    models: tuple[Literal["lightgbm", "xgboost"], ...] = Field(
        default=("lightgbm",),
        min_length=1,
        description="the booster kinds to walk forward; backtest and risk trade the first",
    )
    window: Literal["expanding", "sliding"] = "expanding"
    train_bars: int | None = Field(
        default=None, ge=1, description="the initial span and the sliding window; None: by fraction"
    )
    min_train_fraction: float = Field(default=0.4, gt=0, lt=1)
    folds: int | None = Field(default=4, ge=3)
    test_bars: int | None = Field(default=None, ge=1)
    test_period: str | None = Field(default=None, description="e.g. 30d, 2w, 1mo")
    valid_fraction: float | None = Field(default=0.2, gt=0, lt=1)
    valid_bars: int | None = Field(default=None, ge=1)
    embargo_bars: int | None = Field(default=None, ge=0, description="None: labels.horizon")
    early_stopping_rounds: int | None = Field(default=None, ge=1)
    trials: int = Field(default=4, ge=1)
    num_boost_round: int = Field(default=200, ge=10)
    seed: int = 42
    experiment: str = "research"
    register_as: str | None = "quantlab-research"

    @property
    def primary_model(self) -> str:
        """The kind whose predictions backtest and risk trade: the first listed."""
        return self.models[0]

    @model_validator(mode="after")
    def _check_windows(self) -> TrainConfig:
        if len(set(self.models)) != len(self.models):
            raise ValueError(
                f"train.models lists a kind twice ({list(self.models)}); list each once"
            )
        tests = {"folds": self.folds, "test_bars": self.test_bars, "test_period": self.test_period}
        if sum(v is not None for v in tests.values()) != 1:
            raise ValueError(
                f"train: set exactly one of folds, test_bars, test_period (got {tests}); "
                "set the others to null"
            )
        if self.test_period is not None and not _PERIOD.fullmatch(self.test_period):
            raise ValueError(
                f"train.test_period {self.test_period!r} is not a period such as 30d, 2w or 1mo"
            )
        if (self.valid_fraction is None) == (self.valid_bars is None):
            raise ValueError(
                "train: set exactly one of valid_fraction and valid_bars; set the other to null"
            )
        return self


class SignalConfig(_Model):
    """How model scores become a direction; shared by the backtest and risk so they agree."""

    smoothing: int = Field(default=4, ge=1, description="mean of the last N scores per symbol")
    threshold: float = Field(default=0.2, ge=0, le=1, description="|score| needed to hold")
    allow_short: bool = False


class BacktestConfig(_Model):
    init_cash: float = Field(default=100_000.0, gt=0)
    fees: float = Field(default=0.001, ge=0)
    slippage: float = Field(default=0.0005, ge=0)


class RiskConfig(_Model):
    target_vol: float = Field(default=0.20, gt=0, description="annualised")
    vol_window: int = Field(default=72, ge=2)
    max_weight: float = Field(default=0.5, gt=0)
    max_gross: float = Field(default=1.0, gt=0)
    kill_drawdown: float = Field(
        default=0.5, gt=0, le=1, description="flatten every target if the backtest lost this much"
    )


class PaperConfig(_Model):
    ledger_url: str = "sqlite:///data/ledger.sqlite"
    account: str = "paper"
    equity: float = Field(default=100_000.0, gt=0)
    fee_rate: float = Field(default=0.001, ge=0)
    min_notional: float = Field(default=10.0, ge=0)
    qty_decimals: int = Field(default=5, ge=0, le=8)


class TrackingConfig(_Model):
    uri: str = "sqlite:///experiments/mlflow.db"
    artifacts: str = "experiments/artifacts"


class Config(_Model):
    paths: PathsConfig = PathsConfig()
    universe: UniverseConfig = UniverseConfig()
    exchange: ExchangeConfig = ExchangeConfig()
    validate_: ValidateConfig = Field(default=ValidateConfig(), alias="validate")
    features: FeaturesConfig = FeaturesConfig()
    labels: LabelsConfig = LabelsConfig()
    train: TrainConfig = TrainConfig()
    signal: SignalConfig = SignalConfig()
    backtest: BacktestConfig = BacktestConfig()
    risk: RiskConfig = RiskConfig()
    paper: PaperConfig = PaperConfig()
    tracking: TrackingConfig = TrackingConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def config_hash(section: BaseModel) -> str:
    """A short stable hash of one config section, recorded in lineage."""
    payload = json.dumps(section.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def config_slice(cfg: Config, reads: tuple[str, ...], ignore: tuple[str, ...] = ()) -> dict:
    """The settings a stage reads, by dotted path as in the YAML ("universe", "labels.horizon"),
    less the `ignore` paths inside them (report knobs, tracking destinations)."""
    tree = cfg.model_dump(mode="json", by_alias=True)
    # A JSON round trip copies each value, so removing an ignored key touches one read only.
    out = {path: json.loads(json.dumps(_at(tree, path))) for path in reads}
    for path in ignore:
        owner = next((r for r in reads if path.startswith(r + ".")), None)
        if owner is None:
            raise ConfigError(f"ignored config path {path!r} lies inside none of {list(reads)}")
        rest = path[len(owner) + 1 :]
        parent, _, leaf = rest.rpartition(".")
        node = _at(out[owner], parent, path) if parent else out[owner]
        _at(node, leaf, path)  # a misspelt ignore is an error, not a silent no-op
        del node[leaf]
    return out


def slice_hash(cfg: Config, reads: tuple[str, ...], ignore: tuple[str, ...] = ()) -> str:
    """A stage's config fingerprint: a short stable hash of exactly `config_slice(cfg, reads,
    ignore)`, so an edit it does not read reuses its outputs and one it reads never does."""
    payload = json.dumps(config_slice(cfg, reads, ignore), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


_MISSING = object()


def _at(tree: object, path: str, full: str = "") -> object:
    """The value at dotted `path` in a dumped config (`full`: the path to name in errors)."""
    node = tree
    for key in path.split("."):
        if not isinstance(node, dict) or node.get(key, _MISSING) is _MISSING:
            raise ConfigError(
                f"config path {full or path!r} names no setting; spell it as in the YAML"
            )
        node = node[key]
    return node


def _expand_env(value: object) -> object:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                if _SECRET_VAR.search(name):  # e.g. the ledger password inside paper.ledger_url
                    secrets.mask(os.environ[name])
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(
                f"config refers to ${{{name}}} but the environment variable {name} is not set; "
                f"export it or give a default as ${{{name}:-value}}"
            )

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def _resolve(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else (root / path).resolve()


def _resolve_input(path: Path, root: Path) -> Path:
    """A read-only input (the replay sample, the known outages): under `root` when there, else
    the project's own.

    `QUANTLAB_HOME` moves everything quantlab writes; inputs shipped with the project, such
    as data/sample, stay readable when the home folder does not carry a copy.
    """
    resolved = _resolve(path, root)
    shipped = _resolve(path, PROJECT_ROOT)
    return resolved if resolved.exists() or not shipped.exists() else shipped


def _is_uri(location: str) -> bool:
    """`s3://...`, `mlflow-artifacts:/...`, `file:///...`: a URI, not a local path (`C:\\x` is a path)."""
    return _URI_SCHEME.match(location) is not None


def _resolve_url(url: str, root: Path) -> str:
    """Make `sqlite:///relative/path` absolute against the project root."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(_resolve(Path(url[len(prefix) :]), root))
    return url


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path, what: str, seen: tuple[Path, ...] = ()) -> dict:
    """Read one config file; `extends: other.yaml` layers it over another file, kedro-environment style."""
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist; pass an existing YAML file")
    if path.resolve() in seen:
        raise ConfigError(f"{what} {path} extends itself through {[str(p) for p in seen]}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path} must hold a mapping at the top level")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    base = _read_yaml((path.parent / str(parent)).resolve(), what, (*seen, path.resolve()))
    return _deep_merge(base, raw)


def load_file(path: Path, model: type[_M], *, what: str, hint: str) -> _M:
    """Read, expand and validate one YAML file into `model`: the one loader every file in
    `configs/` goes through (the run config, the markets, the known outages).

    `extends: other.yaml` layers the file over another; `${VAR}` and `${VAR:-default}` read
    the environment. Errors name the file and each bad key; `hint` says where to look.
    """
    raw = _expand_env(_read_yaml(path, what))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError(f"{what} {path} is invalid:\n" + "\n".join(lines) + "\n" + hint) from None


def home() -> Path:
    """Where relative paths in configs resolve: `$QUANTLAB_HOME`, else the project root."""
    return Path(os.environ.get("QUANTLAB_HOME") or PROJECT_ROOT)


def resolve_path(path: Path) -> Path:
    """A relative path against `home()`; an absolute one as it is."""
    return _resolve(path, home())


def load_config(path: str | Path | None = None) -> Config:
    """Load, validate and resolve a config file.

    Without a path, `$QUANTLAB_CONFIG` is used, else `configs/default.yaml`.
    Relative paths in the file are resolved against `$QUANTLAB_HOME` or the
    project root, so the same config works from any working directory.
    """
    path = Path(path or os.environ.get("QUANTLAB_CONFIG") or DEFAULT_CONFIG)
    cfg = load_file(
        path,
        Config,
        what="config file",
        hint="Fix these keys (unknown keys are typos; see configs/default.yaml for every key).",
    )
    root = home()
    return cfg.model_copy(
        update={
            "paths": PathsConfig(
                data=_resolve(cfg.paths.data, root),
                experiments=_resolve(cfg.paths.experiments, root),
            ),
            "exchange": cfg.exchange.model_copy(
                update={"replay_root": _resolve_input(cfg.exchange.replay_root, root)}
            ),
            "validate_": cfg.validate_.model_copy(
                update={
                    "known_outages": _resolve_input(cfg.validate_.known_outages, root)
                    if cfg.validate_.known_outages is not None
                    else None
                }
            ),
            "paper": cfg.paper.model_copy(
                update={"ledger_url": _resolve_url(cfg.paper.ledger_url, root)}
            ),
            "tracking": TrackingConfig(
                uri=_resolve_url(cfg.tracking.uri, root),
                artifacts=cfg.tracking.artifacts
                if _is_uri(cfg.tracking.artifacts)
                else str(_resolve(Path(cfg.tracking.artifacts), root)),
            ),
        }
    )
