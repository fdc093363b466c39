"""Static description of a simulated instrument: contract, trading rules, price process, hours.

A :class:`SymbolSpec` holds what a broker configures for a symbol. The live part of
``SymbolInfo`` (bid, ask, session highs and lows, ``select``/``visible``) comes from the market at
query time. Field names follow ``SymbolInfo`` so the mapping is one to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mt5gate.constants import (
    SymbolCalcMode,
    SymbolChartMode,
    SymbolExpiration,
    SymbolFilling,
    SymbolOrderMode,
    SymbolSwapMode,
    SymbolTradeExecution,
    SymbolTradeMode,
)

__all__ = ["ALL_ORDER_MODES", "SessionWindow", "SymbolSpec", "forex_week"]

ALL_ORDER_MODES = int(
    SymbolOrderMode.MARKET
    | SymbolOrderMode.LIMIT
    | SymbolOrderMode.STOP
    | SymbolOrderMode.STOP_LIMIT
    | SymbolOrderMode.SL
    | SymbolOrderMode.TP
    | SymbolOrderMode.CLOSEBY
)
ALL_EXPIRATIONS = int(
    SymbolExpiration.GTC
    | SymbolExpiration.DAY
    | SymbolExpiration.SPECIFIED
    | SymbolExpiration.SPECIFIED_DAY
)


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """One trading window: ``day`` (0 = Sunday, MT5's numbering), minutes from 00:00 server time.

    ``end_min`` is exclusive and may be 1440 (midnight). Quotes and trading share the windows.
    """

    day: int
    start_min: int
    end_min: int

    def __post_init__(self) -> None:
        if not 0 <= self.day <= 6:
            raise ValueError(f"SessionWindow.day must be 0..6 (Sunday=0), got {self.day}")
        if not 0 <= self.start_min < self.end_min <= 1440:
            raise ValueError(
                f"SessionWindow needs 0 <= start_min < end_min <= 1440, "
                f"got {self.start_min}..{self.end_min}"
            )


def forex_week(open_min: int = 5, close_min: int = 1435) -> tuple[SessionWindow, ...]:
    """Monday 00:05 to Friday 23:55 server time, the usual forex week (closed at weekends)."""
    days = [SessionWindow(1, open_min, 1440)]
    days += [SessionWindow(d, 0, 1440) for d in (2, 3, 4)]
    days.append(SessionWindow(5, 0, close_min))
    return tuple(days)


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """A broker's configuration of one symbol, plus the simulator's price-process parameters."""

    name: str
    description: str
    path: str
    currency_base: str
    currency_profit: str
    currency_margin: str
    digits: int
    trade_contract_size: float
    # price process
    initial_price: float
    annual_volatility: float
    spread_points: int
    mean_tick_interval_ms: int = 1000
    sessions: tuple[SessionWindow, ...] = field(default_factory=forex_week)
    # volumes
    volume_min: float = 0.01
    volume_max: float = 100.0
    volume_step: float = 0.01
    volume_limit: float = 0.0
    # trading rules
    trade_calc_mode: SymbolCalcMode = SymbolCalcMode.FOREX
    trade_mode: SymbolTradeMode = SymbolTradeMode.FULL
    trade_exemode: SymbolTradeExecution = SymbolTradeExecution.MARKET
    filling_mode: int = int(SymbolFilling.FOK | SymbolFilling.IOC)
    expiration_mode: int = ALL_EXPIRATIONS
    order_mode: int = ALL_ORDER_MODES
    order_gtc_mode: int = 0
    trade_stops_level: int = 0
    trade_freeze_level: int = 0
    trade_tick_size: float = 0.0  # 0 means one point
    margin_initial: float = 0.0
    margin_maintenance: float = 0.0
    margin_hedged: float = 0.0
    margin_hedged_use_leg: bool = False
    swap_mode: SymbolSwapMode = SymbolSwapMode.POINTS
    swap_long: float = 0.0
    swap_short: float = 0.0
    swap_rollover3days: int = 3
    chart_mode: SymbolChartMode = SymbolChartMode.BID
    spread_float: bool = True
    ticks_bookdepth: int = 10
    # descriptive
    category: str = ""
    exchange: str = ""
    isin: str = ""
    bank: str = ""
    page: str = ""
    basis: str = ""
    formula: str = ""
    custom: bool = False

    @property
    def point(self) -> float:
        """Smallest price change: ``10 ** -digits``."""
        return float(10.0**-self.digits)

    @property
    def tick_size(self) -> float:
        """``trade_tick_size``, defaulting to one point."""
        return self.trade_tick_size or self.point
