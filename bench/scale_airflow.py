"""Measure: tasks per minute of one research DAG run under the LocalExecutor and the
CeleryExecutor with 1 and 2 workers, on the native stack of this machine (issue 19).

For each mode the script starts the stack (`infra/native/stack.sh up` with EXECUTOR/WORKERS),
triggers one `research` run through the REST API, waits for it and stops the stack. Every
mode runs on the test slice (tests/stack/stack-test.yaml: 3 months, 2 symbols) with a data
folder of its own under .stack/bench/, so no mode reuses another's stage outputs; the slice's
registered model is deleted before each run so every promotion gate judges alone.

    tasks per minute = task instances that succeeded / (run end - run start) in minutes

where start and end are the DAG run's own timestamps (from its first task queued to its
last task done, scheduler and executor overhead included). Ratios are against the
LocalExecutor run of the same invocation. The stack must be down (the fixed ports).

    .venv/bin/python bench/scale_airflow.py [--modes local,celery:1,celery:2] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]
STACK_SH = ROOT / "infra" / "native" / "stack.sh"
STACK_ENV = ROOT / ".stack" / ".env"
BENCH = ROOT / ".stack" / "bench"
RUN_TIMEOUT_S = 1800


def read_env() -> dict[str, str]:
    values = {}
    for line in STACK_ENV.read_text().splitlines():
        if m := re.match(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)", line):
            values[m.group(1)] = m.group(2)
    return values


def stack(command: str, **env: str) -> None:
    result = subprocess.run(
        [str(STACK_SH), command], env={**os.environ, **env}, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"stack.sh {command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def mode_config(label: str) -> Path:
    """A config on the test slice with its own data folder, experiment and paper account."""
    folder = BENCH / label
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = folder / "bench.yaml"
    config.write_text(
        "extends: ../../../tests/stack/stack-test.yaml\n"
        f"paths:\n  data: .stack/bench/{label}/data\n  experiments: .stack/bench/{label}/experiments\n"
        "train:\n  experiment: bench-scale-airflow\n  register_as: quantlab-bench-scale\n"
        f"paper:\n  account: bench-{label}-{datetime.now(UTC):%Y%m%d%H%M%S}\n"
    )
    return config


def forget_model(env: dict[str, str]) -> None:
    import mlflow

    client = mlflow.MlflowClient(f"http://127.0.0.1:{env.get('MLFLOW_PORT', '5000')}")
    if client.search_registered_models(filter_string="name='quantlab-bench-scale'"):
        client.delete_registered_model("quantlab-bench-scale")


def run_research(env: dict[str, str]) -> dict:
    base = f"http://127.0.0.1:{env.get('AIRFLOW_PORT', '8080')}"
    token = httpx.post(
        f"{base}/auth/token",
        json={"username": env["AIRFLOW_ADMIN_USER"], "password": env["AIRFLOW_ADMIN_PASSWORD"]},
        timeout=30,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{base}/api/v2", headers=headers, timeout=60) as api:
        # Right after `up` the DAG processor may not have parsed the DAG yet.
        deadline = time.monotonic() + 300
        while (
            unpaused := api.patch("/dags/research", json={"is_paused": False})
        ).status_code == 404:
            if time.monotonic() > deadline:
                break
            time.sleep(3)
        unpaused.raise_for_status()
        now = datetime.now(UTC)
        run_id = f"bench-scale-{now:%Y%m%dT%H%M%S}"
        api.post(
            "/dags/research/dagRuns", json={"dag_run_id": run_id, "logical_date": now.isoformat()}
        ).raise_for_status()
        path = f"/dags/research/dagRuns/{quote(run_id, safe='')}"
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while (run := api.get(path).json())["state"] not in ("success", "failed"):
            if time.monotonic() > deadline:
                sys.exit(f"{run_id} still {run['state']} after {RUN_TIMEOUT_S}s")
            time.sleep(3)
        tis = api.get(f"{path}/taskInstances", params={"limit": 500}).json()["task_instances"]
    if run["state"] != "success":
        bad = {t["task_id"]: t["state"] for t in tis if t["state"] != "success"}
        sys.exit(f"{run_id} ended {run['state']}: {bad}")
    start = datetime.fromisoformat(run["start_date"])
    end = datetime.fromisoformat(run["end_date"])
    minutes = (end - start).total_seconds() / 60
    done = sum(t["state"] == "success" for t in tis)
    return {"run_id": run_id, "tasks": done, "minutes": minutes, "tasks_per_min": done / minutes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="local,celery:1,celery:2")
    parser.add_argument("--concurrency", default="2", help="task slots per Celery worker")
    args = parser.parse_args()
    if subprocess.run([str(STACK_SH), "status"], capture_output=True).returncode == 0:
        sys.exit("the stack is up: make stack-down first (the bench starts it once per mode)")
    results = {}
    try:
        for mode in args.modes.split(","):
            executor, _, workers = mode.partition(":")
            label = f"{executor}{workers}"
            config = mode_config(label)
            print(f"{mode}: starting the stack ...", flush=True)
            stack(
                "up",
                EXECUTOR=executor,
                WORKERS=workers or "1",
                CONCURRENCY=args.concurrency,
                QUANTLAB_CONFIG=str(config),
            )
            env = read_env()
            forget_model(env)
            results[mode] = run_research(env)
            print(f"{mode}: {json.dumps(results[mode])}", flush=True)
            stack("down")
    finally:
        subprocess.run([str(STACK_SH), "down"], capture_output=True)
    base = results.get("local")
    print(f"\nresearch DAG, one run per mode, {os.cpu_count()} CPUs")
    print(f"{'mode':<10} {'tasks':>5} {'minutes':>8} {'tasks/min':>9} {'vs local':>8}")
    for mode, r in results.items():
        ratio = f"{r['tasks_per_min'] / base['tasks_per_min']:.2f}" if base else "-"
        print(
            f"{mode:<10} {r['tasks']:>5} {r['minutes']:>8.2f} {r['tasks_per_min']:>9.2f} {ratio:>8}"
        )


if __name__ == "__main__":
    main()
