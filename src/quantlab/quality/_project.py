"""The file-backed Great Expectations project of a data folder, and the Checkpoint the gate runs.

`<data>/gx` keeps, per dataset, a pandas dataframe asset, an ExpectationSuite, a
ValidationDefinition and a Checkpoint, plus every validation result; the Data Docs site is
rendered to `<data>/data_docs`. A Checkpoint run validates once and then runs
`PublishResultAction`, an `UpdateDataDocsAction` that first completes the result: GX
validates only the rows the polars screen suspects (see `quality._gx`), and the action
restores the full frame's counts and stores the result again before the site renders it.

Opening the project and syncing a dataset's suite, validation definition and Checkpoint
happens once per process; a suite is written again only when its expectations change.
Every process that touches the project (the market_data and research DAGs' validations,
a CLI check) holds `<data>/locks/gx.lock` meanwhile, so their GX stores and the site are
never written by two at once. GX writes its files in place, so a process killed mid-write
can leave one cut short: opening the project moves such a file to `<data>/gx_unreadable/`
(with a warning) and the gate writes it anew, instead of failing on it every run after.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from copy import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from quantlab.locks import file_lock
from quantlab.quality._gx import RESULT_FORMAT, Finish, gx

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult

SITE = "quantlab"
SOURCE = "quantlab"
BATCH = "whole"
INDEX_LIMIT = 50  # validation results listed on the index page, newest first
_VIEWS = "quantlab.quality._views"
# One lock per process: a GX context is not thread-safe, and a Checkpoint run reads the
# `_FINISH` its caller set. `exclusive` adds the lock shared with other processes.
LOCK = threading.RLock()
_FINISH: ContextVar[Finish | None] = ContextVar("quantlab_gx_finish", default=None)
# What the gate writes anew from quantlab's own checks; the config file names the data
# sources the validation definitions and Checkpoints point to, so they go with it.
_REBUILT = ("expectations", "validation_definitions", "checkpoints")
log = logging.getLogger(__name__)


def _site_config(site_dir: str) -> dict:
    view = {"module_name": _VIEWS, "class_name": "CachedPageView"}
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": site_dir},
        "site_section_builders": {
            "expectations": {"view": view},
            "validations": {"view": view},
            "profiling": "None",  # the gate profiles nothing; GX would still scan for it
        },
        # The index reads every result it lists: keep it (and the gate's time) bounded.
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": INDEX_LIMIT,
            "view": {"module_name": _VIEWS, "class_name": "CachedIndexPageView"},
        },
    }


@cache
def _action_class() -> type:
    """The action class, defined once GX is imported (GX finds it by its `type`)."""
    from great_expectations.checkpoint import UpdateDataDocsAction

    class PublishResultAction(UpdateDataDocsAction):
        """Complete each result (the full frame's counts), store it again, update Data Docs.

        A subclass of UpdateDataDocsAction, so a Checkpoint runs it before any other action.
        Run outside `Project.validate` (no completion set), it only updates Data Docs.
        """

        type: Literal["quantlab_publish_result"] = "quantlab_publish_result"

        def run(self, checkpoint_result: Any, action_context: Any = None) -> dict:
            finish = _FINISH.get()
            if finish is not None:
                store = self._data_context.validation_results_store
                for key, result in checkpoint_result.run_results.items():
                    finish(result)
                    store.set(key, result)
            return super().run(checkpoint_result, action_context)

    return PublishResultAction


def _fingerprint(expectations: list) -> str:
    """The suite's expectations as JSON, ids left out: equal for the same checks."""
    configs = []
    for e in expectations:
        c = e.configuration.to_json_dict()
        c.pop("id", None)
        configs.append(c)
    return json.dumps(configs, sort_keys=True, default=str)


def _actions() -> list:
    return [_action_class()(name="publish_result", site_names=[SITE])]


def _is_current(checkpoint: Any) -> bool:
    """Does a stored Checkpoint run the actions and result format this code expects?"""
    wanted = [a.dict() for a in _actions()]
    return [a.dict() for a in checkpoint.actions] == wanted and (
        checkpoint.result_format == RESULT_FORMAT
    )


@dataclass
class Project:
    """A data folder's GX project: its file context and the Data Docs site it renders."""

    context: Any
    site_dir: Path
    root: Path
    _checkpoints: dict[str, tuple[str, Any]] = field(default_factory=dict)

    @property
    def index(self) -> Path:
        return self.site_dir / "index.html"

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """This thread alone, in this process and in every other, may use the project."""
        with exclusive(self.root):
            yield

    def validate(
        self,
        suite: ExpectationSuite,
        frame: pd.DataFrame,
        finish: Finish,
        *,
        run_name: str,
    ) -> ExpectationSuiteValidationResult:
        """Run the suite's Checkpoint on `frame` once; `finish` completes the result before
        it is stored and published. Returns the completed result."""
        from great_expectations.core.run_identifier import RunIdentifier

        run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
        with self.exclusive(), _finishing(finish):
            checkpoint = self._checkpoint(suite)
            outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
        (result,) = outcome.run_results.values()
        return result

    def load(self, name: str) -> None:
        """Read dataset `name`'s Checkpoint, or create its batch definition, ahead of the
        validation (`quantlab.quality.stage` does it while the data is read and prepared)."""
        from great_expectations.exceptions import DataContextError

        with self.exclusive():
            if name in self._checkpoints:
                return
            self._batch_definition(name)
            try:
                checkpoint = self.context.checkpoints.get(name)
            except DataContextError:
                return
            if _is_current(checkpoint):
                suite = checkpoint.validation_definitions[0].suite
                self._checkpoints[name] = (_fingerprint(suite.expectations), checkpoint)

    def _checkpoint(self, suite: ExpectationSuite) -> Any:
        """The Checkpoint that validates `suite.name`, its stored suite synced with `suite`."""
        wanted = _fingerprint(suite.expectations)
        known = self._checkpoints.get(suite.name)
        if known is not None and known[0] == wanted:
            return known[1]
        checkpoint = self._sync(suite, wanted)
        self._checkpoints[suite.name] = (wanted, checkpoint)
        return checkpoint

    def store_suite(self, suite: ExpectationSuite) -> Any:
        """Write `suite` to the project unless the stored one has the same expectations."""
        wanted = _fingerprint(suite.expectations)
        known = self._checkpoints.get(suite.name)
        if known is not None and known[0] == wanted:
            return known[1].validation_definitions[0].suite
        self._checkpoints.pop(suite.name, None)
        return self._store_suite(suite, wanted)

    def _store_suite(self, suite: ExpectationSuite, wanted: str) -> Any:
        from great_expectations.exceptions import DataContextError

        # A stored suite takes ownership of its expectations: store copies.
        fresh = gx().ExpectationSuite(
            name=suite.name, expectations=[copy(e) for e in suite.expectations]
        )
        try:
            stored = self.context.suites.get(suite.name)
        except DataContextError:
            return self.context.suites.add(fresh)
        if _fingerprint(stored.expectations) != wanted:
            stored = self.context.suites.add_or_update(fresh)  # keeps the suite's id
        return stored

    def _sync(self, suite: ExpectationSuite, wanted: str) -> Any:
        from great_expectations.exceptions import DataContextError

        ctx = self.context
        name = suite.name
        stored = self._store_suite(suite, wanted)
        try:
            definition = ctx.validation_definitions.get(name)
        except DataContextError:
            definition = ctx.validation_definitions.add(
                gx().ValidationDefinition(
                    name=name, data=self._batch_definition(name), suite=stored
                )
            )
        try:
            checkpoint = ctx.checkpoints.get(name)
        except DataContextError:
            return ctx.checkpoints.add(
                gx().Checkpoint(
                    name=name,
                    validation_definitions=[definition],
                    actions=_actions(),
                    result_format=RESULT_FORMAT,
                )
            )
        if not _is_current(checkpoint):  # written by another version of quantlab
            checkpoint.actions = _actions()
            checkpoint.result_format = RESULT_FORMAT
            checkpoint.save()
        return checkpoint

    def _batch_definition(self, asset_name: str) -> Any:
        try:
            source = self.context.data_sources.get(SOURCE)
        except KeyError:
            source = self.context.data_sources.add_pandas(SOURCE)
        try:
            asset = source.get_asset(asset_name)
        except LookupError:
            asset = source.add_dataframe_asset(asset_name)
        try:
            return asset.get_batch_definition(BATCH)
        except KeyError:
            return asset.add_batch_definition_whole_dataframe(BATCH)


@contextmanager
def _finishing(finish: Finish) -> Iterator[None]:
    token = _FINISH.set(finish)
    try:
        yield
    finally:
        _FINISH.reset(token)


_held: dict[Path, int] = {}  # project root: how deep the thread holding LOCK holds it


@contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """Hold the project under `root`: this process's lock, then the one all processes share.

    Reentrant: a second flock on a new descriptor would wait for the first, so only the
    outermost hold takes it.
    """
    key = root.resolve()
    with LOCK:
        if _held.get(key):
            _held[key] += 1
            try:
                yield
            finally:
                _held[key] -= 1
            return
        with file_lock(key / "locks" / "gx.lock"):
            _held[key] = 1
            try:
                yield
            finally:
                del _held[key]


def open_project(root: Path, site_dir: Path) -> Project:
    """The GX project under `root/gx` whose Data Docs site is `site_dir` (once per process)."""
    gx()  # the whole package first, under its import lock (this may run in a helper thread)
    root.mkdir(parents=True, exist_ok=True)
    site_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(root):
        return _open(str(root.resolve()), str(site_dir.resolve()))


def _json_loads(path: Path) -> bool:
    """Does the stored suite, validation definition or Checkpoint parse as a JSON object?"""
    try:
        return isinstance(json.loads(path.read_bytes()), dict)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return False


def _config_loads(path: Path) -> bool:
    """Does GX read `great_expectations.yml` whole? YAML cut short often still parses, so the
    stores it names and its Data Docs sites must be there too."""
    from great_expectations.compatibility.pydantic import ValidationError
    from great_expectations.data_context import FileDataContext
    from great_expectations.datasource.fluent.config import GxConfig
    from great_expectations.exceptions import GreatExpectationsError

    try:  # read as GX reads it: the project config, then its data sources
        config = FileDataContext._load_file_backed_project_config(path.parent)
        GxConfig.parse_yaml(path, _allow_empty=True)
    # GX's own errors, and what a data source cut short mid-entry raises as it is read.
    except (
        GreatExpectationsError,
        ValidationError,
        ValueError,
        TypeError,
        AttributeError,
        LookupError,
    ):
        return False
    stores = config.stores or {}
    names = (
        config.expectations_store_name,
        config.validation_results_store_name,
        config.checkpoint_store_name,
    )
    return all(n in stores for n in names) and isinstance(config.data_docs_sites, dict)


def set_aside_unreadable(root: Path) -> list[Path]:
    """Move the project files under `root/gx` that do not parse to `root/gx_unreadable/`.

    Returns where they went. A broken `great_expectations.yml` takes the validation
    definitions and Checkpoints with it (they point to data sources it defined); GX
    writes a fresh config and the gate the rest. Validation results are never moved
    (GX's index skips one it cannot read).
    """
    project = root / "gx"
    config = project / "great_expectations.yml"
    files = {f: sorted((project / f).glob("*.json")) for f in _REBUILT}
    if config.is_file() and not _config_loads(config):
        unreadable = [f for f in files["expectations"] if not _json_loads(f)]
        broken = [config, *unreadable, *files["validation_definitions"], *files["checkpoints"]]
    else:
        # A dataset's suite, validation definition and Checkpoint point to each other by id:
        # one of them broken, all three are written anew.
        names = {f.stem for fs in files.values() for f in fs if not _json_loads(f)}
        broken = [f for fs in files.values() for f in fs if f.stem in names]
    if not broken:
        return []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    aside = root / "gx_unreadable" / stamp
    moved = []
    for path in broken:
        rel = path.relative_to(project)
        dest = aside / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        path.replace(dest)
        moved.append(dest)
    log.warning(
        "the Great Expectations project %s held files that do not parse (cut short by a "
        "killed process?): moved %s to %s; the gate writes them anew",
        project,
        ", ".join(str(p.relative_to(aside)) for p in moved),
        aside,
    )
    return moved


@cache
def _open(root: str, site_dir: str) -> Project:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    set_aside_unreadable(Path(root))
    context = gx().get_context(mode="file", project_root_dir=root)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    wanted = _site_config(site_dir)
    sites = dict(context.variables.data_docs_sites or {})
    for name in [n for n in sites if n != SITE or sites[n] != wanted]:
        context.delete_data_docs_site(name)
    if SITE not in (context.variables.data_docs_sites or {}):
        context.add_data_docs_site(SITE, wanted)
    _action_class()  # registered before a stored Checkpoint is read
    return Project(context, Path(site_dir), Path(root))


def checkpoint_runner(project: Callable[[], Project], run_name: str) -> Callable[..., Any]:
    """A `quality._gx.Runner` that validates through the Checkpoint of the project `project()`
    returns (called when the data is ready: it may still be opening), under `run_name`."""

    def run(suite: ExpectationSuite, frame: pd.DataFrame, finish: Finish) -> Any:
        return project().validate(suite, frame, finish, run_name=run_name)

    return run
