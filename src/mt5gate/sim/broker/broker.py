"""The simulated trade server for one account: the facade the terminal calls.

It validates requests with the §7.4 pipeline (``checks``), carries them out (``dispatch`` /
``execution``), reacts to the market's ticks (``reactor``), answers the account and history
queries (``ledger`` / ``account``) and saves its whole state (``snapshot``). Everything is
stamped with the injected server clock; nothing runs in the background: ticks arrive through
the market listener, and time-based expiry is caught up at the start of each call.

``history_orders`` selects by ``time_setup`` in ``[from, to]``; ``history_deals`` by ``time``.
With ``options.history_delay_ms`` those queries hide records younger than the delay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy.typing as npt

from mt5gate.constants import AccountMarginMode, OrderType, TradeRetcode
from mt5gate.records import (
    AccountInfo,
    OrderCheckResult,
    OrderSendResult,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
    TradeRequest,
)
from mt5gate.sim.broker.account import Books, Figures
from mt5gate.sim.broker.checks import RequoteError, run_checks
from mt5gate.sim.broker.context import Context
from mt5gate.sim.broker.dispatch import HANDLERS, Outcome
from mt5gate.sim.broker.execution import Engine
from mt5gate.sim.broker.ledger import Ledger, select
from mt5gate.sim.broker.model import Position
from mt5gate.sim.broker.money import Pricer
from mt5gate.sim.broker.reactor import Reactor
from mt5gate.sim.broker.retcodes import CHECK_DONE, RejectError, comment_for
from mt5gate.sim.broker.snapshot import dump, load
from mt5gate.sim.broker.tickets import TicketSource
from mt5gate.sim.clock import Clock
from mt5gate.sim.config import AccountConfig, BrokerOptions, TerminalFlags
from mt5gate.sim.errors import CALL_FAILED, INVALID_PARAMS
from mt5gate.sim.groups import matches_group
from mt5gate.sim.symbols import SymbolSpec

__all__ = ["Broker", "MarketPort"]

TickArray = npt.NDArray[Any]


class MarketPort(Protocol):
    """What the broker needs of :class:`mt5gate.sim.market.Market`."""

    def spec(self, symbol: str) -> SymbolSpec | None: ...

    def last_tick(self, symbol: str) -> Tick | None: ...

    def is_open(self, symbol: str, server_ms: int | None = None) -> bool: ...

    def convert(self, amount: float, from_ccy: str, to_ccy: str) -> float: ...

    def add_listener(self, listener: Any) -> None: ...

    def sync(self) -> None: ...


class Broker:
    """One account on the simulated trade server."""

    def __init__(
        self,
        account: AccountConfig,
        market: MarketPort,
        clock: Clock,
        flags: TerminalFlags,
        options: BrokerOptions,
        tickets: TicketSource,
    ) -> None:
        self.account = account
        self.market = market
        self.clock = clock
        self.flags = flags
        self.options = options
        self.tickets = tickets
        self.pricer = Pricer(market, account.currency, account.leverage)
        self.engine = Engine(account, options, market, self.pricer, tickets)
        self.books, self.reactor = self._wire()
        self._request_id = 0
        self.engine.deposit(account.balance, clock.now_ms(), "Initial deposit")
        market.add_listener(self.on_ticks)

    def _wire(self) -> tuple[Books, Reactor]:
        """Account arithmetic and tick reactor over the engine's current ledger."""
        hedging = self.account.margin_mode == AccountMarginMode.RETAIL_HEDGING
        books = Books(self.engine.ledger, self.pricer, self.market, hedging)
        return books, Reactor(self.engine, books)

    @property
    def ledger(self) -> Ledger:
        """The account's storage (for tests and the snapshot)."""
        return self.engine.ledger

    def _now(self) -> int:
        """Server time now, after the market delivered its ticks and due orders expired."""
        self.market.sync()
        now = self.clock.now_ms()
        self.reactor.expire_until(now)
        return now

    # market listener --------------------------------------------------------------------------
    def on_ticks(self, symbol: str, ticks: TickArray) -> None:
        """Fire pending orders, SL/TP and expiries the batch reaches; then check stop-out."""
        if len(ticks) == 0:
            return
        self.reactor.on_ticks(symbol, ticks)
        if self.options.stop_out:
            self.reactor.stop_out(int(ticks["time_msc"][-1]))

    # account ---------------------------------------------------------------------------------
    def figures(self) -> Figures:
        """balance, credit, floating profit and margin now."""
        return self.books.figures(self.engine.balance, self.account.credit)

    def account_info(self) -> AccountInfo:
        """All 28 AccountInfo fields (figures not rounded: equity adds up exactly)."""
        self._now()
        a, f = self.account, self.figures()
        return AccountInfo(
            (a.login, int(a.trade_mode), a.leverage, a.limit_orders, int(a.margin_so_mode),
             a.trade_allowed, a.trade_expert, int(a.margin_mode), a.currency_digits, a.fifo_close,
             f.balance, f.credit, f.profit, f.equity, f.margin, f.margin_free, f.margin_level,
             a.margin_so_call, a.margin_so_so, 0.0, 0.0, 0.0, 0.0, 0.0, a.name, a.server,
             a.currency, a.company)
        )  # fmt: skip

    # requests --------------------------------------------------------------------------------
    def _context(self, request: TradeRequest, sending: bool) -> Context:
        return Context(
            request, sending, self.account, self.flags, self.options, self.market,
            self.engine.ledger, self.books, self.engine.balance, self._now(),
        )  # fmt: skip

    def order_check(self, request: TradeRequest) -> OrderCheckResult:
        """Validate without executing; 0 'Done' with the figures after the operation."""
        ctx = self._context(request, sending=False)
        try:
            run_checks(ctx)
        except RejectError as rejection:
            return self._check_result(rejection.retcode, rejection.comment, ctx)
        return self._check_result(0, CHECK_DONE, ctx)

    def _check_result(self, retcode: int, comment: str, ctx: Context) -> OrderCheckResult:
        now = self.figures()
        margin = now.margin if ctx.margin_after is None else ctx.margin_after
        after = Figures(now.balance, now.credit, now.profit, margin)
        return OrderCheckResult(
            (retcode, after.balance, after.equity, after.profit, after.margin, after.margin_free,
             after.margin_level, comment, ctx.req)
        )  # fmt: skip

    def order_send(self, request: TradeRequest) -> OrderSendResult:
        """Validate and execute a trade request."""
        ctx = self._context(request, sending=True)
        try:
            run_checks(ctx)
        except RequoteError as requote:
            bid, ask = ctx.bid_ask
            return self._send_result(requote.retcode, Outcome(), request, (bid, ask))
        except RejectError as rejection:
            return OrderSendResult(
                (rejection.retcode, 0, 0, 0.0, 0.0, 0.0, 0.0, rejection.comment, 0, 0, request)
            )
        outcome = HANDLERS[ctx.action](self.engine, ctx)
        retcode = self.options.pending_retcode if ctx.action == 5 else TradeRetcode.DONE
        return self._send_result(int(retcode), outcome, request, self.books.quote(ctx.symbol))

    def _send_result(
        self, retcode: int, outcome: Outcome, request: TradeRequest, quote: tuple[float, float]
    ) -> OrderSendResult:
        self._request_id += 1
        return OrderSendResult(
            (retcode, outcome.deal, outcome.order, outcome.volume, outcome.price, quote[0],
             quote[1], comment_for(retcode), self._request_id, 0, request)
        )  # fmt: skip

    # calculators -----------------------------------------------------------------------------
    def _calc_spec(self, action: int, symbol: str, volume: float, price: float) -> SymbolSpec:
        if action not in (OrderType.BUY, OrderType.SELL) or volume < 0 or price < 0:
            raise INVALID_PARAMS()
        spec = self.market.spec(symbol)
        if spec is None:
            raise CALL_FAILED()
        return spec

    def calc_margin(self, action: int, symbol: str, volume: float, price: float) -> float:
        """order_calc_margin: margin in the account currency, rounded to its digits."""
        spec = self._calc_spec(action, symbol, volume, price)
        return round(self.pricer.margin(spec, volume, price), self.account.currency_digits)

    def calc_profit(
        self, action: int, symbol: str, volume: float, price_open: float, price_close: float
    ) -> float:
        """order_calc_profit: profit in the account currency, rounded to its digits."""
        spec = self._calc_spec(action, symbol, volume, min(price_open, price_close))
        buys = action == OrderType.BUY
        profit = self.pricer.profit(spec, buys, volume, price_open, price_close)
        return round(profit, self.account.currency_digits)

    # live queries ----------------------------------------------------------------------------
    def _position_record(self, position: Position) -> TradePosition:
        bid, ask = self.books.quote(position.symbol)
        price = bid if position.is_buy else ask
        spec = self.engine.spec(position.symbol)
        profit = self.pricer.profit(
            spec, position.is_buy, position.volume, position.price_open, price
        )
        return position.record(price, profit)

    def positions(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradePosition, ...]:
        """Open positions, ascending by ticket; ``symbol`` given means ``ticket`` is ignored."""
        self._now()
        chosen = select(self.engine.ledger.positions.values(), symbol, group, ticket)
        return tuple(self._position_record(p) for p in chosen)

    def orders(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradeOrder, ...]:
        """Active pending orders, ascending by ticket."""
        self._now()
        chosen = select(self.engine.ledger.orders.values(), symbol, group, ticket)
        return tuple(o.placed(self._order_price(o.symbol, o.is_buy)) for o in chosen)

    def _order_price(self, symbol: str, buys: bool) -> float:
        bid, ask = self.books.quote(symbol)
        return ask if buys else bid

    def positions_total(self) -> int:
        """Number of open positions."""
        self._now()
        return len(self.engine.ledger.positions)

    def orders_total(self) -> int:
        """Number of active pending orders."""
        self._now()
        return len(self.engine.ledger.orders)

    def symbols_in_use(self) -> set[str]:
        """Symbols with positions or pending orders."""
        ledger = self.engine.ledger
        return {p.symbol for p in ledger.positions.values()} | {
            o.symbol for o in ledger.orders.values()
        }

    # history ---------------------------------------------------------------------------------
    def _visible_ms(self) -> int:
        return self._now() - self.options.history_delay_ms

    def history_orders(
        self, from_s: int, to_s: int, group: str | None = None
    ) -> tuple[TradeOrder, ...]:
        """History orders with ``from_s <= time_setup <= to_s`` (filled, canceled, expired)."""
        found = self.engine.ledger.orders_in(from_s, to_s, self._visible_ms())
        return tuple(o for o in found if group is None or matches_group(o.symbol, group))

    def history_orders_by_ticket(self, ticket: int) -> tuple[TradeOrder, ...]:
        """The history order with this ticket."""
        return tuple(self.engine.ledger.orders_of("ticket", ticket, self._visible_ms()))

    def history_orders_by_position(self, position: int) -> tuple[TradeOrder, ...]:
        """History orders whose ``position_id`` is ``position``."""
        return tuple(self.engine.ledger.orders_of("position", position, self._visible_ms()))

    def history_deals(
        self, from_s: int, to_s: int, group: str | None = None
    ) -> tuple[TradeDeal, ...]:
        """Deals with ``from_s <= time <= to_s``."""
        found = self.engine.ledger.deals_in(from_s, to_s, self._visible_ms())
        return tuple(d for d in found if group is None or matches_group(d.symbol, group))

    def history_deals_by_ticket(self, ticket: int) -> tuple[TradeDeal, ...]:
        """Deals whose ORDER is ``ticket`` (pitfall C9: not the deal ticket)."""
        return tuple(self.engine.ledger.deals_of("order", ticket, self._visible_ms()))

    def history_deals_by_position(self, position: int) -> tuple[TradeDeal, ...]:
        """Deals whose ``position_id`` is ``position``."""
        return tuple(self.engine.ledger.deals_of("position", position, self._visible_ms()))

    def history_orders_total(self, from_s: int, to_s: int) -> int:
        """Count of :meth:`history_orders`."""
        return len(self.history_orders(from_s, to_s))

    def history_deals_total(self, from_s: int, to_s: int) -> int:
        """Count of :meth:`history_deals`."""
        return len(self.history_deals(from_s, to_s))

    def all_deals(self) -> tuple[TradeDeal, ...]:
        """The whole deal ledger, ignoring ``history_delay_ms``."""
        return tuple(self.engine.ledger.deals)

    # state -----------------------------------------------------------------------------------
    @property
    def request_id(self) -> int:
        """The counter of trade requests (the last one's ``request_id``)."""
        return self._request_id

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable full state (the shared TicketSource is saved by its owner)."""
        return dump(self.engine, self._request_id)

    def restore(self, data: Mapping[str, Any]) -> None:
        """Replace the state with a :meth:`snapshot`."""
        self._request_id = load(self.engine, data)
        self.books, self.reactor = self._wire()
