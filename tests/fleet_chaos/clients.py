"""The fleet chaos test's clients: order workers that never give up a key, and WebSocket readers
that resume with ``after``.

**Order workers** (:class:`Orders`, :func:`work`) take keys one after another from a shared
:class:`Dispatcher` (which the chaos thread can hold for a moment, so that chaos lands at planned
points of progress) and drive each key to a final outcome through random replicas:

* ``201`` / ``200``: executed, final: the client records the client id, order ticket and volume
  it was told;
* ``422``: a business rejection, final (``MT5IdempotencyError`` is recorded as such: never
  expected, the body of a key never changes);
* ``202`` / ``504``: the outcome is unknown: poll ``GET /v1/accounts/{a}/requests/{key}``
  (through any replica) until it says executed or rejected; ``not_executed`` (or ``404``, no
  order was ever sent with the key) sends the same request with the same key again;
* ``502``, ``503``, ``409`` (retryable), ``429``, ``500``, transport errors and timeouts: the
  same key again, through a random replica, after a backoff;
* ``409`` blocked: final, and a failure (a person would have to look).

A key never gets a new body and an order never gets a new key.

**Readers** (:class:`Reader`): one WebSocket connection each, subscribed to the trade events of
every account from the start of the stream (``after: 0``); on any error or close they connect to
another replica and subscribe again with ``after`` = the last ``stream_seq`` seen per account.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from tests.fleet.processes import KEY

__all__ = [
    "KEY_PREFIX",
    "SYMBOL",
    "VOLUME",
    "Dispatcher",
    "KeyRecord",
    "Orders",
    "Reader",
    "body_for",
    "key_name",
]

#: Idempotency keys (and order comments) are ``fc-<index>``.
KEY_PREFIX: Final = "fc-"
SYMBOL: Final = "BTCUSD"
VOLUME: Final = 0.01
#: One key in this many asks for a filling mode BTCUSD refuses (10030): a business rejection.
REJECT_EVERY: Final = 23
_RETRY: Final = frozenset({409, 429, 500, 502, 503})


def key_name(index: int) -> str:
    """The idempotency key (and comment) of order ``index``."""
    return f"{KEY_PREFIX}{index}"


def body_for(index: int) -> dict[str, Any]:
    """Key ``index``'s one request (always the same): sides alternate, one in
    :data:`REJECT_EVERY` asks for RETURN filling (refused)."""
    body: dict[str, Any] = {"symbol": SYMBOL, "side": "buy" if index % 2 == 0 else "sell",
                            "volume": VOLUME, "comment": key_name(index)}  # fmt: skip
    if index % REJECT_EVERY == REJECT_EVERY // 2:
        body["filling"] = 2  # ORDER_FILLING_RETURN
    return body


@dataclass(slots=True)
class KeyRecord:
    """What the client was told about one key, and how it got there."""

    index: int
    account: str
    outcome: str = ""  # executed / rejected / blocked / idempotency ("" = not final)
    client_id: int = 0
    order: int = 0
    volume: float = 0.0
    error: str = ""
    attempts: int = 0
    polls: int = 0
    unknown: bool = False  # went through 202 (or 504)
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return key_name(self.index)

    def saw(self, status: int | str) -> None:
        name = str(status)
        self.statuses[name] = self.statuses.get(name, 0) + 1


class Dispatcher:
    """Hands out key indexes in order; :meth:`hold` stops it at an index until :meth:`release`
    (the chaos thread fires an action at a planned point of progress)."""

    def __init__(self, orders: int) -> None:
        self.orders = orders
        self.next = 0
        self.final = 0
        self.hold_at = orders + 1
        self.stopped = False
        self._cv = threading.Condition()

    def take(self) -> int | None:
        with self._cv:
            while self.next >= self.hold_at and not self.stopped:
                self._cv.wait(0.5)
            if self.stopped or self.next >= self.orders:
                return None
            self.next += 1
            return self.next - 1

    def done(self) -> None:
        with self._cv:
            self.final += 1
            self._cv.notify_all()

    def hold(self, at: int) -> None:
        with self._cv:
            self.hold_at = at
            self._cv.notify_all()

    def release(self) -> None:
        self.hold(self.orders + 1)

    def wait_started(self, at: int, until: float) -> bool:
        """Wait until ``at`` keys were handed out (the dispatcher holds there)."""
        with self._cv:
            while self.next < min(at, self.orders) and not self.stopped:
                if time.monotonic() > until:
                    return False
                self._cv.wait(0.2)
            return not self.stopped

    def stop(self) -> None:
        with self._cv:
            self.stopped = True
            self._cv.notify_all()


@dataclass
class Orders:
    """The client side of the run: the records, the replicas' base URLs, the deadline."""

    records: list[KeyRecord]
    bases: Sequence[str]
    until: float
    timeout_s: float = 20.0
    stop: threading.Event = field(default_factory=threading.Event)

    def work(self, dispatcher: Dispatcher, seed: int) -> None:
        """One worker: keys from the dispatcher until there are none (or the time is up)."""
        rng = random.Random(seed)
        with httpx.Client(headers={"X-API-Key": KEY}, timeout=self.timeout_s,
                          trust_env=False) as client:  # fmt: skip
            while (index := dispatcher.take()) is not None:
                self._settle(client, rng, self.records[index])
                dispatcher.done()

    def _settle(self, client: httpx.Client, rng: random.Random, record: KeyRecord) -> None:
        body = body_for(record.index)
        account = record.account
        polling = False
        backoff = 0.1
        while not record.outcome and time.monotonic() < self.until and not self.stop.is_set():
            base = rng.choice(self.bases)
            try:
                if polling:
                    record.polls += 1
                    answer = client.get(f"{base}/v1/accounts/{account}/requests/{record.key}")
                else:
                    record.attempts += 1
                    answer = client.post(f"{base}/v1/accounts/{account}/orders", json=body,
                                         headers={"Idempotency-Key": record.key})  # fmt: skip
            except httpx.HTTPError as error:
                record.saw(type(error).__name__)
            else:
                record.saw(answer.status_code)
                polling = self._answer(record, answer, polling)
                if record.outcome:
                    return
                if polling and answer.status_code in (200, 202, 504):
                    backoff = 0.3  # polling: a steady pace, the reconciler is at work
            time.sleep(backoff * rng.uniform(0.5, 1.5))
            backoff = min(backoff * 1.6, 2.0)

    @staticmethod
    def _answer(record: KeyRecord, answer: httpx.Response, polling: bool) -> bool:
        """Record a final answer; return whether to poll (True) or send (False) next."""
        status = answer.status_code
        data = _json(answer)
        if status in (200, 201) and not polling:
            _executed(record, data)
            return False
        if status in (202, 504):
            record.unknown = True
            return True
        if status == 422:
            error = str(data.get("error", ""))
            record.outcome = "idempotency" if error == "MT5IdempotencyError" else "rejected"
            record.error = error
            return polling
        if status == 409 and data.get("error") == "MT5OrderBlockedError":
            record.outcome, record.error = "blocked", str(data.get("detail", ""))[:200]
            return polling
        if polling and status == 200:
            outcome = data.get("outcome")
            if outcome == "executed" and isinstance(data.get("result"), dict):
                _executed(record, data["result"])
            elif outcome == "rejected":
                record.outcome, record.error = "rejected", str(data.get("detail", ""))[:200]
            elif outcome == "blocked":
                record.outcome, record.error = "blocked", str(data.get("detail", ""))[:200]
            elif outcome == "not_executed":
                return False  # provably never executed: the same key sends it
            return True
        if polling and status == 404:
            return False  # no order was ever sent with the key: send it
        if status in _RETRY:
            return polling
        record.error = f"unexpected answer {status}: {answer.text[:200]}"
        return polling


def _json(answer: httpx.Response) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        data = answer.json()
        if isinstance(data, dict):
            return data
    return {}


def _executed(record: KeyRecord, result: dict[str, Any]) -> None:
    record.outcome = "executed"
    record.client_id = int(result.get("client_id") or 0)
    record.order = int(result.get("order") or 0)
    record.volume = float(result.get("volume") or 0.0)


@dataclass
class Reader:
    """A WebSocket client of ``/v1/stream`` reading every account's trade events, resuming with
    ``after`` on another replica when its connection ends (module docstring)."""

    name: str
    accounts: Sequence[str]
    bases: Callable[[], Sequence[str]]
    first: int
    seed: int
    #: account -> journal seqs received, in order
    seen: dict[str, list[int]] = field(default_factory=dict)
    #: account -> the last stream_seq received
    after: dict[str, int] = field(default_factory=dict)
    stream_regressions: int = 0  # a stream_seq not above the last one of its account
    connects: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rng = random.Random(self.seed)
        base = self.bases()[self.first % len(self.bases())]
        while not self.stop.is_set():
            url = base.replace("http://", "ws://") + "/v1/stream"
            try:
                with connect(url, additional_headers={"X-API-Key": KEY}, open_timeout=3,
                             close_timeout=1) as connection:  # fmt: skip
                    self.connects += 1
                    self._subscribe(connection)
                    self._read(connection)
            except (OSError, TimeoutError, WebSocketException, ValueError) as error:
                name = type(error).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
            if self.stop.is_set():
                return
            time.sleep(rng.uniform(0.1, 0.4))
            base = rng.choice(self.bases())

    def _subscribe(self, connection: ClientConnection) -> None:
        """Every account's trade events, after the last stream_seq seen of each."""
        for account in self.accounts:
            connection.send(json.dumps({"op": "subscribe", "account": account, "trades": True,
                                        "after": self.after.get(account, 0)}))  # fmt: skip

    def _read(self, connection: ClientConnection) -> None:
        while not self.stop.is_set():
            try:
                raw = connection.recv(timeout=1.0)
            except TimeoutError:
                continue
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "error":
                problem = message.get("problem", {})
                name = f"error:{problem.get('error', '?')}"
                self.errors[name] = self.errors.get(name, 0) + 1
                return  # resubscribe everything from where it is, elsewhere
            if kind != "trade":
                continue
            account = str(message["account"])
            stream_seq = int(message["stream_seq"])
            if stream_seq <= self.after.get(account, 0):
                self.stream_regressions += 1  # kept: the audit counts it as a duplicate
            self.after[account] = max(stream_seq, self.after.get(account, 0))
            self.seen.setdefault(account, []).append(int(message["data"]["journal_seq"]))
