"""Stage `labels`: what happened after each bar, for training and factor evaluation.

Input dataset: `klines` (a version that passed the gate). Output: `labels`, keyed
by `symbol, open_time`: forward log returns at each configured horizon, a
3-class direction with a cost-aware dead zone, triple-barrier labels and the
future regime. Every label comes with the time it is resolved (`label_time` for
the trained horizon), so training can purge and embargo by it.
"""

from quantlab.labels.build import build_labels, label_names, target_column
from quantlab.labels.stage import run

__all__ = ["build_labels", "label_names", "run", "target_column"]
