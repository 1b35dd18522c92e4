"""Where numba keeps compiled code: inside the project's data folder, so a fresh process loads it.

vectorbt's kernels and quantlab's backtest engine are `@njit(cache=True)`. By default numba
caches beside each module (in `__pycache__`), which a read-only site-packages or a container
image cannot keep; a fresh Airflow task would then compile the engine again. `use_cache_dir`
points numba at `<paths.data>/numba` unless `NUMBA_CACHE_DIR` is already set. It must run
before numba-decorated modules are imported: the cache location of a function is fixed when
its decorator runs. `RunContext.load` calls it first thing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "NUMBA_CACHE_DIR"


def use_cache_dir(data: Path) -> Path:
    """Set numba's cache folder to `data/numba` (or keep `$NUMBA_CACHE_DIR`); the folder used."""
    folder = Path(os.environ.setdefault(ENV, str(Path(data) / "numba")))
    folder.mkdir(parents=True, exist_ok=True)
    if "numba" in sys.modules:  # imported already: make its config read the variable again
        from numba.core import config

        if str(folder) != config.CACHE_DIR:
            config.reload_config()
    return folder
