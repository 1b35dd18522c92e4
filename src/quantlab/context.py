"""What every stage's `run` receives: the loaded config and the catalog built from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from quantlab._numba import use_cache_dir
from quantlab.catalog import Catalog
from quantlab.config import Config, load_config


@dataclass(frozen=True)
class RunContext:
    config: Config
    catalog: Catalog

    @classmethod
    def load(cls, config_path: str | Path | None = None) -> RunContext:
        """Build the context from `config_path`, `$QUANTLAB_CONFIG` or the default config."""
        config = load_config(config_path)
        use_cache_dir(config.paths.data)
        return cls(config=config, catalog=Catalog.from_paths(config.paths))
