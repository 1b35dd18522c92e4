"""A registered model version loaded for scoring: its booster and what its tags say it takes.

One process loads a version once (`load_model` caches by name and version; the files are
kept on disk under `cache_dir`, so a fresh process reads a local file instead of asking
MLflow's artifact store again). A LightGBM version scores through `lgbm_text` (its model
file walked in numpy: LightGBM's bits without importing LightGBM, ~1.4 s of a cold call);
an XGBoost one through the training's own `quantlab.train.models`. The score is
`quantlab.scores`' (the training's rule), so a served prediction equals the walk-forward's
final model on the same features row.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantlab.errors import DataError
from quantlab.scores import prediction_columns, score_of
from quantlab.serving.lgbm_text import LgbmText, UnsupportedModel, load_text
from quantlab.tracking.registry import ModelNotFound, ModelRef, Registry, load_booster, model_file
from quantlab.vocab import REGIMES

REGIME_COLUMNS = tuple(f"p_{name}" for name in REGIMES)
SYMBOL_FEATURE = "symbol"  # the pooled model's categorical input (quantlab.train.walkforward)


@dataclass(frozen=True)
class LoadedModel:
    """A version ready to score. `booster` is the library's booster; `load_model` leaves it
    unloaded (`booster=None` with a `folder`) and it loads on first access, so serving a
    LightGBM version (`trees`, its model file parsed) never imports LightGBM.
    `dataclasses.replace(model, booster=other)` scores `other` through the library."""

    ref: ModelRef
    booster: Any = field(repr=False, compare=False)
    family: str
    kind: str
    task: str
    columns: tuple[str, ...]
    symbols: tuple[str, ...]
    classes: tuple[str, ...]
    rounds: int
    scale: float
    folder: Path | None = None
    trees: LgbmText | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.booster is None and self.folder is not None:
            object.__delattr__(self, "booster")  # loaded by __getattr__ on first access

    def __getattr__(self, name: str) -> Any:
        if name != "booster" or self.__dict__.get("folder") is None:
            raise AttributeError(name)
        native = load_booster(self.__dict__["folder"], self.__dict__["kind"])
        object.__setattr__(self, "booster", native)
        object.__setattr__(self, "_booster_from_folder", True)
        return native

    @property
    def evaluates(self) -> bool:
        """Whether `raw` walks `trees` (the booster is the folder's, loaded or not)."""
        return self.trees is not None and (
            "booster" not in self.__dict__ or self.__dict__.get("_booster_from_folder", False)
        )

    @property
    def features(self) -> tuple[str, ...]:
        """The feature columns it reads (its inputs less the pooled symbol code)."""
        return tuple(c for c in self.columns if c != SYMBOL_FEATURE)

    @property
    def pooled(self) -> bool:
        return SYMBOL_FEATURE in self.columns

    def matrix(self, features: pl.DataFrame) -> np.ndarray:
        """The booster's input matrix for `features` rows (KEY + feature columns)."""
        if missing := [c for c in self.features if c not in features.columns]:
            raise DataError(
                f"{self.ref} reads features {missing[:5]} the frame lacks; build features "
                "with the config it was trained on (`quantlab model list` shows its inputs)"
            )
        x = features.select(self.features).cast(pl.Float64).to_numpy()
        if not self.pooled:
            return x
        if unknown := sorted(set(features["symbol"].unique()) - set(self.symbols)):
            raise DataError(
                f"{self.ref} was trained on {list(self.symbols)}, not {unknown}; "
                "retrain with those symbols in universe.symbols"
            )
        codes = features["symbol"].replace_strict(
            list(self.symbols), list(range(len(self.symbols))), return_dtype=pl.Float64
        )
        return np.column_stack([x, codes.to_numpy()])

    def raw(self, features: pl.DataFrame) -> np.ndarray:
        """The booster's output for `features` (P(up), class probabilities or a return)."""
        x = self.matrix(features)
        if self.evaluates:
            assert self.trees is not None
            return self.trees.predict(x, self.rounds)
        from quantlab.train.models import Fitted, booster

        categorical = (x.shape[1] - 1,) if self.pooled else ()
        fitted = Fitted(self.kind, self.booster, self.rounds, self.task, categorical, self.scale)  # type: ignore[arg-type]
        return booster(self.kind, self.task).predict(fitted, x)  # type: ignore[arg-type]

    def predict(self, features: pl.DataFrame) -> pl.DataFrame:
        """KEY plus the family's outputs: prob_up/prob_down/prob_flat/pred_ret/score for a
        main model; the six `p_<REGIME>`, `regime` (the argmax code) and `confidence`."""
        pred = self.raw(features)
        key = features.select("symbol", "open_time")
        if self.family == "regime":
            probs = np.asarray(pred, dtype=np.float64).reshape(len(key), len(REGIMES))
            return key.with_columns(
                *(pl.Series(c, probs[:, i]) for i, c in enumerate(REGIME_COLUMNS)),
                pl.Series("regime", probs.argmax(axis=1).astype(np.int8)),
                pl.Series("confidence", probs.max(axis=1)),
            )
        cols = {"prob_up": None, "prob_down": None, "prob_flat": None, "pred_ret": None}
        cols.update(prediction_columns(self.task, pred))  # type: ignore[arg-type]
        return key.with_columns(
            *(
                pl.Series(k, v, dtype=pl.Float64)
                if v is not None
                else pl.lit(None, pl.Float64).alias(k)
                for k, v in cols.items()
            ),
            pl.Series("score", score_of(self.task, pred, self.scale), dtype=pl.Float64),  # type: ignore[arg-type]
        )


_CACHE: dict[tuple[str, str, int, str], LoadedModel] = {}  # (registry URI, name, version, source)
_LOCK = threading.Lock()


def _folder_name(ref: ModelRef) -> str:
    """`<version>-<hash of its source>`: the source names the logged model (models:/m-…); a
    registry rebuilt from scratch reuses version numbers, never sources, so a folder cached
    for another model can never be served."""
    return f"{ref.version}-{hashlib.sha256(ref.source.encode()).hexdigest()[:12]}"


def _folder(registry: Registry, ref: ModelRef, cache_dir: Path | None) -> Path:
    """The version's model files on disk: downloaded once into `cache_dir` (a staging
    folder renamed into place, so a killed download never looks complete)."""
    if cache_dir is None:
        return _model_root(registry.download(ref))
    folder = cache_dir / ref.name / _folder_name(ref)
    if folder.exists():
        return _model_root(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{ref.version}-", dir=folder.parent))
    registry.download(ref, staging)
    try:
        staging.rename(folder)
    except OSError:  # another process put it in place first: the same files
        shutil.rmtree(staging, ignore_errors=True)
    return _model_root(folder)


def _model_root(folder: Path) -> Path:
    if (folder / "MLmodel").exists():
        return folder
    found = sorted(folder.glob("**/MLmodel"))
    if not found:
        raise ModelNotFound(f"no MLmodel file under {folder}; delete it to download again")
    return found[0].parent


def _trees(folder: Path, kind: str) -> LgbmText | None:
    """A LightGBM model file parsed for `lgbm_text`; None where the library must score it."""
    if kind != "lightgbm":
        return None
    try:
        return load_text(model_file(folder, kind))
    except UnsupportedModel:  # linear trees or an objective quantlab does not train
        return None


def load_model(registry: Registry, ref: ModelRef, cache_dir: Path | None = None) -> LoadedModel:
    """`ref` ready to score, loaded once per process (and once per `cache_dir` on disk)."""
    key = (registry.uri, ref.name, ref.version, ref.source)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    kind = ref.meta("kind")
    columns = ref.meta_json("columns")
    if not kind or not columns:
        raise ModelNotFound(
            f"{ref} carries no quantlab.kind/quantlab.columns tags: it was not registered by "
            "quantlab's training; retrain (`make run`) or promote a version that was"
        )
    folder = _folder(registry, ref, cache_dir)
    model = LoadedModel(
        ref=ref,
        booster=None,  # loaded on first access; `trees` scores a LightGBM version
        family=ref.meta("family", "main") or "main",
        kind=kind,
        task=ref.meta("task", "binary") or "binary",
        columns=tuple(columns),
        symbols=tuple(ref.meta_json("symbols", []) or []),
        classes=tuple(ref.meta_json("classes", []) or []),
        rounds=int(ref.meta("rounds", "0") or 0),
        scale=float(ref.meta("scale", "1.0") or 1.0),
        folder=folder,
        trees=_trees(folder, kind),
    )
    with _LOCK:
        _CACHE[key] = model
    return model


def describe(model: LoadedModel) -> dict[str, Any]:
    """What a served answer says about the model behind it."""
    return {
        "model": model.ref.name,
        "version": model.ref.version,
        "uri": model.ref.uri,
        "kind": model.kind,
        "trained_on": json.loads(model.ref.meta("inputs", "{}") or "{}"),
        "train_end": model.ref.meta("train_end"),
    }


def serving_cache(data_dir: Path | str) -> Path:
    """Where serving keeps registered models' files: `<paths.data>/serving`."""
    return Path(data_dir) / "serving"


def prefetch(registry: Registry, ref: ModelRef, data_dir: Path | str) -> Path:
    """Download `ref`'s files into the serving cache now (once per version), so the first
    `predict` after a promotion or a rollback reads a local file instead of MLflow's store."""
    return _folder(registry, ref, serving_cache(data_dir))
