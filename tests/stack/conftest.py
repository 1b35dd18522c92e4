"""The `stack` marker: integration tests on the native stack (`make stack`), run by `pytest -m stack`."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "stack: needs the native stack (make stack); selected with pytest -m stack"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # They start servers and run the DAG for minutes: only an explicit `-m stack` runs them.
    if "stack" in (config.option.markexpr or "").replace("not stack", ""):
        return
    skip = pytest.mark.skip(reason="needs the native stack; run with pytest -m stack")
    for item in items:
        if "stack" in item.keywords:
            item.add_marker(skip)
