"""quantlab: a research platform for crypto quants on Binance.

Stages are pure functions on polars frames plus a thin `run`; datasets are
addressed by name and version through `quantlab.catalog.Catalog`.
"""

__version__ = "0.1.0"
