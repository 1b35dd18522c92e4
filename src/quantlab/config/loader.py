"""The one loader: YAML (with `extends`), `${VAR}` from the environment, paths resolved
against QUANTLAB_HOME, into frozen models whose unknown keys are errors."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from quantlab import secrets
from quantlab.config.model import Config
from quantlab.config.research import TrackingConfig
from quantlab.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Variables whose values are handed to the log maskers when a config expands them.
_SECRET_VAR = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|FERNET", re.IGNORECASE)
# A URI scheme of two or more characters, so a Windows drive letter stays a path.
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


_M = TypeVar("_M", bound=BaseModel)


def _expand_env(value: object) -> object:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                if _SECRET_VAR.search(name):  # e.g. the ledger password inside paper.ledger_url
                    secrets.mask(os.environ[name])
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(
                f"config refers to ${{{name}}} but the environment variable {name} is not set; "
                f"export it or give a default as ${{{name}:-value}}"
            )

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def _resolve(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else (root / path).resolve()


def _resolve_input(path: Path, root: Path) -> Path:
    """A read-only input (the replay sample, the known outages): under `root` when there, else
    the project's own.

    `QUANTLAB_HOME` moves everything quantlab writes; inputs shipped with the project, such
    as data/sample, stay readable when the home folder does not carry a copy.
    """
    resolved = _resolve(path, root)
    shipped = _resolve(path, PROJECT_ROOT)
    return resolved if resolved.exists() or not shipped.exists() else shipped


def _is_uri(location: str) -> bool:
    """`s3://...`, `mlflow-artifacts:/...`, `file:///...`: a URI, not a local path (`C:\\x` is a path)."""
    return _URI_SCHEME.match(location) is not None


def _resolve_url(url: str, root: Path) -> str:
    """Make `sqlite:///relative/path` absolute against the project root."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(_resolve(Path(url[len(prefix) :]), root))
    return url


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path, what: str, seen: tuple[Path, ...] = ()) -> dict:
    """Read one config file; `extends: other.yaml` layers it over another file, kedro-environment style."""
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist; pass an existing YAML file")
    if path.resolve() in seen:
        raise ConfigError(f"{what} {path} extends itself through {[str(p) for p in seen]}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path} must hold a mapping at the top level")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    base = _read_yaml((path.parent / str(parent)).resolve(), what, (*seen, path.resolve()))
    return _deep_merge(base, raw)


def load_file(path: Path, model: type[_M], *, what: str, hint: str) -> _M:
    """Read, expand and validate one YAML file into `model`: the one loader every file in
    `configs/` goes through (the run config, the markets, the known outages).

    `extends: other.yaml` layers the file over another; `${VAR}` and `${VAR:-default}` read
    the environment. Errors name the file and each bad key; `hint` says where to look.
    """
    raw = _expand_env(_read_yaml(path, what))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError(f"{what} {path} is invalid:\n" + "\n".join(lines) + "\n" + hint) from None


def home() -> Path:
    """Where relative paths in configs resolve: `$QUANTLAB_HOME`, else the project root."""
    return Path(os.environ.get("QUANTLAB_HOME") or PROJECT_ROOT)


def resolve_path(path: Path) -> Path:
    """A relative path against `home()`; an absolute one as it is."""
    return _resolve(path, home())


def load_config(path: str | Path | None = None) -> Config:
    """Load, validate and resolve a config file.

    Without a path, `$QUANTLAB_CONFIG` is used, else `configs/default.yaml`.
    Relative paths in the file are resolved against `$QUANTLAB_HOME` or the
    project root, so the same config works from any working directory.
    """
    path = Path(path or os.environ.get("QUANTLAB_CONFIG") or DEFAULT_CONFIG)
    cfg = load_file(
        path,
        Config,
        what="config file",
        hint="Fix these keys (unknown keys are typos; see configs/default.yaml for every key).",
    )
    root = home()
    return cfg.model_copy(
        update={
            # model_copy keeps the other keys (catalog_uri, object_store): a rebuilt
            # PathsConfig dropped them and put an s3:// catalog back on the local disk.
            "paths": cfg.paths.model_copy(
                update={
                    "data": _resolve(cfg.paths.data, root),
                    "experiments": _resolve(cfg.paths.experiments, root),
                }
            ),
            "exchange": cfg.exchange.model_copy(
                update={
                    "replay_root": _resolve_input(cfg.exchange.replay_root, root),
                    "freqtrade_root": _resolve_input(cfg.exchange.freqtrade_root, root),
                }
            ),
            "validate_": cfg.validate_.model_copy(
                update={
                    "known_outages": _resolve_input(cfg.validate_.known_outages, root)
                    if cfg.validate_.known_outages is not None
                    else None
                }
            ),
            "train": cfg.train.model_copy(update={"storage": _resolve_url(cfg.train.storage, root)})
            if cfg.train.storage is not None
            else cfg.train,
            "paper": cfg.paper.model_copy(
                update={"ledger_url": _resolve_url(cfg.paper.ledger_url, root)}
            ),
            "tracking": TrackingConfig(
                uri=_resolve_url(cfg.tracking.uri, root),
                artifacts=cfg.tracking.artifacts
                if _is_uri(cfg.tracking.artifacts)
                else str(_resolve(Path(cfg.tracking.artifacts), root)),
            ),
        }
    )
