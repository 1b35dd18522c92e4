"""The champion alias read from MLflow's SQLite tables equals what MLflow's client reads."""

from __future__ import annotations

from quantlab.serving.alias import read_alias, sqlite_file
from quantlab.tracking.registry import CHAMPION, Registry
from serving.support import MAIN, REGIME, SYMBOLS


def test_the_sqlite_read_equals_the_mlflow_client(served):
    registry = served.registry
    assert sqlite_file(registry.uri) is not None  # the fast path is the one under test
    for name in (MAIN, *(f"{REGIME}-{s}" for s in SYMBOLS)):
        fast, slow = read_alias(registry, name, CHAMPION), registry.champion(name)
        assert fast is not None and slow is not None
        assert (fast.name, fast.version, fast.run_id, fast.source) == (
            slow.name,
            slow.version,
            slow.run_id,
            slow.source,
        )
        assert fast.tags == slow.tags
    assert read_alias(registry, MAIN, "no-such-alias") is None
    assert read_alias(registry, "no-such-model", CHAMPION) is None


def test_another_registry_goes_through_the_client(served, tmp_path):
    # Not a SQLite URI: the MLflow client answers (here: a file store with no such model).
    other = Registry((tmp_path / "mlruns").as_uri())
    assert sqlite_file(other.uri) is None
    assert read_alias(other, MAIN, CHAMPION) is None
