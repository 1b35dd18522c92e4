-- The ledger's first schema. Portable SQL for SQLite and PostgreSQL: BIGINT for ms UTC,
-- DOUBLE PRECISION for amounts (REAL affinity in SQLite), INTEGER 0/1 for flags, TEXT JSON
-- for details. {serial_pk} is the one spelling the dialects differ on (an auto-numbered
-- primary key): db.py expands it. Statements end with ";" at a line end.

CREATE TABLE accounts (
    account TEXT PRIMARY KEY,
    venue TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    cursor_ms BIGINT NOT NULL,
    initial TEXT NOT NULL
);

CREATE TABLE orders (
    client_id TEXT PRIMARY KEY,
    order_key TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL,
    symbol TEXT NOT NULL,
    base_asset TEXT NOT NULL,
    quote_asset TEXT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    tif TEXT,
    qty DOUBLE PRECISION NOT NULL,
    price DOUBLE PRECISION,
    status TEXT NOT NULL,
    venue_order_id TEXT,
    executed_qty DOUBLE PRECISION NOT NULL,
    cum_quote DOUBLE PRECISION NOT NULL,
    decision_ms BIGINT NOT NULL,
    target_weight DOUBLE PRECISION NOT NULL,
    source TEXT NOT NULL,
    reference_price DOUBLE PRECISION NOT NULL,
    note TEXT NOT NULL,
    missing_count INTEGER NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    locked_asset TEXT,
    locked_amount DOUBLE PRECISION NOT NULL
);
CREATE INDEX orders_by_status ON orders (account, status);
CREATE INDEX orders_by_decision ON orders (account, source, symbol, decision_ms);

CREATE TABLE order_events (
    seq {serial_pk},
    account TEXT NOT NULL,
    client_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX order_events_by_order ON order_events (account, client_id);

CREATE TABLE fills (
    account TEXT NOT NULL,
    symbol TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    venue_order_id TEXT NOT NULL,
    side TEXT NOT NULL,
    qty DOUBLE PRECISION NOT NULL,
    price DOUBLE PRECISION NOT NULL,
    fee DOUBLE PRECISION NOT NULL,
    fee_asset TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
    maker INTEGER NOT NULL,
    via TEXT NOT NULL,
    booked_ms BIGINT NOT NULL,
    PRIMARY KEY (account, symbol, trade_id)
);
CREATE INDEX fills_by_order ON fills (client_id);

CREATE TABLE cash_flows (
    seq {serial_pk},
    account TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX cash_flows_by_asset ON cash_flows (account, asset);

CREATE TABLE balances (
    account TEXT NOT NULL,
    asset TEXT NOT NULL,
    free DOUBLE PRECISION NOT NULL,
    locked DOUBLE PRECISION NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (account, asset)
);

CREATE TABLE positions (
    account TEXT NOT NULL,
    symbol TEXT NOT NULL,
    qty DOUBLE PRECISION NOT NULL,
    avg_price DOUBLE PRECISION NOT NULL,
    realized_pnl DOUBLE PRECISION NOT NULL,
    opened_ms BIGINT,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (account, symbol)
);

CREATE TABLE events (
    seq {serial_pk},
    account TEXT NOT NULL,
    kind TEXT NOT NULL,
    symbol TEXT,
    detail TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    needs_person INTEGER NOT NULL,
    resolved_ms BIGINT,
    resolved_by TEXT
);
CREATE INDEX events_by_kind ON events (account, kind);

CREATE TABLE trading_state (
    account TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    reason TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    peak_equity DOUBLE PRECISION NOT NULL,
    day_ms BIGINT NOT NULL,
    day_start_equity DOUBLE PRECISION NOT NULL,
    manual INTEGER NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE symbol_halts (
    account TEXT NOT NULL,
    symbol TEXT NOT NULL,
    reason TEXT NOT NULL,
    halted_ms BIGINT NOT NULL,
    cleared_ms BIGINT,
    cleared_by TEXT,
    PRIMARY KEY (account, symbol)
);

CREATE TABLE equity (
    account TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
    equity DOUBLE PRECISION NOT NULL,
    cash DOUBLE PRECISION NOT NULL,
    gross_exposure DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, time_ms)
);

CREATE TABLE virtual_positions (
    id {serial_pk},
    account TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty DOUBLE PRECISION NOT NULL,
    entry_price DOUBLE PRECISION NOT NULL,
    entry_ms BIGINT NOT NULL,
    take_profit DOUBLE PRECISION,
    stop_loss DOUBLE PRECISION,
    expires_ms BIGINT,
    entry_score DOUBLE PRECISION,
    entry_class TEXT,
    status TEXT NOT NULL,
    last_price DOUBLE PRECISION,
    max_pnl DOUBLE PRECISION NOT NULL,
    min_pnl DOUBLE PRECISION NOT NULL,
    closed_ms BIGINT,
    close_reason TEXT
);
CREATE INDEX virtual_positions_by_status ON virtual_positions (account, status);

CREATE TABLE virtual_position_events (
    seq {serial_pk},
    vpos_id BIGINT NOT NULL,
    account TEXT NOT NULL,
    symbol TEXT NOT NULL,
    kind TEXT NOT NULL,
    price DOUBLE PRECISION,
    pnl DOUBLE PRECISION,
    at_ms BIGINT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX virtual_position_events_by_account ON virtual_position_events (account);

CREATE TABLE round_trips (
    account TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty DOUBLE PRECISION NOT NULL,
    entry_ms BIGINT NOT NULL,
    entry_price DOUBLE PRECISION NOT NULL,
    exit_ms BIGINT NOT NULL,
    exit_price DOUBLE PRECISION NOT NULL,
    pnl DOUBLE PRECISION NOT NULL,
    fees DOUBLE PRECISION NOT NULL,
    entry_score DOUBLE PRECISION,
    entry_class TEXT,
    exit_reason TEXT NOT NULL,
    PRIMARY KEY (account, symbol, entry_ms, exit_ms)
);
