"""The dataset catalog: named, versioned Delta tables with lineage, and the registry of them.

`refs`: what tasks pass (DatasetRef) and what a version records (Lineage). `datasets`: every
dataset's schema, key, partitions and producer; `extras`: the typed lineage facts. `_core`: the Catalog and
its Delta mechanics. `artifacts`: files published with a version. `export`: a copy out.
"""

from quantlab.catalog._core import Catalog
from quantlab.catalog.artifacts import ArtifactWriter
from quantlab.catalog.datasets import DATASETS, Dataset, Registry
from quantlab.catalog.extras import (
    BacktestRun,
    BacktestStats,
    ExplainRun,
    Extra,
    FoldMetrics,
    GateVerdict,
    RiskRun,
    ShapStability,
    TrainingRun,
)
from quantlab.catalog.refs import DatasetRef, Lineage, VersionInfo, fingerprint

__all__ = [
    "DATASETS",
    "ArtifactWriter",
    "BacktestRun",
    "BacktestStats",
    "Catalog",
    "Dataset",
    "DatasetRef",
    "ExplainRun",
    "Extra",
    "FoldMetrics",
    "GateVerdict",
    "Lineage",
    "Registry",
    "RiskRun",
    "ShapStability",
    "TrainingRun",
    "VersionInfo",
    "fingerprint",
]
