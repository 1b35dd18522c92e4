"""A process's server: the champion loaded once, the newest bars' features cached per
klines version, every call answered from the champion the registry names now.

What is cached, and why it is honest: a model version's booster (versions are immutable);
the klines version a passing validation names (per `klines_checks` version, immutable); and
the newest bars with their features, per (klines version, symbols, bars asked for): a
function of an immutable version, re-read when a new version is validated or when a bar the
version held open has closed since. The `champion` alias is read on every call (unless
`lifecycle.serving.alias_ttl_s` says how long to trust it), so a rollback answers at once.
Scores are never cached: every call runs the champion on the features.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.context import RunContext
from quantlab.errors import ConfigError, DatasetNotFound
from quantlab.serving.alias import read_alias
from quantlab.serving.model import LoadedModel, load_model, serving_cache
from quantlab.serving.tail import Tail, load_tail, pending_close, serving_symbols, validated
from quantlab.tracking.registry import (
    CHAMPION,
    ModelNotFound,
    ModelRef,
    Registry,
    registry_for,
)

_TAILS_KEPT = 8  # (symbols, bars) combinations kept per process


class UnknownSymbol(ConfigError):
    """A symbol the configured universe or the champion does not serve."""


class NoChampion(ModelNotFound):
    """A registered model with no `champion` version yet (or no such model)."""


@dataclass(frozen=True)
class Scored:
    """The newest bars of one symbol scored by one model version."""

    model: LoadedModel
    klines: DatasetRef
    rows: pl.DataFrame  # KEY + the model family's outputs, oldest first
    started: float  # perf_counter() at the call's start

    def latency_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000.0, 3)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Scorer:
    """Answers for `ctx`'s universe from the registry at `ctx.config.tracking.uri`."""

    def __init__(
        self,
        ctx: RunContext,
        registry: Registry | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ):
        self.ctx = ctx
        self.registry = registry or registry_for(ctx.config.tracking.uri)
        self.cache_dir = serving_cache(ctx.config.paths.data)
        self.clock = clock
        self._lock = threading.Lock()
        self._aliases: dict[str, tuple[float, ModelRef]] = {}
        self._validated: dict[int, DatasetRef] = {}  # klines_checks version -> klines version
        self._tails: OrderedDict[tuple, tuple[Tail, datetime | None]] = OrderedDict()

    # -- models -------------------------------------------------------------------------
    def main_name(self, symbol: str) -> str:
        cfg = self.ctx.config.train
        if cfg.register_as is None:
            raise ConfigError(
                "train.register_as is null: training registers no model to serve; set it "
                "(default quantlab-research) and run `make run`"
            )
        return f"{cfg.register_as}-{symbol}" if cfg.per_symbol else cfg.register_as

    def regime_name(self, symbol: str) -> str:
        cfg = self.ctx.config.lifecycle.regime
        if not cfg.enabled:
            raise ConfigError(
                "lifecycle.regime.enabled is false: no regime model is trained; enable it and "
                "run `make run`"
            )
        return f"{cfg.register_as}-{symbol}"

    def champion(self, name: str) -> LoadedModel:
        """`name`'s champion now (the alias read per call unless alias_ttl_s trusts it longer)."""
        ttl = self.ctx.config.lifecycle.serving.alias_ttl_s
        held = self._aliases.get(name)
        if ttl > 0 and held is not None and time.monotonic() - held[0] < ttl:
            ref = held[1]
        else:
            ref = read_alias(self.registry, name, CHAMPION)
            if ref is None:
                raise NoChampion(
                    f"{name} has no champion in {self.registry.uri}: train and judge one first "
                    "(`make run`), or pick a version with `quantlab model promote VERSION`"
                )
            self._aliases[name] = (time.monotonic(), ref)
        return load_model(self.registry, ref, self.cache_dir)

    def check_symbol(self, symbol: str, model: LoadedModel | None = None) -> None:
        universe = self.ctx.config.universe.symbols
        if symbol not in universe:
            raise UnknownSymbol(
                f"{symbol} is not in universe.symbols {list(universe)}; add it to configs/ and "
                "run `make run` (its model comes with the next training)"
            )
        if model is not None and model.symbols and symbol not in model.symbols:
            raise UnknownSymbol(
                f"{model.ref} was trained on {list(model.symbols)}, not {symbol}; retrain "
                "(`make run`) so a champion serves it"
            )

    # -- bars and features --------------------------------------------------------------
    def klines(self) -> DatasetRef:
        """The klines version the newest passing validation names (cached per validation)."""
        catalog = self.ctx.catalog
        try:
            checks = catalog.latest("klines_checks").version
        except DatasetNotFound as exc:
            raise DatasetNotFound(
                f"no validated klines in the catalog at {catalog.root}: run `make run` first "
                f"({exc})"
            ) from None
        if checks not in self._validated:
            self._validated[checks] = validated(catalog)
        return self._validated[checks]

    def tail(self, symbol: str, extra: int) -> Tail:
        """Features of `symbol`'s newest `extra` closed bars (and of the symbols they compare to)."""
        klines, now = self.klines(), self.clock()
        symbols = serving_symbols(self.ctx.config, symbol)
        key = (klines, symbols, extra)
        with self._lock:
            held = self._tails.get(key)
            if held is not None and (held[1] is None or now <= held[1]):
                self._tails.move_to_end(key)
                return held[0]
        tail = load_tail(self.ctx.catalog, self.ctx.config, symbols, extra, now, klines)
        # A bar the version holds open closes at some point: the tail is good until then.
        until = pending_close(self.ctx.catalog, klines, self.ctx.config, symbols, now)
        with self._lock:
            self._tails[key] = (tail, until)
            while len(self._tails) > _TAILS_KEPT:
                self._tails.popitem(last=False)
        return tail

    # -- answers ------------------------------------------------------------------------
    def score(self, name: str, symbol: str, bars: int) -> Scored:
        """`name`'s champion on `symbol`'s newest `bars` closed bars."""
        started = time.perf_counter()
        self.check_symbol(symbol)
        model = self.champion(name)
        self.check_symbol(symbol, model)
        tail = self.tail(symbol, bars)
        rows = tail.features.filter(pl.col("symbol") == symbol).tail(bars)
        if rows.height == 0:
            raise DatasetNotFound(
                f"{tail.klines} has no closed bars of {symbol}; ingest them (`make run`)"
            )
        return Scored(model, tail.klines, model.predict(rows), started)
