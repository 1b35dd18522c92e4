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
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from quantlab.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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


class UniverseConfig(_Model):
    market: Literal["spot", "futures_um"] = "spot"
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    interval: Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"] = "1h"
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
        return self


class ExchangeConfig(_Model):
    source: Literal["replay", "binance"] = "replay"
    base_url: str | None = None
    replay_root: Path = Path("data/sample")
    timeout_s: float = 10.0
    max_retries: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _check_url(self) -> ExchangeConfig:
        if self.source == "binance" and not self.base_url:
            raise ValueError("exchange.base_url is required when exchange.source is 'binance'")
        return self


class ValidateConfig(_Model):
    min_price: float = 1e-8
    max_return_sigmas: float = Field(default=12.0, gt=0)
    min_year: int = 2017
    max_year: int = 2100


class FeaturesConfig(_Model):
    return_windows: tuple[int, ...] = (1, 4, 24)
    vol_windows: tuple[int, ...] = (24, 72)
    rsi_window: int = 14
    ema_fast: int = 12
    ema_slow: int = 26
    bollinger_window: int = 20
    atr_window: int = 14
    volume_window: int = 24


class LabelsConfig(_Model):
    horizon: int = Field(default=4, ge=1, description="bars ahead for the forward return")


class TrainConfig(_Model):
    model: Literal["lightgbm"] = "lightgbm"
    folds: int = Field(default=4, ge=3)
    min_train_fraction: float = Field(default=0.4, gt=0, lt=1)
    embargo_bars: int = Field(default=24, ge=0)
    trials: int = Field(default=4, ge=1)
    num_boost_round: int = Field(default=200, ge=10)
    seed: int = 42
    experiment: str = "research"
    register_as: str | None = "quantlab-research"


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


def _expand_env(value: object) -> object:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
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


def _resolve_url(url: str, root: Path) -> str:
    """Make `sqlite:///relative/path` absolute against the project root."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(_resolve(Path(url[len(prefix) :]), root))
    return url


def load_config(path: str | Path | None = None) -> Config:
    """Load, validate and resolve a config file.

    Without a path, `$QUANTLAB_CONFIG` is used, else `configs/default.yaml`.
    Relative paths in the file are resolved against `$QUANTLAB_HOME` or the
    project root, so the same config works from any working directory.
    """
    path = Path(path or os.environ.get("QUANTLAB_CONFIG") or DEFAULT_CONFIG)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    try:
        cfg = Config.model_validate(_expand_env(raw))
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError(
            f"config file {path} is invalid:\n" + "\n".join(lines) + "\n"
            "Fix these keys (unknown keys are typos; see configs/default.yaml for every key)."
        ) from None
    root = Path(os.environ.get("QUANTLAB_HOME") or PROJECT_ROOT)
    return cfg.model_copy(
        update={
            "paths": PathsConfig(
                data=_resolve(cfg.paths.data, root),
                experiments=_resolve(cfg.paths.experiments, root),
            ),
            "exchange": cfg.exchange.model_copy(
                update={"replay_root": _resolve(cfg.exchange.replay_root, root)}
            ),
            "paper": cfg.paper.model_copy(
                update={"ledger_url": _resolve_url(cfg.paper.ledger_url, root)}
            ),
            "tracking": TrackingConfig(
                uri=_resolve_url(cfg.tracking.uri, root),
                artifacts=str(_resolve(Path(cfg.tracking.artifacts), root))
                if "://" not in cfg.tracking.artifacts
                else cfg.tracking.artifacts,
            ),
        }
    )
