"""Data Docs page views that keep Jinja's compiled templates between builds and processes.

GX builds a new Jinja environment for every Data Docs build, so every build parsed and
compiled its ~50 templates again: most of the time a build took. These views are GX's own
(`DefaultJinjaPageView`, `DefaultJinjaIndexPageView`) with Jinja's file bytecode cache
(in the user's temp folder, like `__pycache__`; keyed by template name and checked against
the template's source), so only the first build on a machine compiles them.
"""

from __future__ import annotations

from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import FileSystemBytecodeCache

_BYTECODE = FileSystemBytecodeCache()


class CachedPageView(DefaultJinjaPageView):
    """GX's page view (suites and validation results) with compiled templates cached."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = _BYTECODE


class CachedIndexPageView(DefaultJinjaIndexPageView):
    """GX's index page view with compiled templates cached."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = _BYTECODE
