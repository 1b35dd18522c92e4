"""quantlab.train.reproduce: the parts a rerun decides before it trains (end to end: tests/cli)."""

from __future__ import annotations


def test_the_rerun_studies_never_use_the_runs_study_storage():
    from quantlab.config import TrainConfig
    from quantlab.train.reproduce import _in_memory_studies

    class WithStorage(TrainConfig):  # the shape the search lane gives TrainConfig
        storage: str | None = None

    stored = WithStorage(storage="postgresql+psycopg2://optuna@db/optuna")
    assert _in_memory_studies(stored).storage is None
    plain = TrainConfig()
    assert _in_memory_studies(plain) is plain
