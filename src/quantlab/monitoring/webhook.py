"""The alert webhook: alerts as Slack-compatible JSON, posted with httpx.

A Slack incoming webhook's path is its secret, so nothing here writes the URL anywhere: an
error names the scheme and host only, and httpx's own request log line is rewritten the same
way (it logs every request's full URL at INFO).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import polars as pl

from quantlab.errors import AlertDeliveryError

MAX_SECTIONS = 45  # Slack takes 50 blocks a message: the header, the alerts and a "more" line
MAX_TEXT = 2900  # a section's text may hold 3000 characters
_MARK = {"alert": ":red_circle:", "warn": ":large_orange_circle:"}


def slack_payload(alerts: pl.DataFrame, *, title: str = "quantlab") -> dict:
    """`alerts` (monitor_alerts rows) as {"text": a one-line summary, "blocks": a header
    section, then one section per alert: its level, check, subject and message}."""
    fired = alerts.filter(pl.col("status") == "fired").height if alerts.height else 0
    resolved = alerts.height - fired
    counts = ", ".join(f"{n} {what}" for n, what in ((fired, "fired"), (resolved, "resolved")) if n)
    text = f"{title}: {counts or 'no alerts'}"
    blocks: list[dict[str, Any]] = [_section(f"*{_escape(text)}*")]
    for row in alerts.head(MAX_SECTIONS).iter_rows(named=True):
        resolved_row = row.get("status") == "resolved"
        mark = ":white_check_mark:" if resolved_row else _MARK.get(row["level"], ":white_circle:")
        head = "RESOLVED" if resolved_row else str(row["level"]).upper()
        blocks.append(
            _section(
                f"{mark} *{_escape(head)}* `{_escape(row['check'])}` "
                f"*{_escape(row['subject'])}*\n{_escape(row['message'])}"
            )
        )
    if alerts.height > MAX_SECTIONS:
        blocks.append(_section(f"_…and {alerts.height - MAX_SECTIONS} more alerts_"))
    return {"text": text, "blocks": blocks}


def post_json(
    url: str, payload: dict, *, timeout: float, client: httpx.Client | None = None
) -> None:
    """POST `payload` as JSON to `url`; AlertDeliveryError on a connection error, a timeout
    or a non-2xx answer. Neither the error nor the log holds the URL's path or query."""
    where = host_of(url)
    try:
        _install_log_redaction(url)
    except (httpx.InvalidURL, TypeError):
        raise AlertDeliveryError(
            f"the alert webhook URL is not a valid URL ({where}); set a full https:// URL in "
            "the environment or the Airflow Connection"
        ) from None
    own = client is None
    client = client or httpx.Client()
    try:
        response = client.post(url, json=payload, timeout=timeout)
    except httpx.TimeoutException:
        raise AlertDeliveryError(
            f"the alert webhook at {where} did not answer within {timeout:g} s; the alerts stay "
            "undelivered and the next try sends them again (check the receiver is up)"
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise AlertDeliveryError(
            f"could not reach the alert webhook at {where} ({type(exc).__name__}: "
            f"{_redact(str(exc), url)}); the alerts stay undelivered and the next try sends "
            "them again (check the host, the network and the URL in the environment or the "
            "Airflow Connection)"
        ) from None
    finally:
        if own:
            client.close()
    if not 200 <= response.status_code < 300:
        body = _redact(response.text[:200], url)
        raise AlertDeliveryError(
            f"the alert webhook at {where} answered {response.status_code} ({body!r}); the "
            "alerts stay undelivered and the next try sends them again (a 4xx: check the URL "
            "and the payload; a 5xx: the receiver is failing)"
        )


def host_of(url: str) -> str:
    """What an error may say about `url`: its scheme and host (and port), never the path."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<an invalid URL>"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


def _redact(text: str, url: str) -> str:
    """`text` with `url` and its path cut down to the scheme and host."""
    try:
        path = httpx.URL(url).raw_path.decode("ascii", "replace")
    except (httpx.InvalidURL, TypeError):
        path = ""
    text = text.replace(url, host_of(url))
    return text.replace(path, "/<redacted>") if len(path) > 1 else text


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_TEXT]}}


def _escape(value: object) -> str:
    """Slack's mrkdwn escapes: &, < and > (a message must not turn into a link or mention)."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _RedactUrls(logging.Filter):
    """httpx logs `HTTP Request: POST <full url> ...` at INFO: a webhook's URL keeps its host
    only. Other requests (the exchange client's) log as before."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                host_of(str(a)) if isinstance(a, httpx.URL) and str(a) in self.urls else a
                for a in record.args
            )
        return True


def _install_log_redaction(url: str) -> None:
    logger = logging.getLogger("httpx")
    found = [f for f in logger.filters if isinstance(f, _RedactUrls)]
    redact = found[0] if found else _RedactUrls()
    if not found:
        logger.addFilter(redact)
    redact.urls.add(str(httpx.URL(url)))
