"""Typed models above the Terminal seam: what ``MT5SessionManager`` takes and returns.

MT5 records cross the seam as they are (``mt5gate.records``); the session turns them into these
frozen, slotted dataclasses with enums where MT5 has codes and clear names where MT5 has
abbreviations. Times stay on the broker's server clock (``*_msc`` epoch milliseconds, as MT5
stamps them); ``server_time`` helpers turn them into datetimes without pretending they are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from mt5gate.constants import (
    AccountMarginMode,
    AccountTradeMode,
    BookType,
    DealEntry,
    DealReason,
    DealType,
    OrderReason,
    OrderState,
    OrderType,
    PositionType,
    SymbolTradeExecution,
    SymbolTradeMode,
)
from mt5gate.records import (
    AccountInfo,
    BookInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
)

__all__ = [
    "Account",
    "BookLevel",
    "Deal",
    "Order",
    "OrderCheck",
    "OrderKind",
    "OrderOutcome",
    "OrderRequest",
    "OrderResult",
    "OrderStatus",
    "Position",
    "Price",
    "Side",
    "Symbol",
    "TerminalStatus",
    "server_time",
]


def server_time(msc: int) -> datetime:
    """A server-clock timestamp as a datetime (tz-aware, labelled UTC as MT5 encodes it)."""
    return datetime.fromtimestamp(msc / 1000, UTC)


@dataclass(frozen=True, slots=True)
class Price:
    """The latest quote of a symbol."""

    symbol: str
    bid: float
    ask: float
    last: float
    volume: int
    time_msc: int
    flags: int

    @classmethod
    def from_tick(cls, symbol: str, tick: Tick) -> Price:
        """Build from an MT5 ``Tick`` record."""
        return cls(symbol, tick.bid, tick.ask, tick.last, tick.volume, tick.time_msc, tick.flags)

    @property
    def spread(self) -> float:
        """``ask - bid`` in price units."""
        return self.ask - self.bid

    @property
    def mid(self) -> float:
        """Midpoint of bid and ask."""
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class BookLevel:
    """One level of the depth of market."""

    type: BookType
    price: float
    volume: float

    @classmethod
    def from_record(cls, b: BookInfo) -> BookLevel:
        """Build from an MT5 ``BookInfo`` record (``volume_dbl`` keeps fractional volumes)."""
        return cls(BookType(b.type), b.price, b.volume_dbl or float(b.volume))


@dataclass(frozen=True, slots=True)
class Account:
    """The logged-in account and its money figures."""

    login: int
    server: str
    name: str
    company: str
    currency: str
    leverage: int
    balance: float
    credit: float
    profit: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float
    trade_allowed: bool
    trade_expert: bool
    margin_mode: AccountMarginMode
    trade_mode: AccountTradeMode
    limit_orders: int

    @classmethod
    def from_record(cls, a: AccountInfo) -> Account:
        """Build from an MT5 ``AccountInfo`` record."""
        return cls(
            a.login, a.server, a.name, a.company, a.currency, a.leverage, a.balance, a.credit,
            a.profit, a.equity, a.margin, a.margin_free, a.margin_level, a.trade_allowed,
            a.trade_expert, AccountMarginMode(a.margin_mode), AccountTradeMode(a.trade_mode),
            a.limit_orders,
        )  # fmt: skip

    @property
    def hedging(self) -> bool:
        """Whether positions are kept per deal (hedging) rather than netted per symbol."""
        return self.margin_mode == AccountMarginMode.RETAIL_HEDGING


@dataclass(frozen=True, slots=True)
class TerminalStatus:
    """The terminal's switches and link quality."""

    connected: bool
    trade_allowed: bool
    tradeapi_disabled: bool
    build: int
    maxbars: int
    ping_ms: float
    retransmission: float
    company: str
    name: str
    path: str

    @classmethod
    def from_record(cls, t: TerminalInfo) -> TerminalStatus:
        """Build from an MT5 ``TerminalInfo`` record (``ping_last`` is in microseconds)."""
        return cls(
            t.connected, t.trade_allowed, t.tradeapi_disabled, t.build, t.maxbars,
            t.ping_last / 1000.0, t.retransmission, t.company, t.name, t.path,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Symbol:
    """What a trader needs of a symbol's specification, plus its current quote."""

    name: str
    description: str
    digits: int
    point: float
    tick_size: float
    tick_value: float
    contract_size: float
    volume_min: float
    volume_max: float
    volume_step: float
    stops_level: int
    freeze_level: int
    filling_mode: int
    order_mode: int
    expiration_mode: int
    execution: SymbolTradeExecution
    trade_mode: SymbolTradeMode
    currency_base: str
    currency_profit: str
    currency_margin: str
    bid: float
    ask: float
    selected: bool
    visible: bool

    @classmethod
    def from_record(cls, s: SymbolInfo) -> Symbol:
        """Build from an MT5 ``SymbolInfo`` record."""
        return cls(
            s.name, s.description, s.digits, s.point, s.trade_tick_size, s.trade_tick_value,
            s.trade_contract_size, s.volume_min, s.volume_max, s.volume_step,
            s.trade_stops_level, s.trade_freeze_level, s.filling_mode, s.order_mode,
            s.expiration_mode, SymbolTradeExecution(s.trade_exemode),
            SymbolTradeMode(s.trade_mode), s.currency_base, s.currency_profit,
            s.currency_margin, s.bid, s.ask, s.select, s.visible,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Position:
    """An open position."""

    ticket: int
    symbol: str
    type: PositionType
    volume: float
    price_open: float
    price_current: float
    sl: float
    tp: float
    profit: float
    swap: float
    magic: int
    comment: str
    identifier: int
    time_msc: int
    time_update_msc: int

    @classmethod
    def from_record(cls, p: TradePosition) -> Position:
        """Build from an MT5 ``TradePosition`` record."""
        return cls(
            p.ticket, p.symbol, PositionType(p.type), p.volume, p.price_open, p.price_current,
            p.sl, p.tp, p.profit, p.swap, p.magic, p.comment, p.identifier, p.time_msc,
            p.time_update_msc,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Order:
    """An active pending order or a historical order."""

    ticket: int
    symbol: str
    type: OrderType
    state: OrderState
    volume_initial: float
    volume_current: float
    price_open: float
    price_stoplimit: float
    sl: float
    tp: float
    magic: int
    comment: str
    position_id: int
    type_time: int
    time_expiration: int
    time_setup_msc: int
    time_done_msc: int
    reason: OrderReason = OrderReason.EXPERT  # who created it: SL / TP / SO orders are the broker's

    @classmethod
    def from_record(cls, o: TradeOrder) -> Order:
        """Build from an MT5 ``TradeOrder`` record."""
        return cls(
            o.ticket, o.symbol, OrderType(o.type), OrderState(o.state), o.volume_initial,
            o.volume_current, o.price_open, o.price_stoplimit, o.sl, o.tp, o.magic, o.comment,
            o.position_id, o.type_time, o.time_expiration, o.time_setup_msc, o.time_done_msc,
            OrderReason(o.reason),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Deal:
    """A deal in the account history."""

    ticket: int
    order: int
    position_id: int
    symbol: str
    type: DealType
    entry: DealEntry
    reason: DealReason
    volume: float
    price: float
    profit: float
    commission: float
    swap: float
    fee: float
    magic: int
    comment: str
    time_msc: int

    @classmethod
    def from_record(cls, d: TradeDeal) -> Deal:
        """Build from an MT5 ``TradeDeal`` record."""
        return cls(
            d.ticket, d.order, d.position_id, d.symbol, DealType(d.type), DealEntry(d.entry),
            DealReason(d.reason), d.volume, d.price, d.profit, d.commission, d.swap, d.fee,
            d.magic, d.comment, d.time_msc,
        )  # fmt: skip


class Side(StrEnum):
    """Direction of an order."""

    BUY = "buy"
    SELL = "sell"


class OrderKind(StrEnum):
    """Market or pending order kind; with ``Side`` it names the MT5 order type."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order as a caller states it; the session validates it before the terminal sees it.

    ``price`` is required for pending orders (and used under request/instant execution);
    ``stop_limit`` is the limit price of a stop-limit order. ``filling`` (an ``OrderFilling``)
    is chosen from the symbol's flags when left out. ``sl`` / ``tp`` of None mean none.
    """

    symbol: str
    side: Side
    volume: float
    kind: OrderKind = OrderKind.MARKET
    price: float | None = None
    stop_limit: float | None = None
    sl: float | None = None
    tp: float | None = None
    deviation: int = 20
    filling: int | None = None
    expiration_msc: int | None = None
    comment: str = ""
    magic: int = 0


@dataclass(frozen=True, slots=True)
class OrderResult:
    """What the trade server answered to a request that was executed or accepted."""

    retcode: int
    order: int
    deal: int
    volume: float
    price: float
    bid: float
    ask: float
    comment: str
    request_id: int
    client_id: int = 0  # the order's client order id (sequence) in mt5gate's journal

    @classmethod
    def from_record(cls, r: OrderSendResult, client_id: int = 0) -> OrderResult:
        """Build from an MT5 ``OrderSendResult`` record and the order's client sequence."""
        return cls(r.retcode, r.order, r.deal, r.volume, r.price, r.bid, r.ask, r.comment,
                   r.request_id, client_id)  # fmt: skip


class OrderOutcome(StrEnum):
    """Where an order stands, in words a client can act on (:class:`OrderStatus`)."""

    EXECUTED = "executed"  # at the broker: ``result`` says how
    REJECTED = "rejected"  # refused for good: the same key gives the same refusal
    NOT_EXECUTED = "not_executed"  # provably never executed: the same key sends it again
    IN_PROGRESS = "in_progress"  # a call is handling it now
    UNKNOWN = "unknown"  # may have executed: being reconciled; never send it under a new key
    BLOCKED = "blocked"  # the broker shows something the journal cannot account for


@dataclass(frozen=True, slots=True)
class OrderStatus:
    """What the journal says of the order an idempotency key (or client id) stands for."""

    client_id: int
    idempotency_key: str | None
    #: the journal's state of the order (its last event): ``ACKNOWLEDGED``, ``UNKNOWN``, ...
    state: str
    outcome: OrderOutcome
    #: the broker's answer (or what reconciliation found) once executed
    result: OrderResult | None
    #: what it means and what to do
    detail: str


@dataclass(frozen=True, slots=True)
class OrderCheck:
    """The account as it would be after a request (``order_check``); retcode 0 means it passes."""

    retcode: int
    comment: str
    balance: float
    equity: float
    profit: float
    margin: float
    margin_free: float
    margin_level: float

    @classmethod
    def from_record(cls, c: OrderCheckResult) -> OrderCheck:
        """Build from an MT5 ``OrderCheckResult`` record."""
        return cls(
            c.retcode, c.comment, c.balance, c.equity, c.profit, c.margin, c.margin_free,
            c.margin_level,
        )  # fmt: skip

    @property
    def ok(self) -> bool:
        """Whether the check passed (retcode 0, 'Done')."""
        return self.retcode == 0
