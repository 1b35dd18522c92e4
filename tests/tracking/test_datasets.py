"""quantlab.tracking.datasets: catalog versions, down to the klines they were built from, as
MLflow dataset inputs whose digest is the version's fingerprint; a fold's slices by context."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from quantlab.tracking.datasets import describe_versions, fold_inputs, version_inputs
from tracking.support import lineage_catalog


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    ctx, features, labels = lineage_catalog(tmp_path_factory.mktemp("datasets"))
    return ctx.catalog, features, labels


def test_versions_walk_the_lineage_once_each(catalog):
    cat, features, labels = catalog
    versions = describe_versions(cat, [features, labels])
    assert [v.name for v in versions] == ["features@v0", "klines@v0", "labels@v0"]
    for v in versions:
        assert v.lineage == cat.lineage(v.ref)
        assert v.uri == (cat.root / v.ref.name).resolve().as_uri()
    assert "close" in versions[1].schema and "label_up" in versions[2].schema


def test_inputs_logged_and_read_back_carry_fingerprint_context_schema_and_profile(catalog, store):
    client, experiment_id = store
    cat, features, labels = catalog
    versions = describe_versions(cat, [features, labels])
    fold = {"fold": 2}
    for part, rows in (("train", 100), ("valid", 20), ("test", 30)):
        fold |= {
            f"{part}_start": datetime(2023, 2, 1, tzinfo=UTC),
            f"{part}_end": datetime(2023, 3, 1, tzinfo=UTC),
            f"{part}_rows": rows,
        }
    fold["train_labels_before"] = datetime(2023, 2, 28, tzinfo=UTC)
    run_id = client.create_run(experiment_id).info.run_id
    client.log_inputs(run_id, version_inputs(versions) + fold_inputs(versions[:1], fold))
    got = {i.dataset.name: i for i in client.get_run(run_id).inputs.dataset_inputs}
    assert set(got) == {
        "features@v0",
        "klines@v0",
        "labels@v0",
        "features@v0 fold2 train",
        "features@v0 fold2 valid",
        "features@v0 fold2 test",
    }
    contexts = {n: {t.key: t.value for t in i.tags}["mlflow.data.context"] for n, i in got.items()}
    assert contexts["klines@v0"] == "training"
    assert contexts["features@v0 fold2 valid"] == "validation"
    assert contexts["features@v0 fold2 test"] == "testing"
    for name, item in got.items():
        ref = next(v.ref for v in versions if name.startswith(v.name))
        assert item.dataset.digest == cat.lineage(ref).fingerprint
        assert len(item.dataset.digest) <= 36  # the SQL store's limit
    slice_ = got["features@v0 fold2 train"].dataset
    assert json.loads(slice_.profile)["num_rows"] == 100
    rows = json.loads(slice_.source)["rows"]
    assert rows["labels_before"] == "2023-02-28T00:00:00+00:00"
    schema = json.loads(got["labels@v0"].dataset.schema)["mlflow_colspec"]
    assert "label_up" in {c["name"] for c in schema}
    assert json.loads(got["klines@v0"].dataset.profile)["stage"] == "ingest"
