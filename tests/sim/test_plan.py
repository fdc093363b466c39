"""Fault plan files: every entry becomes a FaultPlan rule; anything unknown is a one-line error."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mt5gate.sim import SimConfig, SimTerminal, VirtualClock, server_ms
from mt5gate.sim.config import BrokerOptions
from mt5gate.sim.faults import Fault, FaultKind
from mt5gate.sim.plan import ChaosPlan, PlanError, load_plan, parse_plan

HEDGING = {"login": 5001, "password": "sim-pass-5001", "server": "MetaQuotes-Demo"}
BUY = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "type_filling": 1}

EVERY_KIND = """
seed = 7

[history]
delay_ms = 3000

[[fault]]
kind = "reply_lost"
functions = ["order_send"]
probability = 0.25
times = 3

[[fault]]
kind = "hang"
functions = ["order_send", "positions_get"]
times = 1
seconds = 2.5

[[fault]]
kind = "hang"
when = "after"
functions = ["order_send"]
times = 1
after = 4

[[fault]]
kind = "ipc_error"
functions = ["*"]
probability = 0.01
code = -10004

[[fault]]
kind = "disconnect"
functions = ["order_send"]
times = 2
restore_after = 5

[[fault]]
kind = "latency"
functions = ["symbol_info_tick"]
probability = 1
seconds = 0.2

[[fault]]
kind = "autotrading_off"
functions = ["order_check"]
times = 1

[[fault]]
kind = "restart"
functions = ["account_info"]
times = 1
"""


def plan_of(text: str) -> ChaosPlan:
    return parse_plan(tomllib.loads(text))


def test_every_kind_becomes_a_rule_of_the_existing_fault_engine() -> None:
    plan = plan_of(EVERY_KIND)
    assert (plan.seed, plan.history_delay_ms) == (7, 3000)
    send = frozenset({"order_send"})
    assert plan.faults == (
        Fault(FaultKind.REPLY_LOST, send, -10002, times=3, probability=0.25),
        Fault(FaultKind.HANG, send | {"positions_get"}, -10005, delay_s=2.5, times=1),
        Fault(FaultKind.REPLY_LOST, send, -10005, delay_s=30.0, hang=True, after=4, times=1),
        Fault(FaultKind.IPC_ERROR, None, -10004, times=None, probability=0.01),
        Fault(FaultKind.DISCONNECT, send, delay_s=5.0, times=2),
        Fault(FaultKind.LATENCY, frozenset({"symbol_info_tick"}), delay_s=0.2, times=None),
        Fault(FaultKind.AUTOTRADING_OFF, frozenset({"order_check"}), times=1),
        Fault(FaultKind.RESTART, frozenset({"account_info"}), times=1),
    )
    rules = plan.fault_plan()
    assert rules.seed == 7
    assert rules.active


def test_an_empty_file_is_a_plan_without_faults(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("")
    assert load_plan(path) == ChaosPlan()
    assert not load_plan(path).fault_plan().active


def test_the_rules_fire_on_a_simulator() -> None:
    """The file's faults and history delay on a SimTerminal, on virtual time."""
    plan = plan_of(
        """
        [history]
        delay_ms = 2000
        [[fault]]
        kind = "reply_lost"
        functions = ["order_send"]
        times = 1
        [[fault]]
        kind = "disconnect"
        functions = ["order_send"]
        times = 1
        restore_after = 10
        """
    )
    config = SimConfig(history_days=1, broker=BrokerOptions(history_delay_ms=2000))
    sim = SimTerminal(config, clock=VirtualClock(server_ms(2026, 1, 6, 10)),
                      faults=plan.fault_plan())  # fmt: skip
    assert sim.initialize(**HEDGING)
    assert sim.order_send(dict(BUY)) is None  # executed, reply lost
    assert sim.last_error()[0] == -10002
    (position,) = sim.positions_get()
    assert sim.history_deals_get(position=position.ticket) == ()  # late history
    sim.step(2.5)
    assert len(sim.history_deals_get(position=position.ticket)) == 1
    lost_link = sim.order_send(dict(BUY))
    assert lost_link is not None
    assert lost_link.retcode == 10031  # the link dropped at this send
    assert sim.terminal_info().connected is False
    sim.step(9)
    assert sim.terminal_info().connected is False
    sim.step(1.5)
    assert sim.terminal_info().connected is True  # back by itself after restore_after
    sent = sim.order_send(dict(BUY))
    assert sent is not None
    assert sent.retcode == 10009


def test_a_link_restored_by_hand_forgets_its_downtime() -> None:
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(server_ms(2026, 1, 6, 10)))
    sim.faults.disconnect("symbol_info_tick", restore_after_s=5)
    assert sim.initialize()
    sim.symbol_info_tick("EURUSD")
    assert sim.terminal_info().connected is False
    sim.set_connected(True)
    sim.set_connected(False)  # dropped again by hand: stays down, whatever the fault said
    sim.step(10)
    assert sim.terminal_info().connected is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('sed = 1', "the plan: unknown key 'sed' (expected seed, history, fault)"),
        ('seed = "x"', "the plan: seed: must be an integer, got 'x'"),
        ("history = 3", "[history] must be a table"),
        ("[history]\ndelay = 5", "[history]: unknown key 'delay' (expected delay_ms)"),
        ("[history]\ndelay_ms = -1", "[history]: delay_ms: must be at least 0, got -1"),
        ("fault = 1", "fault must be an array of tables: write [[fault]]"),
        ("fault = [1]", "fault 1: must be a table"),
        ('[[fault]]\nkind = "explode"', "fault 1: kind: 'explode' is not a fault kind (one of"),
        ("[[fault]]\nkind = [1]", "fault 1: kind: [1] is not a fault kind"),
        ('[[fault]]\nkind = "hang"\nfunctions = ["order_send"]\ntimes = 1\nsecs = 3',
         "fault 1 (hang): unknown key 'secs' (expected kind, functions, probability, times, "
         "after, when, seconds, code)"),
        ('[[fault]]\nkind = "hang"\nfunctions = ["order_send"]',
         "fault 1 (hang): give probability, times or both"),
        ('[[fault]]\nkind = "hang"\ntimes = 1', "fault 1 (hang): functions: required"),
        ('[[fault]]\nkind = "hang"\ntimes = 1\nfunctions = "order_send"',
         "fault 1 (hang): functions: must be a non-empty list of function names"),
        ('[[fault]]\nkind = "hang"\ntimes = 1\nfunctions = []',
         "fault 1 (hang): functions: must be a non-empty list"),
        ('[[fault]]\nkind = "ipc_error"\ntimes = 1\nfunctions = ["order_sned"]',
         "fault 1 (ipc_error): functions: 'order_sned' is not a terminal function"),
        ('[[fault]]\nkind = "ipc_error"\ntimes = 1\nfunctions = ["last_error"]',
         "fault 1 (ipc_error): functions: 'last_error' is not a terminal function a fault can"),
        ('[[fault]]\nkind = "reply_lost"\nfunctions = ["order_send"]\nprobability = 1.5',
         "fault 1 (reply_lost): probability: must be within 0..1, got 1.5"),
        ('[[fault]]\nkind = "reply_lost"\nfunctions = ["order_send"]\nprobability = -0.1',
         "fault 1 (reply_lost): probability: must be within 0..1, got -0.1"),
        ('[[fault]]\nkind = "reply_lost"\nfunctions = ["order_send"]\nprobability = true',
         "fault 1 (reply_lost): probability: must be a number, got True"),
        ('[[fault]]\nkind = "reply_lost"\nfunctions = ["order_send"]\ntimes = 0',
         "fault 1 (reply_lost): times: must be at least 1, got 0"),
        ('[[fault]]\nkind = "reply_lost"\nfunctions = ["order_send"]\ntimes = 1.5',
         "fault 1 (reply_lost): times: must be an integer, got 1.5"),
        ('[[fault]]\nkind = "reply_lost"\nfunctions = ["order_send"]\ntimes = 1\nafter = -2',
         "fault 1 (reply_lost): after: must be at least 0, got -2"),
        ('[[fault]]\nkind = "reply_lost"\nfunctions = ["order_send"]\ntimes = 1\ncode = 10009',
         "fault 1 (reply_lost): code: must be an IPC error code, -10005 to -10000, got 10009"),
        ('[[fault]]\nkind = "hang"\nfunctions = ["order_send"]\ntimes = 1\nwhen = "during"',
         "fault 1 (hang): when: must be \"before\" or \"after\", got 'during'"),
        ('[[fault]]\nkind = "hang"\nfunctions = ["order_send"]\ntimes = 1\nseconds = 0',
         "fault 1 (hang): seconds: must be seconds above 0 (at most a day), got 0"),
        ('[[fault]]\nkind = "latency"\nfunctions = ["order_send"]\ntimes = 1',
         "fault 1 (latency): seconds: required"),
        ('[[fault]]\nkind = "disconnect"\nfunctions = ["order_send"]\ntimes = 1\n'
         'restore_after = "5s"', "fault 1 (disconnect): restore_after: must be a number"),
        ('[[fault]]\nkind = "restart"\nfunctions = ["order_send"]\ntimes = 1\ncode = -10004',
         "fault 1 (restart): unknown key 'code' (expected kind, functions, probability, times, "
         "after)"),
    ],
)  # fmt: skip
def test_a_bad_plan_is_one_line_naming_entry_and_key(text: str, message: str) -> None:
    with pytest.raises(PlanError) as refused:
        plan_of(text)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_entry_number_counts_from_one_in_file_order() -> None:
    good = '[[fault]]\nkind = "restart"\nfunctions = ["order_send"]\ntimes = 1\n'
    with pytest.raises(PlanError, match=r"^fault 3 \(hang\): unknown key 'secs'"):
        plan_of(good + good + '[[fault]]\nkind = "hang"\nfunctions = ["order_send"]\nsecs = 1\n')


def test_files_that_cannot_be_read_or_parsed(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"nope\.toml: cannot read it"):
        load_plan(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[fault]\nkind = 1\n")
    with pytest.raises(PlanError, match=r"broken.toml: not valid TOML: .*line 1"):
        load_plan(broken)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[fault]]\nkind = "hang"\n')
    with pytest.raises(PlanError, match=r"^.*bad.toml: fault 1 \(hang\): give probability"):
        load_plan(bad)
