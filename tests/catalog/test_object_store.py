"""The catalog on an S3-compatible object store: moto's server on 127.0.0.1, started here.

What this proves: the catalog's reads, writes, upserts, versions, lineage, listing and export
go through deltalake's S3 object store (real HTTP, SigV4, credentials from the environment,
`conditional_put: etag`), and two writer processes that share no lock file both commit to one
table without losing an update, because each commit is conditional on the version it was
computed from; a reader polling meanwhile only ever sees whole versions.

What it does not prove: moto is an in-memory emulator, so there is no real S3 latency,
throttling or multi-region behaviour, and put-if-absent / If-Match are exactly as moto
implements them (moto 5 honours If-None-Match: * and If-Match on PutObject), not as AWS or
MinIO do under load. The server runs in its own process: deltalake's file-system handler
holds the GIL while it waits, which would stall a server thread in the same interpreter.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import uuid

import polars as pl
import pytest

from quantlab.catalog import DATASETS, Catalog, Dataset, DatasetRef
from quantlab.config.data import PathsConfig
from quantlab.errors import ConfigError, DatasetNotFound

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")

BUCKET = "quantlab-test"
_SCHEMA = {"k": pl.Int64(), "v": pl.Int64()}
REGISTRY = DATASETS.with_datasets(
    Dataset("bars", _SCHEMA, "test", key=("k",)), Dataset("derived", _SCHEMA, "test")
)
_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}
_SERVER = textwrap.dedent(
    """
    import sys
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]))
    server.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes stdin
    server.stop()
    """
)


@pytest.fixture(scope="module")
def endpoint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    while (line := proc.stdout.readline()) and line.strip() != b"ready":
        pass  # moto announces itself first
    assert line.strip() == b"ready", "moto's server did not start"
    url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in _ENV.items():
            mp.setenv(k, v)
        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield url
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=10)


def _paths(endpoint: str, tmp_path, prefix: str | None = None) -> PathsConfig:
    return PathsConfig(
        data=tmp_path,
        catalog_uri=f"s3://{BUCKET}/{prefix or uuid.uuid4().hex}",
        object_store={"endpoint": endpoint, "region": "us-east-1", "allow_http": True},
    )


@pytest.fixture
def catalog(endpoint, tmp_path):
    return Catalog.from_paths(_paths(endpoint, tmp_path), registry=REGISTRY)


def _frame(keys, value: int) -> pl.DataFrame:
    return pl.DataFrame({"k": list(keys), "v": [value] * len(keys)}, schema=_SCHEMA)


def test_write_read_upsert_versions_and_lineage_on_s3(catalog, tmp_path):
    assert catalog.remote and catalog.names() == [] and not catalog.exists("bars")
    a = catalog.write("bars", _frame(range(3), 0), stage="s1", config_hash="c1")
    again = catalog.write("bars", _frame(range(3), 0), stage="s1", config_hash="c1")
    b = catalog.upsert("bars", _frame([2, 3], 1), stage="s2", inputs=[a])
    d = catalog.write("derived", _frame([9], 9), stage="s3", inputs=[b])
    assert (a, again, b, d) == (
        DatasetRef("bars", 0),
        DatasetRef("bars", 0),
        DatasetRef("bars", 1),
        DatasetRef("derived", 0),
    )
    assert catalog.names() == ["bars", "derived"] and catalog.exists("bars")
    assert catalog.read(a).sort("k")["v"].to_list() == [0, 0, 0]
    assert catalog.read(b).sort("k")["v"].to_list() == [0, 0, 1, 1]
    assert catalog.lineage(b).row_count == 4 and catalog.lineage(b).inputs == {"bars": 0}
    assert [r for r, _ in catalog.walk_lineage(d)] == [d, b, a]
    assert [v.ref.version for v in catalog.versions("bars")] == [0, 1]
    assert catalog.uri("bars") == f"{catalog.root}/bars"
    ref, rows = catalog.export("bars", tmp_path / "out" / "bars.parquet")
    assert (ref, rows) == (b, 4)


def test_missing_datasets_and_artifacts_fail_clearly(catalog, endpoint, tmp_path):
    with pytest.raises(DatasetNotFound, match="does not exist in the catalog at s3://"):
        catalog.latest("bars")
    bare = Catalog(
        catalog.root, REGISTRY, storage_options=_paths(endpoint, tmp_path).storage_options()
    )
    with pytest.raises(ConfigError, match="local work folder"):
        bare.write("bars", _frame([1], 1), stage="s", artifacts=lambda ref, d: None)
    with pytest.raises(ConfigError, match="object store, not a folder"):
        catalog._table_path("bars")


def test_artifacts_of_an_s3_catalog_are_kept_in_the_work_folder(catalog, tmp_path):
    def report(ref: DatasetRef, folder) -> None:
        (folder / "r.txt").write_text(str(ref))

    ref = catalog.write("bars", _frame([1], 1), stage="s", artifacts=report)
    assert catalog.artifacts(ref) == tmp_path / "artifacts" / "bars" / "v0"
    assert (catalog.artifacts(ref) / "r.txt").read_text() == "bars@v0"


def test_config_takes_an_s3_uri_but_no_credentials(tmp_path):
    local = PathsConfig(data=tmp_path)
    assert local.catalog == tmp_path / "catalog" and local.storage_options() is None
    s3 = PathsConfig(
        data=tmp_path,
        catalog_uri="s3://bucket/prefix/",
        object_store={"endpoint": "http://127.0.0.1:9000", "allow_http": True},
    )
    assert s3.catalog == "s3://bucket/prefix"
    assert s3.storage_options() == {
        "conditional_put": "etag",
        "allow_http": "true",
        "endpoint": "http://127.0.0.1:9000",
    }
    with pytest.raises(ValueError, match="without credentials"):
        PathsConfig(catalog_uri="s3://key:secret@bucket/prefix")
    with pytest.raises(ValueError, match="not s3://bucket/prefix"):
        PathsConfig(catalog_uri="gs://bucket/prefix")
    with pytest.raises(ValueError, match="Extra inputs"):
        PathsConfig(catalog_uri="s3://b/p", object_store={"secret_access_key": "x"})


# A writer process with its own work folder: it shares no lock file with the other writer,
# as on another machine. Each commit upserts new keys and checks its own ref's lineage.
_WRITER = """
import sys
from pathlib import Path
import polars as pl
from quantlab.catalog import DATASETS, Catalog, Dataset
from quantlab.config.data import PathsConfig

schema = {{"k": pl.Int64(), "v": pl.Int64()}}
registry = DATASETS.with_datasets(Dataset("bars", schema, "test", key=("k",)))
paths = PathsConfig(data=Path(sys.argv[2]), catalog_uri={uri!r}, object_store={store!r})
catalog = Catalog.from_paths(paths, registry=registry)
print("ready", flush=True)
sys.stdin.readline()
writer, refs = int(sys.argv[1]), []
for i in range({commits}):
    keys = [writer * 1000 + i * 10 + j for j in range(5)]
    df = pl.DataFrame({{"k": keys, "v": [writer] * 5}}, schema=schema)
    refs.append(catalog.upsert("bars", df, stage=f"w{{writer}}", config_hash=str(i)).version)
print(" ".join(map(str, refs)), flush=True)
"""


def test_two_writer_processes_both_commit_and_a_reader_sees_only_whole_versions(endpoint, tmp_path):
    commits = 4
    paths = _paths(endpoint, tmp_path / "reader")
    catalog = Catalog.from_paths(paths, registry=REGISTRY)
    catalog.write("bars", _frame([-1], -1), stage="seed")
    script = _WRITER.format(
        uri=paths.catalog_uri, store=paths.object_store.model_dump(), commits=commits
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(w), str(tmp_path / f"machine{w}")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ},
        )
        for w in (1, 2)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    for proc in procs:  # the barrier: both are loaded and waiting
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
    seen: list[tuple[int, int]] = []  # (latest version, rows read at it) while writers run
    while any(proc.poll() is None for proc in procs):
        ref = catalog.latest("bars")
        seen.append((ref.version, catalog.read(ref).height))
    outs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    refs = [int(v) for out in outs for v in out.split()]
    # No lost update: every commit made its own version, and every row is there.
    assert sorted(refs) == list(range(1, 2 * commits + 1))
    final = catalog.read(catalog.latest("bars"))
    assert catalog.latest("bars").version == 2 * commits and final.height == 1 + 2 * commits * 5
    assert final.group_by("v").len().sort("v")["len"].to_list() == [1, commits * 5, commits * 5]
    # Each version's lineage row count is what that version holds (counted from its base).
    for info in catalog.versions("bars"):
        assert info.lineage is not None
        assert catalog.read(info.ref).height == info.lineage.row_count == 1 + info.ref.version * 5
    assert seen, "the reader never polled while the writers ran"
    assert all(rows == 1 + version * 5 for version, rows in seen)


def test_the_pipeline_stages_run_with_the_catalog_on_s3(endpoint, tmp_path, capsys):
    """ingest -> validate -> features -> labels through `quantlab run STAGE`, the catalog on
    moto: the same stage code, only `paths.catalog_uri` changed."""
    from helpers import write_config
    from quantlab.cli import main
    from quantlab.context import RunContext

    paths = {
        "catalog_uri": f"s3://{BUCKET}/stages-{uuid.uuid4().hex[:8]}",
        "object_store": {"endpoint": endpoint, "allow_http": True},
    }
    config = write_config(
        tmp_path,
        paths={"data": str(tmp_path / "data"), "experiments": str(tmp_path / "exp"), **paths},
        universe={"symbols": ["BTCUSDT"], "start": "2023-03-01", "end": "2023-04-01"},
    )
    for stage in ("ingest", "validate", "features", "labels"):
        assert main(["--config", str(config), "run", stage]) == 0, capsys.readouterr().err
    ctx = RunContext.load(config)
    assert ctx.catalog.remote and not (tmp_path / "data" / "catalog").exists()
    klines = ctx.catalog.read(ctx.catalog.latest("klines"))
    assert klines.height == 31 * 24 - 1  # March 2023; the real 2023-03-24 halt lost one hour
    chain = {r.name for r, _ in ctx.catalog.walk_lineage(ctx.catalog.latest("labels"))}
    assert {"klines", "klines_checks"} <= chain and ctx.catalog.uri("labels").startswith("s3://")
