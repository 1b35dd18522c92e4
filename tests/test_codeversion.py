"""The code version: a code edit must change it, with or without git (the Docker stack has none)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import quantlab
from quantlab.codeversion import describe_code

PACKAGE = Path(quantlab.__file__).resolve().parent


def test_without_git_the_version_is_a_hash_of_the_package_source(tmp_path):
    """A copy of the tree without .git, as the stack's image and its ./src mount are."""
    package = tmp_path / "src" / "quantlab"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    first = describe_code(tmp_path, package)
    assert first.startswith(f"quantlab-{quantlab.__version__}+")
    assert describe_code(tmp_path, package) == first  # stable
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "x.py").write_text("compiled = 1\n")
    assert describe_code(tmp_path, package) == first  # caches are not source

    bars = package / "quality" / "read.py"
    bars.write_text(bars.read_text() + "\n# an edit\n")
    edited = describe_code(tmp_path, package)
    (package / "new_stage.py").write_text("x = 1\n")
    added = describe_code(tmp_path, package)
    assert len({first, edited, added}) == 3


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A git checkout with src/quantlab, dags and docs committed."""
    for rel, text in {
        "src/quantlab/stage.py": "def run():\n    return 1\n",
        "dags/research.py": "# wiring\n",
        "docs/readme.md": "docs\n",
        ".gitignore": "__pycache__/\n",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "init")
    return tmp_path


@needs_git
def test_in_a_clean_checkout_the_version_is_the_commit(checkout):
    package = checkout / "src" / "quantlab"
    sha = _git(checkout, "rev-parse", "--short=12", "HEAD")
    assert describe_code(checkout, package) == sha
    (checkout / "docs" / "notes.md").write_text("not code\n")  # outside src/ and dags/
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "stage.cpython-311.pyc").write_bytes(b"\0")  # ignored
    assert describe_code(checkout, package) == sha


@needs_git
def test_an_untracked_source_file_changes_the_version(checkout):
    package = checkout / "src" / "quantlab"
    sha = _git(checkout, "rev-parse", "--short=12", "HEAD")
    (package / "new_stage.py").write_text("x = 1\n")
    with_new = describe_code(checkout, package)
    assert with_new.startswith(f"{sha}-dirty-")
    (package / "new_stage.py").write_text("x = 2\n")
    assert describe_code(checkout, package) not in (sha, with_new)


@needs_git
def test_two_different_edits_give_two_versions(checkout):
    """Before, every edit was `<sha>-dirty`, so a second edit reused the first one's outputs."""
    package = checkout / "src" / "quantlab"
    stage = package / "stage.py"
    stage.write_text("def run():\n    return 2\n")
    one = describe_code(checkout, package)
    stage.write_text("def run():\n    return 3\n")
    two = describe_code(checkout, package)
    _git(checkout, "add", ".")  # staged edits count as well
    assert describe_code(checkout, package) == two
    (checkout / "dags" / "research.py").unlink()
    gone = describe_code(checkout, package)
    assert len({one, two, gone}) == 3
