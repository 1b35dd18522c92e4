"""One weight budget shared by threads: the tracker alone, then one client fetching 3 symbols."""

from __future__ import annotations

import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor

from polars.testing import assert_frame_equal

from helpers import SAMPLE
from quantlab.exchange import BinanceClient, ReplayServer
from quantlab.exchange._weights import WeightTracker
from quantlab.schema import klines_from_rows

HOUR = 3_600_000
JAN_2023, MAY_2023 = 1672531200000, 1682899200000


def expected(symbol: str) -> object:
    rows = []
    for month in ("2023-01", "2023-02", "2023-03", "2023-04"):
        path = SAMPLE / "data/spot/monthly/klines" / symbol / "1h" / f"{symbol}-1h-{month}.zip"
        with zipfile.ZipFile(path) as zf:
            for line in zf.read(zf.namelist()[0]).decode().splitlines():
                f = line.split(",")
                rows.append([int(f[0]), *f[1:6], int(f[6]), f[7], int(f[8]), *f[9:12]])
    return klines_from_rows(rows, "spot", symbol, "1h")


def test_reserve_waits_for_the_next_window_when_the_budget_is_spent(fake_clock):
    tracker = WeightTracker(5, fake_clock.sleep, fake_clock)
    assert [tracker.reserve(2), tracker.reserve(2)] == [1_000_000, 1_000_000]
    for _ in range(2):
        tracker.release(2)
    assert tracker.reserve(2) == 1_000_001
    assert fake_clock.sleeps == [50.0]
    assert tracker.used == 2


def test_weight_still_in_flight_counts_in_the_next_window(fake_clock):
    """The server may count a request sent at 59.9 s in the next minute."""
    tracker = WeightTracker(5, fake_clock.sleep, fake_clock)
    tracker.reserve(3)  # not answered yet
    tracker.reserve(2)
    tracker.release(2)
    tracker.reserve(2)  # over the limit: wait for the next window, which starts at 3
    assert tracker.used == 3 + 2
    tracker.release(3)
    tracker.release(2)


def test_the_server_count_raises_ours_but_a_stale_one_is_ignored(fake_clock):
    tracker = WeightTracker(100, fake_clock.sleep, fake_clock)
    window = tracker.reserve(1)
    tracker.release(1)  # answered (the requester releases, then reads the header)
    tracker.observe("40", window)  # another process on this IP used 39
    assert tracker.used == 40
    tracker.observe("7", window)  # a lower count is an older response: keep ours
    assert tracker.used == 40
    fake_clock.t += 60
    tracker.observe("99", window)  # answered after the minute turned: which minute is unknown
    assert tracker.used == 0
    tracker.set_limit(6000)
    assert tracker.limit == 6000


def test_a_weight_above_the_whole_limit_goes_alone_in_a_fresh_window(fake_clock):
    tracker = WeightTracker(10, fake_clock.sleep, fake_clock)
    tracker.reserve(1)
    tracker.release(1)
    tracker.reserve(20)
    assert fake_clock.sleeps == [50.0]


def test_threads_never_overspend_a_window(fake_clock):
    tracker = WeightTracker(10, fake_clock.sleep, fake_clock)
    spent: dict[int, int] = {}
    lock = threading.Lock()

    def request(_: int) -> None:
        window = tracker.reserve(2)
        with lock:
            spent[window] = spent.get(window, 0) + 2
        tracker.release(2)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(request, range(100)))
    assert sum(spent.values()) == 200
    assert max(spent.values()) <= 10
    assert len(spent) == 20


def test_one_client_fetches_three_symbols_at_once_without_a_single_429(fake_clock):
    """The weight limit (20 a minute) binds hard: 3 x (time 1 + 3 pages x 2) = 21 > 20."""
    with (
        ReplayServer(SAMPLE, weight_limit_per_min=20, clock=fake_clock, latency_s=0.01) as srv,
        BinanceClient(
            srv.base_url, sleep=fake_clock.sleep, clock=fake_clock, weight_limit_per_min=6000
        ) as client,
    ):
        client.apply_rate_limits(
            {"rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 20}]}
        )  # fmt: skip
        symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
        with ThreadPoolExecutor(3) as pool:
            frames = list(
                pool.map(lambda s: client.fetch_klines(s, "1h", JAN_2023, MAY_2023 - HOUR), symbols)
            )
        responses = dict(srv.responses)
    assert responses == {200: 12}  # 3 x (1 time + 3 pages), and not one 429
    assert fake_clock.sleeps  # the budget did bind: the client waited instead
    for symbol, got in zip(symbols, frames, strict=True):
        assert_frame_equal(got, expected(symbol))


def test_separate_clients_on_one_ip_share_the_budget_through_the_server_count(fake_clock):
    """Two task processes each have their own client and tracker, as the market_data DAG's
    mapped tasks do. The second learns from X-MBX-USED-WEIGHT-1M what the first spent, so it
    waits for the next minute instead of earning the 429 that its own count would not foresee."""

    def client() -> BinanceClient:
        return BinanceClient(
            srv.base_url, sleep=fake_clock.sleep, clock=fake_clock, weight_limit_per_min=20
        )

    with ReplayServer(SAMPLE, weight_limit_per_min=20, clock=fake_clock) as srv:
        with client() as first:  # 2 x (time 1 + 3 pages x 2) = 14 of the minute's 20
            for symbol in ("BTCUSDT", "ETHUSDT"):
                first.fetch_klines(symbol, "1h", JAN_2023, MAY_2023 - HOUR)
        assert (srv.used_weight(), fake_clock.sleeps) == (14, [])
        with client() as second:  # time 1 + 2 pages fit (19); the third page would be 21
            got = second.fetch_klines("SOLUSDT", "1h", JAN_2023, MAY_2023 - HOUR)
            assert second.weights.used == 2  # the third page, alone in the new minute
        responses = dict(srv.responses)
    assert responses == {200: 12}  # not one 429
    assert len(fake_clock.sleeps) == 1  # the second client waited out the minute instead
    assert_frame_equal(got, expected("SOLUSDT"))


def test_a_clock_stepped_back_does_not_stall_the_budget(fake_clock):
    """NTP steps the wall clock back an hour with the minute spent: the wait is at most a
    minute of the new clock, not the hour back to where the window was."""
    tracker = WeightTracker(5, fake_clock.sleep, fake_clock)
    tracker.reserve(5)
    tracker.release(5)
    fake_clock.t -= 3600
    tracker.reserve(1)
    assert len(fake_clock.sleeps) == 1 and fake_clock.sleeps[0] <= 60
    assert tracker.used == 1


def test_a_429_pause_is_slept_once_for_requests_sent_before_it(fake_clock):
    """Two threads got a 429 for requests sent at once: the second queues behind the first
    pause instead of adding its own."""
    tracker = WeightTracker(100, fake_clock.sleep, fake_clock)
    before = tracker.pauses
    tracker.pause(7, before)
    tracker.pause(7, before)
    assert fake_clock.sleeps == [7]
    tracker.pause(3, tracker.pauses)  # a 429 for a request sent after that pause
    assert fake_clock.sleeps == [7, 3]
