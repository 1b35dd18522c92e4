"""The registry wrapper: versions as challengers, the champion history MLflow does not keep,
rollback along it, and a version's booster back from its model files."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from quantlab.tracking.models import log_booster
from quantlab.tracking.registry import ModelNotFound, Registry, load_booster


@pytest.fixture(scope="module")
def logged(store):
    """(registry, model uri, run id, booster): one tiny LightGBM logged to the module's store."""
    import mlflow

    client, experiment_id = store
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    booster = lgb.train({"objective": "binary", "verbosity": -1}, lgb.Dataset(x, (x[:, 0] > 0)), 5)
    example = pl.DataFrame(x[:3], schema=["a", "b", "c"], orient="row")
    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        info = log_booster(
            "lightgbm", booster, name="model", example=example, output=booster.predict(x[:3])
        )
    return Registry(client.tracking_uri), info.model_uri, run.info.run_id, booster, x


def test_register_describes_the_version_and_makes_it_challenger(logged):
    reg, uri, run_id, _, _ = logged
    ref = reg.register(
        "reg-a", uri, run_id, {"family": "main", "kind": "lightgbm", "columns": '["a","b","c"]'}
    )
    assert ref.version == 1 and ref.aliases == ("challenger",)
    assert ref.meta("kind") == "lightgbm" and ref.meta_json("columns") == ["a", "b", "c"]
    assert reg.by_run("reg-a", run_id).version == 1
    assert reg.champion("reg-a") is None
    with pytest.raises(ValueError, match="unknown model metadata"):
        reg.describe("reg-a", 1, {"colour": "red"})


def test_champion_history_and_rollback_walk_back_one_step_at_a_time(logged):
    reg, uri, run_id, _, _ = logged
    versions = [reg.register("reg-b", uri, run_id, {"kind": "lightgbm"}).version for _ in range(3)]
    assert reg.set_champion("reg-b", versions[0], by="gate") is None
    assert reg.set_champion("reg-b", versions[1], by="gate").version == versions[0]
    assert reg.set_champion("reg-b", versions[2], by="person:x").version == versions[1]
    third = reg.champion("reg-b")
    assert (
        third.tags["previous_champion"] == str(versions[1])
        and third.tags["promoted_by"] == "person:x"
    )
    assert "demoted_at" in reg.version("reg-b", versions[1]).tags
    # The challenger alias left the version that became champion.
    assert reg.challenger("reg-b") is None
    rolled, restored = reg.rollback("reg-b", by="person:y")
    assert (rolled.version, restored.version) == (versions[2], versions[1])
    assert reg.champion("reg-b").version == versions[1]
    assert "rolled_back_at" in reg.version("reg-b", versions[2]).tags
    reg.rollback("reg-b", by="person:y")
    assert reg.champion("reg-b").version == versions[0]
    with pytest.raises(ModelNotFound, match="nothing to roll back to"):
        reg.rollback("reg-b", by="person:y")


def test_every_version_stays_loadable_with_the_same_predictions(logged, tmp_path):
    reg, uri, run_id, booster, x = logged
    ref = reg.register("reg-c", uri, run_id, {"kind": "lightgbm"})
    loaded = load_booster(reg.download(ref, tmp_path), "lightgbm")
    np.testing.assert_array_equal(loaded.predict(x), booster.predict(x))


def test_unknown_models_and_versions_say_what_to_do(logged):
    reg = logged[0]
    with pytest.raises(ModelNotFound, match="make run"):
        reg.versions("no-such-model")
    reg.register("reg-d", logged[1], logged[2], {})
    with pytest.raises(ModelNotFound, match="quantlab model list"):
        reg.version("reg-d", 99)
    assert reg.alias("no-such-model", "champion") is None
