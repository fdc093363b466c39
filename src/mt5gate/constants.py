"""MetaTrader 5 constants with their real values.

Two views of the same numbers:

* enums (``Timeframe.H1``, ``TradeRetcode.DONE``...) for mt5gate's own typed code;
* ``MT5_CONSTANTS``: the exact names and values the official ``MetaTrader5`` module exports
  (``TIMEFRAME_H1 = 16385``), which the drop-in simulator module re-exports unchanged.

Values come from MetaTrader5 5.0.6231 ``__init__.py``; ``tests/data/surface.json`` holds the
reference and a test proves every one. The symbol flag enums at the end are MQL5 values the
package does not export but ``SymbolInfo`` fields use.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from types import MappingProxyType

__all__ = [
    "Timeframe",
    "timeframe_seconds",
    "CopyTicks",
    "TickFlag",
    "PositionType",
    "PositionReason",
    "OrderType",
    "OrderState",
    "OrderFilling",
    "OrderTime",
    "OrderReason",
    "DealType",
    "DealEntry",
    "DealReason",
    "TradeAction",
    "SymbolChartMode",
    "SymbolCalcMode",
    "SymbolTradeMode",
    "SymbolTradeExecution",
    "SymbolSwapMode",
    "DayOfWeek",
    "SymbolOrdersGtc",
    "SymbolOptionRight",
    "SymbolOptionMode",
    "AccountTradeMode",
    "AccountStopoutMode",
    "AccountMarginMode",
    "BookType",
    "TradeRetcode",
    "ResultCode",
    "SymbolFilling",
    "SymbolExpiration",
    "SymbolOrderMode",
    "MT5_CONSTANTS",
    "MT5_HIDDEN_CONSTANTS",
]


class Timeframe(IntEnum):
    """Bar timeframes; bit-coded, not minutes (H1 = 16385)."""

    M1 = 1
    M2 = 2
    M3 = 3
    M4 = 4
    M5 = 5
    M6 = 6
    M10 = 10
    M12 = 12
    M15 = 15
    M20 = 20
    M30 = 30
    H1 = 16385
    H2 = 16386
    H4 = 16388
    H3 = 16387
    H6 = 16390
    H8 = 16392
    H12 = 16396
    D1 = 16408
    W1 = 32769
    MN1 = 49153


def timeframe_seconds(timeframe: int) -> int:
    """The longest a bar of ``timeframe`` lasts, in seconds (MN1: 31 days), from its bit code:
    the low 14 bits count minutes, hours (``0x4000``), weeks (``0x8000``) or months (``0xC000``).
    A span of ``n * timeframe_seconds(tf)`` seconds holds at most ``n`` bars of ``tf``."""
    unit, n = timeframe >> 14, timeframe & 0x3FFF
    return {0: 60 * n, 1: 3600 * n, 2: 7 * 86_400 * n}.get(unit, 31 * 86_400 * n)


class CopyTicks(IntEnum):
    """Which ticks copy_ticks_* returns."""

    ALL = -1
    INFO = 1
    TRADE = 2


class TickFlag(IntFlag):
    """Bits of Tick.flags."""

    BID = 2
    ASK = 4
    LAST = 8
    VOLUME = 16
    BUY = 32
    SELL = 64


class PositionType(IntEnum):
    """Direction of an open position."""

    BUY = 0
    SELL = 1


class PositionReason(IntEnum):
    """Who opened a position."""

    CLIENT = 0
    MOBILE = 1
    WEB = 2
    EXPERT = 3


class OrderType(IntEnum):
    """Market and pending order types."""

    BUY = 0
    SELL = 1
    BUY_LIMIT = 2
    SELL_LIMIT = 3
    BUY_STOP = 4
    SELL_STOP = 5
    BUY_STOP_LIMIT = 6
    SELL_STOP_LIMIT = 7
    CLOSE_BY = 8


class OrderState(IntEnum):
    """Life-cycle state of an order."""

    STARTED = 0
    PLACED = 1
    CANCELED = 2
    PARTIAL = 3
    FILLED = 4
    REJECTED = 5
    EXPIRED = 6
    REQUEST_ADD = 7
    REQUEST_MODIFY = 8
    REQUEST_CANCEL = 9


class OrderFilling(IntEnum):
    """Request filling policy (NOT the SymbolFilling bit flags)."""

    FOK = 0
    IOC = 1
    RETURN = 2
    BOC = 3


class OrderTime(IntEnum):
    """Pending order lifetime."""

    GTC = 0
    DAY = 1
    SPECIFIED = 2
    SPECIFIED_DAY = 3


class OrderReason(IntEnum):
    """Who or what created an order."""

    CLIENT = 0
    MOBILE = 1
    WEB = 2
    EXPERT = 3
    SL = 4
    TP = 5
    SO = 6


class DealType(IntEnum):
    """Kind of deal (trade, balance operation, fee...)."""

    BUY = 0
    SELL = 1
    BALANCE = 2
    CREDIT = 3
    CHARGE = 4
    CORRECTION = 5
    BONUS = 6
    COMMISSION = 7
    COMMISSION_DAILY = 8
    COMMISSION_MONTHLY = 9
    COMMISSION_AGENT_DAILY = 10
    COMMISSION_AGENT_MONTHLY = 11
    INTEREST = 12
    BUY_CANCELED = 13
    SELL_CANCELED = 14
    DIVIDEND = 15
    DIVIDEND_FRANKED = 16
    TAX = 17


class DealEntry(IntEnum):
    """Whether a deal opens, closes or reverses a position."""

    IN = 0
    OUT = 1
    INOUT = 2
    OUT_BY = 3


class DealReason(IntEnum):
    """Who or what caused a deal."""

    CLIENT = 0
    MOBILE = 1
    WEB = 2
    EXPERT = 3
    SL = 4
    TP = 5
    SO = 6
    ROLLOVER = 7
    VMARGIN = 8
    SPLIT = 9


class TradeAction(IntEnum):
    """TradeRequest.action."""

    DEAL = 1
    PENDING = 5
    SLTP = 6
    MODIFY = 7
    REMOVE = 8
    CLOSE_BY = 10


class SymbolChartMode(IntEnum):
    """Price a symbol's bars are built from."""

    BID = 0
    LAST = 1


class SymbolCalcMode(IntEnum):
    """Margin and profit formula of a symbol."""

    FOREX = 0
    FUTURES = 1
    CFD = 2
    CFDINDEX = 3
    CFDLEVERAGE = 4
    FOREX_NO_LEVERAGE = 5
    EXCH_STOCKS = 32
    EXCH_FUTURES = 33
    EXCH_OPTIONS = 34
    EXCH_OPTIONS_MARGIN = 36
    EXCH_BONDS = 37
    EXCH_STOCKS_MOEX = 38
    EXCH_BONDS_MOEX = 39
    SERV_COLLATERAL = 64


class SymbolTradeMode(IntEnum):
    """What trading a symbol allows."""

    DISABLED = 0
    LONGONLY = 1
    SHORTONLY = 2
    CLOSEONLY = 3
    FULL = 4


class SymbolTradeExecution(IntEnum):
    """Execution mode of a symbol."""

    REQUEST = 0
    INSTANT = 1
    MARKET = 2
    EXCHANGE = 3


class SymbolSwapMode(IntEnum):
    """How swaps are charged."""

    DISABLED = 0
    POINTS = 1
    CURRENCY_SYMBOL = 2
    CURRENCY_MARGIN = 3
    CURRENCY_DEPOSIT = 4
    INTEREST_CURRENT = 5
    INTEREST_OPEN = 6
    REOPEN_CURRENT = 7
    REOPEN_BID = 8


class DayOfWeek(IntEnum):
    """Days as MT5 numbers them (Sunday = 0)."""

    SUNDAY = 0
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6


class SymbolOrdersGtc(IntEnum):
    """Lifetime of SL/TP orders."""

    GTC = 0
    DAILY = 1
    DAILY_NO_STOPS = 2


class SymbolOptionRight(IntEnum):
    """Option right."""

    CALL = 0
    PUT = 1


class SymbolOptionMode(IntEnum):
    """Option style."""

    EUROPEAN = 0
    AMERICAN = 1


class AccountTradeMode(IntEnum):
    """Demo, contest or real account."""

    DEMO = 0
    CONTEST = 1
    REAL = 2


class AccountStopoutMode(IntEnum):
    """Whether stop-out levels are percent or money."""

    PERCENT = 0
    MONEY = 1


class AccountMarginMode(IntEnum):
    """Netting, exchange or hedging."""

    RETAIL_NETTING = 0
    EXCHANGE = 1
    RETAIL_HEDGING = 2


class BookType(IntEnum):
    """Side of a market-depth entry."""

    SELL = 1
    BUY = 2
    SELL_MARKET = 3
    BUY_MARKET = 4


class TradeRetcode(IntEnum):
    """Trade server return codes of order_send."""

    REQUOTE = 10004
    REJECT = 10006
    CANCEL = 10007
    PLACED = 10008
    DONE = 10009
    DONE_PARTIAL = 10010
    ERROR = 10011
    TIMEOUT = 10012
    INVALID = 10013
    INVALID_VOLUME = 10014
    INVALID_PRICE = 10015
    INVALID_STOPS = 10016
    TRADE_DISABLED = 10017
    MARKET_CLOSED = 10018
    NO_MONEY = 10019
    PRICE_CHANGED = 10020
    PRICE_OFF = 10021
    INVALID_EXPIRATION = 10022
    ORDER_CHANGED = 10023
    TOO_MANY_REQUESTS = 10024
    NO_CHANGES = 10025
    SERVER_DISABLES_AT = 10026
    CLIENT_DISABLES_AT = 10027
    LOCKED = 10028
    FROZEN = 10029
    INVALID_FILL = 10030
    CONNECTION = 10031
    ONLY_REAL = 10032
    LIMIT_ORDERS = 10033
    LIMIT_VOLUME = 10034
    INVALID_ORDER = 10035
    POSITION_CLOSED = 10036
    INVALID_CLOSE_VOLUME = 10038
    CLOSE_ORDER_EXIST = 10039
    LIMIT_POSITIONS = 10040
    REJECT_CANCEL = 10041
    LONG_ONLY = 10042
    SHORT_ONLY = 10043
    CLOSE_ONLY = 10044
    FIFO_CLOSE = 10045


class ResultCode(IntEnum):
    """last_error() codes."""

    S_OK = 1
    E_FAIL = -1
    E_INVALID_PARAMS = -2
    E_NO_MEMORY = -3
    E_NOT_FOUND = -4
    E_INVALID_VERSION = -5
    E_AUTH_FAILED = -6
    E_UNSUPPORTED = -7
    E_AUTO_TRADING_DISABLED = -8
    E_INTERNAL_FAIL = -10000
    E_INTERNAL_FAIL_SEND = -10001
    E_INTERNAL_FAIL_RECEIVE = -10002
    E_INTERNAL_FAIL_INIT = -10003
    E_INTERNAL_FAIL_CONNECT = -10004
    E_INTERNAL_FAIL_TIMEOUT = -10005


class SymbolFilling(IntFlag):
    """SymbolInfo.filling_mode bits (FOK=1, IOC=2); not exported by the package."""

    FOK = 1
    IOC = 2
    BOC = 4


class SymbolExpiration(IntFlag):
    """SymbolInfo.expiration_mode bits; not exported by the package."""

    GTC = 1
    DAY = 2
    SPECIFIED = 4
    SPECIFIED_DAY = 8


class SymbolOrderMode(IntFlag):
    """SymbolInfo.order_mode bits; not exported by the package."""

    MARKET = 1
    LIMIT = 2
    STOP = 4
    STOP_LIMIT = 8
    SL = 16
    TP = 32
    CLOSEBY = 64


#: Every constant of the official module, by its exported name, in the module's order.
MT5_CONSTANTS = MappingProxyType(
    {
        "TIMEFRAME_M1": 1,
        "TIMEFRAME_M2": 2,
        "TIMEFRAME_M3": 3,
        "TIMEFRAME_M4": 4,
        "TIMEFRAME_M5": 5,
        "TIMEFRAME_M6": 6,
        "TIMEFRAME_M10": 10,
        "TIMEFRAME_M12": 12,
        "TIMEFRAME_M15": 15,
        "TIMEFRAME_M20": 20,
        "TIMEFRAME_M30": 30,
        "TIMEFRAME_H1": 16385,
        "TIMEFRAME_H2": 16386,
        "TIMEFRAME_H4": 16388,
        "TIMEFRAME_H3": 16387,
        "TIMEFRAME_H6": 16390,
        "TIMEFRAME_H8": 16392,
        "TIMEFRAME_H12": 16396,
        "TIMEFRAME_D1": 16408,
        "TIMEFRAME_W1": 32769,
        "TIMEFRAME_MN1": 49153,
        "COPY_TICKS_ALL": -1,
        "COPY_TICKS_INFO": 1,
        "COPY_TICKS_TRADE": 2,
        "TICK_FLAG_BID": 2,
        "TICK_FLAG_ASK": 4,
        "TICK_FLAG_LAST": 8,
        "TICK_FLAG_VOLUME": 16,
        "TICK_FLAG_BUY": 32,
        "TICK_FLAG_SELL": 64,
        "POSITION_TYPE_BUY": 0,
        "POSITION_TYPE_SELL": 1,
        "POSITION_REASON_CLIENT": 0,
        "POSITION_REASON_MOBILE": 1,
        "POSITION_REASON_WEB": 2,
        "POSITION_REASON_EXPERT": 3,
        "ORDER_TYPE_BUY": 0,
        "ORDER_TYPE_SELL": 1,
        "ORDER_TYPE_BUY_LIMIT": 2,
        "ORDER_TYPE_SELL_LIMIT": 3,
        "ORDER_TYPE_BUY_STOP": 4,
        "ORDER_TYPE_SELL_STOP": 5,
        "ORDER_TYPE_BUY_STOP_LIMIT": 6,
        "ORDER_TYPE_SELL_STOP_LIMIT": 7,
        "ORDER_TYPE_CLOSE_BY": 8,
        "ORDER_STATE_STARTED": 0,
        "ORDER_STATE_PLACED": 1,
        "ORDER_STATE_CANCELED": 2,
        "ORDER_STATE_PARTIAL": 3,
        "ORDER_STATE_FILLED": 4,
        "ORDER_STATE_REJECTED": 5,
        "ORDER_STATE_EXPIRED": 6,
        "ORDER_STATE_REQUEST_ADD": 7,
        "ORDER_STATE_REQUEST_MODIFY": 8,
        "ORDER_STATE_REQUEST_CANCEL": 9,
        "ORDER_FILLING_FOK": 0,
        "ORDER_FILLING_IOC": 1,
        "ORDER_FILLING_RETURN": 2,
        "ORDER_FILLING_BOC": 3,
        "ORDER_TIME_GTC": 0,
        "ORDER_TIME_DAY": 1,
        "ORDER_TIME_SPECIFIED": 2,
        "ORDER_TIME_SPECIFIED_DAY": 3,
        "ORDER_REASON_CLIENT": 0,
        "ORDER_REASON_MOBILE": 1,
        "ORDER_REASON_WEB": 2,
        "ORDER_REASON_EXPERT": 3,
        "ORDER_REASON_SL": 4,
        "ORDER_REASON_TP": 5,
        "ORDER_REASON_SO": 6,
        "DEAL_TYPE_BUY": 0,
        "DEAL_TYPE_SELL": 1,
        "DEAL_TYPE_BALANCE": 2,
        "DEAL_TYPE_CREDIT": 3,
        "DEAL_TYPE_CHARGE": 4,
        "DEAL_TYPE_CORRECTION": 5,
        "DEAL_TYPE_BONUS": 6,
        "DEAL_TYPE_COMMISSION": 7,
        "DEAL_TYPE_COMMISSION_DAILY": 8,
        "DEAL_TYPE_COMMISSION_MONTHLY": 9,
        "DEAL_TYPE_COMMISSION_AGENT_DAILY": 10,
        "DEAL_TYPE_COMMISSION_AGENT_MONTHLY": 11,
        "DEAL_TYPE_INTEREST": 12,
        "DEAL_TYPE_BUY_CANCELED": 13,
        "DEAL_TYPE_SELL_CANCELED": 14,
        "DEAL_DIVIDEND": 15,
        "DEAL_DIVIDEND_FRANKED": 16,
        "DEAL_TAX": 17,
        "DEAL_ENTRY_IN": 0,
        "DEAL_ENTRY_OUT": 1,
        "DEAL_ENTRY_INOUT": 2,
        "DEAL_ENTRY_OUT_BY": 3,
        "DEAL_REASON_CLIENT": 0,
        "DEAL_REASON_MOBILE": 1,
        "DEAL_REASON_WEB": 2,
        "DEAL_REASON_EXPERT": 3,
        "DEAL_REASON_SL": 4,
        "DEAL_REASON_TP": 5,
        "DEAL_REASON_SO": 6,
        "DEAL_REASON_ROLLOVER": 7,
        "DEAL_REASON_VMARGIN": 8,
        "DEAL_REASON_SPLIT": 9,
        "TRADE_ACTION_DEAL": 1,
        "TRADE_ACTION_PENDING": 5,
        "TRADE_ACTION_SLTP": 6,
        "TRADE_ACTION_MODIFY": 7,
        "TRADE_ACTION_REMOVE": 8,
        "TRADE_ACTION_CLOSE_BY": 10,
        "SYMBOL_CHART_MODE_BID": 0,
        "SYMBOL_CHART_MODE_LAST": 1,
        "SYMBOL_CALC_MODE_FOREX": 0,
        "SYMBOL_CALC_MODE_FUTURES": 1,
        "SYMBOL_CALC_MODE_CFD": 2,
        "SYMBOL_CALC_MODE_CFDINDEX": 3,
        "SYMBOL_CALC_MODE_CFDLEVERAGE": 4,
        "SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE": 5,
        "SYMBOL_CALC_MODE_EXCH_STOCKS": 32,
        "SYMBOL_CALC_MODE_EXCH_FUTURES": 33,
        "SYMBOL_CALC_MODE_EXCH_OPTIONS": 34,
        "SYMBOL_CALC_MODE_EXCH_OPTIONS_MARGIN": 36,
        "SYMBOL_CALC_MODE_EXCH_BONDS": 37,
        "SYMBOL_CALC_MODE_EXCH_STOCKS_MOEX": 38,
        "SYMBOL_CALC_MODE_EXCH_BONDS_MOEX": 39,
        "SYMBOL_CALC_MODE_SERV_COLLATERAL": 64,
        "SYMBOL_TRADE_MODE_DISABLED": 0,
        "SYMBOL_TRADE_MODE_LONGONLY": 1,
        "SYMBOL_TRADE_MODE_SHORTONLY": 2,
        "SYMBOL_TRADE_MODE_CLOSEONLY": 3,
        "SYMBOL_TRADE_MODE_FULL": 4,
        "SYMBOL_TRADE_EXECUTION_REQUEST": 0,
        "SYMBOL_TRADE_EXECUTION_INSTANT": 1,
        "SYMBOL_TRADE_EXECUTION_MARKET": 2,
        "SYMBOL_TRADE_EXECUTION_EXCHANGE": 3,
        "SYMBOL_SWAP_MODE_DISABLED": 0,
        "SYMBOL_SWAP_MODE_POINTS": 1,
        "SYMBOL_SWAP_MODE_CURRENCY_SYMBOL": 2,
        "SYMBOL_SWAP_MODE_CURRENCY_MARGIN": 3,
        "SYMBOL_SWAP_MODE_CURRENCY_DEPOSIT": 4,
        "SYMBOL_SWAP_MODE_INTEREST_CURRENT": 5,
        "SYMBOL_SWAP_MODE_INTEREST_OPEN": 6,
        "SYMBOL_SWAP_MODE_REOPEN_CURRENT": 7,
        "SYMBOL_SWAP_MODE_REOPEN_BID": 8,
        "DAY_OF_WEEK_SUNDAY": 0,
        "DAY_OF_WEEK_MONDAY": 1,
        "DAY_OF_WEEK_TUESDAY": 2,
        "DAY_OF_WEEK_WEDNESDAY": 3,
        "DAY_OF_WEEK_THURSDAY": 4,
        "DAY_OF_WEEK_FRIDAY": 5,
        "DAY_OF_WEEK_SATURDAY": 6,
        "SYMBOL_ORDERS_GTC": 0,
        "SYMBOL_ORDERS_DAILY": 1,
        "SYMBOL_ORDERS_DAILY_NO_STOPS": 2,
        "SYMBOL_OPTION_RIGHT_CALL": 0,
        "SYMBOL_OPTION_RIGHT_PUT": 1,
        "SYMBOL_OPTION_MODE_EUROPEAN": 0,
        "SYMBOL_OPTION_MODE_AMERICAN": 1,
        "ACCOUNT_TRADE_MODE_DEMO": 0,
        "ACCOUNT_TRADE_MODE_CONTEST": 1,
        "ACCOUNT_TRADE_MODE_REAL": 2,
        "ACCOUNT_STOPOUT_MODE_PERCENT": 0,
        "ACCOUNT_STOPOUT_MODE_MONEY": 1,
        "ACCOUNT_MARGIN_MODE_RETAIL_NETTING": 0,
        "ACCOUNT_MARGIN_MODE_EXCHANGE": 1,
        "ACCOUNT_MARGIN_MODE_RETAIL_HEDGING": 2,
        "BOOK_TYPE_SELL": 1,
        "BOOK_TYPE_BUY": 2,
        "BOOK_TYPE_SELL_MARKET": 3,
        "BOOK_TYPE_BUY_MARKET": 4,
        "TRADE_RETCODE_REQUOTE": 10004,
        "TRADE_RETCODE_REJECT": 10006,
        "TRADE_RETCODE_CANCEL": 10007,
        "TRADE_RETCODE_PLACED": 10008,
        "TRADE_RETCODE_DONE": 10009,
        "TRADE_RETCODE_DONE_PARTIAL": 10010,
        "TRADE_RETCODE_ERROR": 10011,
        "TRADE_RETCODE_TIMEOUT": 10012,
        "TRADE_RETCODE_INVALID": 10013,
        "TRADE_RETCODE_INVALID_VOLUME": 10014,
        "TRADE_RETCODE_INVALID_PRICE": 10015,
        "TRADE_RETCODE_INVALID_STOPS": 10016,
        "TRADE_RETCODE_TRADE_DISABLED": 10017,
        "TRADE_RETCODE_MARKET_CLOSED": 10018,
        "TRADE_RETCODE_NO_MONEY": 10019,
        "TRADE_RETCODE_PRICE_CHANGED": 10020,
        "TRADE_RETCODE_PRICE_OFF": 10021,
        "TRADE_RETCODE_INVALID_EXPIRATION": 10022,
        "TRADE_RETCODE_ORDER_CHANGED": 10023,
        "TRADE_RETCODE_TOO_MANY_REQUESTS": 10024,
        "TRADE_RETCODE_NO_CHANGES": 10025,
        "TRADE_RETCODE_SERVER_DISABLES_AT": 10026,
        "TRADE_RETCODE_CLIENT_DISABLES_AT": 10027,
        "TRADE_RETCODE_LOCKED": 10028,
        "TRADE_RETCODE_FROZEN": 10029,
        "TRADE_RETCODE_INVALID_FILL": 10030,
        "TRADE_RETCODE_CONNECTION": 10031,
        "TRADE_RETCODE_ONLY_REAL": 10032,
        "TRADE_RETCODE_LIMIT_ORDERS": 10033,
        "TRADE_RETCODE_LIMIT_VOLUME": 10034,
        "TRADE_RETCODE_INVALID_ORDER": 10035,
        "TRADE_RETCODE_POSITION_CLOSED": 10036,
        "TRADE_RETCODE_INVALID_CLOSE_VOLUME": 10038,
        "TRADE_RETCODE_CLOSE_ORDER_EXIST": 10039,
        "TRADE_RETCODE_LIMIT_POSITIONS": 10040,
        "TRADE_RETCODE_REJECT_CANCEL": 10041,
        "TRADE_RETCODE_LONG_ONLY": 10042,
        "TRADE_RETCODE_SHORT_ONLY": 10043,
        "TRADE_RETCODE_CLOSE_ONLY": 10044,
        "TRADE_RETCODE_FIFO_CLOSE": 10045,
        "RES_S_OK": 1,
        "RES_E_FAIL": -1,
        "RES_E_INVALID_PARAMS": -2,
        "RES_E_NO_MEMORY": -3,
        "RES_E_NOT_FOUND": -4,
        "RES_E_INVALID_VERSION": -5,
        "RES_E_AUTH_FAILED": -6,
        "RES_E_UNSUPPORTED": -7,
        "RES_E_AUTO_TRADING_DISABLED": -8,
        "RES_E_INTERNAL_FAIL": -10000,
        "RES_E_INTERNAL_FAIL_SEND": -10001,
        "RES_E_INTERNAL_FAIL_RECEIVE": -10002,
        "RES_E_INTERNAL_FAIL_INIT": -10003,
        "RES_E_INTERNAL_FAIL_CONNECT": -10004,
        "RES_E_INTERNAL_FAIL_TIMEOUT": -10005,
    }
)

#: MQL5 flag values that SymbolInfo fields use but the package does not export.
MT5_HIDDEN_CONSTANTS = MappingProxyType(
    {
        "SYMBOL_FILLING_FOK": 1,
        "SYMBOL_FILLING_IOC": 2,
        "SYMBOL_FILLING_BOC": 4,
        "SYMBOL_EXPIRATION_GTC": 1,
        "SYMBOL_EXPIRATION_DAY": 2,
        "SYMBOL_EXPIRATION_SPECIFIED": 4,
        "SYMBOL_EXPIRATION_SPECIFIED_DAY": 8,
        "SYMBOL_ORDER_MARKET": 1,
        "SYMBOL_ORDER_LIMIT": 2,
        "SYMBOL_ORDER_STOP": 4,
        "SYMBOL_ORDER_STOP_LIMIT": 8,
        "SYMBOL_ORDER_SL": 16,
        "SYMBOL_ORDER_TP": 32,
        "SYMBOL_ORDER_CLOSEBY": 64,
    }
)
