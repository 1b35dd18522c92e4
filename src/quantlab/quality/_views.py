"""Data Docs page views that keep Jinja's compiled templates between builds and processes.

GX builds a new Jinja environment for every Data Docs build, so every build parsed and
compiled its ~50 templates again: most of the time a build took. These views are GX's own
(`DefaultJinjaPageView`, `DefaultJinjaIndexPageView`) with Jinja's file bytecode cache
(in the user's temp folder, like `__pycache__`; keyed by template name and checked against
the template's source), so only the first build on a machine compiles them.

GX's index lists the validation results and suites in a table that scripts from public
CDNs draw; offline (an air-gapped research server, this sandbox) the index shows no
results at all. The index view therefore also writes every page as a plain link, which a
script hides again when the table's scripts did load.
"""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from pathlib import PurePosixPath
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
    """GX's index page view with compiled templates cached, and plain links to every page."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = _BYTECODE

    def render(self, document: Any, template: Any = None, **kwargs: Any) -> str:
        page = super().render(document, template, **kwargs)
        rows = list(_linked_rows(document.to_json_dict()))
        return page.replace("</body>", _plain_links(rows) + "</body>", 1) if rows else page


_PLAIN = "quantlab-plain-index"


def _linked_rows(node: Any) -> Iterator[dict]:
    """The rows of the index's tables (validation results, suites) that link to a page."""
    if isinstance(node, dict):
        if node.get("_table_row_link_path"):
            yield node
        for value in node.values():
            yield from _linked_rows(value)
    elif isinstance(node, list):
        for item in node:
            yield from _linked_rows(item)


def _plain_links(rows: list[dict]) -> str:
    items = []
    for row in rows:
        if row.get("run_name"):  # a validation result
            text = (
                f"{row['run_name']}: {row.get('_validation_success_text', '')} "
                f"({row.get('run_time', '')})"
            )
        else:  # an expectation suite
            text = f"expectation suite {PurePosixPath(row['_table_row_link_path']).stem}"
        items.append(f'<li><a href="{escape(row["_table_row_link_path"])}">{escape(text)}</a></li>')
    return (
        f'<section id="{_PLAIN}" style="margin: 1em 2em"><h4>Every page</h4>'
        "<p>Plain links: the tables above need scripts from the internet.</p>"
        f"<ul>{''.join(items)}</ul></section>"
        "<script>if (window.jQuery && jQuery.fn && jQuery.fn.bootstrapTable) "
        f"{{ document.getElementById('{_PLAIN}').style.display = 'none'; }}</script>"
    )
