"""Scripted faults for POST /api/v3/order: what a client must survive without losing track.

`server.order_faults` is an `OrderFaults`. Each new order (POST /api/v3/order, not /order/test)
takes the next scripted fault, if any, else draws one at random when a storm is on:

    server.order_faults.add("accept_then_503", count=1)      # placed; HTTP 503 -1006 (status unknown)
    server.order_faults.add("accept_then_timeout", seconds=12) # placed; the reply waits 12 s
    server.order_faults.add("accept_then_timeout", seconds=12, drop=True)  # placed; then no reply at all
    server.order_faults.add("missing_for", n=3)                # placed; the next 3 GET /api/v3/order
                                                               #   of it answer -2013
    server.order_faults.add("reset", placed=True)              # placed; the connection is reset (RST)
    server.order_faults.add("reset", placed=False)             # reset before it reaches the book
    server.order_faults.storm(rate=0.3, seed=7)                # a seeded random mix of the above
    server.order_faults.injected                               # Counter: what was injected

Every fault is applied after the book has done its work (or, for `reset` with placed=False,
instead of it), under the book's lock: an order placed is placed exactly once, whatever the
client sees. `spec` strings (`kind[:count[:arg]]`) are the CLI form, see `parse_fault`.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass

KINDS = ("accept_then_503", "accept_then_timeout", "missing_for", "reset")


@dataclass(frozen=True)
class OrderFault:
    kind: str
    seconds: float = 10.0  # accept_then_timeout: how long the reply is held
    drop: bool = False  # accept_then_timeout: close the connection instead of replying late
    n: int = 1  # missing_for: how many queries answer -2013
    placed: bool = True  # reset: whether the order reached the book first

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown order fault {self.kind!r}; one of {', '.join(KINDS)}")

    @property
    def label(self) -> str:
        if self.kind == "reset":
            return "reset_placed" if self.placed else "reset_unplaced"
        if self.kind == "accept_then_timeout" and self.drop:
            return "accept_then_drop"
        return self.kind


class OrderFaults:
    """The fault queue and storm settings of one server; thread-safe."""

    def __init__(self) -> None:
        self._queue: list[OrderFault] = []
        self._lock = threading.Lock()
        self._rate = 0.0
        self._rng = random.Random(0)
        self._storm_kinds: tuple[OrderFault, ...] = ()
        self.injected: Counter[str] = Counter()

    def add(self, kind: str, count: int = 1, **options: object) -> OrderFaults:
        """Queue `count` faults of `kind` for the next new orders (options: see OrderFault)."""
        fault = OrderFault(kind, **options)  # type: ignore[arg-type]
        with self._lock:
            self._queue.extend([fault] * count)
        return self

    def storm(
        self, rate: float, seed: int = 0, timeout_s: float = 2.0, missing_n: int = 2
    ) -> OrderFaults:
        """From now on each order without a scripted fault draws one with probability `rate`,
        from every kind (both resets; timeouts held `timeout_s`), reproducibly from `seed`."""
        with self._lock:
            self._rate, self._rng = rate, random.Random(seed)
            self._storm_kinds = (
                OrderFault("accept_then_503"),
                OrderFault("accept_then_timeout", seconds=timeout_s),
                OrderFault("missing_for", n=missing_n),
                OrderFault("reset", placed=True),
                OrderFault("reset", placed=False),
            )
        return self

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._rate = 0.0

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def next(self) -> OrderFault | None:
        """The fault for the order now arriving (counted as injected), or None."""
        with self._lock:
            fault = self._queue.pop(0) if self._queue else None
            if fault is None and self._rate and self._rng.random() < self._rate:
                fault = self._rng.choice(self._storm_kinds)
            if fault is not None:
                self.injected[fault.label] += 1
            return fault


def parse_fault(spec: str) -> tuple[str, int, dict[str, object]]:
    """`kind[:count[:arg]]` -> (kind, count, options) for `OrderFaults.add`.

    arg: accept_then_timeout SECONDS (or SECONDS+drop), missing_for N, reset placed|unplaced.
    """
    kind, _, rest = spec.partition(":")
    count_text, _, arg = rest.partition(":")
    count = int(count_text) if count_text else 1
    options: dict[str, object] = {}
    if arg and kind == "accept_then_timeout":
        seconds, _, drop = arg.partition("+")
        options = {"seconds": float(seconds), "drop": drop == "drop"}
    elif arg and kind == "missing_for":
        options = {"n": int(arg)}
    elif arg and kind == "reset":
        if arg not in ("placed", "unplaced"):
            raise ValueError(f"reset takes placed or unplaced, not {arg!r}")
        options = {"placed": arg == "placed"}
    OrderFault(kind, **options)  # type: ignore[arg-type]  # validates kind
    return kind, count, options
