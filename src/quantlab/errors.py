"""The one error tree of quantlab.

    QuantlabError
    ├── ConfigError                  a config file or key is wrong; fix the YAML
    ├── DataError
    │   ├── DatasetNotFound          no such dataset or version in the catalog
    │   ├── SchemaError              input cannot be read as the expected schema
    │   │   └── DuplicateKeyError    a batch repeats its key; deduplicate it before writing
    │   ├── QualityError             data failed the validation gate
    │   └── ChecksumMismatch         a bulk file's SHA-256 is not its .CHECKSUM; download it again
    └── ExchangeError
        ├── TemporaryExchangeError   429 / 5xx / timeout: safe to retry later
        ├── ExchangeBanned           418: no call to that host until `until`; never retried
        ├── PermanentExchangeError   4xx with an exchange code: retrying will not help
        ├── OrderRejected            the venue refused an order (a filter, the balance): final
        └── OrderStatusUnknown       an order's outcome is unknown (timeout, 5xx, -1006, -1007):
                                     query it by client order id before anything is resent
    └── LedgerError                  the paper ledger refused a change (an overfill, a bad row)
        └── LedgerBusy               another paper session holds the account: one trades at once
    └── AlertDeliveryError           the alert webhook refused or did not answer: retried, never lost

Every message says what happened and what to do about it.
"""

from __future__ import annotations

from datetime import datetime


class QuantlabError(Exception):
    """Base class of every error quantlab raises on purpose."""


class ConfigError(QuantlabError):
    """A configuration file or value is invalid."""


class DataError(QuantlabError):
    """Something is wrong with a dataset."""


class DatasetNotFound(DataError):
    """A dataset name or version does not exist in the catalog."""


class SchemaError(DataError):
    """Input data does not match the schema a stage expects."""


class DuplicateKeyError(SchemaError):
    """Rows of one batch share a key, so a merge could not tell which one to keep."""


class QualityError(DataError):
    """Data failed the validation gate; retrying will not fix it."""

    def __init__(self, message: str, failed_checks: list[str] | None = None):
        super().__init__(message)
        self.failed_checks = failed_checks or []


class ChecksumMismatch(DataError):
    """A bulk file's SHA-256 differs from its `.CHECKSUM` (or that file is missing); it was not read."""

    def __init__(
        self, message: str, path: str = "", expected: str | None = None, actual: str | None = None
    ):
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.actual = actual


class ExchangeError(QuantlabError):
    """The exchange (or its stand-in) answered with an error."""

    def __init__(self, message: str, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class TemporaryExchangeError(ExchangeError):
    """A transient failure (rate limit, 5xx, timeout); retry with backoff."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status, code)
        self.retry_after = retry_after


class ExchangeBanned(ExchangeError):
    """HTTP 418, or a ban recorded earlier: this IP may not call the host before `until` (UTC).

    Not temporary in the retry sense: a retry a minute later meets the ban again and makes it
    longer, so the DAGs fail the task for good, naming `until`.
    """

    def __init__(
        self,
        message: str,
        until: datetime,
        host: str = "",
        status: int | None = 418,
        code: int | None = None,
    ):
        super().__init__(message, status, code)
        self.until = until
        self.host = host


IPBannedError = ExchangeBanned  # the name before the ban was its own branch of the tree


class PermanentExchangeError(ExchangeError):
    """A request the exchange will never accept (bad symbol, bad parameter)."""


class OrderRejected(ExchangeError):
    """The venue definitively refused an order (-1013 filter failure, -2010 insufficient
    balance, ...): it was not placed; sending it unchanged is refused again."""

    def __init__(
        self,
        message: str,
        client_order_id: str,
        reason: str = "",
        status: int | None = None,
        code: int | None = None,
    ):
        super().__init__(message, status, code)
        self.client_order_id = client_order_id
        self.reason = reason


class OrderStatusUnknown(ExchangeError):
    """An order was sent but its outcome is unknown: a timeout, a 5xx, -1006 or -1007.

    It may have been placed (and filled). Never send it again under a new client order id:
    query it by `client_order_id` first, and resend only under the same id.
    """

    def __init__(
        self,
        message: str,
        client_order_id: str,
        status: int | None = None,
        code: int | None = None,
    ):
        super().__init__(message, status, code)
        self.client_order_id = client_order_id


class LedgerError(QuantlabError):
    """The paper ledger refused a change that would break it (an overfill, a corrupt row)."""


class LedgerBusy(LedgerError):
    """Another paper session holds the account's ledger lock: never two trading at once."""


class AlertDeliveryError(QuantlabError):
    """The alert webhook refused a message or did not answer; the alert stays undelivered and
    the next try sends it again. Its message names the host only, never the secret URL."""
