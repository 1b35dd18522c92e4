"""The catalog: versions, lineage, idempotent writes, upserts and atomicity under kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import polars as pl
import pytest
from deltalake import DeltaTable

from helpers import load_sample_klines
from quantlab.catalog import DATASETS, Catalog, Dataset, DatasetRef
from quantlab.errors import DatasetNotFound, DuplicateKeyError
from quantlab.schema import KLINES_KEY, KLINES_SCHEMA

# The datasets these tests make up, declared as a stage would declare its own.
_X = {"x": pl.Int64()}
REGISTRY = DATASETS.with_datasets(
    Dataset("bars", _X, "test"),
    Dataset("derived", {"y": pl.Int64()}, "test"),
    Dataset("big", _X, "test"),
    Dataset("checks", _X, "test"),
    Dataset("klines_copy", KLINES_SCHEMA, "test"),
)
# For the child processes below, which build their own catalog.
_REGISTRY_SRC = (
    "import polars as pl\n"
    "from quantlab.catalog import DATASETS, Dataset\n"
    "REGISTRY = DATASETS.with_datasets(*(Dataset(n, {'x': pl.Int64()}, 'test') "
    "for n in ('big', 'klines_checks')))\n"
)


@pytest.fixture
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog", registry=REGISTRY)


def test_write_creates_versions_with_lineage(catalog):
    a = catalog.write("bars", pl.DataFrame({"x": [1, 2]}), stage="s1", config_hash="c1")
    b = catalog.write("derived", pl.DataFrame({"y": [3]}), stage="s2", inputs=[a], config_hash="c2")
    lin = catalog.lineage(b)
    assert (a, b) == (DatasetRef("bars", 0), DatasetRef("derived", 0))
    assert lin.inputs == {"bars": 0}
    assert lin.config_hash == "c2" and lin.row_count == 1 and lin.stage == "s2"
    assert [r for r, _ in catalog.walk_lineage(b)] == [b, a]


def test_same_inputs_config_and_code_write_nothing_new(catalog):
    df = pl.DataFrame({"x": [1, 2, 3]})
    first = catalog.write("bars", df, stage="s", config_hash="c")
    again = catalog.write("bars", df, stage="s", config_hash="c")
    changed = catalog.write("bars", df.head(1), stage="s", config_hash="other")
    assert again == first
    assert changed == DatasetRef("bars", 1)
    assert catalog.read(first).height == 3  # an old version stays readable and unchanged
    assert catalog.read(changed).height == 1


def test_upsert_merges_on_key_without_duplicates(catalog):
    real = load_sample_klines("BTCUSDT", ("2023-03",))
    first = catalog.upsert("klines", real.head(100), KLINES_KEY, stage="ingest")
    overlap = real.slice(50, 100)  # 50 known rows, 50 new
    second = catalog.upsert("klines", overlap, KLINES_KEY, stage="ingest")
    stored = catalog.read(second)
    assert second.version == first.version + 1
    assert stored.height == 150
    assert stored.unique(subset=list(KLINES_KEY)).height == 150
    assert catalog.lineage(second).row_count == 150
    assert catalog.upsert("klines", real.head(0), KLINES_KEY, stage="ingest") is None


def test_upsert_into_a_partitioned_table_updates_appends_and_leaves_other_partitions(catalog):
    """Partitioned as ingest stores klines: a merge reads only the partitions of its rows;
    a batch of only new rows is appended; an updated candle replaces the stored one."""
    parts = ["market", "interval", "symbol"]
    btc, eth = (load_sample_klines(s, ("2023-03",)) for s in ("BTCUSDT", "ETHUSDT"))
    odd = btc.head(10).with_columns(pl.lit("O'DD").alias("symbol"))  # a quote in a value
    first = catalog.upsert(
        "klines", pl.concat([btc.head(100), odd]), KLINES_KEY, stage="ingest", partition_by=parts
    )
    # ETH is all new: appended. The next merge updates 20 BTC and 5 O'DD candles.
    appended = catalog.upsert("klines", eth.head(60), KLINES_KEY, stage="ingest")
    revised = pl.concat([btc.slice(80, 40), odd.head(5)]).with_columns(pl.col("volume") + 1)
    merged = catalog.upsert("klines", revised, KLINES_KEY, stage="ingest")
    stored = catalog.read(merged)
    assert [catalog.lineage(r).row_count for r in (first, appended, merged)] == [110, 170, 190]
    assert stored.height == 190 and stored.unique(subset=list(KLINES_KEY)).height == 190
    assert stored.group_by("symbol").len().sort("symbol").rows() == [
        ("BTCUSDT", 120),
        ("ETHUSDT", 60),
        ("O'DD", 10),
    ]
    got = stored.join(revised.select(*KLINES_KEY, "volume"), on=list(KLINES_KEY), suffix="_new")
    assert got.height == 45 and (got["volume"] == got["volume_new"]).all()
    untouched = stored.filter(pl.col("symbol") == "ETHUSDT").sort("open_time")
    assert untouched["volume"].to_list() == eth.head(60)["volume"].to_list()
    table = DeltaTable(str(catalog._table_path("klines")))
    assert table.metadata().partition_columns == parts


def test_upsert_rejects_a_batch_that_repeats_its_key(catalog):
    real = load_sample_klines("BTCUSDT", ("2023-03",)).head(3)
    with pytest.raises(DuplicateKeyError, match="repeat the key"):
        catalog.upsert("klines", pl.concat([real, real]), KLINES_KEY, stage="ingest")


def test_missing_dataset_and_version_say_what_to_do(catalog):
    with pytest.raises(DatasetNotFound, match="run the stage that produces it"):
        catalog.latest("features")
    catalog.write("bars", pl.DataFrame({"x": [1]}), stage="s")
    with pytest.raises(DatasetNotFound, match="has no version 5"):
        catalog.read(DatasetRef("bars", 5))


def test_killed_writer_never_leaves_a_half_written_version(catalog, tmp_path):
    """kill -9 a process in the middle of writing a large version; readers see only whole versions."""
    catalog.write("big", pl.DataFrame({"x": [0] * 10}), stage="seed")
    script = _REGISTRY_SRC + textwrap.dedent(
        f"""
        import sys
        from quantlab.catalog import Catalog
        c = Catalog({str(catalog.root)!r}, registry=REGISTRY)
        print("ready", flush=True)
        for i in range(1000):
            c.write("big", pl.DataFrame({{"x": list(range(2_000_000))}}), stage="w", config_hash=str(i))
        """
    )
    for delay in (0.3, 0.8, 1.5):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for info in catalog.versions("big"):
            df = catalog.read(info.ref)
            assert df.height in (10, 2_000_000), f"{info.ref} is partial: {df.height} rows"
            assert info.lineage is not None and info.lineage.row_count == df.height


def test_timestamps_come_back_in_milliseconds_as_written(catalog):
    real = load_sample_klines("BTCUSDT", ("2023-03",)).head(5)
    ref = catalog.write("klines_copy", real, stage="s")
    back = catalog.read(ref)
    assert back.schema["open_time"] == real.schema["open_time"]
    assert back.join(real, on=["symbol", "open_time"]).height == 5


def test_write_returns_the_version_it_committed_not_a_later_one(catalog, monkeypatch):
    """Another writer commits between this write's commit and its return: the call still
    answers with its own version, the one holding its lineage."""
    from quantlab.catalog import _commits as catalog_module

    catalog.write("checks", pl.DataFrame({"x": [0]}), stage="seed")
    real_write = catalog_module.write_deltalake

    def then_another_commit(*args, **kwargs):
        real_write(*args, **kwargs)
        path = str(catalog._table_path("checks"))
        real_write(path, pl.DataFrame({"x": [9]}).to_arrow(), mode="append")

    monkeypatch.setattr(catalog_module, "write_deltalake", then_another_commit)
    ref = catalog.write("checks", pl.DataFrame({"x": [1]}), stage="mine", config_hash="c")
    assert ref == DatasetRef("checks", 1)
    assert catalog.lineage(ref).stage == "mine"
    assert catalog.latest("checks") == DatasetRef("checks", 2)  # the intruder's, not ours


def test_upsert_returns_the_version_it_committed_not_a_later_one(catalog, monkeypatch):
    from quantlab.catalog import _commits as catalog_module
    from quantlab.catalog._frames import to_storage

    real = load_sample_klines("BTCUSDT", ("2023-03",))
    catalog.upsert("klines", real.head(10), KLINES_KEY, stage="ingest")
    real_write = catalog_module.write_deltalake

    def then_another_commit(*args, **kwargs):
        real_write(*args, **kwargs)
        path = str(catalog._table_path("klines"))
        real_write(path, to_storage(real.slice(50, 1)).to_arrow(), mode="append")

    monkeypatch.setattr(catalog_module, "write_deltalake", then_another_commit)
    ref = catalog.upsert("klines", real.slice(10, 10), KLINES_KEY, stage="ingest")
    assert ref == DatasetRef("klines", 1)
    assert catalog.lineage(ref).row_count == 20 == catalog.read(ref).height


# Each child waits for "go" so both race from the same moment; a patched step sleeps to hold
# the window a lock must close open for long enough that both children are inside it.
_RACER = """
import sys, time
import polars as pl
import quantlab.catalog._commits as commits
import quantlab.catalog._core as cat

step = {step!r}
if step == "after_commit":
    real_write = commits.write_deltalake
    def write_deltalake(*args, **kwargs):
        real_write(*args, **kwargs)
        time.sleep(0.5)
    commits.write_deltalake = write_deltalake
elif step == "after_find":
    real_find = cat.Catalog.find
    def find(self, name, fp):
        found = real_find(self, name, fp)
        time.sleep(0.5)
        return found
    cat.Catalog.find = find
{registry}
catalog = cat.Catalog({root!r}, registry=REGISTRY)
print("ready", flush=True)
sys.stdin.readline()
ref = catalog.write("klines_checks", pl.DataFrame({{"x": [1, 2]}}), stage="gate",
                    config_hash=sys.argv[1])
print(ref.version, flush=True)
"""


def _race(catalog, step: str, config_hashes: tuple[str, str]) -> list[DatasetRef]:
    """Run two processes writing `klines_checks` at once; the refs they returned."""
    script = _RACER.format(step=step, root=str(catalog.root), registry=_REGISTRY_SRC)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, h], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for h in config_hashes
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    for proc in procs:  # the barrier: both are loaded and waiting
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
    outs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    return [DatasetRef("klines_checks", int(out.strip())) for out in outs]


def test_two_processes_writing_at_once_each_get_their_own_version(catalog):
    """Both DAGs write klines_checks: each run must get back the version it wrote."""
    refs = _race(catalog, "after_commit", ("run_a", "run_b"))
    assert sorted(r.version for r in refs) == [0, 1]
    assert [catalog.lineage(r).config_hash for r in refs] == ["run_a", "run_b"]


def test_two_processes_writing_the_same_fingerprint_at_once_make_one_version(catalog):
    refs = _race(catalog, "after_find", ("same", "same"))
    assert refs == [DatasetRef("klines_checks", 0)] * 2
    assert [v.ref for v in catalog.versions("klines_checks")] == refs[:1]


def test_a_table_whose_first_commit_was_killed_counts_as_absent(catalog):
    """A writer killed before its first commit leaves `_delta_log/` empty (maybe with data
    files): the dataset does not exist yet, and the next write creates it."""
    for name in ("bars", "klines"):
        (catalog.root / name / "_delta_log").mkdir(parents=True)
        (catalog.root / name / "part-0.parquet").write_bytes(b"unreferenced")
    assert catalog.names() == [] and not catalog.exists("bars")
    with pytest.raises(DatasetNotFound, match="run the stage that produces it"):
        catalog.latest("bars")
    assert catalog.find("bars", "fp") is None
    ref = catalog.write("bars", pl.DataFrame({"x": [1]}), stage="s")
    assert ref == DatasetRef("bars", 0) and catalog.read(ref)["x"].to_list() == [1]
    real = load_sample_klines("BTCUSDT", ("2023-03",)).head(5)
    up = catalog.upsert("klines", real, KLINES_KEY, stage="ingest")
    assert up == DatasetRef("klines", 0) and catalog.read(up).height == 5
    assert catalog.names() == ["bars", "klines"]
