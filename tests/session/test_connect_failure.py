"""A session that cannot connect says why where it is asked, not only in its log: the last
attempt's reason is in ``last_connect_failure``, the ``session:state`` health check and the
error a call gets, until an attempt succeeds (a real SimTerminal whose ``initialize`` fails)."""

from __future__ import annotations

import pytest

from mt5gate.constants import ResultCode
from mt5gate.errors import MT5Error, MT5StateError
from mt5gate.health import Status, probe
from tests.session.conftest import make_session, run


def test_the_reason_of_a_failed_connect_is_kept_until_one_succeeds() -> None:
    async def scenario() -> None:
        session, sim, _ = make_session()
        assert session.last_connect_failure is None
        sim.faults.ipc_error("initialize", ResultCode.E_INTERNAL_FAIL_INIT, times=1)
        with pytest.raises(MT5Error) as failed:
            await session.connect()
        reason = session.last_connect_failure
        assert reason == failed.value.message
        assert "-10003" in reason

        state = (await probe(session)).checks[0]
        assert (state.name, state.status) == ("session:state", Status.FAIL)
        assert (
            state.output
            == f"the session is disconnected; the last connect attempt failed: {reason}"
        )
        with pytest.raises(MT5StateError) as refused:
            await session.call("version")
        assert f"the session is disconnected (the last connect attempt failed: {reason})" in str(
            refused.value
        )

        await session.connect()  # the fault was for one call: this attempt works
        assert session.last_connect_failure is None
        state = (await probe(session)).checks[0]
        assert (state.status, state.output) == (Status.PASS, "the session is connected")
        await session.close()

    run(scenario)


def test_a_wrong_password_is_the_reason_and_the_password_is_not_in_it() -> None:
    async def scenario() -> None:
        session, _, _ = make_session(password="not-the-sim-pass-5001")
        with pytest.raises(MT5Error):
            await session.connect()
        reason = session.last_connect_failure
        assert reason is not None
        output = (await probe(session)).checks[0].output
        assert reason in output
        assert "not-the-sim-pass-5001" not in output
        await session.close()

    run(scenario)
