"""MLflow wiring: the experiment on the configured store, and what a training run records.

`experiment`: the store and a model's pinned environment. `runs`: the parent and nested
child runs, batched. `datasets`: catalog versions as dataset inputs. `studies`: Optuna
artifacts. `models`: a booster with its signature. `redact`: no secret reaches MLflow.
Tracking takes plain data (frames, dicts, refs, a catalog to read lineage from); it
imports no stage, so the train stage calls it and not the other way round.
"""

from quantlab.tracking.experiment import MODEL_PACKAGES, model_environment, start_experiment
from quantlab.tracking.redact import Redactor

__all__ = ["MODEL_PACKAGES", "Redactor", "model_environment", "start_experiment"]
