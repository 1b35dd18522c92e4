"""MLflow wiring. `experiment`: the configured store and a logged model's pinned environment."""

from quantlab.tracking.experiment import MODEL_PACKAGES, model_environment, start_experiment

__all__ = ["MODEL_PACKAGES", "model_environment", "start_experiment"]
