"""Serving registered models: load a version once per process, score the newest bars.

`model` loads a registered version (its booster and input columns) and scores feature rows
with the training's own code; the rest of the package builds the newest bars' features and
answers `quantlab predict` and `quantlab regime current`.
"""
