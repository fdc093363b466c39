"""Configuration of the simulated terminal: accounts, broker behaviour, terminal switches.

Policies as data: frozen dataclasses a test or a config file builds; nothing here reads the
environment. Points marked UNSURE in ``docs/mt5-api/semantics.md`` are options here, defaulting
to the documented behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mt5gate.constants import AccountMarginMode, AccountStopoutMode, AccountTradeMode, TradeRetcode
from mt5gate.sim.symbols import SymbolSpec

__all__ = ["AccountConfig", "BrokerOptions", "SimConfig", "TerminalFlags", "demo_accounts"]


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """A trading account the simulated server knows. ``password`` never appears in a repr."""

    login: int
    password: str = field(repr=False)
    server: str = "MetaQuotes-Demo"
    name: str = "Simulated Trader"
    company: str = "mt5gate Simulated Broker"
    currency: str = "USD"
    currency_digits: int = 2
    leverage: int = 100
    balance: float = 10_000.0
    credit: float = 0.0
    margin_mode: AccountMarginMode = AccountMarginMode.RETAIL_HEDGING
    trade_mode: AccountTradeMode = AccountTradeMode.DEMO
    trade_allowed: bool = True
    trade_expert: bool = True
    limit_orders: int = 200
    margin_so_mode: AccountStopoutMode = AccountStopoutMode.PERCENT
    margin_so_call: float = 50.0
    margin_so_so: float = 30.0
    fifo_close: bool = False
    max_positions: int = 0  # broker limit on open positions, 0 = none (10040)
    investor_password: str | None = field(default=None, repr=False)
    otp_required: bool = False  # initialize/login answer -7 (OTP or certificate needed)


def demo_accounts() -> tuple[AccountConfig, ...]:
    """The default accounts: a hedging and a netting USD demo account, and a EUR one."""
    return (
        AccountConfig(login=5001, password="sim-pass-5001"),
        AccountConfig(
            login=5002,
            password="sim-pass-5002",
            name="Netting Trader",
            margin_mode=AccountMarginMode.RETAIL_NETTING,
        ),
        AccountConfig(
            login=5003,
            password="sim-pass-5003",
            server="mt5gate-Sim-EU",
            name="Euro Trader",
            currency="EUR",
            leverage=30,
            balance=5_000.0,
        ),
    )


@dataclass(frozen=True, slots=True)
class BrokerOptions:
    """How the simulated trade server behaves where real servers differ."""

    pending_retcode: TradeRetcode = TradeRetcode.DONE  # some setups answer PLACED (10008)
    deal_comment_max: int = 31  # MetaQuotes-Demo cuts deal comments to 16 characters
    overwrite_sltp_comment: bool = False  # brokers may write "[sl 1.08]" on SL/TP closes
    history_delay_ms: int = 0  # history becomes visible this long after the event
    requote_retcode: TradeRetcode = TradeRetcode.REQUOTE  # or PRICE_CHANGED (10020)
    stop_out: bool = True


@dataclass(slots=True)
class TerminalFlags:
    """Switches of the terminal process the broker and the facade both consult (mutable)."""

    connected: bool = True  # connection to the trade server
    trade_allowed: bool = True  # the Algo Trading button (10027 when off)
    tradeapi_disabled: bool = False  # "disable trading via Python API" (-8 when on)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything a :class:`~mt5gate.sim.SimTerminal` is built from."""

    accounts: tuple[AccountConfig, ...] = field(default_factory=demo_accounts)
    symbols: tuple[SymbolSpec, ...] | None = None  # None: the default catalogue
    seed: int = 1
    history_days: int = 30  # M1 history synthesised before the start time
    broker: BrokerOptions = field(default_factory=BrokerOptions)
    # terminal
    build: int = 6231
    build_date: str = "27 Sep 2026"
    maxbars: int = 100_000
    path: str = "C:\\Program Files\\MetaTrader 5 (simulated)\\terminal64.exe"
    data_path: str = "C:\\Users\\sim\\AppData\\Roaming\\MetaQuotes\\Terminal\\SIMULATED"
    company: str = "mt5gate Simulated Broker"
    language: str = "English"
    ping_last_us: int = 35_000
    default_login: int | None = None  # account the terminal is logged into at start
    select_default: bool = False  # symbol_select(name) without ``enable`` (UNSURE; Book: False)
    comment_max: int = 31  # longer request comments -> (-2, 'Invalid "comment" argument')
    initially_selected: tuple[str, ...] = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD")
    # market data (last, so positional construction keeps its meaning)
    live_ticks_retention_s: int | None = 86_400  # live ticks stored; older ones come from bars
    # the deep past before ``history_days``, made lazily a day at a time (market/deep.py);
    # None: no bars before the in-memory history. Default 1_262_304_000 = 2010-01-01 00:00.
    deep_history_from_s: int | None = 1_262_304_000
    deep_cache_chunks: int = 128  # days of deep M1 bars cached, all symbols (<= 86,400 B each)
    deep_frame_cache_bytes: int = 16_000_000  # whole deep days of H1..D1 (and M2..M30) bars
    # pitfalls B5, "history not yet downloaded": None (default) answers the deep past at once,
    # as a terminal whose history is on disk; S > 0: a symbol's deep past is "downloading" for
    # S seconds of the terminal's clock after the first request that reaches it, and until then
    # requests get only the in-memory part (fewer bars, or none), as a real first request does.
    deep_history_download_s: float | None = None
    # the live market's pace: mean ticks per second of all the symbols together while their
    # markets are open, shared in proportion to each symbol's own ``mean_tick_interval_ms``
    # (a load test asks for 2,000; at most 1,000 per symbol); None: every symbol at its own
    # pace (a tick every 1 to 3.5 s). A quote arrival that moves neither bid nor ask is no tick
    # at any pace, so the market makes a little fewer (7 to 10% for forex majors). The history
    # before the start keeps the symbols' own pace.
    ticks_per_s: float | None = None

    def __post_init__(self) -> None:
        _check_retention(self.live_ticks_retention_s)
        _check_pace(self.ticks_per_s)
        download = self.deep_history_download_s
        if download is not None and not (isinstance(download, int | float) and download > 0):
            raise ValueError(
                "SimConfig.deep_history_download_s must be a positive number of seconds or None, "
                f"got {download!r}"
            )


def _check_pace(value: object) -> None:
    """``ticks_per_s``: ``None`` or a positive, finite number."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"SimConfig.ticks_per_s must be a number of ticks per second or None, "
            f"got {value!r} ({type(value).__name__})"
        )
    if not 0 < value < float("inf"):
        raise ValueError(f"SimConfig.ticks_per_s must be positive and finite, got {value!r}")


def _check_retention(value: object) -> None:
    """``live_ticks_retention_s``: ``None`` (keep every tick) or a positive int of seconds."""
    field_name = "SimConfig.live_ticks_retention_s"
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{field_name} must be an int number of seconds or None, "
            f"got {value!r} ({type(value).__name__})"
        )
    if value <= 0:
        raise ValueError(f"{field_name} must be positive (seconds) or None, got {value}")
