"""The default instruments of the simulated broker: forex majors and crosses, gold, an index,
a crypto CFD and a stock CFD, with realistic contract terms and price-process parameters.

Sessions are in server time (GMT+2/+3 broker): forex trades Monday 00:05 to Friday 23:55; gold
and the index pause daily; the stock CFD follows the New York cash session (16:30-23:00 server).
"""

from __future__ import annotations

from mt5gate.constants import SymbolCalcMode, SymbolFilling, SymbolSwapMode, SymbolTradeExecution
from mt5gate.sim.symbols import SessionWindow, SymbolSpec

__all__ = ["default_catalogue"]

_FOK_IOC = int(SymbolFilling.FOK | SymbolFilling.IOC)
_IOC = int(SymbolFilling.IOC)
_FOK = int(SymbolFilling.FOK)
_WEEKDAYS = (1, 2, 3, 4, 5)


def _daily(
    windows: tuple[tuple[int, int], ...], days: tuple[int, ...] = _WEEKDAYS
) -> tuple[SessionWindow, ...]:
    """The same intraday windows on each of ``days``."""
    return tuple(SessionWindow(d, a, b) for d in days for a, b in windows)


def _fx(
    name: str, description: str, group: str, price: float, vol: float, spread: int, **kw: object
) -> SymbolSpec:
    """A forex pair: 100 000 units of the base currency, priced in the quote currency."""
    base, quote = name[:3], name[3:]
    digits = 3 if quote == "JPY" else 5
    fields: dict[str, object] = {
        "name": name,
        "description": description,
        "path": f"Forex\\{group}\\{name}",
        "currency_base": base,
        "currency_profit": quote,
        "currency_margin": base,
        "digits": digits,
        "trade_contract_size": 100_000.0,
        "initial_price": price,
        "annual_volatility": vol,
        "spread_points": spread,
        "category": "Forex",
    }
    fields.update(kw)
    return SymbolSpec(**fields)  # type: ignore[arg-type]


def _forex() -> tuple[SymbolSpec, ...]:
    return (
        _fx(
            "EURUSD",
            "Euro vs US Dollar",
            "Majors",
            1.08512,
            0.07,
            12,
            mean_tick_interval_ms=1500,
            swap_long=-7.2,
            swap_short=2.1,
        ),
        _fx(
            "GBPUSD",
            "Great Britain Pound vs US Dollar",
            "Majors",
            1.27104,
            0.08,
            15,
            mean_tick_interval_ms=1800,
            swap_long=-5.4,
            swap_short=0.9,
            filling_mode=_IOC,
        ),
        _fx(
            "USDJPY",
            "US Dollar vs Japanese Yen",
            "Majors",
            148.213,
            0.09,
            14,
            mean_tick_interval_ms=1700,
            swap_long=12.3,
            swap_short=-25.6,
        ),
        _fx(
            "USDCHF",
            "US Dollar vs Swiss Franc",
            "Majors",
            0.88231,
            0.07,
            16,
            mean_tick_interval_ms=2500,
            swap_long=4.1,
            swap_short=-11.8,
            filling_mode=_IOC,
        ),
        _fx(
            "AUDUSD",
            "Australian Dollar vs US Dollar",
            "Majors",
            0.65873,
            0.09,
            13,
            mean_tick_interval_ms=2200,
            swap_long=-3.9,
            swap_short=0.2,
            trade_exemode=SymbolTradeExecution.REQUEST,
        ),
        _fx(
            "USDCAD",
            "US Dollar vs Canadian Dollar",
            "Majors",
            1.35512,
            0.06,
            18,
            mean_tick_interval_ms=2400,
            swap_long=1.2,
            swap_short=-8.7,
            trade_stops_level=10,
        ),
        _fx(
            "EURJPY",
            "Euro vs Japanese Yen",
            "Crosses",
            160.834,
            0.09,
            22,
            mean_tick_interval_ms=2600,
            swap_long=8.1,
            swap_short=-21.4,
        ),
        _fx(
            "GBPJPY",
            "Great Britain Pound vs Japanese Yen",
            "Crosses",
            188.391,
            0.11,
            30,
            mean_tick_interval_ms=2800,
            swap_long=10.5,
            swap_short=-30.2,
            trade_stops_level=20,
            trade_freeze_level=5,
        ),
        _fx(
            "EURGBP",
            "Euro vs Great Britain Pound",
            "Crosses",
            0.85371,
            0.05,
            17,
            mean_tick_interval_ms=3000,
            swap_long=-6.0,
            swap_short=1.4,
            filling_mode=_FOK,
            trade_exemode=SymbolTradeExecution.INSTANT,
        ),
    )


def _gold() -> SymbolSpec:
    return SymbolSpec(
        name="XAUUSD",
        description="Gold vs US Dollar",
        path="Metals\\XAUUSD",
        currency_base="XAU",
        currency_profit="USD",
        currency_margin="XAU",
        digits=2,
        trade_contract_size=100.0,
        initial_price=2034.55,
        annual_volatility=0.15,
        spread_points=25,
        mean_tick_interval_ms=1200,
        sessions=_daily(((65, 1435),)),
        volume_max=50.0,
        trade_calc_mode=SymbolCalcMode.CFD,
        trade_stops_level=50,
        trade_freeze_level=10,
        swap_long=-35.2,
        swap_short=14.8,
        category="Metals",
    )


def _index() -> SymbolSpec:
    return SymbolSpec(
        name="US500",
        description="US 500 Cash Index",
        path="Indices\\US500",
        currency_base="USD",
        currency_profit="USD",
        currency_margin="USD",
        digits=1,
        trade_contract_size=1.0,
        initial_price=4782.3,
        annual_volatility=0.16,
        spread_points=5,
        mean_tick_interval_ms=1000,
        sessions=_daily(((65, 1395), (1410, 1435))),
        volume_min=0.1,
        volume_max=500.0,
        volume_step=0.1,
        trade_calc_mode=SymbolCalcMode.CFDINDEX,
        filling_mode=_IOC,
        trade_stops_level=20,
        swap_mode=SymbolSwapMode.CURRENCY_SYMBOL,
        swap_long=-1.12,
        swap_short=-0.35,
        category="Indices",
    )


def _crypto() -> SymbolSpec:
    return SymbolSpec(
        name="BTCUSD",
        description="Bitcoin vs US Dollar",
        path="Crypto\\BTCUSD",
        currency_base="BTC",
        currency_profit="USD",
        currency_margin="BTC",
        digits=2,
        trade_contract_size=1.0,
        initial_price=43120.5,
        annual_volatility=0.55,
        spread_points=1500,
        mean_tick_interval_ms=2000,
        sessions=_daily(((0, 1440),), days=(0, 1, 2, 3, 4, 5, 6)),
        volume_max=20.0,
        trade_calc_mode=SymbolCalcMode.CFD,
        trade_stops_level=100,
        swap_mode=SymbolSwapMode.INTEREST_CURRENT,
        swap_long=-20.0,
        swap_short=-20.0,
        category="Crypto",
    )


def _stock() -> SymbolSpec:
    return SymbolSpec(
        name="AAPL",
        description="Apple Inc.",
        path="Stocks\\US\\AAPL",
        currency_base="USD",
        currency_profit="USD",
        currency_margin="USD",
        digits=2,
        trade_contract_size=1.0,
        initial_price=185.64,
        annual_volatility=0.25,
        spread_points=4,
        mean_tick_interval_ms=1500,
        sessions=_daily(((990, 1380),)),
        volume_min=1.0,
        volume_max=10_000.0,
        volume_step=1.0,
        trade_calc_mode=SymbolCalcMode.EXCH_STOCKS,
        trade_exemode=SymbolTradeExecution.EXCHANGE,
        filling_mode=_FOK,
        swap_mode=SymbolSwapMode.INTEREST_CURRENT,
        swap_long=-6.5,
        swap_short=-2.5,
        ticks_bookdepth=5,
        category="Stocks",
        exchange="NASDAQ",
        isin="US0378331005",
    )


def default_catalogue() -> tuple[SymbolSpec, ...]:
    """The simulated broker's symbols, in Market Watch order."""
    return (*_forex(), _gold(), _index(), _crypto(), _stock())
