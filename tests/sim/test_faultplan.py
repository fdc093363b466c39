"""The fault plan's rule logic: which calls a rule hits, how often, with what."""

from __future__ import annotations

import threading

import pytest

from mt5gate.sim.faults import Fault, FaultKind, FaultPlan


def test_rule_fires_after_and_times() -> None:
    plan = FaultPlan()
    fault = plan.ipc_error("order_send", -10001, after=2, times=2)
    hits = [plan.pick("order_send") for _ in range(6)]
    assert hits == [None, None, fault, fault, None, None]
    assert plan.fired(fault) == 2


def test_rule_matches_only_its_functions() -> None:
    plan = FaultPlan()
    fault = plan.ipc_error(["account_info", "terminal_info"], times=None)
    assert plan.pick("order_send") is None
    assert plan.pick("account_info") is fault
    assert plan.pick("terminal_info") is fault


def test_probability_is_seeded_and_reproducible() -> None:
    def run(seed: int) -> list[bool]:
        plan = FaultPlan(seed=seed)
        plan.ipc_error(None, times=None, probability=0.3)
        return [plan.pick("symbol_info_tick") is not None for _ in range(200)]

    first = run(7)
    assert first == run(7)
    assert 30 < sum(first) < 90


def test_default_codes_per_kind() -> None:
    assert Fault(FaultKind.HANG).failure_code == -10005
    assert Fault(FaultKind.REPLY_LOST).failure_code == -10002
    assert Fault(FaultKind.IPC_ERROR, code=-10004).failure_code == -10004


@pytest.mark.parametrize(
    "kwargs", [{"probability": 1.5}, {"delay_s": -1.0}, {"after": -1}, {"times": 0}]
)
def test_invalid_rules_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Fault"):
        Fault(FaultKind.IPC_ERROR, **kwargs)  # type: ignore[arg-type]


def test_release_wakes_a_hung_waiter() -> None:
    plan = FaultPlan()
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(plan.wait(30.0)), name="hung-call")
    waiter.start()
    while not waiter.is_alive():
        pass
    plan.release()
    waiter.join(10.0)
    assert woke == [True]


def test_wait_times_out_without_release() -> None:
    assert FaultPlan().wait(0.01) is False


def test_clear_removes_rules() -> None:
    plan = FaultPlan()
    plan.latency("version", 0.5)
    assert plan.active
    plan.clear()
    assert not plan.active
    assert plan.pick("version") is None
