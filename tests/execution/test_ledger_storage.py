# ruff: noqa: F811  (pytest fixtures imported from test_ledger_support are parameters here)
"""The ledger's schema and its non-order tables on SQLite and PostgreSQL: versioned
migrations, accounts and cash flows, breaker state, halts, events, equity marks, virtual
positions and round trips, and the frames other lanes read."""

from __future__ import annotations

import dataclasses
import shutil
from importlib import resources

import polars as pl
import pytest

from execution.test_ledger_support import (  # noqa: F401  (fixtures)
    ACCOUNT,
    T0,
    funded,
    intent,
    ledger,
    ledger_url,
    raw_execute,
    report,
    trade,
)
from quantlab.errors import ConfigError
from quantlab.execution.ledger import Ledger, LedgerError, LedgerOrder
from quantlab.portfolio.orders import OrderStatus, TradingMode, TradingState


def _migrations(tmp_path, extra: dict[str, str]):
    folder = tmp_path / "migrations"
    shutil.copytree(resources.files("quantlab.execution.ledger") / "migrations", folder)
    for name, sql in extra.items():
        (folder / name).write_text(sql)
    return folder


def test_migrations_are_recorded_once_and_a_later_one_reaches_an_existing_ledger(
    ledger_url, tmp_path
):
    with Ledger.connect(ledger_url) as led:
        led.ensure_account(ACCOUNT, "paper", {"USDT": 5.0}, T0)
        assert led.schema_version() == 1
    with Ledger.connect(ledger_url) as led:  # connecting again applies nothing twice
        assert led.schema_version() == 1
    later = _migrations(
        tmp_path,
        {
            "0002_notes.sql": "CREATE TABLE notes (account TEXT NOT NULL, note TEXT NOT NULL);",
            "0002_notes.sqlite.sql": "CREATE TABLE notes (account TEXT NOT NULL, note TEXT, x INT);",
        },
    )
    with Ledger.connect(ledger_url, migrations=later) as led:
        assert led.schema_version() == 2 and led.balances(ACCOUNT)["USDT"].free == 5.0
        dialect = led.dialect
    raw_execute(ledger_url, "INSERT INTO notes (account, note) VALUES ('a', 'kept')")
    with Ledger.connect(ledger_url, migrations=later) as led, led._db.tx() as tx:
        rows = tx.all("SELECT version, name FROM schema_migrations ORDER BY version")
        columns = [name for (name,) in tx.all(
            "SELECT name FROM pragma_table_info('notes') ORDER BY cid" if dialect == "sqlite" else
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'notes' "
            "ORDER BY ordinal_position")]  # fmt: skip
        assert tx.all("SELECT note FROM notes") == [("kept",)]
    assert rows == [(1, "initial"), (2, "notes")]
    assert columns == (["account", "note", "x"] if dialect == "sqlite" else ["account", "note"])


def test_a_dialect_variant_wins_over_the_portable_migration(tmp_path):
    from quantlab.execution.ledger.migrate import discover

    later = _migrations(
        tmp_path, {"0002_x.sql": "A;", "0002_x.sqlite.sql": "B;", "0002_x.postgresql.sql": "C;"}
    )
    assert [m.sql for m in discover("sqlite", later)][-1] == "B;"
    assert [m.sql for m in discover("postgresql", later)][-1] == "C;"
    clash = _migrations(tmp_path / "clash", {"0002_a.sql": "A;", "0002_b.sql": "B;"})
    with pytest.raises(LedgerError, match="renumber"):
        discover("sqlite", clash)


def test_a_ledger_newer_than_the_code_is_refused(ledger_url):
    Ledger.connect(ledger_url).close()
    raw_execute(
        ledger_url,
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)",
    )
    with pytest.raises(LedgerError, match="upgrade quantlab"):
        Ledger.connect(ledger_url)


def test_an_unsupported_url_is_a_config_error_that_hides_the_password():
    with pytest.raises(ConfigError) as err:
        Ledger.connect("mysql://trader:hunter2@db:3306/ledger")
    assert "hunter2" not in str(err.value) and "sqlite:///" in str(err.value)


def test_an_unreachable_postgres_is_a_ledger_error_that_hides_the_password():
    with pytest.raises(LedgerError) as err:
        Ledger.connect("postgresql://trader:hunter2@127.0.0.1:1/ledger")
    assert "hunter2" not in str(err.value) and "***" in str(err.value)


def test_an_account_is_created_once_with_its_initial_cash_flows(ledger: Ledger):
    assert ledger.account_info(ACCOUNT) is None
    assert ledger.ensure_account(ACCOUNT, "paper", {"USDT": 100.0, "BTC": 0.5}, T0) is True
    assert ledger.ensure_account(ACCOUNT, "binance", {"USDT": 999.0}, T0 + 1) is False
    info = ledger.account_info(ACCOUNT)
    assert info == {
        "venue": "paper",
        "created_ms": T0,
        "cursor_ms": T0,
        "initial": {"BTC": 0.5, "USDT": 100.0},
    }
    ledger.set_cursor(ACCOUNT, T0 + 60_000)
    assert ledger.account_info(ACCOUNT)["cursor_ms"] == T0 + 60_000
    assert {a: b.free for a, b in ledger.balances(ACCOUNT).items()} == {"BTC": 0.5, "USDT": 100.0}
    with pytest.raises(LedgerError, match="ensure_account"):
        ledger.set_cursor("nobody", T0)


def test_funding_and_adjustments_are_journal_lines_and_trade_kinds_are_not_postable(funded: Ledger):
    funded.post_cash_flow(ACCOUNT, "USDT", -1.25, "funding", "fund:2024-01-01T08", T0)
    funded.post_cash_flow(ACCOUNT, "BNB", 0.1, "adjust", "manual top-up", T0)
    assert funded.balances(ACCOUNT)["USDT"].free == 10_000.0 - 1.25
    assert funded.balances(ACCOUNT)["BNB"].free == 0.1
    with pytest.raises(LedgerError, match="cannot be posted by hand"):
        funded.post_cash_flow(ACCOUNT, "USDT", 5.0, "trade", "x", T0)
    assert funded.check_invariants(ACCOUNT) == []


def test_trading_state_round_trips_and_a_mode_change_is_an_event(ledger: Ledger):
    assert ledger.trading_state(ACCOUNT) == TradingState()
    halted = TradingState(TradingMode.HALTED, "drawdown 21%", T0, 1.5e5, T0, 1.4e5, manual=False)
    ledger.set_trading_state(ACCOUNT, halted, T0, "breakers")
    ledger.set_trading_state(
        ACCOUNT, dataclasses.replace(halted, peak_equity=1.6e5), T0 + 1, "breakers"
    )
    assert ledger.trading_state(ACCOUNT) == dataclasses.replace(halted, peak_equity=1.6e5)
    (event,) = ledger.events(ACCOUNT, kind="trading_state")
    assert event["detail"]["to"] == "HALTED" and event["needs_person"] is True
    resumed = TradingState(
        TradingMode.ACTIVE, "resumed by hand", T0 + 2, 1.6e5, T0, 1.4e5, manual=True
    )
    ledger.set_trading_state(ACCOUNT, resumed, T0 + 2, "alice")
    assert ledger.trading_state(ACCOUNT).manual is True
    assert [e["detail"]["by"] for e in ledger.events(ACCOUNT, kind="trading_state")] == [
        "breakers",
        "alice",
    ]


def test_symbols_are_halted_and_cleared(ledger: Ledger):
    ledger.halt_symbol(ACCOUNT, "ETHUSDT", "order outcome UNKNOWN", T0)
    ledger.halt_symbol(ACCOUNT, "BTCUSDT", "reconciliation diff", T0)
    ledger.clear_symbol(ACCOUNT, "BTCUSDT", T0 + 1, "alice")
    assert ledger.halted_symbols(ACCOUNT) == {"ETHUSDT": "order outcome UNKNOWN"}
    ledger.halt_symbol(ACCOUNT, "BTCUSDT", "again", T0 + 2)
    assert ledger.halted_symbols(ACCOUNT) == {
        "BTCUSDT": "again",
        "ETHUSDT": "order outcome UNKNOWN",
    }
    assert [e["kind"] for e in ledger.events(ACCOUNT)] == ["symbol_halted"] * 2 + [
        "symbol_cleared",
        "symbol_halted",
    ]


def test_events_are_added_listed_and_resolved(ledger: Ledger):
    first = ledger.add_event(
        ACCOUNT, "reconcile_diff", {"asset": "USDT", "diff": 3.5}, T0, needs_person=True
    )
    second = ledger.add_event(ACCOUNT, "reconcile_diff", {"asset": "BTC"}, T0, symbol="BTCUSDT")
    ledger.add_event("other", "reconcile_diff", {}, T0)
    assert second > first
    assert ledger.resolve_events(ACCOUNT, T0 + 5, "alice", symbol="BTCUSDT") == 1
    (open_one,) = ledger.events(ACCOUNT, unresolved=True)
    assert open_one["seq"] == first and open_one["detail"] == {"asset": "USDT", "diff": 3.5}
    assert open_one["needs_person"] is True and open_one["resolved_ms"] is None
    assert ledger.resolve_events(ACCOUNT, T0 + 6, "alice", kind="reconcile_diff") == 1
    assert ledger.events(ACCOUNT, unresolved=True) == []


def test_an_equity_mark_is_upserted_per_time(ledger: Ledger):
    ledger.record_equity(ACCOUNT, T0 + 3_600_000, 101.0, 50.0, 51.0)
    ledger.record_equity(ACCOUNT, T0, 100.0, 100.0, 0.0)
    ledger.record_equity(ACCOUNT, T0, 99.0, 99.0, 0.0)
    expected = pl.DataFrame(
        {
            "time_ms": [T0, T0 + 3_600_000],
            "equity": [99.0, 101.0],
            "cash": [99.0, 50.0],
            "gross_exposure": [0.0, 51.0],
        }
    )
    assert ledger.equity(ACCOUNT).equals(expected)


VPOS = {"symbol": "BTCUSDT", "side": "BUY", "qty": 0.5, "entry_price": 100.0, "entry_ms": T0,
        "take_profit": 103.0, "stop_loss": 98.0, "expires_ms": T0 + 48 * 3_600_000,
        "entry_score": 0.62, "entry_class": "up"}  # fmt: skip


def test_virtual_positions_and_their_events_are_stored(ledger: Ledger):
    vid = ledger.vpos_open(ACCOUNT, VPOS)
    (row,) = ledger.vpos_list(ACCOUNT)
    assert row["id"] == vid and row["status"] == "open" and row["max_pnl"] == row["min_pnl"] == 0
    events = [{"kind": "price_update", "price": 102.6, "pnl": 1.3, "at_ms": T0 + 1},
              {"kind": "tp_approached", "price": 102.6, "pnl": 1.3, "at_ms": T0 + 1, "detail": {"share": 0.87}}]  # fmt: skip
    ledger.vpos_update(vid, {"last_price": 102.6, "max_pnl": 1.3}, events)
    ledger.vpos_update(vid, {"status": "closed", "closed_ms": T0 + 2, "close_reason": "tp_hit"}, [])
    assert (
        ledger.vpos_list(ACCOUNT) == []
        and ledger.vpos_list(ACCOUNT, None)[0]["close_reason"] == "tp_hit"
    )
    frame = ledger.vpos_events(ACCOUNT)
    assert (
        frame["kind"].to_list() == ["price_update", "tp_approached"]
        and frame["vpos_id"].to_list() == [vid] * 2
    )
    with pytest.raises(LedgerError, match="unknown fields"):
        ledger.vpos_update(vid, {"entry_price": 1.0}, [])
    with pytest.raises(LedgerError, match="no virtual position"):
        ledger.vpos_update(vid + 100, {}, [])


def test_a_round_trip_is_recorded_once(ledger: Ledger):
    rt = {"symbol": "BTCUSDT", "side": "BUY", "qty": 0.5, "entry_ms": T0, "entry_price": 100.0,
          "exit_ms": T0 + 7_200_000, "exit_price": 103.0, "pnl": 1.5, "fees": 0.1,
          "entry_score": 0.62, "entry_class": "up", "exit_reason": "tp_hit"}  # fmt: skip
    assert ledger.record_round_trip(ACCOUNT, rt) is True
    assert ledger.record_round_trip(ACCOUNT, {**rt, "pnl": 9.9}) is False
    (stored,) = ledger.round_trips(ACCOUNT).to_dicts()
    assert stored == rt


def test_the_frames_carry_every_order_field_and_the_fill_columns(funded: Ledger):
    assert funded.orders_frame(ACCOUNT).columns == [f.name for f in dataclasses.fields(LedgerOrder)]
    order, _ = funded.create_order(intent(qty=1.0), None, T0)
    fill = trade(order, "t1", 1.0, 100.0, 0.001, "BTC")
    funded.apply_report(report(order, OrderStatus.FILLED, (fill,)), (fill,), T0, "q")
    fills = funded.fills(ACCOUNT)
    assert fills.columns == ["account", "symbol", "trade_id", "client_id", "side", "qty", "price", "fee",
                             "fee_asset", "time_ms", "maker"]  # fmt: skip
    assert fills.row(0, named=True)["maker"] is False and fills["fee_asset"].to_list() == ["BTC"]
    (row,) = funded.orders_frame(ACCOUNT).to_dicts()
    assert row["status"] == "FILLED" and row["key"] == order.key and row["locked_amount"] == 0.0


_OLD_LEDGER = (  # the ledger quantlab kept before versioned migrations, as it created it
    "CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, account TEXT NOT NULL, symbol TEXT "
    "NOT NULL, side TEXT NOT NULL, qty DOUBLE PRECISION NOT NULL, target_weight DOUBLE PRECISION "
    "NOT NULL, status TEXT NOT NULL, source TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE fills (client_order_id TEXT PRIMARY KEY REFERENCES orders (client_order_id), "
    "qty DOUBLE PRECISION NOT NULL, price DOUBLE PRECISION NOT NULL, fee DOUBLE PRECISION NOT "
    "NULL, filled_at TEXT NOT NULL)",
    "CREATE TABLE positions (account TEXT NOT NULL, symbol TEXT NOT NULL, qty DOUBLE PRECISION "
    "NOT NULL, avg_price DOUBLE PRECISION NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY "
    "(account, symbol))",
    "INSERT INTO orders VALUES ('paper-targets-v3-BTCUSDT', 'paper', 'BTCUSDT', 'BUY', 0.25, "
    "0.25, 'FILLED', 'targets@v3', '2025-01-01T00:00:00')",
)


def test_a_ledger_from_before_migrations_is_kept_as_legacy_tables(ledger_url):
    """The old three-table ledger is renamed legacy_paper_*, rows kept, and 0001 applies."""
    if ledger_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(ledger_url.removeprefix("sqlite:///"))
    else:
        import psycopg2

        conn = psycopg2.connect(ledger_url)
    cur = conn.cursor()
    for statement in _OLD_LEDGER:
        cur.execute(statement)
    conn.commit()
    conn.close()
    with Ledger.connect(ledger_url) as led:
        assert led.schema_version() >= 1
        assert led.orders(ACCOUNT) == []
    if ledger_url.startswith("sqlite"):
        conn = sqlite3.connect(ledger_url.removeprefix("sqlite:///"))
    else:
        conn = psycopg2.connect(ledger_url)
    cur = conn.cursor()
    cur.execute("SELECT client_order_id FROM legacy_paper_orders")
    assert cur.fetchall() == [("paper-targets-v3-BTCUSDT",)]
    conn.close()
