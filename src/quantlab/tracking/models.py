"""Logging a fitted booster as an MLflow model: a name, a signature, an input example, and
its registration (which alias it gets, the promotion gate, is issue #11's business)."""

from __future__ import annotations

from typing import Any

import polars as pl

from quantlab.tracking.experiment import model_environment

# The flavour module for each booster kind quantlab trains.
FLAVORS = {"lightgbm": "mlflow.lightgbm", "xgboost": "mlflow.xgboost"}
# Rows of the feature matrix kept as the input example: enough to show the columns' values.
EXAMPLE_ROWS = 5


def log_booster(
    kind: str,
    booster: Any,
    *,
    name: str,
    example: pl.DataFrame,
    output: Any,
    register_as: str | None = None,
) -> Any:
    """Log `booster` (a `kind` booster) under the active run as model `name`.

    `example` holds a few rows of the feature matrix (its columns named as in `features`),
    `output` the booster's predictions for them: the signature is inferred from both, in
    pandas, since MLflow's signature and example code has no polars path. Returns MLflow's
    ModelInfo (its `model_id`, `registered_model_version`).
    """
    import importlib

    from mlflow.models import infer_signature

    if kind not in FLAVORS:
        raise ValueError(f"no MLflow flavour for booster kind {kind!r}; known: {sorted(FLAVORS)}")
    flavor = importlib.import_module(FLAVORS[kind])
    frame = example.to_pandas()
    return flavor.log_model(
        booster,
        name=name,
        signature=infer_signature(frame, output),
        input_example=frame,
        registered_model_name=register_as,
        conda_env=model_environment(("mlflow", kind, "numpy", "scipy", "pandas")),
    )
