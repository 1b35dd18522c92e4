"""The MLflow model registry as quantlab uses it: versions, the `challenger` and `champion`
aliases, the tags that describe each version, and the champion history MLflow does not keep.

Every version carries what serving, the gate and rollback need, as tags (`META`):
the booster's kind, task and input columns, the catalog versions it was trained on, the
code and config behind it, and where its out-of-sample predictions are. A champion change
writes `promoted_at`/`promoted_by`/`previous_champion` on the new champion and
`demoted_at` on the old one, so `rollback` walks back the chain of `previous_champion`
(MLflow keeps no alias history: https://github.com/mlflow/mlflow/issues/2169).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quantlab.errors import ConfigError, QuantlabError

CHAMPION, CHALLENGER = "champion", "challenger"
# The version tags quantlab writes at registration (names under the `quantlab.` prefix).
META = (
    "family",  # main | regime
    "kind",  # lightgbm | xgboost
    "task",  # binary | multiclass | regression
    "target",  # train.target, or "regime"
    "columns",  # JSON list: the booster's input columns, in order
    "symbols",  # JSON list: the pooled model's symbol codes in order, or the one symbol
    "symbol",  # the one symbol a per-symbol model serves (absent: pooled)
    "classes",  # JSON list: the class names of the outputs, in order (classifiers)
    "rounds",  # the boosting rounds predict uses
    "scale",  # regression: the sd of the fitted target, what turns a return into a score
    "inputs",  # JSON {dataset: version}: the catalog versions it was trained on
    "oos",  # "<dataset>@<version>": its out-of-sample predictions
    "oos_model",  # the `model` value of its rows there
    "train_end",  # ISO time: the newest label it was trained on resolved by then
    "mode",  # full | incremental
    "parent_version",  # incremental: the version it continued
    "code_version",
    "git_sha",
    "config_hash",
    "run_id",
)
PREFIX = "quantlab."


class ModelNotFound(QuantlabError):
    """No such registered model, version or alias."""


@dataclass(frozen=True)
class ModelRef:
    """One registered model version with its tags (quantlab's and the decision tags)."""

    name: str
    version: int
    run_id: str | None
    source: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """`models:/<name>/<version>`: loadable for as long as the registry keeps it."""
        return f"models:/{self.name}/{self.version}"

    def meta(self, key: str, default: str | None = None) -> str | None:
        return self.tags.get(PREFIX + key, default)

    def meta_json(self, key: str, default: Any = None) -> Any:
        raw = self.meta(key)
        return default if raw is None else json.loads(raw)

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Registry:
    """The registry at `tracking_uri` (one `MlflowClient`, made on first use)."""

    def __init__(self, tracking_uri: str):
        self.uri = tracking_uri
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import mlflow

            self._client = mlflow.MlflowClient(self.uri, registry_uri=self.uri)
        return self._client

    # -- reading ------------------------------------------------------------------------
    def _ref(self, mv: Any, aliases: tuple[str, ...] | None = None) -> ModelRef:
        return ModelRef(
            mv.name,
            int(mv.version),
            mv.run_id or None,
            mv.source,
            dict(mv.tags or {}),
            tuple(mv.aliases or ()) if aliases is None else aliases,
        )

    def names(self, prefix: str = "") -> list[str]:
        """Registered model names starting with `prefix`, sorted."""
        found = self.client.search_registered_models(max_results=1000)
        return sorted(m.name for m in found if m.name.startswith(prefix))

    def _aliases(self, name: str) -> dict[int, tuple[str, ...]]:
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException as exc:
            raise ModelNotFound(
                f"no registered model {name!r} in {self.uri}; train one (`make run`) first"
            ) from exc
        out: dict[int, list[str]] = {}
        aliases = model.aliases or {}
        items = (
            aliases.items()
            if isinstance(aliases, dict)
            else ((a.alias, a.version) for a in aliases)
        )
        for alias, version in items:
            out.setdefault(int(version), []).append(alias)
        return {v: tuple(sorted(a)) for v, a in out.items()}

    def version(self, name: str, version: int) -> ModelRef:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            raise ModelNotFound(
                f"{name} has no version {version}; `quantlab model list` shows its versions"
            ) from exc
        return self._ref(mv, self._aliases(name).get(int(version), ()))

    def alias(self, name: str, alias: str) -> ModelRef | None:
        """The version `alias` points to, or None (no such alias, or no such model)."""
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None
        return self._ref(mv)

    def champion(self, name: str) -> ModelRef | None:
        return self.alias(name, CHAMPION)

    def challenger(self, name: str) -> ModelRef | None:
        return self.alias(name, CHALLENGER)

    def versions(self, name: str) -> list[ModelRef]:
        """Every version of `name`, oldest first, with its aliases."""
        aliases = self._aliases(name)
        found = self.client.search_model_versions(f"name='{name}'", max_results=10000)
        refs = [self._ref(mv, aliases.get(int(mv.version), ())) for mv in found]
        return sorted(refs, key=lambda r: r.version)

    def by_run(self, name: str, run_id: str) -> ModelRef | None:
        """The version of `name` that run `run_id` registered (the newest, if several)."""
        found = self.client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
        if not found:
            return None
        mv = max(found, key=lambda m: int(m.version))
        return self._ref(mv, self._aliases(name).get(int(mv.version), ()))

    # -- writing ------------------------------------------------------------------------
    def set_tags(self, name: str, version: int, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            self.client.set_model_version_tag(name, str(version), key, text[:8000])

    def describe(self, name: str, version: int, meta: dict[str, Any]) -> None:
        """Write quantlab's metadata tags (`META` keys) on a version."""
        unknown = sorted(set(meta) - set(META))
        if unknown:
            raise ValueError(f"unknown model metadata {unknown}; known: {list(META)}")
        self.set_tags(name, version, {PREFIX + k: v for k, v in meta.items() if v is not None})

    def mark_challenger(self, name: str, version: int) -> None:
        self.client.set_registered_model_alias(name, CHALLENGER, str(version))

    def register(self, name: str, model_uri: str, run_id: str | None, meta: dict) -> ModelRef:
        """Register `model_uri` as a new version of `name`, describe it, alias it challenger."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            try:
                self.client.create_registered_model(name)
            except MlflowException:
                # A concurrent writer created it since the lookup: the same end state.
                self.client.get_registered_model(name)
        # MLflow 3's `models:/m-…` source names a logged model; a tracking server accepts it
        # only with that model's id beside it (mlflow.register_model passes it too).
        model_id = (
            model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        )
        mv = self.client.create_model_version(name, model_uri, run_id=run_id, model_id=model_id)
        version = int(mv.version)
        self.describe(name, version, meta)
        self.mark_challenger(name, version)
        return self.version(name, version)

    def set_champion(self, name: str, version: int, *, by: str) -> ModelRef | None:
        """Point `champion` at `version`; returns the champion it replaced (None: first).

        The new champion records when, by whom and which version it replaced; the old one
        when it was demoted. A version already champion is left as it is.
        """
        previous = self.champion(name)
        if previous is not None and previous.version == version:
            return previous
        at = now_iso()
        tags: dict[str, Any] = {"promoted_at": at, "promoted_by": by}
        tags["previous_champion"] = "" if previous is None else str(previous.version)
        self.set_tags(name, version, tags)
        self.client.set_registered_model_alias(name, CHAMPION, str(version))
        if previous is not None:
            self.set_tags(name, previous.version, {"demoted_at": at})
        challenger = self.challenger(name)
        if challenger is not None and challenger.version == version:
            self.client.delete_registered_model_alias(name, CHALLENGER)
        return previous

    def rollback_target(self, name: str) -> tuple[ModelRef, ModelRef]:
        """(the champion now, the champion before it): what `rollback` would swap."""
        current = self.champion(name)
        if current is None:
            raise ModelNotFound(f"{name} has no champion to roll back from")
        prev = current.tags.get("previous_champion", "")
        if not prev:
            raise ModelNotFound(
                f"{current} became champion with none before it; nothing to roll back to "
                f"(`quantlab model promote VERSION` picks any version)"
            )
        return current, self.version(name, int(prev))

    def rollback(self, name: str, *, by: str) -> tuple[ModelRef, ModelRef]:
        """Restore the previous champion; returns (the one rolled back, the restored one).

        The restored version keeps its own `previous_champion`, so a second rollback goes
        one step further back.
        """
        current, restored = self.rollback_target(name)
        at = now_iso()
        keep = restored.tags.get("previous_champion", "")
        self.client.set_registered_model_alias(name, CHAMPION, str(restored.version))
        self.set_tags(
            name,
            restored.version,
            {"promoted_at": at, "promoted_by": by, "previous_champion": keep, "restored_at": at},
        )
        self.set_tags(name, current.version, {"demoted_at": at, "rolled_back_at": at})
        return current, self.version(name, restored.version)

    # -- loading ------------------------------------------------------------------------
    def download(self, ref: ModelRef, dst: Path | None = None) -> Path:
        """The version's model folder on local disk.

        A `models:/m-…` source (MLflow 3's logged model) is resolved through this registry's
        own client: MLflow's models:/ repository asks the process-wide tracking URI instead.
        """
        from mlflow.artifacts import download_artifacts

        # No progress bar on a terminal or in a task log (MLflow reads this at each download).
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        source = ref.source
        if source.startswith("models:/m-"):
            source = self.client.get_logged_model(source.removeprefix("models:/")).artifact_location
        # mlflow-artifacts:/ locations (a tracking server's proxied store) resolve against
        # the tracking URI given here, not the process-wide one.
        return Path(
            download_artifacts(
                artifact_uri=source, dst_path=dst and str(dst), tracking_uri=self.uri
            )
        )


def registry_for(tracking_uri: str) -> Registry:
    if not tracking_uri:
        raise ConfigError("tracking.uri is empty; the model registry lives in MLflow")
    return Registry(tracking_uri)


def model_file(folder: Path, kind: str) -> Path:
    """The native model file in an MLflow model folder (`model.lgb` / `model.ubj` ...)."""
    if kind == "lightgbm":
        files = sorted(folder.glob("model.lgb")) or sorted(folder.glob("*.lgb"))
    elif kind == "xgboost":
        files = [p for p in sorted(folder.glob("model.*")) if p.suffix in (".ubj", ".json", ".xgb")]
    else:
        raise ValueError(f"unknown booster kind {kind!r}")
    if not files:
        raise ModelNotFound(f"no {kind} model file in {folder}")
    return files[0]


def load_booster(folder: Path, kind: str) -> Any:
    """The native booster in an MLflow model folder (`model_file`), through its library."""
    path = model_file(folder, kind)
    if kind == "lightgbm":
        import lightgbm as lgb

        return lgb.Booster(model_file=str(path))
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(str(path))
    return booster
