"""Result records of the MetaTrader 5 API, field for field.

The official package returns C "struct sequences": they index, unpack, compare and print like
named tuples, add an ``_asdict()`` method, and have no ``_fields`` / ``_replace`` / ``_make``
(code such as ``pandas.DataFrame(records)`` behaves differently on real namedtuples, so we do not
add them). These classes reproduce that: a tuple subclass whose attribute names, order and types
match ``tests/data/surface.json``. Unlike the real ones they pickle, which bridges need.

Construct one from a sequence, as with the real type: ``Tick((time, bid, ask, ...))``.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter
from typing import Any, ClassVar, Self

import numpy as np

__all__ = [
    "Record",
    "AccountInfo",
    "TerminalInfo",
    "SymbolInfo",
    "Tick",
    "TradeOrder",
    "TradePosition",
    "TradeDeal",
    "OrderSendResult",
    "OrderCheckResult",
    "BookInfo",
    "TradeRequest",
    "RECORD_TYPES",
    "RATES_DTYPE",
    "TICKS_DTYPE",
]


class Record(tuple[Any, ...]):
    """Base of every MT5 record: a fixed-length tuple with named, read-only fields."""

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()
    n_fields: ClassVar[int] = 0
    n_sequence_fields: ClassVar[int] = 0
    n_unnamed_fields: ClassVar[int] = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = tuple(n for n in cls.__annotations__ if not n.startswith(("n_", "_")))
        cls.__match_args__ = names  # type: ignore[misc]
        cls.n_fields = cls.n_sequence_fields = len(names)
        for index, name in enumerate(names):
            setattr(cls, name, property(itemgetter(index), doc=f"field {index}: {name}"))

    def __new__(cls, values: Iterable[Any] = ()) -> Self:
        record = super().__new__(cls, values)
        if len(record) != cls.n_fields:
            raise TypeError(
                f"{cls.__name__}() takes a {cls.n_fields}-sequence ({len(record)}-sequence given)"
            )
        return record

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={v!r}" for n, v in zip(self.__match_args__, self, strict=True))
        return f"{type(self).__name__}({body})"

    def _asdict(self) -> dict[str, Any]:
        """Field names to values; a nested record (``request``) stays a record, as in MT5."""
        return dict(zip(self.__match_args__, self, strict=True))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (tuple(self),))


class AccountInfo(Record):
    """Trading account state, as account_info() returns it."""

    __slots__ = ()

    login: int
    trade_mode: int
    leverage: int
    limit_orders: int
    margin_so_mode: int
    trade_allowed: bool
    trade_expert: bool
    margin_mode: int
    currency_digits: int
    fifo_close: bool
    balance: float
    credit: float
    profit: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float
    margin_so_call: float
    margin_so_so: float
    margin_initial: float
    margin_maintenance: float
    assets: float
    liabilities: float
    commission_blocked: float
    name: str
    server: str
    currency: str
    company: str


class TerminalInfo(Record):
    """Terminal state and settings, as terminal_info() returns it."""

    __slots__ = ()

    community_account: bool
    community_connection: bool
    connected: bool
    dlls_allowed: bool
    trade_allowed: bool
    tradeapi_disabled: bool
    email_enabled: bool
    ftp_enabled: bool
    notifications_enabled: bool
    mqid: bool
    build: int
    maxbars: int
    codepage: int
    ping_last: int
    community_balance: float
    retransmission: float
    company: str
    name: str
    language: str
    path: str
    data_path: str
    commondata_path: str


class SymbolInfo(Record):
    """All 96 properties of a symbol, as symbol_info() returns them."""

    __slots__ = ()

    custom: bool
    chart_mode: int
    select: bool
    visible: bool
    session_deals: int
    session_buy_orders: int
    session_sell_orders: int
    volume: int
    volumehigh: int
    volumelow: int
    time: int
    digits: int
    spread: int
    spread_float: bool
    ticks_bookdepth: int
    trade_calc_mode: int
    trade_mode: int
    start_time: int
    expiration_time: int
    trade_stops_level: int
    trade_freeze_level: int
    trade_exemode: int
    swap_mode: int
    swap_rollover3days: int
    margin_hedged_use_leg: bool
    expiration_mode: int
    filling_mode: int
    order_mode: int
    order_gtc_mode: int
    option_mode: int
    option_right: int
    bid: float
    bidhigh: float
    bidlow: float
    ask: float
    askhigh: float
    asklow: float
    last: float
    lasthigh: float
    lastlow: float
    volume_real: float
    volumehigh_real: float
    volumelow_real: float
    option_strike: float
    point: float
    trade_tick_value: float
    trade_tick_value_profit: float
    trade_tick_value_loss: float
    trade_tick_size: float
    trade_contract_size: float
    trade_accrued_interest: float
    trade_face_value: float
    trade_liquidity_rate: float
    volume_min: float
    volume_max: float
    volume_step: float
    volume_limit: float
    swap_long: float
    swap_short: float
    margin_initial: float
    margin_maintenance: float
    session_volume: float
    session_turnover: float
    session_interest: float
    session_buy_orders_volume: float
    session_sell_orders_volume: float
    session_open: float
    session_close: float
    session_aw: float
    session_price_settlement: float
    session_price_limit_min: float
    session_price_limit_max: float
    margin_hedged: float
    price_change: float
    price_volatility: float
    price_theoretical: float
    price_greeks_delta: float
    price_greeks_theta: float
    price_greeks_gamma: float
    price_greeks_vega: float
    price_greeks_rho: float
    price_greeks_omega: float
    price_sensitivity: float
    basis: str
    category: str
    currency_base: str
    currency_profit: str
    currency_margin: str
    bank: str
    description: str
    exchange: str
    formula: str
    isin: str
    name: str
    page: str
    path: str


class Tick(Record):
    """Last prices of a symbol, as symbol_info_tick() returns them."""

    __slots__ = ()

    time: int
    bid: float
    ask: float
    last: float
    volume: int
    time_msc: int
    flags: int
    volume_real: float


class TradeOrder(Record):
    """An active or historical order."""

    __slots__ = ()

    ticket: int
    time_setup: int
    time_setup_msc: int
    time_done: int
    time_done_msc: int
    time_expiration: int
    type: int
    type_time: int
    type_filling: int
    state: int
    magic: int
    position_id: int
    position_by_id: int
    reason: int
    volume_initial: float
    volume_current: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    price_stoplimit: float
    symbol: str
    comment: str
    external_id: str


class TradePosition(Record):
    """An open position."""

    __slots__ = ()

    ticket: int
    time: int
    time_msc: int
    time_update: int
    time_update_msc: int
    type: int
    magic: int
    identifier: int
    reason: int
    volume: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    swap: float
    profit: float
    symbol: str
    comment: str
    external_id: str


class TradeDeal(Record):
    """A deal in the account history."""

    __slots__ = ()

    ticket: int
    order: int
    time: int
    time_msc: int
    type: int
    entry: int
    magic: int
    position_id: int
    reason: int
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    fee: float
    symbol: str
    comment: str
    external_id: str


class OrderSendResult(Record):
    """Reply of order_send(); ``request`` echoes the TradeRequest."""

    __slots__ = ()

    retcode: int
    deal: int
    order: int
    volume: float
    price: float
    bid: float
    ask: float
    comment: str
    request_id: int
    retcode_external: int
    request: TradeRequest


class OrderCheckResult(Record):
    """Reply of order_check(); success is retcode 0 with comment 'Done'."""

    __slots__ = ()

    retcode: int
    balance: float
    equity: float
    profit: float
    margin: float
    margin_free: float
    margin_level: float
    comment: str
    request: TradeRequest


class BookInfo(Record):
    """One level of the depth of market."""

    __slots__ = ()

    type: int
    price: float
    volume: int
    volume_dbl: float


class TradeRequest(Record):
    """A trade request as the terminal echoes it, defaults filled in."""

    __slots__ = ()

    action: int
    magic: int
    order: int
    symbol: str
    volume: float
    price: float
    stoplimit: float
    sl: float
    tp: float
    deviation: int
    type: int
    type_filling: int
    type_time: int
    expiration: int
    comment: str
    position: int
    position_by: int


#: Every record type by its MT5 name.
RECORD_TYPES: dict[str, type[Record]] = {
    "AccountInfo": AccountInfo,
    "TerminalInfo": TerminalInfo,
    "SymbolInfo": SymbolInfo,
    "Tick": Tick,
    "TradeOrder": TradeOrder,
    "TradePosition": TradePosition,
    "TradeDeal": TradeDeal,
    "OrderSendResult": OrderSendResult,
    "OrderCheckResult": OrderCheckResult,
    "BookInfo": BookInfo,
    "TradeRequest": TradeRequest,
}


#: Rows of ``copy_ticks_*`` arrays, field for field as the real module returns them.
TICKS_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("last", "<f8"),
        ("volume", "<u8"),
        ("time_msc", "<i8"),
        ("flags", "<u4"),
        ("volume_real", "<f8"),
    ]
)

#: Rows of ``copy_rates_*`` arrays, field for field as the real module returns them.
RATES_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("open", "<f8"),
        ("high", "<f8"),
        ("low", "<f8"),
        ("close", "<f8"),
        ("tick_volume", "<u8"),
        ("spread", "<i4"),
        ("real_volume", "<u8"),
    ]
)
