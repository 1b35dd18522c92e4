"""`run` for the paper stage and the `paper_trading` DAG: one session on the configured venue.

Inputs: `targets` (risk), `predictions` (train: the champion check and the scores at entry),
gated `klines` and `exchange_info`. Outputs: snapshots of the ledger as datasets —
`paper_orders` (the stage's output), `paper_fills`, `paper_equity` — and, on the paper venue,
`paper_divergence` (the same targets through the backtest, the P&L gap split into buckets) with
its HTML report as an artifact and in MLflow. The ledger (SQLite or PostgreSQL) is the truth;
the datasets are versioned copies a notebook reads by name.
"""

from __future__ import annotations

from pathlib import Path

from quantlab.catalog import DatasetRef
from quantlab.config import Config, slice_hash
from quantlab.context import RunContext
from quantlab.errors import ConfigError, DataError, QualityError
from quantlab.execution import recorder, signals
from quantlab.execution.inputs import champion_check, load_session_inputs
from quantlab.execution.ledger import Ledger
from quantlab.execution.outputs import write_outputs
from quantlab.execution.reconcile import reconcile
from quantlab.execution.session import SessionInputs, run_session
from quantlab.portfolio.costs import CostModel
from quantlab.portfolio.orders import Broker

READS = (
    "paper",
    "universe",
    "backtest.fees",
    "backtest.slippage",
    "backtest.rebalance_band",
    "risk.kill_drawdown",
    "risk.kill_daily_loss",
    "train.models",
)
IGNORES = ("paper.ledger_url",)
# How far back a live venue's orders and trades are read at reconciliation (Binance serves
# allOrders and myTrades in 24 h windows; older open orders come with openOrders, and every
# order the ledger holds open is asked for by its client id).
RECENT_MS = 24 * 3_600_000


def venue_for(ctx: RunContext, inputs: SessionInputs, costs: CostModel) -> Broker:
    cfg = ctx.config.paper
    if cfg.venue == "binance":
        from quantlab.execution.binance_venue import BinanceVenue

        return BinanceVenue.from_config(cfg.binance)
    from quantlab.execution.paper_venue import PaperVenue

    state = Path(ctx.config.paths.data) / "paper_venue" / f"{cfg.account}.sqlite"
    state.parent.mkdir(parents=True, exist_ok=True)
    return PaperVenue(
        f"sqlite:///{state}", cfg.account, inputs.bars, inputs.interval_ms, inputs.rules,
        inputs.assets, costs, cfg.max_participation, dict(cfg.initial_balances),
    )  # fmt: skip


def bar_times(inputs: SessionInputs, cursor_ms: int, live: bool) -> list[int]:
    """Open times to trade: every bar after the cursor; a live venue trades only the newest (its
    clock does not replay the past)."""
    times = [
        t for t in sorted(set(inputs.bars["open_time"].dt.epoch("ms").to_list())) if t > cursor_ms
    ]
    return times[-1:] if live else times


def starting_cursor(inputs: SessionInputs, session_bars: int, live: bool) -> int:
    """A new account starts trading `paper.session_bars` bars back (a live one at the newest)."""
    times = sorted(set(inputs.bars["open_time"].dt.epoch("ms").to_list()))
    first = times[-1] if live else times[max(0, len(times) - session_bars)]
    return first - 1


def initial_balances(ctx: RunContext, venue: Broker, inputs: SessionInputs) -> dict[str, float]:
    """A paper account starts with `paper.initial_balances`; a testnet account with what the venue
    holds of the universe's assets (the testnet is refilled monthly, never by us)."""
    if venue.name == "paper":
        return dict(ctx.config.paper.initial_balances)
    wanted = {a for pair in inputs.assets.values() for a in pair}
    return {a: b.total for a, b in venue.balances().items() if a in wanted}


def trade_once(
    ledger: Ledger,
    venue: Broker,
    inputs: SessionInputs,
    config: Config,
    costs: CostModel,
    why_not: str,
    initial: dict[str, float],
) -> dict:
    """One run on an open ledger (the caller holds the session lock): reconcile, trade the bars
    since the cursor, reconcile again, record round trips, check the invariants."""
    cfg, account = config.paper, inputs.account
    assets = tuple(sorted({a for pair in inputs.assets.values() for a in pair}))
    symbols = list(inputs.assets)
    live = venue.name != "paper"
    ledger.register_assets(inputs.assets)  # base/quote from exchangeInfo, not a name suffix
    cursor = starting_cursor(inputs, cfg.session_bars, live)
    if ledger.ensure_account(account, venue.name, initial, cursor):
        ledger.set_cursor(account, cursor)
    info = ledger.account_info(account)
    times = bar_times(inputs, info["cursor_ms"], live)
    first_ms = times[0] if times else info["cursor_ms"]
    now = first_ms + inputs.interval_ms
    since = info["created_ms"]
    if live:  # the venue's own clock: read back one day of orders and trades, not the ledger's life
        since = max(since, venue.now_ms - RECENT_MS)
    start = reconcile(ledger, venue, account, symbols, cfg, now, since, assets)
    why_not = why_not or "; ".join(start.blocking)
    result = run_session(ledger, venue, inputs, config, costs, times, trading_allowed=why_not)
    end_ms = (times[-1] if times else first_ms) + inputs.interval_ms
    end = reconcile(ledger, venue, account, symbols, cfg, end_ms, since, assets)
    recorder.record(ledger, account, inputs.scores)
    broken = ledger.check_invariants(account)
    if broken:
        ledger.add_event(
            account, "invariant_broken", {"violations": broken}, end_ms, needs_person=True
        )
    return {"session": result, "start": start, "end": end, "invariants": broken}


def champion_exists(ctx: RunContext) -> bool:
    from quantlab.tracking.registry import registry_for

    name = ctx.config.train.register_as
    return name is not None and registry_for(ctx.config.tracking.uri).champion(name) is not None


def run(
    ctx: RunContext,
    targets: DatasetRef,
    predictions: DatasetRef,
    klines: DatasetRef,
    checks: DatasetRef,
    exchange_info: DatasetRef,
    exchange_info_checks: DatasetRef,
    decisions: DatasetRef | None = None,
) -> DatasetRef:
    """Trade the paper account to the targets since its cursor; reconcile before and after."""
    config, cfg = ctx.config, ctx.config.paper
    if config.universe.market != "spot":
        raise ConfigError("paper trading trades spot; set universe.market: spot")
    why_not = champion_check(ctx, targets, predictions)
    if why_not and champion_exists(ctx):
        # The gate kept an older champion: trade its signals, sized by the same function, not
        # the challenger's (quantlab.execution.signals, what paper_trading runs every bar).
        cat = ctx.catalog
        live = cat.latest("live_predictions") if cat.exists("live_predictions") else None
        try:
            champion_targets = signals.run(ctx, klines, checks, live)
        except DataError as exc:  # its predictions are not in this catalog: trade nothing
            why_not = f"{why_not}; {exc}"
        else:
            targets = champion_targets
            predictions = signals.predictions_of(ctx, targets)
            why_not = champion_check(ctx, targets, predictions)
    inputs = load_session_inputs(
        ctx, targets, predictions, klines, checks, exchange_info, exchange_info_checks
    )
    costs = CostModel.from_config(config.backtest, "spot", list(inputs.assets))
    venue = venue_for(ctx, inputs, costs)
    with (
        Ledger.connect(cfg.ledger_url) as ledger,
        ledger.session_lock(cfg.account, cfg.lock_wait_s),
    ):
        outcome = trade_once(
            ledger, venue, inputs, config, costs, why_not, initial_balances(ctx, venue, inputs)
        )
        ref = write_outputs(
            ctx, ledger, inputs, venue.name,
            refs=[targets, predictions, klines, checks, exchange_info, exchange_info_checks],
            config_hash=slice_hash(config, READS, IGNORES),
            summary=outcome,
        )  # fmt: skip
    broken = outcome["invariants"]
    if broken:
        raise QualityError(
            f"the ledger of account {cfg.account!r} breaks its invariants after this run: "
            f"{broken}; trading stops until a person checks (`quantlab paper status`)"
        )
    return ref
