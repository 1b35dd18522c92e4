"""The layers of ../shared/ARCHITECTURE.md as import-linter contracts (pyproject.toml), run by
`make lint`: the tree keeps them, and an import that crosses a layer breaks the one named."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

LINT = Path(sys.executable).with_name("lint-imports")


def lint(src: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the package under `src` (first on the path), with the project's contracts."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=src,
        timeout=300,
    )


@pytest.fixture
def planted(tmp_path: Path):
    """A copy of src/quantlab in which a test plants one import."""
    shutil.copytree(ROOT / "src" / "quantlab", tmp_path / "quantlab")

    def plant(module: str, line: str) -> Path:
        path = tmp_path / "quantlab" / module
        path.write_text(f"{line}\n{path.read_text()}")
        return tmp_path

    return plant


def test_the_tree_keeps_every_contract():
    out = lint(ROOT / "src")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("features/build.py", "import airflow", "quantlab runs without Airflow"),
        ("labels/build.py", "from quantlab.catalog import Catalog", "Pure cores do no I/O"),
        ("backtest/engine.py", "import mlflow", "Pure cores do no I/O"),
        ("features/stage.py", "from quantlab.ingest import _store", "private modules"),
        ("catalog/refs.py", "import quantlab.features", "never import a stage"),
        ("config/model.py", "import quantlab.catalog", "The base"),
    ],
)
def test_an_import_across_a_layer_breaks_its_contract(planted, module, line, contract):
    out = lint(planted(module, line))
    assert out.returncode != 0
    broken = out.stdout.split("Broken contracts", 1)[1]
    assert contract in " ".join(broken.split()), out.stdout
