"""The feature registry: every indicator with its name template, family, warm-up and description.

An indicator is a name template such as `rsi_{n}` and a function from its
integer parameters to one polars expression over one symbol's time-sorted bars.
`resolve("rsi_21")` parses a name back to a concrete `Feature`, so a config may
use any parameters, while `library()` lists the instances `quantlab features
list` prints.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from quantlab.config import FeaturesConfig
from quantlab.errors import ConfigError
from quantlab.features._primitives import collect_deps

FAMILIES = ("price", "momentum", "trend", "volatility", "volume", "regime", "funding")


@dataclass(frozen=True)
class Indicator:
    template: str
    family: str
    describe: str
    build: Callable[..., pl.Expr]
    warmup: Callable[..., int]
    library: tuple[dict[str, int], ...]
    config_params: Callable[[FeaturesConfig], dict[str, Any]] | None = None
    unit: str = "bars"  # what `warmup` counts: bars, or funding events

    @property
    def pattern(self) -> re.Pattern[str]:
        parts = re.split(r"\{(\w+)\}", self.template)
        regex = "".join(
            f"(?P<{p}>[1-9][0-9]*)" if i % 2 else re.escape(p) for i, p in enumerate(parts)
        )
        return re.compile(f"^{regex}$")


@dataclass(frozen=True)
class Feature:
    """One concrete column: `expr` evaluates it over one symbol's bars, sorted by time."""

    name: str
    family: str
    params: dict[str, Any]
    warmup: int  # leading rows (in `unit`) that are null
    description: str
    expr: pl.Expr
    unit: str = "bars"
    deps: dict[str, pl.Expr] = field(default_factory=dict)  # `cached` intermediates, in order


REGISTRY: dict[str, Indicator] = {}


def indicator(
    template: str,
    *,
    family: str,
    describe: str,
    warmup: Callable[..., int],
    library: tuple[dict[str, int], ...] | list[dict[str, int]] = ({},),
    config_params: Callable[[FeaturesConfig], dict[str, Any]] | None = None,
    unit: str = "bars",
) -> Callable[[Callable[..., pl.Expr]], Callable[..., pl.Expr]]:
    """Register the decorated `params -> pl.Expr` function under `template`."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; use one of {FAMILIES}")

    def wrap(fn: Callable[..., pl.Expr]) -> Callable[..., pl.Expr]:
        if template in REGISTRY:
            raise ValueError(f"indicator {template!r} is registered twice")
        REGISTRY[template] = Indicator(
            template, family, describe, fn, warmup, tuple(library), config_params, unit
        )
        return fn

    return wrap


def _load_families() -> None:
    # Importing a family module registers its indicators.
    from quantlab.features import funding, momentum, price, regimes, trend, volatility, volume

    del funding, momentum, price, regimes, trend, volatility, volume


def resolve(name: str, cfg: FeaturesConfig | None = None) -> Feature:
    """The registered feature called `name`, e.g. `rsi_14`; ConfigError if none matches."""
    _load_families()
    for ind in REGISTRY.values():
        if m := ind.pattern.match(name):
            params: dict[str, Any] = {k: int(v) for k, v in m.groupdict().items()}
            if ind.config_params is not None:
                params.update(ind.config_params(cfg or FeaturesConfig()))
            with collect_deps() as deps:
                expr = ind.build(**params).alias(name)
            return Feature(
                name=name,
                family=ind.family,
                params=params,
                warmup=ind.warmup(**params),
                description=ind.describe.format(**params),
                expr=expr,
                unit=ind.unit,
                deps=deps,
            )
    raise ConfigError(
        f"unknown feature {name!r} in features config; "
        "`quantlab features list` shows the registry and each name's template"
    )


def merged_deps(features: list[Feature]) -> dict[str, pl.Expr]:
    """The intermediates `features` need, each once, in an order that respects dependencies."""
    out: dict[str, pl.Expr] = {}
    for f in features:
        for name, expr in f.deps.items():
            out.setdefault(name, expr)
    return out


def library(cfg: FeaturesConfig | None = None) -> list[Feature]:
    """Every listed instance of every registered indicator, grouped by family."""
    _load_families()
    out = [
        resolve(ind.template.format(**params), cfg)
        for ind in REGISTRY.values()
        for params in ind.library
    ]
    return sorted(out, key=lambda f: FAMILIES.index(f.family))
