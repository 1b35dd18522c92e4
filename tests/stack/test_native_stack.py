"""Integration tests on the native stack (`make stack`): the deployed topology, proven for real.

The research DAG is triggered through the Airflow REST API and, in headless Chromium, with
the UI's Trigger button; its metrics are found through the MLflow REST API and its orders
in the Postgres ledger; nothing secret from .stack/.env may reach MLflow, the datasets, the
task logs or the repository. When the stack is not up, the session starts it with
tests/stack/stack-test.yaml (a small slice) and stops it at the end. Screenshots go to
tests/stack/artifacts/ and are copied to /tmp/stack-screens/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from helpers import headless_chromium, read_env_file
from quantlab.catalog import DatasetRef

ROOT = Path(__file__).resolve().parents[2]
STACK_SH = ROOT / "infra" / "native" / "stack.sh"
STACK_ENV = ROOT / ".stack" / ".env"
RUNNING_CONFIG = ROOT / ".stack" / "run" / "config"
TEST_CONFIG = Path(__file__).with_name("stack-test.yaml")
ARTIFACTS = Path(__file__).with_name("artifacts")
SCREENS = Path("/tmp/stack-screens")
DAG = "research"
STAGES = {"ingest", "validate", "features", "labels", "train", "backtest", "risk", "paper"}
STAGES |= {"regime", "promote"}  # the regime models and the promotion gate (issue 16)
# On a spot universe the funding tasks succeed and hand on nothing.
TASKS = STAGES | {"funding", "validate_funding", "exchange_info", "validate_exchange_info"}
# The full sample takes minutes on a small machine; the test slice well under one.
RUN_TIMEOUT_S = 1200
SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN")

pytestmark = pytest.mark.stack


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    config: Path

    @property
    def airflow(self) -> str:
        return f"http://127.0.0.1:{self.env.get('AIRFLOW_PORT', '8080')}"

    @property
    def mlflow(self) -> str:
        return f"http://127.0.0.1:{self.env.get('MLFLOW_PORT', '5000')}"

    @property
    def secrets(self) -> dict[str, str]:
        """Every generated secret in .stack/.env, by variable name."""
        return {k: v for k, v in self.env.items() if SECRET_KEY.search(k) and len(v) >= 16}

    def context(self):
        from quantlab.context import RunContext

        return RunContext.load(self.config)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The running stack; started here (with the test slice) and stopped after if it was down."""
    status = subprocess.run([STACK_SH, "status"], capture_output=True, text=True, timeout=300)
    started = status.returncode != 0
    if started:
        env = {**os.environ, "QUANTLAB_CONFIG": str(TEST_CONFIG)}
        up = subprocess.run([STACK_SH, "up"], env=env, capture_output=True, text=True, timeout=1500)
        if up.returncode != 0:
            subprocess.run([STACK_SH, "down"], capture_output=True, timeout=300)
            pytest.fail(
                f"infra/native/stack.sh up failed:\n{up.stdout[-4000:]}\n{up.stderr[-4000:]}"
            )
    env = read_env_file(STACK_ENV)
    # What the services' quantlab code sees, so the tests load the catalog they write to.
    mp = pytest.MonkeyPatch()
    mp.setenv("QUANTLAB_HOME", str(ROOT))
    mp.setenv("QUANTLAB_DB_HOST", "127.0.0.1")
    mp.setenv("QUANTLAB_DB_PORT", env.get("POSTGRES_PORT", "5432"))
    for key in ("QUANTLAB_DB_NAME", "QUANTLAB_DB_USER", "QUANTLAB_DB_PASSWORD"):
        mp.setenv(key, env[key])
    stack = Stack(env=env, config=Path(RUNNING_CONFIG.read_text().strip()))
    mp.setenv("MLFLOW_TRACKING_URI", stack.mlflow)
    if started:
        _reset_test_slice(stack)
    try:
        yield stack
    finally:
        mp.undo()
        if started:
            subprocess.run([STACK_SH, "down"], capture_output=True, timeout=300)


def _reset_test_slice(stack: Stack) -> None:
    """Forget what earlier sessions wrote for the test slice, so every stage runs for real.

    Only the slice's own datasets (under .stack/) and its own paper account are touched.
    """
    cfg = stack.context().config
    data = cfg.paths.data
    assert (ROOT / ".stack") in data.parents, f"{data} is not the test slice's folder"
    shutil.rmtree(data, ignore_errors=True)
    # The slice's registered model goes too: its champion's predictions were in the folder
    # just removed, and the gate would keep it over an identical new training.
    import mlflow

    client = mlflow.MlflowClient(stack.mlflow)
    name = cfg.train.register_as
    if name and client.search_registered_models(filter_string=f"name='{name}'"):
        client.delete_registered_model(name)
    # The paper venue's state lives under data/ (gone above); the account's ledger rows go too.
    conn = _ledger(stack)
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name = 'account'"
        )
        for (table,) in cur.fetchall():
            cur.execute(f'DELETE FROM "{table}" WHERE account = %s', (cfg.paper.account,))
    conn.close()


def _ledger(stack: Stack):
    """A connection to the ledger database as the quantlab role, with its password."""
    import psycopg2

    return psycopg2.connect(
        host="127.0.0.1",
        port=int(stack.env.get("POSTGRES_PORT", "5432")),
        dbname=stack.env["QUANTLAB_DB_NAME"],
        user=stack.env["QUANTLAB_DB_USER"],
        password=stack.env["QUANTLAB_DB_PASSWORD"],
    )


def _token(stack: Stack) -> str:
    response = httpx.post(
        f"{stack.airflow}/auth/token",
        json={
            "username": stack.env["AIRFLOW_ADMIN_USER"],
            "password": stack.env["AIRFLOW_ADMIN_PASSWORD"],
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


@pytest.fixture(scope="session")
def airflow(stack: Stack) -> Iterator[httpx.Client]:
    """The Airflow REST API with a JWT for the admin user from .stack/.env."""
    headers = {"Authorization": f"Bearer {_token(stack)}"}
    with httpx.Client(base_url=f"{stack.airflow}/api/v2", headers=headers, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def mlflow_api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{stack.mlflow}/api/2.0/mlflow", timeout=60) as client:
        yield client


# --- Airflow REST helpers -------------------------------------------------------------------


def _ok(response: httpx.Response) -> dict:
    assert response.is_success, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:2000]}"
    )
    return response.json()


def _run_ids(airflow: httpx.Client) -> set[str]:
    runs = _ok(airflow.get(f"/dags/{DAG}/dagRuns", params={"limit": 100, "order_by": "-run_after"}))
    return {r["dag_run_id"] for r in runs["dag_runs"]}


def _task_instances(airflow: httpx.Client, run_id: str) -> list[dict]:
    path = f"/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    return _ok(airflow.get(path))["task_instances"]


def _task_log(airflow: httpx.Client, run_id: str, task: dict) -> str:
    path = (
        f"/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task['task_id']}"
        f"/logs/{max(task.get('try_number') or 1, 1)}"
    )
    response = airflow.get(
        path, params={"full_content": True}, headers={"Accept": "application/x-ndjson"}
    )
    assert response.is_success, f"no log for {task['task_id']}: {response.status_code}"
    return response.text


def _wait_for_run(airflow: httpx.Client, run_id: str) -> str:
    """Poll until the run finishes; fail with the failed tasks' log tails if it does not succeed."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    path = f"/dags/{DAG}/dagRuns/{quote(run_id, safe='')}"
    while (state := _ok(airflow.get(path))["state"]) not in ("success", "failed"):
        if time.monotonic() > deadline:
            states = {t["task_id"]: t["state"] for t in _task_instances(airflow, run_id)}
            pytest.fail(f"{run_id} still {state} after {RUN_TIMEOUT_S}s: {states}")
        time.sleep(5)
    if state != "success":
        # A task that never started (upstream_failed) has no log: its state says enough.
        tasks = [t for t in _task_instances(airflow, run_id) if t["state"] != "success"]
        logs = "\n".join(
            f"--- {t['task_id']} ({t['state']})\n"
            + (_task_log(airflow, run_id, t)[-3000:] if t.get("try_number") else "")
            for t in tasks
        )
        pytest.fail(f"{run_id} ended {state}:\n{logs}")
    return state


def _xcom_ref(airflow: httpx.Client, run_id: str, task_id: str):
    """The DatasetRef a task returned, from its XCom."""
    from quantlab.catalog import DatasetRef

    path = f"/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/xcomEntries/return_value"
    value = _ok(airflow.get(path, params={"deserialize": True, "stringify": False}))["value"]
    return DatasetRef.from_dict(json.loads(value) if isinstance(value, str) else value)


@dataclass(frozen=True)
class DagRun:
    run_id: str
    states: dict[str, str]


@pytest.fixture(scope="session")
def rest_run(airflow: httpx.Client) -> DagRun:
    """Unpause `research` and trigger it through the REST API; wait until it finishes."""
    _ok(airflow.patch(f"/dags/{DAG}", json={"is_paused": False}))
    now = datetime.now(UTC)
    run_id = f"stack-rest-{now:%Y%m%dT%H%M%S}"
    created = _ok(
        airflow.post(
            f"/dags/{DAG}/dagRuns", json={"dag_run_id": run_id, "logical_date": now.isoformat()}
        )
    )
    assert created["dag_run_id"] == run_id
    _wait_for_run(airflow, run_id)
    return DagRun(run_id, {t["task_id"]: t["state"] for t in _task_instances(airflow, run_id)})


@dataclass(frozen=True)
class MlflowRun:
    experiment_id: str
    run: dict

    @property
    def run_id(self) -> str:
        return self.run["info"]["run_id"]


@pytest.fixture(scope="session")
def mlflow_run(
    stack: Stack, airflow: httpx.Client, rest_run: DagRun, mlflow_api: httpx.Client
) -> MlflowRun:
    """The MLflow run behind the REST run's predictions, found through the MLflow REST API."""
    ctx = stack.context()
    predictions = _xcom_ref(airflow, rest_run.run_id, "train")
    run_id = ctx.catalog.lineage(predictions).extra["mlflow_run_id"]
    experiment = _ok(
        mlflow_api.get(
            "/experiments/get-by-name", params={"experiment_name": ctx.config.train.experiment}
        )
    )["experiment"]
    found = _ok(
        mlflow_api.post(
            "/runs/search",
            json={
                "experiment_ids": [experiment["experiment_id"]],
                "filter": f"attributes.run_id = '{run_id}'",
            },
        )
    )
    assert len(found.get("runs", [])) == 1, found
    return MlflowRun(experiment["experiment_id"], found["runs"][0])


# --- the tests ------------------------------------------------------------------------------


def test_the_airflow_api_refuses_unauthenticated_requests(stack: Stack):
    assert httpx.get(f"{stack.airflow}/api/v2/dags", timeout=30).status_code in (401, 403)
    triggered = httpx.post(
        f"{stack.airflow}/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None}, timeout=30
    )
    assert triggered.status_code in (401, 403)
    forged = httpx.get(
        f"{stack.airflow}/api/v2/dags", headers={"Authorization": "Bearer not.a.jwt"}, timeout=30
    )
    assert forged.status_code in (401, 403)
    wrong = httpx.post(
        f"{stack.airflow}/auth/token",
        json={"username": stack.env["AIRFLOW_ADMIN_USER"], "password": "wrong-password"},
        timeout=30,
    )
    assert wrong.status_code == 401


def test_every_service_is_healthy(stack: Stack):
    assert (
        httpx.get(f"{stack.airflow}/api/v2/monitor/health", timeout=30).json()["metadatabase"][
            "status"
        ]
        == "healthy"
    )
    assert httpx.get(f"{stack.mlflow}/health", timeout=30).status_code == 200
    jupyter = f"http://127.0.0.1:{stack.env.get('JUPYTER_PORT', '8888')}"
    assert httpx.get(f"{jupyter}/api", timeout=30).status_code == 200
    # JupyterLab wants the token from .stack/.env.
    assert httpx.get(f"{jupyter}/api/contents", timeout=30).status_code == 403
    token = {"Authorization": f"token {stack.env['JUPYTER_TOKEN']}"}
    assert (
        httpx.get(f"{jupyter}/api/contents/notebooks", headers=token, timeout=30).status_code == 200
    )


@pytest.mark.timeout(RUN_TIMEOUT_S + 600)
def test_the_rest_triggered_run_succeeds_in_every_task(rest_run: DagRun):
    assert rest_run.states == dict.fromkeys(TASKS, "success")


@pytest.mark.timeout(RUN_TIMEOUT_S + 600)
def test_mlflow_holds_the_runs_per_fold_metrics(
    stack: Stack, mlflow_run: MlflowRun, mlflow_api: httpx.Client
):
    ctx = stack.context()
    metrics = {m["key"]: m["value"] for m in mlflow_run.run["data"]["metrics"]}
    folds = ctx.config.train.folds
    for fold in range(folds):
        assert {f"fold{fold}_auc", f"fold{fold}_logloss"} <= set(metrics)
    assert 0.0 <= metrics["mean_auc"] <= 1.0
    history = _ok(
        mlflow_api.get(
            "/metrics/get-history", params={"run_id": mlflow_run.run_id, "metric_key": "auc"}
        )
    )
    assert sorted(m["step"] for m in history["metrics"]) == list(range(folds))
    # The server owns the artifacts (mlflow-artifacts:/), not a folder on the client side.
    assert mlflow_run.run["info"]["artifact_uri"].startswith("mlflow-artifacts:/")
    listed = _ok(mlflow_api.get("/artifacts/list", params={"run_id": mlflow_run.run_id}))
    assert "fold_params.json" in {f["path"] for f in listed.get("files", [])}
    assert not (ROOT / "mlflow-artifacts:").exists()


@pytest.mark.timeout(RUN_TIMEOUT_S + 600)
def test_mlflow_shows_the_fold_children_datasets_optuna_shap_and_registered_model(
    stack: Stack, mlflow_run: MlflowRun, mlflow_api: httpx.Client
):
    """What the MLflow UI shows for a walk-forward, read through the server's REST API."""
    ctx = stack.context()
    cfg = ctx.config.train
    parent = mlflow_run.run_id
    children = _ok(
        mlflow_api.post(
            "/runs/search",
            json={
                "experiment_ids": [mlflow_run.experiment_id],
                "filter": f"tags.mlflow.parentRunId = '{parent}'",
                "max_results": 100,
            },
        )
    ).get("runs", [])

    # One nested run per (model kind, fold), each with its fold's metrics, and the backtest
    # of its predictions with its deflated Sharpe and the N behind it.
    def name(run: dict) -> str:
        return {t["key"]: t["value"] for t in run["data"]["tags"]}.get("mlflow.runName", "")

    folds = [c for c in children if name(c) != "backtest"]
    assert len(folds) == len(cfg.models) * cfg.folds
    for child in folds:
        assert {"auc", "logloss"} <= {m["key"] for m in child["data"]["metrics"]}
    backtests = [c for c in children if name(c) == "backtest"]
    assert backtests, "the backtest is logged as a child of the training run"
    assert {"sharpe", "psr", "dsr", "n_trials"} <= {
        m["key"] for m in backtests[0]["data"]["metrics"]
    }
    # Every dataset version it read, with the catalog fingerprint as the digest.
    inputs = mlflow_run.run["inputs"]["dataset_inputs"]
    named = {i["dataset"]["name"].split("@")[0]: i["dataset"] for i in inputs}
    assert {"features", "labels", "klines"} <= set(named)
    predictions = ctx.catalog.latest("predictions")
    features_version = ctx.catalog.lineage(predictions).inputs["features"]
    features_fp = ctx.catalog.lineage(DatasetRef("features", features_version)).fingerprint
    assert named["features"]["digest"] == features_fp

    # The Optuna record (trials in the stack's PostgreSQL storage) and the SHAP artifacts.
    def listed(path: str) -> set[str]:
        body = _ok(mlflow_api.get("/artifacts/list", params={"run_id": parent, "path": path}))
        return {f["path"] for f in body.get("files", [])}

    assert {"optuna/trials.csv", "optuna/optimization_history.html"} <= listed("optuna")
    assert "shap/importance.csv" in listed("shap")
    tags = {t["key"]: t["value"] for t in mlflow_run.run["data"]["tags"]}
    assert int(tags["trials_total"]) >= len(cfg.models) * cfg.folds * cfg.trials
    assert {"git_sha", "config_hash", "seed"} <= set(tags)
    assert cfg.storage is not None and cfg.storage.startswith("postgresql+psycopg2://")
    # The final model, registered under train.register_as, points back to this run.
    versions = _ok(
        mlflow_api.get("/model-versions/search", params={"filter": f"name='{cfg.register_as}'"})
    )["model_versions"]
    assert parent in {v["run_id"] for v in versions}


@pytest.mark.timeout(RUN_TIMEOUT_S + 600)
def test_the_paper_ledger_in_postgres_holds_the_runs_orders(
    stack: Stack, airflow: httpx.Client, rest_run: DagRun
):
    ctx = stack.context()
    paper_orders = _xcom_ref(airflow, rest_run.run_id, "paper")
    lineage = ctx.catalog.lineage(paper_orders)
    targets_version = lineage.inputs["targets"]
    account = ctx.config.paper.account
    booked = ctx.catalog.read(paper_orders)
    conn = _ledger(stack)
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        tables = {row[0] for row in cur.fetchall()}
        assert {"orders", "order_events", "fills", "balances", "schema_migrations"} <= tables
        cur.execute(
            "SELECT client_id FROM orders WHERE account = %s AND source = %s ORDER BY 1",
            (account, f"targets@v{targets_version}"),
        )
        ledger_ids = [row[0] for row in cur.fetchall()]
        cur.execute("SELECT count(*) FROM equity WHERE account = %s", (account,))
        marks = cur.fetchone()[0]
    conn.close()
    assert lineage.extra["venue"] == "paper" and lineage.extra["invariants"] == []
    # The slice's targets may hold no position in the session's window: then no order is
    # booked, and the session still marked every bar it traded.
    assert lineage.extra["orders"] == booked.height == len(ledger_ids)
    assert sorted(booked["client_id"].to_list()) == ledger_ids
    assert marks == lineage.extra["bars_traded"] > 0


@pytest.mark.timeout(RUN_TIMEOUT_S + 600)
def test_no_secret_reaches_mlflow_datasets_logs_or_the_repository(
    stack: Stack, airflow: httpx.Client, rest_run: DagRun, mlflow_run: MlflowRun, tmp_path: Path
):
    secrets = stack.secrets
    assert {
        "AIRFLOW_ADMIN_PASSWORD",
        "QUANTLAB_DB_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "JUPYTER_TOKEN",
    } <= set(secrets)

    def leaks(text: str) -> list[str]:
        return sorted(name for name, value in secrets.items() if value in text)

    data = mlflow_run.run["data"]
    assert leaks(json.dumps([data.get("params", []), data.get("tags", [])])) == []

    ctx = stack.context()
    # The run's two ends: paper trades the targets, the backtest judges them.
    chain = {
        ref: lineage
        for end in ("paper", "backtest")
        for ref, lineage in ctx.catalog.walk_lineage(_xcom_ref(airflow, rest_run.run_id, end))
    }
    names = [ref.name for ref in chain]
    # One version per dataset, the klines_gaps version the gate read beside klines, and the
    # exchange filters the backtest rounded to.
    assert len(names) == len(set(names)), names
    assert {"klines_gaps", "backtest", "targets", "exchange_info"} <= set(names)
    assert leaks(json.dumps([asdict(lineage) for lineage in chain.values()])) == []
    for log in sorted(ctx.config.paths.catalog.glob("*/_delta_log/*.json")):
        assert leaks(log.read_text()) == [], log

    for task in _task_instances(airflow, rest_run.run_id):
        assert leaks(_task_log(airflow, rest_run.run_id, task)) == [], task["task_id"]

    # Tracked files and untracked ones git would pick up; patterns from a file, not argv.
    patterns = tmp_path / "patterns"
    patterns.write_text("\n".join(secrets.values()) + "\n")
    grep = subprocess.run(
        ["git", "grep", "--untracked", "-I", "-F", "-l", "-f", str(patterns)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert grep.returncode == 1, f"secrets from .stack/.env found in: {grep.stdout}{grep.stderr}"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(STACK_ENV)], cwd=ROOT)
    assert ignored.returncode == 0, ".stack/.env must be git-ignored"


# --- the UIs in headless Chromium -----------------------------------------------------------


class Screens:
    """Numbered screenshots in tests/stack/artifacts/, copied to /tmp/stack-screens/."""

    def __init__(self, driver):
        self.driver = driver
        self.count = 0
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        ARTIFACTS.mkdir(parents=True)

    def take(self, name: str) -> Path:
        self.count += 1
        path = ARTIFACTS / f"{self.count:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        return path

    def publish(self) -> None:
        shutil.rmtree(SCREENS, ignore_errors=True)
        shutil.copytree(ARTIFACTS, SCREENS)


@pytest.fixture
def browser():
    driver = headless_chromium(window="1440,900")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.timeout(2 * RUN_TIMEOUT_S + 600)
def test_trigger_from_the_airflow_ui_and_open_the_run_in_mlflow(
    stack: Stack, airflow: httpx.Client, rest_run: DagRun, mlflow_run: MlflowRun, browser
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 90)
    screens = Screens(browser)
    try:
        # Any page asks for a login first.
        browser.get(f"{stack.airflow}/dags/{DAG}")
        wait.until(ec.visibility_of_element_located((By.NAME, "username")))
        assert "/auth/login" in browser.current_url
        browser.find_element(By.NAME, "username").send_keys(stack.env["AIRFLOW_ADMIN_USER"])
        browser.find_element(By.NAME, "password").send_keys(stack.env["AIRFLOW_ADMIN_PASSWORD"])
        screens.take("airflow-login")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        trigger = wait.until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid=trigger-dag-button]"))
        )
        wait.until(ec.visibility_of_element_located((By.XPATH, "//*[normalize-space()='paper']")))
        screens.take("airflow-research-dag")
        before = _run_ids(airflow)
        trigger.click()
        submit = wait.until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid=trigger-dag-submit]"))
        )
        time.sleep(1)  # the dialog fades in
        screens.take("airflow-trigger-dialog")
        submit.click()

        deadline = time.monotonic() + 60
        while not (new := _run_ids(airflow) - before):
            assert time.monotonic() < deadline, "the Trigger button created no DAG run"
            time.sleep(2)
        (ui_run,) = new
        run_page = f"{stack.airflow}/dags/{DAG}/runs/{quote(ui_run, safe='')}"
        browser.get(run_page)
        wait.until(ec.visibility_of_element_located((By.XPATH, "//*[normalize-space()='paper']")))
        screens.take("airflow-run-started")

        _wait_for_run(airflow, ui_run)
        states = {t["task_id"]: t["state"] for t in _task_instances(airflow, ui_run)}
        assert states == dict.fromkeys(TASKS, "success")
        browser.get(run_page)
        wait.until(
            ec.visibility_of_element_located(
                (By.XPATH, "//*[translate(normalize-space(), 'SUCES', 'suces')='success']")
            )
        )
        time.sleep(2)  # the grid draws its task squares after the header
        screens.take("airflow-run-succeeded")

        browser.set_window_size(1440, 1100)
        browser.get(
            f"{stack.mlflow}/#/experiments/{mlflow_run.experiment_id}/runs/{mlflow_run.run_id}"
        )
        wait.until(
            ec.visibility_of_element_located(
                (By.XPATH, "//*[contains(normalize-space(), 'walk-forward')]")
            )
        )
        metric = wait.until(
            ec.presence_of_element_located((By.XPATH, "//span[normalize-space()='mean_auc']"))
        )
        # MLflow 3 opens its assistant beside the run; close it to show the run itself.
        for button in browser.find_elements(By.CSS_SELECTOR, "button[aria-label=Close]"):
            if button.is_displayed():
                button.click()
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", metric)
        time.sleep(2)
        screens.take("mlflow-run-metrics")
        browser.find_element(By.XPATH, "//button[normalize-space()='Model metrics']").click()
        wait.until(
            ec.visibility_of_element_located((By.XPATH, "//*[normalize-space()='fold0_auc']"))
        )
        time.sleep(3)  # the charts draw after their titles
        screens.take("mlflow-model-metrics")
    except Exception:
        screens.take("failure")
        raise
    finally:
        screens.publish()


def test_every_stack_process_listens_on_127_0_0_1_only(stack: Stack):
    """No service, nor any process it started (Airflow's task log servers), listens beyond
    the loopback address."""
    psutil = pytest.importorskip("psutil")
    listening = []
    for pidfile in (ROOT / ".stack" / "run").glob("*.pid"):
        try:
            lead = psutil.Process(int(pidfile.read_text().split()[0]))
            processes = [lead, *lead.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            try:
                sockets = process.net_connections(kind="inet")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            listening += [
                (pidfile.stem, s.laddr.ip, s.laddr.port)
                for s in sockets
                if s.status == psutil.CONN_LISTEN
            ]
    names = {name for name, _, _ in listening}
    assert {"airflow-apiserver", "airflow-worker-logs", "airflow-trigger-logs"} <= names
    assert [s for s in listening if s[1] not in ("127.0.0.1", "::1")] == []
