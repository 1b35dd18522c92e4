"""`quantlab train folds`: the walk-forward windows the train stage would use on the catalog's data;
`quantlab train tune`: fill the train stage's Optuna studies with N worker processes;
`quantlab train reproduce RUN_ID`: rerun a training run from its lineage, compare bit for bit."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from quantlab.catalog import DatasetRef
from quantlab.context import RunContext


def _t(value: datetime | None) -> str:
    return "end" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _inputs(ctx: RunContext, args: argparse.Namespace) -> tuple[DatasetRef, DatasetRef]:
    """The features and labels versions a subcommand was given (--features, --labels), else
    the latest of each."""
    features, labels = (
        ctx.catalog.latest(name) if version is None else DatasetRef(name, version)
        for name, version in (("features", args.features), ("labels", args.labels))
    )
    return features, labels


def _cmd_folds(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.train.splits import fold_table
    from quantlab.train.stage import splits_of, training_frame

    features, labels = _inputs(ctx, args)
    data = training_frame(ctx, features, labels)
    splits = splits_of(ctx, data)
    table = fold_table(data, splits)
    cfg = ctx.config.train
    print(
        f"{features} x {labels}: {data.height:,} rows, {cfg.window} window, "
        f"embargo {splits[0].embargo}, label horizon {ctx.config.labels.horizon} bars"
    )
    print(
        f"{'fold':>4}  {'train window':<35} {'labels before':<16}  {'valid window':<35} "
        f"{'labels before':<16}  {'test window':<35} {'train':>8} {'valid':>8} {'test':>8}"
    )
    for r in table.iter_rows(named=True):
        print(
            f"{r['fold']:>4}  {_t(r['train_start'])} - {_t(r['train_end'])} "
            f"{_t(r['train_labels_before'])}  {_t(r['valid_start'])} - {_t(r['valid_end'])} "
            f"{_t(r['valid_labels_before'])}  {_t(r['test_start'])} - {_t(r['test_end']):<16} "
            f"{r['train_rows']:>8,} {r['valid_rows']:>8,} {r['test_rows']:>8,}"
        )
    print(
        "\nWindows are [start, end). A row trains only if its label resolves (label_time) "
        "strictly before its 'labels before' time: the next window's start less the embargo."
    )
    return 0


def _cmd_reproduce(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.train.reproduce import reproduce

    print(f"rerunning MLflow run {args.run_id} from its lineage ...", flush=True)
    out = reproduce(ctx, args.run_id)
    rec = out.recorded
    print(
        f"run {rec.run_id}: {rec.features} x {rec.labels} -> {rec.predictions}, "
        f"seed {rec.seed}, code {rec.code_version}"
    )
    if out.code_version != rec.code_version:
        print(f"note: the run was trained by code {rec.code_version}; this is {out.code_version}")
    if out.identical:
        print(f"bit-identical: {out.rows:,} predictions rows")
        return 0
    print(f"predictions differ from {rec.predictions}; first difference: {out.difference}")
    return 1


def _cmd_tune(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.train.tune import check_workers, report_lines, tune, with_trials

    if args.trials is not None and args.trials < 1:
        print("error: --trials must be 1 or more", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print("error: --threads must be 1 or more", file=sys.stderr)
        return 2
    ctx = RunContext(config=with_trials(ctx.config, args.trials), catalog=ctx.catalog)
    check_workers(ctx.config, args.workers)  # before the catalog: the storage is the first fix
    features, labels = _inputs(ctx, args)
    report = tune(ctx, features, labels, args.workers, args.threads)
    print(f"{features} x {labels}: {len(report.studies)} studies in {report.storage}")
    print("\n".join(report_lines(report)))
    lost = [(i, code) for i, code in enumerate(report.exit_codes) if code != 0]
    for i, code in lost:
        print(f"worker {i} exited with {code}; a trial it was running is FAIL, not counted")
    if not report.done:
        print(
            f"error: a study holds fewer than {report.target} finished trials; "
            "run `quantlab train tune` again to finish it",
            file=sys.stderr,
        )
        return 1
    print(
        f"Every study holds {report.target} finished (complete + pruned) trials; the train "
        f"stage reuses them while the data, code and config (train.trials: {report.target}) "
        "stay the same."
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="walk-forward training")
    train_sub = train.add_subparsers(dest="train_command", required=True)
    folds = train_sub.add_parser(
        "folds", help="each fold's train, validation and test windows and rows, as training uses"
    )
    folds.add_argument("--features", type=int, metavar="VERSION", help="default: the latest")
    folds.add_argument("--labels", type=int, metavar="VERSION", help="default: the latest")
    folds.set_defaults(func=_cmd_folds)
    again = train_sub.add_parser(
        "reproduce",
        help="rerun an MLflow training run from its recorded datasets, config and seed; "
        "exit 0 if its predictions are bit-identical, 1 with the first difference if not",
    )
    again.add_argument(
        "run_id", metavar="RUN_ID", help="the parent run (predictions' mlflow_run_id)"
    )
    again.set_defaults(func=_cmd_reproduce)
    tune = train_sub.add_parser(
        "tune",
        help="fill the train stage's Optuna studies (every kind x fold) with N worker processes",
    )
    tune.add_argument("--workers", type=int, default=1, help="processes (>1 needs PostgreSQL)")
    tune.add_argument(
        "--trials", type=int, help="finished trials per study (default: train.trials)"
    )
    tune.add_argument(
        "--threads",
        type=int,
        help="threads per fit in each worker (default: 2 for one worker, else cores / workers)",
    )
    tune.add_argument("--features", type=int, metavar="VERSION", help="default: the latest")
    tune.add_argument("--labels", type=int, metavar="VERSION", help="default: the latest")
    tune.set_defaults(func=_cmd_tune)
