"""The validate stage on catalog versions: the record it writes, Data Docs, and the gate downstream.

Also the Airflow side: both DAGs' `validate` task fails without retry on bad data and
goes on once the data is fixed.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import polars as pl
import pytest

from helpers import FIXTURES, ROOT, load_sample_klines, write_config

AS_OF = datetime(2023, 4, 1, tzinfo=UTC)
BAD_AT = datetime(2023, 3, 10, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def march() -> pl.DataFrame:
    """Real BTC and ETH spot 1h klines of March 2023, the 2023-03-24 halt included."""
    return pl.concat([load_sample_klines(s, ("2023-03",)) for s in ("BTCUSDT", "ETHUSDT")])


@pytest.fixture
def project(tmp_path: Path):
    from quantlab.context import RunContext

    config = write_config(tmp_path)
    return config, RunContext.load(config)


def _break_high(df: pl.DataFrame, at: datetime = BAD_AT) -> pl.DataFrame:
    """BTCUSDT's candle at `at` with its high below its close: one ohlc_consistent defect."""
    hit = (pl.col("symbol") == "BTCUSDT") & (pl.col("open_time") == at)
    return df.with_columns(
        pl.when(hit).then(pl.col("close") * 0.99).otherwise(pl.col("high")).alias("high")
    )


def _store(ctx, df: pl.DataFrame, *, partitioned: bool = True):
    """Store klines as ingest does: partitioned by market, interval and symbol."""
    from quantlab.schema import KLINES_KEY, KLINES_PARTITIONS, conform_klines

    return ctx.catalog.upsert(
        "klines",
        conform_klines(df),
        KLINES_KEY,
        stage="ingest",
        partition_by=list(KLINES_PARTITIONS) if partitioned else [],  # []: a flat table
    )


def _snapshot(ctx, df: pl.DataFrame):
    """A new klines version holding `df` alone (a merge would keep the rows `df` lacks)."""
    from quantlab.schema import KLINES_PARTITIONS, conform_klines

    return ctx.catalog.write(
        "klines",
        conform_klines(df),
        stage="ingest",
        config_hash=f"snapshot-{df.height}",
        partition_by=list(KLINES_PARTITIONS),
    )


def test_a_clean_version_passes_with_the_halt_as_a_known_gap(project, march):
    from quantlab import quality
    from quantlab.quality.gate import require_passed

    _, ctx = project
    ref = _store(ctx, march)
    checks = quality.run(ctx, ref, as_of=AS_OF)

    assert checks.name == "klines_checks"
    extra = ctx.catalog.lineage(checks).extra
    assert extra["passed"] is True
    assert extra["failed_checks"] == []
    assert extra["known"] == ["known_gaps"]
    assert extra["counts"]["known_gaps"] == 2  # 2023-03-24 13:00, BTC and ETH
    assert "calendar_gaps" not in extra["counts"]
    assert extra["as_of"] == AS_OF.isoformat()
    table = ctx.catalog.read(checks)
    assert set(table.columns) >= {"check", "severity", "success", "unexpected_count", "examples"}
    assert set(table["dataset"]) == {"klines"} and set(table["version"]) == {ref.version}
    known = table.filter(pl.col("check") == "known_gaps").row(0, named=True)
    assert (known["severity"], known["success"]) == ("info", False)
    assert "spot trading halt" in json.loads(known["examples"])[0]["outage"]
    require_passed(ctx.catalog, ref, checks)

    index = Path(extra["data_docs"])
    assert index == ctx.config.paths.data / "data_docs" / "index.html"
    assert "klines" in index.read_text()
    # A static site: every page the index links to is a file beside it, so it opens from disk.
    links = re.findall(r'href="([^"#:]+\.html)"', index.read_text())
    assert links and all((index.parent / unquote(link)).is_file() for link in links), links
    # GX's tables need scripts from CDNs; offline, plain links list the same pages.
    plain = index.read_text().split('id="quantlab-plain-index"')[1].split("</section>")[0]
    listed = re.findall(r'href="([^"]+)"', plain)
    assert {unquote(link) for link in listed} >= {
        str(p.relative_to(index.parent)) for p in index.parent.glob("validations/**/*.html")
    } | {"expectations/klines.html"}, plain
    assert f"{ref}-1h: Success" in plain
    # The Checkpoint's run is named after the version and interval; its page shows the counts
    # over every row, not only over the rows the screen handed to GX.
    (page,) = (index.parent / "validations" / "klines" / f"{ref}-1h").rglob("*.html")
    text = page.read_text()
    assert "known_gaps (info): bars missing from the calendar inside a known" in text
    assert "2 unexpected values found" in text and "of 1486 total rows" in text  # zero_volume

    # Validated once, by the klines Checkpoint, and stored with the full frame's counts.
    project = ctx.config.paths.data / "gx"
    assert (project / "checkpoints" / "klines.json").is_file()
    (stored,) = (project / "uncommitted" / "validations" / "klines" / f"{ref}-1h").rglob("*.json")
    result = json.loads(stored.read_text())
    assert result["meta"]["checkpoint_id"] and result["meta"]["quantlab"]["rows"] == 1486
    counts = {r["expectation_config"]["meta"]["check"]: r["result"] for r in result["results"]}
    assert counts["zero_volume"]["element_count"] == 1486
    assert counts["zero_volume"]["unexpected_count"] == 2
    # Warnings and infos failed (the halt), no error did: GX's verdict is the gate's.
    assert result["success"] is True
    assert "'_validation_success_text': 'Success'" in index.read_text()


def test_a_missing_candle_fails_the_gate_naming_it(project, march):
    from quantlab import quality
    from quantlab.errors import QualityError

    _, ctx = project
    hole = (pl.col("symbol") == "ETHUSDT") & (pl.col("open_time") == BAD_AT)
    ref = _store(ctx, march.filter(~hole))
    with pytest.raises(QualityError) as failed:
        quality.run(ctx, ref, as_of=AS_OF, data_docs=False)
    assert failed.value.failed_checks == ["calendar_gaps"]
    assert "calendar_gaps: 1" in str(failed.value)
    extra = ctx.catalog.lineage(ctx.catalog.latest("klines_checks")).extra
    (gap,) = extra["first_failing_rows"]["calendar_gaps"]
    assert (gap["symbol"], gap["first_missing"], gap["missing"]) == (
        "ETHUSDT",
        BAD_AT.isoformat(),
        1,
    )


def test_gaps_the_exchange_confirmed_empty_pass_the_gate(tmp_path):
    """Ingested from the replay exchange with no outage list: the halt hour passes because
    ingest recorded it in `klines_gaps`, and the checks version names the version it read.
    The same candles in a catalog without that record fail the gate."""
    from quantlab import ingest, quality
    from quantlab.catalog import Catalog
    from quantlab.context import RunContext
    from quantlab.errors import QualityError

    ctx = RunContext.load(write_config(tmp_path, validate={"known_outages": None}))
    start, end = datetime(2023, 3, 20, tzinfo=UTC), datetime(2023, 3, 28, tzinfo=UTC)
    assert ingest.run_symbol(ctx, "spot", "BTCUSDT", "1h", start, end).counts["gaps_recorded"] == 1
    ref, gaps = ctx.catalog.latest("klines"), ctx.catalog.latest("klines_gaps")

    checks = quality.run(ctx, ref, as_of=end, data_docs=False)
    lineage = ctx.catalog.lineage(checks)
    assert lineage.inputs == {"klines": ref.version, "klines_gaps": gaps.version}
    assert lineage.extra["passed"] is True and lineage.extra["known"] == ["known_gaps"]
    assert lineage.extra["counts"]["known_gaps"] == 1
    known = ctx.catalog.read(checks).filter(pl.col("check") == "known_gaps")["examples"][0]
    (example,) = json.loads(known)
    assert example["first_missing"] == "2023-03-24T13:00:00+00:00"
    assert "confirmed empty by the exchange" in example["outage"]

    bare = replace(ctx, catalog=Catalog(tmp_path / "bare"))
    unrecorded = _store(bare, ctx.catalog.read(ref))
    with pytest.raises(QualityError, match=r"calendar_gaps: 1\b"):
        quality.run(bare, unrecorded, as_of=end, data_docs=False)


def test_a_lowered_missing_candle_check_passes_and_is_recorded(tmp_path, march):
    from quantlab import quality
    from quantlab.context import RunContext

    ctx = RunContext.load(
        write_config(tmp_path, validate={"severity": {"calendar_gaps": "warning"}})
    )
    hole = (pl.col("symbol") == "ETHUSDT") & (pl.col("open_time") == BAD_AT)
    checks = quality.run(ctx, _store(ctx, march.filter(~hole)), as_of=AS_OF, data_docs=False)
    extra = ctx.catalog.lineage(checks).extra
    assert extra["passed"] is True and "calendar_gaps" in extra["warnings"]
    assert extra["lowered"] == {"calendar_gaps": {"default": "error", "configured": "warning"}}


def test_a_failed_version_blocks_features_until_fixed(project, march):
    from quantlab import features, quality
    from quantlab.errors import QualityError
    from quantlab.quality.gate import require_passed

    _, ctx = project
    bad = _store(ctx, _break_high(march))
    with pytest.raises(QualityError) as failed:
        quality.run(ctx, bad, as_of=AS_OF)
    message = str(failed.value)
    assert str(bad) in message and "ohlc_consistent: 1" in message
    assert "Data Docs: " in message and "a retry will not help" in message
    assert failed.value.failed_checks == ["ohlc_consistent"]

    checks = ctx.catalog.latest("klines_checks")
    extra = ctx.catalog.lineage(checks).extra
    assert extra["passed"] is False
    assert extra["failed_checks"] == ["ohlc_consistent"]
    assert extra["counts"]["ohlc_consistent"] == 1
    (row,) = extra["first_failing_rows"]["ohlc_consistent"]
    assert (row["symbol"], row["open_time"]) == ("BTCUSDT", BAD_AT.isoformat())

    with pytest.raises(QualityError, match=rf"{bad}.*ohlc_consistent \(1 rows\)"):
        features.run(ctx, bad, checks)

    fixed = _store(ctx, march)  # the corrected candle is merged in: a new version
    assert fixed.version == bad.version + 1
    passed = quality.run(ctx, fixed, as_of=AS_OF, data_docs=False)
    require_passed(ctx.catalog, fixed, passed)
    with pytest.raises(QualityError, match="not a validation of"):
        require_passed(ctx.catalog, bad, passed)
    assert features.run(ctx, fixed, passed).name == "features"


def test_every_interval_of_a_version_is_validated(project, march):
    from quantlab import quality
    from quantlab.errors import QualityError

    _, ctx = project
    four_hourly = (
        march.filter(pl.col("symbol") == "BTCUSDT")
        .group_by_dynamic("open_time", every="4h", group_by=["market", "symbol"])
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("close_time").last(),
            *[pl.col(c).sum() for c in ("volume", "quote_volume", "trades")],
            *[pl.col(c).sum() for c in ("taker_buy_base_volume", "taker_buy_quote_volume")],
        )
        .with_columns(
            pl.lit("4h").alias("interval"),
            (pl.col("open_time") + pl.duration(hours=4) - pl.duration(milliseconds=1)).alias(
                "close_time"
            ),
        )
    )
    ref = _store(
        ctx,
        pl.concat(
            [march, _break_high(four_hourly, datetime(2023, 3, 10, 4, tzinfo=UTC))],
            how="diagonal_relaxed",
        ),
    )
    with pytest.raises(QualityError) as failed:
        quality.run(ctx, ref, as_of=AS_OF)
    assert failed.value.failed_checks == ["ohlc_consistent"]
    extra = ctx.catalog.lineage(ctx.catalog.latest("klines_checks")).extra
    (row,) = extra["first_failing_rows"]["ohlc_consistent"]
    assert row["interval"] == "4h"
    validations = ctx.config.paths.data / "data_docs" / "validations" / "klines"
    runs = {page.relative_to(validations).parts[0] for page in validations.rglob("*.html")}
    assert runs == {f"{ref}-1h", f"{ref}-4h"}


def test_the_gate_reads_one_series_at_a_time_and_reports_as_on_the_whole(
    project, march, monkeypatch
):
    """A version is read series by series (only that series' files); the report is the one
    validating the whole frame at once gives, and so is that of a version not partitioned."""
    from quantlab import quality
    from quantlab.catalog import Catalog
    from quantlab.quality import check_klines

    _, ctx = project
    bad = _break_high(march)
    ref = _store(ctx, bad)
    heights = []
    collect = pl.LazyFrame.collect

    def counting(self, *args, **kwargs):
        out = collect(self, *args, **kwargs)
        heights.append(out.height)
        return out

    monkeypatch.setattr(pl.LazyFrame, "collect", counting)
    gated = quality.check_version(ctx, ref, as_of=AS_OF, data_docs=False).report
    monkeypatch.setattr(pl.LazyFrame, "collect", collect)
    per_symbol = march.group_by("symbol").len()["len"].to_list()
    assert sorted(h for h in heights if h > 2) == sorted(per_symbol)  # never both at once

    whole = check_klines(bad, "1h", outages=quality.load_outages(
        ctx.config.validate_.known_outages), as_of=AS_OF, row_order=False)  # fmt: skip
    counts = {c.check: (c.success, c.unexpected_count) for c in gated.checks}
    assert counts == {c.check: (c.success, c.unexpected_count) for c in whole.checks}
    (example,) = next(c for c in gated.checks if c.check == "ohlc_consistent").examples
    assert (example["symbol"], example["open_time"]) == ("BTCUSDT", BAD_AT.isoformat())

    flat = replace(ctx, catalog=Catalog(ctx.config.paths.data / "flat"))
    flat_ref = _store(flat, bad, partitioned=False)
    from quantlab.schema import KLINES_PARTITIONS

    series = [{"market": "spot", "interval": "1h", "symbol": s} for s in ("BTCUSDT", "ETHUSDT")]
    partitions = ctx.catalog.partitions(ref, KLINES_PARTITIONS)
    assert sorted(partitions, key=lambda k: k["symbol"]) == series
    assert flat.catalog.partitions(flat_ref, KLINES_PARTITIONS) is None
    flat_report = quality.check_version(flat, flat_ref, as_of=AS_OF, data_docs=False).report
    assert {c.check: (c.success, c.unexpected_count) for c in flat_report.checks} == counts


def test_funding_rates_and_exchange_info_versions(project):
    from quantlab import quality
    from quantlab.catalog import DATASETS, Catalog
    from quantlab.errors import QualityError
    from quantlab.exchange.exchange_info import parse_exchange_info
    from quantlab.exchange.funding import parse_funding_rates
    from quantlab.schema import EXCHANGE_INFO_KEY, EXCHANGE_INFO_SCHEMA, FUNDING_RATES_KEY

    _, ctx = project
    raw = json.loads((FIXTURES / "fundingRate_BTCUSDT_2022-11-03_2025-11-12.json").read_text())
    funding = parse_funding_rates(raw, "BTCUSDT")
    ref = ctx.catalog.upsert("funding_rates", funding, FUNDING_RATES_KEY, stage="ingest")
    checks = quality.run(ctx, ref, as_of=datetime(2025, 11, 13, tzinfo=UTC))
    assert checks.name == "funding_rates_checks"
    assert ctx.catalog.lineage(checks).extra["passed"] is True

    info = parse_exchange_info(
        json.loads(
            (FIXTURES / "exchangeInfo_spot_2023-09-08_MAINNET_subset_DERIVED.json").read_text()
        ),
        "spot",
    )
    # The exchange_info suite checks one snapshot without its `snapshot_time` column, which
    # ingest adds: store it in that shape through a registry saying so.
    one = replace(DATASETS["exchange_info"], schema=EXCHANGE_INFO_SCHEMA, key=EXCHANGE_INFO_KEY)
    ctx = replace(ctx, catalog=Catalog(ctx.catalog.root, registry=DATASETS.with_datasets(one)))
    ref = ctx.catalog.upsert("exchange_info", info, stage="ingest")
    extra = ctx.catalog.lineage(quality.run(ctx, ref)).extra
    assert extra["passed"] is True
    index = Path(extra["data_docs"]).read_text()
    assert "funding_rates" in index and "exchange_info" in index  # both suites are listed
    broken = info.with_columns(
        pl.when(pl.col("symbol") == "ETHUSDT")
        .then(pl.lit("LISTED"))
        .otherwise("status")
        .alias("status")
    )
    ref = ctx.catalog.upsert("exchange_info", broken, stage="ingest")
    with pytest.raises(QualityError, match=rf"{ref} failed validation \(status_known: 1\)"):
        quality.run(ctx, ref, data_docs=False)


def _free(lock: Path) -> bool:
    """Can another descriptor (as another process would hold) take `lock` right now?"""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_the_gx_project_is_held_against_other_processes_while_the_gate_writes(
    project, march, monkeypatch
):
    """The market_data and research DAGs may validate at once in one data folder: whoever
    writes the GX stores and the site holds `<data>/locks/gx.lock`, which another
    descriptor (as another process would have) cannot take meanwhile."""
    from quantlab import quality
    from quantlab.quality import _project

    _, ctx = project
    lock = ctx.config.paths.data / "locks" / "gx.lock"
    probes: list[str] = []

    real_checkpoint, real_load = _project.Project._checkpoint, _project.Project.load

    def checkpoint(self, suite):
        probes.append(f"checkpoint held={not _free(lock)}")
        return real_checkpoint(self, suite)

    def load(self, name):
        real_load(self, name)
        probes.append(f"load then released={_free(lock)}")

    monkeypatch.setattr(_project.Project, "_checkpoint", checkpoint)
    monkeypatch.setattr(_project.Project, "load", load)
    result = quality.check_version(ctx, _store(ctx, march), as_of=AS_OF)
    assert result.report.passed and result.data_docs.is_file()
    assert probes == ["load then released=True", "checkpoint held=True"]
    assert _free(lock)  # released once the gate is done


def test_the_gx_project_lock_nests_within_a_thread_and_holds_until_the_outer_hold_ends(
    tmp_path,
):
    from quantlab.quality._project import exclusive

    lock = tmp_path / "locks" / "gx.lock"

    with exclusive(tmp_path):
        with exclusive(tmp_path):  # a second flock would wait for the first forever
            assert not _free(lock)
        assert not _free(lock)  # the inner hold's end leaves the outer one's lock in place
    assert _free(lock)


_KLINES_FILES = {
    "expectations/klines.json",
    "validation_definitions/klines.json",
    "checkpoints/klines.json",
}
_CONFIG_FILES = {
    "great_expectations.yml",
    "validation_definitions/klines.json",
    "checkpoints/klines.json",
}


@pytest.mark.parametrize(
    ("cut_short", "set_aside"),
    [
        # One of a dataset's three files broken: all three are written anew.
        ("checkpoints/klines.json", _KLINES_FILES),
        ("expectations/klines.json", _KLINES_FILES),
        ("validation_definitions/klines.json", _KLINES_FILES),
        # The config: with what points into it; the suite, which does not, stays.
        ("great_expectations.yml", _CONFIG_FILES),
    ],
)
def test_a_gx_file_cut_short_by_a_killed_process_is_set_aside_and_written_anew(
    project, march, cut_short, set_aside, caplog
):
    from quantlab import quality
    from quantlab.quality import _project

    _, ctx = project
    ref = _store(ctx, march)
    assert quality.check_version(ctx, ref, as_of=AS_OF).report.passed
    data = ctx.config.paths.data
    broken = data / "gx" / cut_short
    whole = broken.read_bytes()
    broken.write_bytes(whole[: len(whole) // 3])  # as a write killed midway leaves it
    _project._open.cache_clear()  # the next process opens the project afresh

    with caplog.at_level("WARNING", logger="quantlab.quality._project"):
        again = quality.check_version(ctx, ref, as_of=AS_OF)
    assert again.report.passed and again.data_docs.is_file()
    (aside,) = (data / "gx_unreadable").iterdir()
    assert (aside / cut_short).read_bytes() == whole[: len(whole) // 3]  # kept, not deleted
    assert broken.is_file() and broken.read_bytes() != whole[: len(whole) // 3]
    moved = {str(p.relative_to(aside)) for p in aside.rglob("*") if p.is_file()}
    assert moved == set_aside
    assert all(name in caplog.text for name in set_aside)
    assert "the gate writes them anew" in caplog.text


def test_a_dataset_without_a_suite_is_refused(project):
    from quantlab import quality
    from quantlab.catalog import DatasetRef
    from quantlab.errors import DatasetNotFound

    _, ctx = project
    with pytest.raises(DatasetNotFound, match="no validation suite for dataset 'features'"):
        quality.run(ctx, DatasetRef("features", 0), data_docs=False)


def test_cli_validates_a_catalog_version(project, march, capsys):
    from quantlab.cli import main

    config, ctx = project
    good = _store(ctx, march)
    args = ["--config", str(config), "data", "validate", "klines", "--as-of", "2023-04-01"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"{good}: recorded as klines_checks@v0" in out
    assert "KNOWN   known_gaps: 2" in out and "Data Docs: " in out

    bad = _store(ctx, _break_high(march))
    assert main([*args, "--version", str(bad.version), "--no-data-docs"]) == 1
    out = capsys.readouterr().out
    assert "ERROR   ohlc_consistent: 1 unexpected" in out and "Data Docs" not in out

    holed = _snapshot(ctx, march.filter(pl.col("open_time") != BAD_AT))
    assert main([*args, "--version", str(holed.version), "--no-data-docs"]) == 1
    out = capsys.readouterr().out
    assert "ERROR   calendar_gaps: 2 unexpected" in out
    assert f'"first_missing": "{BAD_AT.isoformat()}"' in out

    assert main(["--config", str(config), "data", "validate", "nope"]) == 2
    assert "does not exist" in capsys.readouterr().err


def _dag(name: str, monkeypatch):
    """A DAG file loaded as Airflow would, with the run's data interval ending at AS_OF."""
    spec = importlib.util.spec_from_file_location(f"dag_{name}", ROOT / "dags" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if hasattr(module, "_interval"):  # market_data reads the interval from the task context
        monkeypatch.setattr(module, "_interval", lambda: (AS_OF - timedelta(hours=1), AS_OF))
    return getattr(module, name)()


@pytest.mark.parametrize("dag_id", ["research", "market_data"])
def test_airflow_validate_task_fails_without_retry_until_fixed(dag_id, project, march, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    config, ctx = project
    monkeypatch.setenv("QUANTLAB_CONFIG", str(config))
    task = _dag(dag_id, monkeypatch).get_task("validate")
    assert task.retries == 0
    if dag_id == "research":
        call = lambda ref: task.python_callable(ref.to_dict())  # noqa: E731
    else:
        # The mapped klines task's result, naming the version it wrote: the one validated.
        result = lambda ref: {"runs": [{"dataset": "klines", "ref": ref.to_dict()}]}  # noqa: E731
        call = lambda ref: task.python_callable([result(ref)])  # noqa: E731

    bad = _store(ctx, _break_high(march))
    with pytest.raises(AirflowFailException) as failed:
        call(bad)
    text = str(failed.value)
    assert f"{bad} failed validation (ohlc_consistent: 1)" in text
    assert "klines validation FAILED" in text and "Data Docs: " in text

    fixed = _store(ctx, march)
    out = call(fixed)
    checks = out if dag_id == "research" else out["klines_checks"]
    assert checks["name"] == "klines_checks"
    assert ctx.catalog.lineage(ctx.catalog.latest("klines_checks")).extra["passed"] is True


def test_the_gate_checks_the_filters_in_force_of_an_ingested_exchange_info(ctx):
    """A version as ingest writes it (snapshots over time, `snapshot_time` in the key) is
    checked on the newest snapshot of each symbol, and the recorded real answers pass."""
    from quantlab import ingest, quality

    ingest.run_exchange_info(ctx, "spot")
    ref = ingest.run_exchange_info(ctx, "futures_um").ref
    assert "snapshot_time" in ctx.catalog.read(ref).columns
    checks = ctx.catalog.lineage(quality.run(ctx, ref))
    assert checks.inputs == {"exchange_info": ref.version}
    assert checks.extra["passed"] is True, checks.extra
