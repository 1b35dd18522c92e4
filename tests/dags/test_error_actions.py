"""One table, in the DAG helper, says which errors fail a task for good and which are retried."""

from __future__ import annotations

import pytest

import _quantlab
from quantlab import errors

FAIL = [
    errors.ConfigError("bad key"),
    errors.QualityError("failed the gate"),
    errors.SchemaError("wrong columns"),
    errors.ExchangeBanned("418", until=__import__("datetime").datetime(2030, 1, 1)),
    errors.PermanentExchangeError("bad symbol", status=400, code=-1121),
    errors.OrderRejected("LOT_SIZE", client_order_id="ql-1", reason="Filter failure: LOT_SIZE"),
]
RETRY = [
    errors.TemporaryExchangeError("503", status=503),
    # Retried because the rerun reconciles by client order id before it submits anything.
    errors.OrderStatusUnknown("timeout on submit", client_order_id="ql-2", code=-1007),
    errors.ChecksumMismatch("sha differs"),
    errors.DatasetNotFound("no such version"),  # not in the table: Airflow's default
    RuntimeError("a bug"),
]


@pytest.mark.parametrize("exc", FAIL, ids=lambda e: type(e).__name__)
def test_an_error_no_rerun_can_fix_fails_the_task_for_good(exc):
    from airflow.sdk.exceptions import AirflowFailException

    assert _quantlab.action_for(exc) == "fail"
    with pytest.raises(AirflowFailException, match=str(exc)) as failed, _quantlab.fail_fast():
        raise exc
    assert failed.value.__cause__ is exc


@pytest.mark.parametrize("exc", RETRY, ids=lambda e: type(e).__name__)
def test_a_transient_or_unknown_error_is_left_to_airflow_s_retries(exc):
    assert _quantlab.action_for(exc) == "retry"
    with pytest.raises(type(exc)) as raised, _quantlab.fail_fast():
        raise exc
    assert raised.value is exc


def test_a_subclass_takes_its_nearest_ancestor_s_action():
    class StaleOrderBook(errors.TemporaryExchangeError):
        pass

    class NotionalTooSmall(errors.OrderRejected):
        pass

    assert _quantlab.action_for(StaleOrderBook("x")) == "retry"
    assert _quantlab.action_for(NotionalTooSmall("x", client_order_id="ql-3")) == "fail"


def test_the_order_errors_carry_the_client_order_id_to_reconcile_by():
    unknown = errors.OrderStatusUnknown("timeout", client_order_id="ql-4", status=503)
    rejected = errors.OrderRejected("no", client_order_id="ql-5", reason="insufficient balance")
    assert isinstance(unknown, errors.ExchangeError) and unknown.client_order_id == "ql-4"
    assert not isinstance(unknown, errors.TemporaryExchangeError)  # never a blind retry
    assert rejected.reason == "insufficient balance" and rejected.code is None
    for name in ("OrderRejected", "OrderStatusUnknown", "ExchangeBanned"):
        assert name in errors.__doc__
