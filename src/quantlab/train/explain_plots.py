"""Beeswarm PNGs of a fold's SHAP values, drawn by `shap.plots.beeswarm` from native values.

Each plot is drawn on a standalone matplotlib Figure rendered by the Agg canvas, never through
pyplot: no backend is selected, no GUI is touched, no figure lingers in pyplot's registry, and
nothing is written to disk (the caller gets the PNG's bytes). Pure apart from the drawing.
"""

from __future__ import annotations

import io

import numpy as np

from quantlab.train.explain import FoldExplanation

MAX_DISPLAY = 15  # features drawn; the rest are summed into one row by shap
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def beeswarm_png(
    values: np.ndarray,
    base_values: np.ndarray,
    data: np.ndarray,
    feature_names: list[str],
    title: str = "",
    max_display: int = MAX_DISPLAY,
) -> bytes:
    """A beeswarm of one output's SHAP values as PNG bytes.

    `values` (m, f) and `data` (m, f) are the rows' contributions (bias excluded) and feature
    values, `base_values` (m,) their bias; a beeswarm takes one output, so a multi-class caller
    passes one class at a time.
    """
    import shap  # a heavy import (numba, scipy): only where a plot is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    expl = shap.Explanation(
        values=values, base_values=base_values, data=data, feature_names=list(feature_names)
    )
    rows = min(len(feature_names), max_display)
    fig = Figure(figsize=(8, 0.4 * rows + 1.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # With `ax` given, shap draws there (plot_size must then be None: the figure is sized here).
    shap.plots.beeswarm(expl, max_display=max_display, ax=ax, show=False, plot_size=None)
    if title:
        ax.set_title(title)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100, bbox_inches="tight")
    return out.getvalue()


def fold_beeswarms(explanation: FoldExplanation) -> dict[str, bytes]:
    """A beeswarm per output of one fold, by file name (`beeswarm_<model>_fold<k>[_class<c>].png`),
    of the rows it explained."""
    e = explanation
    pngs = {}
    for output in range(e.outputs):
        suffix = f"_class{output}" if e.outputs > 1 else ""
        name = f"beeswarm_{e.model}_fold{e.fold}{suffix}.png"
        title = (
            f"{e.model} fold {e.fold}{suffix.replace('_', ' ')}: SHAP on "
            f"{len(e.sample_rows):,} of {e.rows:,} test rows"
            + (" (seeded sample)" if len(e.sample_rows) < e.rows else "")
        )
        pngs[name] = beeswarm_png(
            e.sample_values[:, output, :-1],
            e.sample_values[:, output, -1],
            e.sample_data,
            list(e.feature_names),
            title,
        )
    return pngs
