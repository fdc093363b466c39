"""Trading: order checks, margin and profit, and placing, modifying, closing and cancelling.

``Trading(session)`` is what :class:`~mt5gate.session.manager.MT5SessionManager` delegates its
trading methods to. Every request goes the same way:

1. validate the arguments (:mod:`~mt5gate.session.validation`) before anything is touched;
2. hand a :class:`~mt5gate.orders.pipeline.Submission` to the exactly-once order pipeline:
   what the caller asked (idempotency compares it) and a *builder* that reads what the request
   needs (symbol specification, quote, the position or order it names) and makes the MT5
   request dict with the right types (floats for volume and prices, ints for the rest), the
   filling mode chosen from the symbol's flags (pitfall C2) and the price chosen from the
   execution mode (pitfall C5). A replayed idempotency key never calls the builder;
3. the pipeline journals, checks risk limits, and calls :meth:`Trading.send_raw`: ONE
   ``session.call("order_send", ...)``, never ``read`` (which retries) and never retried here
   (RELIABILITY §2: duplicate orders come from blind resends). When ``order_send`` itself
   fails (returns ``None`` or outlives our deadline) and the request may have reached the
   server, the error is :class:`~mt5gate.errors.MT5OrderOutcomeUnknown`, which the pipeline
   reconciles.

Decisions: ``10025 No changes`` (SL/TP or order already as asked) is raised as
``MT5TradeRejected`` like any rejection, since it tells the caller their view of the position
is out of date; a ticket that is not open is an ``MT5NotFoundError`` (``field="ticket"``)
raised before sending; ``OrderRequest.magic`` must stay 0, because ``magic`` carries the client
order id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Final, TypeVar

from mt5gate.constants import (
    OrderFilling,
    OrderTime,
    OrderType,
    PositionType,
    SymbolFilling,
    SymbolTradeExecution,
    TradeAction,
)
from mt5gate.errors import (
    MT5Error,
    MT5NotFoundError,
    MT5OrderOutcomeUnknown,
    MT5TimeoutError,
    MT5TradeError,
    MT5ValidationError,
    Outcome,
    send_failure_outcome,
)
from mt5gate.models import (
    Order,
    OrderCheck,
    OrderKind,
    OrderRequest,
    OrderResult,
    Position,
    Price,
    Side,
    Symbol,
)
from mt5gate.orders.pipeline import Submission
from mt5gate.session.specs import SymbolSpecs
from mt5gate.session.validation import (
    check_request,
    check_request_against,
    require_close_volume,
    require_comment,
    require_deviation,
    require_epoch_msc,
    require_expiration,
    require_level,
    require_price,
    require_side,
    require_stop_limit,
    require_stops,
    require_symbol_name,
    require_ticket,
    require_volume,
)

if TYPE_CHECKING:
    from mt5gate.session.manager import MT5SessionManager

__all__ = ["Trading", "choose_filling", "order_request", "order_type"]

T = TypeVar("T")

_ORDER_TYPES: Mapping[tuple[Side, OrderKind], OrderType] = {
    (Side.BUY, OrderKind.MARKET): OrderType.BUY,
    (Side.SELL, OrderKind.MARKET): OrderType.SELL,
    (Side.BUY, OrderKind.LIMIT): OrderType.BUY_LIMIT,
    (Side.SELL, OrderKind.LIMIT): OrderType.SELL_LIMIT,
    (Side.BUY, OrderKind.STOP): OrderType.BUY_STOP,
    (Side.SELL, OrderKind.STOP): OrderType.SELL_STOP,
    (Side.BUY, OrderKind.STOP_LIMIT): OrderType.BUY_STOP_LIMIT,
    (Side.SELL, OrderKind.STOP_LIMIT): OrderType.SELL_STOP_LIMIT,
}
_BUY_TYPES = frozenset({OrderType.BUY_LIMIT, OrderType.BUY_STOP, OrderType.BUY_STOP_LIMIT})
_STOP_LIMIT_TYPES = frozenset({OrderType.BUY_STOP_LIMIT, OrderType.SELL_STOP_LIMIT})
#: Execution modes under which a market deal must carry a price (within ``deviation``).
_PRICED = frozenset({SymbolTradeExecution.REQUEST, SymbolTradeExecution.INSTANT})
#: The fields of an order request, in order: its journaled intent is these, as given.
_REQUEST_FIELDS: Final = tuple(f.name for f in fields(OrderRequest))


# ------------------------------------------------------------------- pure request building


def order_type(side: Side, kind: OrderKind) -> OrderType:
    """The MT5 order type of a side and kind (BUY, SELL_LIMIT, BUY_STOP_LIMIT, ...)."""
    return _ORDER_TYPES[(side, kind)]


def choose_filling(symbol: Symbol, kind: OrderKind = OrderKind.MARKET) -> OrderFilling:
    """The ORDER_FILLING value to send when the caller did not choose one (pitfall C2).

    Pending orders use RETURN. Deals use IOC if the symbol's SYMBOL_FILLING_IOC bit (2) is set,
    else FOK if its SYMBOL_FILLING_FOK bit (1) is, else RETURN. The bits and the ORDER_FILLING
    values are different numbers (FOK is bit 1 but value 0) and are kept apart here.
    """
    if kind is not OrderKind.MARKET:
        return OrderFilling.RETURN
    if symbol.filling_mode & SymbolFilling.IOC:
        return OrderFilling.IOC
    if symbol.filling_mode & SymbolFilling.FOK:
        return OrderFilling.FOK
    return OrderFilling.RETURN


def deal_price(symbol: Symbol, side: Side, quote: Price, given: float | None = None) -> float:
    """The price of a market deal: the caller's, else the current ask (buy) / bid (sell) under
    request or instant execution, where it is required; 0.0 (ignored) under market/exchange."""
    if given is not None:
        return given
    if symbol.execution in _PRICED:
        return quote.ask if side is Side.BUY else quote.bid
    return 0.0


def _expiry(expiration_msc: int | None) -> tuple[OrderTime, int]:
    """``type_time`` and ``expiration`` (whole seconds, server time) for a pending order."""
    if expiration_msc is None:
        return OrderTime.GTC, 0
    return OrderTime.SPECIFIED, expiration_msc // 1000


def order_request(request: OrderRequest, symbol: Symbol, quote: Price) -> dict[str, Any]:
    """The MT5 request dict of a validated ``request``, with the types the module insists on."""
    market = request.kind is OrderKind.MARKET
    price = deal_price(symbol, request.side, quote, request.price) if market else request.price
    filling = (
        request.filling if request.filling is not None else choose_filling(symbol, request.kind)
    )
    type_time, expiration = _expiry(request.expiration_msc)
    return {
        "action": int(TradeAction.DEAL if market else TradeAction.PENDING),
        "symbol": request.symbol,
        "volume": float(request.volume),
        "type": int(order_type(request.side, request.kind)),
        "price": float(price or 0.0),
        "stoplimit": float(request.stop_limit or 0.0),
        "sl": float(request.sl or 0.0),
        "tp": float(request.tp or 0.0),
        "deviation": int(request.deviation),
        "type_filling": int(filling),
        "type_time": int(type_time),
        "expiration": expiration,
        "comment": request.comment,
        "magic": int(request.magic),
    }


def _position_side(position: Position) -> Side:
    return Side.BUY if position.type == PositionType.BUY else Side.SELL


def _order_side(order: Order) -> Side:
    return Side.BUY if order.type in _BUY_TYPES else Side.SELL


def _unknown_outcome(
    failure: MT5Error, request: Mapping[str, Any]
) -> MT5OrderOutcomeUnknown | None:
    """``failure`` of order_send as an unknown outcome carrying ``request``; None if the
    failure proves the request was not executed (validation, gate, no IPC, breaker open...).

    Unknown: a timeout (our deadline, or the IPC's -10005) and any ``last_error`` code that
    :func:`~mt5gate.errors.send_failure_outcome` calls UNKNOWN (-10001, -10002, ...).
    """
    maybe_sent = isinstance(failure, MT5OrderOutcomeUnknown | MT5TimeoutError) or (
        not isinstance(failure, MT5TradeError)
        and failure.code is not None
        and send_failure_outcome(failure.code) is Outcome.UNKNOWN
    )
    if not maybe_sent:
        return None
    return MT5OrderOutcomeUnknown(failure.message, retcode=None, request=request, code=failure.code)


def _modified_limit(order: Order, stop_limit: float | None) -> float:
    """The stop-limit price after a modification: kept, or the new one (stop-limits only)."""
    if stop_limit is None:
        return order.price_stoplimit
    if order.type not in _STOP_LIMIT_TYPES:
        raise MT5ValidationError(
            f"stop_limit applies to stop-limit orders only; order {order.ticket} is "
            f"{order.type.name}. Leave stop_limit out",
            field="stop_limit",
            rule="None unless the order is a stop-limit",
        )
    return require_price(stop_limit, "stop_limit")


def _order_levels(
    order: Order, price: float | None, limit: float, sl: float | None, tp: float | None
) -> dict[str, float]:
    """A pending order's levels after a modification (None keeps the current one), checked
    together: the stop-limit's limit against its trigger, SL / TP against the entry."""
    levels = {
        "price": order.price_open if price is None else price,
        "stoplimit": limit,
        "sl": order.sl if sl is None else sl,
        "tp": order.tp if tp is None else tp,
    }
    side = _order_side(order)
    if order.type in _STOP_LIMIT_TYPES:
        require_stop_limit(side, levels["price"], limit)
    require_stops(side, limit or levels["price"], levels["sl"], levels["tp"])
    return levels


# ----------------------------------------------------------------------------- Trading


class Trading:
    """Order checks and order placement and management for one session (module docstring)."""

    def __init__(self, session: MT5SessionManager) -> None:
        self._session = session
        #: symbol specifications orders are built from, kept ``session.spec_policy.ttl_s``
        #: and forgotten at every session state change (:mod:`~mt5gate.session.specs`)
        self.specs = SymbolSpecs(session.get_symbol_info, session.clock.monotonic,
                                 session.spec_policy)  # fmt: skip
        session.machine.subscribe(lambda _change: self.specs.forget())

    # ------------------------------------------------------------- checks, margin, profit

    async def check_order(self, request: OrderRequest) -> OrderCheck:
        """``order_check``: the account as it would be after ``request``; nothing is sent.

        A non-zero retcode is not raised: ``OrderCheck.ok`` tells. Note that order_check does
        not test market hours (pitfall C6): a passing check can still meet 10018 at send time.
        """
        mt5_request = await self._prepare(request)
        record = await self._session.call(
            "order_check", mt5_request, deadline_s=self._session.timeouts.order_s
        )
        return OrderCheck.from_record(record)

    async def calc_margin(
        self, symbol: str, side: Side, volume: float, price: float | None = None
    ) -> float:
        """Margin ``volume`` lots need, in the account currency (price None: the current
        ask for a buy, bid for a sell)."""
        name, chosen, lots = require_symbol_name(symbol), require_side(side), require_volume(volume)
        at = await self._quote_price(name, chosen) if price is None else require_price(price)
        action = int(order_type(chosen, OrderKind.MARKET))
        return float(await self._session.read("order_calc_margin", action, name, lots, at))

    async def calc_profit(
        self, symbol: str, side: Side, volume: float, price_open: float, price_close: float
    ) -> float:
        """Profit of ``volume`` lots opened at ``price_open`` and closed at ``price_close``,
        in the account currency."""
        name, chosen, lots = require_symbol_name(symbol), require_side(side), require_volume(volume)
        opened = require_price(price_open, "price_open")
        closed = require_price(price_close, "price_close")
        action = int(order_type(chosen, OrderKind.MARKET))
        result = await self._session.read("order_calc_profit", action, name, lots, opened, closed)
        return float(result)

    async def _quote_price(self, symbol: str, side: Side) -> float:
        quote = await self._session.get_price(symbol)
        return quote.ask if side is Side.BUY else quote.bid

    # ------------------------------------------------------------------ new orders

    async def place_order(
        self, request: OrderRequest, *, idempotency_key: str | None = None,
        resubmit: bool = False,
    ) -> OrderResult:  # fmt: skip
        """Validate and send a market or pending order, exactly once (see the pipeline).

        Returns the server's answer for 10008 / 10009 / 10010 (or what reconciliation found
        when the reply was lost). Raises ``MT5ValidationError`` before sending,
        ``MT5RiskLimitError`` for a risk limit, ``MT5TradeRejected`` / ``MT5TradeRetryable`` /
        ``MT5TradingDisabledError`` for a retcode, and ``MT5OrderOutcomeUnknown`` when the
        order could be neither found nor proven absent within the reconciliation budget.
        """
        checked = check_request(request)
        if request.magic:
            raise MT5ValidationError(
                "magic carries mt5gate's client order id and cannot be set per order; label "
                "orders with comment, or give each strategy its own journal namespace",
                field="magic",
                rule="0 (mt5gate sets it)",
            )
        intent: dict[str, Any] = {"op": "place"}  # as given: what idempotency compares
        intent.update((name, getattr(request, name)) for name in _REQUEST_FIELDS)
        return await self._submit(Submission(
            intent=intent, build=lambda: self._quoted(checked),
            symbol=request.symbol, opens=True, volume=request.volume, key=idempotency_key,
            resubmit=resubmit,
        ))  # fmt: skip

    async def _submit(self, submission: Submission) -> OrderResult:
        if submission.key is not None and (
            not isinstance(submission.key, str) or not 1 <= len(submission.key) <= 128
        ):
            raise MT5ValidationError(
                field="idempotency_key", rule="a string of 1 to 128 characters"
            )
        return await self._session.pipeline.submit(submission)

    async def _prepare(self, request: OrderRequest) -> dict[str, Any]:
        """Validate ``request``, read its symbol and quote, and build the MT5 request dict."""
        return (await self._prepare_quoted(request))[0]

    async def _prepare_quoted(self, request: OrderRequest) -> tuple[dict[str, Any], int]:
        """The MT5 request dict of ``request`` and the broker time of the quote it used."""
        return await self._quoted(check_request(request))

    async def _quoted(self, checked: OrderRequest) -> tuple[dict[str, Any], int]:
        """:meth:`_prepare_quoted` of a request :func:`check_request` already normalised: the
        symbol's specification (kept a while: :mod:`~mt5gate.session.specs`) and a fresh
        quote. A request a kept specification refuses is checked against a fresh one before
        the refusal stands."""
        quote = await self._session.get_price(checked.symbol)
        symbol, _ = await self._on_spec(
            checked.symbol, lambda spec: check_request_against(checked, spec, quote)
        )
        return order_request(checked, symbol, quote), quote.time_msc

    async def _on_spec(self, name: str, check: Callable[[Symbol], T]) -> tuple[Symbol, T]:
        """The symbol's specification and ``check(spec)``; a refusal (``MT5ValidationError``)
        against a kept specification is checked again against a fresh one before it stands
        (:mod:`~mt5gate.session.specs`)."""
        symbol, kept = await self.specs.get(name)
        try:
            return symbol, check(symbol)
        except MT5ValidationError:
            if not kept:
                raise
        symbol = await self.specs.fresh(name)
        return symbol, check(symbol)

    # ------------------------------------------------------------------ positions

    async def modify_position(
        self, ticket: int, *, sl: float | None = None, tp: float | None = None,
        idempotency_key: str | None = None,
    ) -> OrderResult:  # fmt: skip
        """Set a position's SL / TP. None keeps the current level, 0 removes it. A request
        that changes nothing is answered 10025 by the server, raised as ``MT5TradeRejected``."""
        number = require_ticket(ticket)
        given_sl = None if sl is None else require_level(sl, "sl")
        given_tp = None if tp is None else require_level(tp, "tp")

        async def build() -> tuple[dict[str, Any], int]:
            position = await self._position(number)
            require_stops(_position_side(position), position.price_current, given_sl, given_tp)
            return {
                "action": int(TradeAction.SLTP), "symbol": position.symbol,
                "position": position.ticket,
                "sl": position.sl if given_sl is None else given_sl,
                "tp": position.tp if given_tp is None else given_tp,
            }, 0  # fmt: skip

        intent = {"op": "modify_position", "ticket": number, "sl": sl, "tp": tp}
        return await self._submit(Submission(intent, build, key=idempotency_key))

    async def close_position(
        self, ticket: int, *, volume: float | None = None, deviation: int = 20, comment: str = "",
        idempotency_key: str | None = None, resubmit: bool = False,
    ) -> OrderResult:  # fmt: skip
        """Close a position fully, or partly with ``volume`` (on the step, at most its volume).

        An opposite deal naming ``position``: on hedging accounts a deal without it would open
        a new opposite position instead (pitfall C8); netting accounts accept it.
        """
        number = require_ticket(ticket)
        points, text = require_deviation(deviation), require_comment(comment)
        lots = None if volume is None else require_volume(volume)

        async def build() -> tuple[dict[str, Any], int]:
            return await self._close_request(number, lots, points, text)

        intent = {"op": "close", "ticket": number, "volume": volume, "deviation": deviation,
                  "comment": comment}  # fmt: skip
        return await self._submit(Submission(intent, build, key=idempotency_key, resubmit=resubmit))

    async def _close_request(
        self, ticket: int, volume: float | None, points: int, text: str
    ) -> tuple[dict[str, Any], int]:
        """The opposite deal closing ``ticket`` now (re-read and re-priced on each call), and
        the broker time of the quote it used."""
        position = await self._position(ticket)
        symbol, lots = await self._on_spec(position.symbol, lambda spec: (
            position.volume if volume is None
            else require_close_volume(volume, position.volume, spec)
        ))  # fmt: skip
        side = Side.SELL if _position_side(position) is Side.BUY else Side.BUY
        quote = await self._session.get_price(position.symbol)
        return {
            "action": int(TradeAction.DEAL), "symbol": position.symbol, "volume": float(lots),
            "type": int(order_type(side, OrderKind.MARKET)), "position": position.ticket,
            "price": deal_price(symbol, side, quote), "deviation": points,
            "type_filling": int(choose_filling(symbol)), "comment": text,
        }, quote.time_msc  # fmt: skip

    async def _position(self, ticket: int) -> Position:
        found = await self._session.positions(ticket=ticket)
        if not found:
            raise MT5NotFoundError("position", ticket)
        return found[0]

    # ------------------------------------------------------------------ pending orders

    async def cancel_order(self, ticket: int, *, idempotency_key: str | None = None) -> OrderResult:
        """Delete a pending order."""
        number = require_ticket(ticket)

        async def build() -> tuple[dict[str, Any], int]:
            order = await self._order(number)
            return {"action": int(TradeAction.REMOVE), "order": order.ticket,
                    "symbol": order.symbol}, 0  # fmt: skip

        intent = {"op": "cancel", "ticket": number}
        return await self._submit(Submission(intent, build, key=idempotency_key))

    async def modify_order(
        self, ticket: int, *, price: float | None = None, sl: float | None = None,
        tp: float | None = None, stop_limit: float | None = None,
        expiration_msc: int | None = None, idempotency_key: str | None = None,
    ) -> OrderResult:  # fmt: skip
        """Change a pending order's price, stop-limit price, SL / TP (0 removes) or expiry.

        None keeps the current value. The resulting levels are validated together, so moving
        the price past a kept SL is caught before sending.
        """
        number = require_ticket(ticket)
        if expiration_msc is not None:
            require_epoch_msc(expiration_msc)  # in range now; in the future once quoted
        new_price = None if price is None else require_price(price)
        new_sl = None if sl is None else require_level(sl, "sl")
        new_tp = None if tp is None else require_level(tp, "tp")

        async def build() -> tuple[dict[str, Any], int]:
            order = await self._order(number)
            new_limit = _modified_limit(order, stop_limit)
            levels = _order_levels(order, new_price, new_limit, new_sl, new_tp)
            type_time, expiration = await self._modified_expiry(order, expiration_msc)
            return {
                "action": int(TradeAction.MODIFY), "order": order.ticket, "symbol": order.symbol,
                **levels, "type_time": type_time, "expiration": expiration,
            }, 0  # fmt: skip

        intent = {"op": "modify_order", "ticket": number, "price": price, "sl": sl, "tp": tp,
                  "stop_limit": stop_limit, "expiration_msc": expiration_msc}  # fmt: skip
        return await self._submit(Submission(intent, build, key=idempotency_key))

    async def _modified_expiry(self, order: Order, expiration_msc: int | None) -> tuple[int, int]:
        """``type_time`` and ``expiration``: the order's own, or SPECIFIED at a future time."""
        if expiration_msc is None:
            return order.type_time, order.time_expiration
        now = (await self._session.get_price(order.symbol)).time_msc
        type_time, seconds = _expiry(require_expiration(expiration_msc, now))
        return int(type_time), seconds

    async def _order(self, ticket: int) -> Order:
        found = await self._session.orders(ticket=ticket)
        if not found:
            raise MT5NotFoundError("order", ticket)
        return found[0]

    # ------------------------------------------------------------------ the one send

    async def send_raw(
        self,
        request: dict[str, Any],
        *,
        on_late: Callable[[Any, MT5Error | None], None] | None = None,
    ) -> Any:
        """ONE order_send through the session's call path (breaker, worker, deadline); never
        retried. Returns the ``OrderSendResult`` as it came (the pipeline classifies it). A
        failure that may have left the order on the server becomes ``MT5OrderOutcomeUnknown``
        carrying ``request``, chained to the cause; ``on_late`` hears a reply that arrives
        after the deadline."""
        try:
            record = await self._session.call(
                "order_send", request, deadline_s=self._session.timeouts.order_s, on_late=on_late
            )
        except MT5Error as failure:
            unknown = _unknown_outcome(failure, request)
            if unknown is None:
                raise
            raise unknown from failure
        retcode = getattr(record, "retcode", None)
        if isinstance(retcode, int) and "symbol" in request:
            self.specs.heard(str(request["symbol"]), retcode)
        return record
