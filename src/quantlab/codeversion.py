"""The version of the running code, recorded in every version's lineage and fingerprint.

In a git checkout it is the commit, plus a hash of the local changes when src/ or dags/
differ from it (edits and untracked files alike), so two different edits never share a
version. Without git (the Docker stack mounts ./src but not .git; an installed wheel; a
copy of the tree) it is a hash of the package's source files, so a code edit still
changes every stage's fingerprint instead of hiding behind the package version.

Only the package is hashed without git: it is what computes a dataset (DAG files only
wire tasks, and each stage hashes its config into the fingerprint on its own), and it is
the one tree present wherever quantlab runs (the stack mounts the DAGs elsewhere).
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_ROOT = _PACKAGE.parents[1]  # the checkout: src/quantlab/ lives two levels below it
_WATCHED = ("src", "dags")  # in a checkout: where a local change counts as a code change


@functools.cache
def code_version() -> str:
    """The running code's version, worked out once per process."""
    return describe_code(_ROOT, _PACKAGE)


def git_sha(version: str) -> str | None:
    """The commit in a `code_version()` string; None outside a git checkout."""
    return None if version.startswith("quantlab-") else version.split("-dirty-")[0]


def describe_code(root: Path, package: Path) -> str:
    """`<sha>` or `<sha>-dirty-<hash of the changes>` when `root` is a git checkout,
    else `quantlab-<version>+<hash of package's .py files>`."""
    if (root / ".git").exists():  # a file in a worktree, a folder in a clone
        try:
            return _git_version(root)
        except (OSError, subprocess.SubprocessError):
            # No git binary, or git refuses the folder (another user's checkout mounted
            # into a container): the source hash below still tells versions apart.
            return _source_version(package)
    return _source_version(package)


def _source_version(package: Path) -> str:
    from quantlab import __version__

    files = [p for p in package.rglob("*.py") if "__pycache__" not in p.parts]
    return f"quantlab-{__version__}+{_hash_files(package, files)}"


def _git_version(root: Path) -> str:
    sha = _git(root, "rev-parse", "--short=12", "HEAD").strip()
    edited = _git(root, "diff", "HEAD", "--name-only", "-z", "--", *_WATCHED)
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "-z", "--", *_WATCHED)
    changed = {p for p in (edited + "\0" + untracked).split("\0") if p}
    if not changed:
        return sha
    return f"{sha}-dirty-{_hash_files(root, (root / p for p in changed))}"


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
    ).stdout


def _hash_files(base: Path, files: Iterable[Path]) -> str:
    """A short hash of the files' paths (relative to `base`) and contents; a path that no
    longer exists (a deleted tracked file) counts by its name alone."""
    digest = hashlib.sha256()
    for path in sorted(files):
        data = path.read_bytes() if path.is_file() else b"<deleted>"
        digest.update(f"{path.relative_to(base).as_posix()}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()[:12]
