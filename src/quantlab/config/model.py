"""`Config`, the whole file's model, and the hashes of the slices of it each stage reads."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field

from quantlab.config.data import ExchangeConfig, PathsConfig, UniverseConfig, ValidateConfig, _Model
from quantlab.config.lifecycle import LifecycleConfig
from quantlab.config.monitoring import MonitoringConfig
from quantlab.config.paper import (
    PaperConfig,
)
from quantlab.config.portfolio import BacktestConfig, RiskConfig, SignalConfig
from quantlab.config.research import (
    FeaturesConfig,
    LabelsConfig,
    TrackingConfig,
    TrainConfig,
)
from quantlab.errors import ConfigError


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
    lifecycle: LifecycleConfig = LifecycleConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

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
