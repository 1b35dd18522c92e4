"""The model lifecycle: the promotion gate over the MLflow registry (`promote`), out-of-sample
scoring (`evaluate`, `oos`), incremental retraining, live accuracy and its retrain triggers.

Nothing here imports Airflow; the `retrain_*` and `model_monitor` DAGs wire these stages.
"""
