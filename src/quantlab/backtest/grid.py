"""A grid of signal and sizing settings: `signal.threshold=0.1,0.2` → every combination's config.

A sweep tries each combination on the same predictions; `quantlab backtest sweep` records
them all, and every later backtest of those predictions counts them in its deflated Sharpe.
Only the sections the risk stage's sizing reads may vary (`signal.*`, `risk.*`): a cost or
a universe changed inside a sweep would compare strategies on different markets.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

from quantlab.config import Config
from quantlab.errors import ConfigError

SECTIONS = ("signal", "risk")


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """`["signal.threshold=0.1,0.2", "risk.policy=vol_target,kelly"]` → {key: values}.

    Values are read as JSON scalars (0.1 is a float, null is None, true is a bool); anything
    else is a string (vol_target)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not raw.strip():
            raise ConfigError(
                f"grid item {item!r}: write SECTION.KEY=V1,V2 (e.g. signal.threshold=0.1,0.2)"
            )
        if key.split(".", 1)[0] not in SECTIONS or "." not in key:
            raise ConfigError(
                f"grid key {key!r}: a sweep varies only {', '.join(s + '.*' for s in SECTIONS)} "
                "(the sizing); costs, universe and training stay those of the predictions"
            )
        if key in grid:
            raise ConfigError(f"grid key {key!r} is given twice; list all its values once")
        grid[key] = [_scalar(v.strip()) for v in raw.split(",")]
    if not grid:
        raise ConfigError("an empty grid: pass at least one --grid SECTION.KEY=V1,V2")
    return grid


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def combinations(config: Config, grid: dict[str, list[Any]]) -> list[tuple[dict[str, Any], Config]]:
    """Every combination of `grid` applied to `config`, validated: (the values set, the config).

    An unknown key or a bad value fails before anything runs, naming the key."""
    keys = list(grid)
    out = []
    for values in itertools.product(*(grid[k] for k in keys)):
        chosen = dict(zip(keys, values, strict=True))
        dumped = config.model_dump(mode="json", by_alias=True)
        for key, value in chosen.items():
            section, _, field = key.partition(".")
            node = dumped[section]
            *parents, leaf = field.split(".")
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
                if node is None:
                    raise ConfigError(f"grid key {key!r}: {section} has no {part!r}")
            if not isinstance(node, dict) or leaf not in node:
                raise ConfigError(f"grid key {key!r}: {section} has no {field!r}")
            node[leaf] = value
        try:
            out.append((chosen, type(config).model_validate(dumped)))
        except ValueError as exc:
            raise ConfigError(f"grid combination {chosen} is not a valid config: {exc}") from exc
    return out
