"""``mt5gate serve`` as a newcomer runs it: a real server process on loopback, real HTTP.

The default service (no configuration: one simulated demo account, a local API key with every
scope) answers every endpoint; a configured one checks scopes, rate limits, size limits and
that the account password never leaves the process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mt5gate.service.auth import hash_api_key
from tests.service.conftest import Served, start_service

PROBLEM = "application/problem+json"
HEALTH = "application/health+json"
ACCOUNT = "/v1/accounts/demo"


def keyed(key: str) -> dict[str, str]:
    """The ``Idempotency-Key`` header every trading write needs."""
    return {"Idempotency-Key": key}


# ---------------------------------------------------------------------- probes, no key


def test_liveness_and_readiness_need_no_key(service: Served) -> None:
    with service.client(key="") as http:
        assert http.get("/livez").json() == {"status": "pass"}
        ready = http.get("/readyz")
    assert (ready.status_code, ready.headers["content-type"]) == (200, HEALTH)
    assert ready.json()["accounts"] == {"demo": True}


def test_health_is_health_json_and_says_it_is_simulated(service: Served) -> None:
    with service.client(key="") as http:
        health = http.get("/v1/health")
    assert (health.status_code, health.headers["content-type"]) == (200, HEALTH)
    body = health.json()
    assert body["status"] in ("pass", "warn")
    assert any("SIMULATED" in note for note in body["notes"])
    assert "demo/terminal:connection" in body["checks"]
    assert "demo/orders:unresolved" in body["checks"]


def test_metrics_need_a_key_unless_public(service: Served) -> None:
    with service.client(key="") as http:
        assert http.get("/metrics").status_code == 401
    with service.client() as http:
        http.get(ACCOUNT + "/symbols/EURUSD/tick")
        metrics = http.get("/metrics")
    assert metrics.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    assert "mt5gate_terminal_call_duration_seconds" in families
    routes = {
        s.labels.get("route") for s in families["mt5gate_http_request_duration_seconds"].samples
    }
    assert "/v1/accounts/{account}/symbols/{symbol}/tick" in routes


# ---------------------------------------------------------------------- keys


def test_a_missing_or_wrong_key_is_401_problem_json(service: Served) -> None:
    for key in ("", "mg_not-a-key"):
        with service.client(key=key) as http:
            answer = http.get("/v1/accounts")
        assert (answer.status_code, answer.headers["content-type"]) == (401, PROBLEM)
        assert answer.json()["status"] == 401
        assert "mg_not-a-key" not in answer.text
    with service.client(key="", headers={"Authorization": f"Bearer {service.key}"}) as http:
        assert http.get("/v1/accounts").status_code == 200


# ---------------------------------------------------------------------- reads


def test_every_read_endpoint_answers(service: Served) -> None:
    with service.client() as http:
        accounts = http.get("/v1/accounts").json()
        assert accounts["accounts"][0]["name"] == "demo"
        assert accounts["accounts"][0]["simulated"] is True
        assert http.get(ACCOUNT).json()["login"] == 5001
        assert http.get(ACCOUNT + "/terminal").json()["connected"] is True
        symbols = http.get(ACCOUNT + "/symbols", params={"group": "*USD*"}).json()
        assert "EURUSD" in {s["name"] for s in symbols}
        assert http.get(ACCOUNT + "/symbols/EURUSD").json()["digits"] == 5
        tick = http.get(ACCOUNT + "/symbols/EURUSD/tick").json()
        assert tick["ask"] >= tick["bid"] > 0
        bars = http.get(ACCOUNT + "/symbols/EURUSD/rates",
                        params={"timeframe": "H1", "count": 10}).json()  # fmt: skip
        assert len(bars) == 10
        assert set(bars[0]) >= {"time", "open", "high", "low", "close"}
        since = int(time.time()) - 3600
        ticks = http.get(ACCOUNT + "/symbols/EURUSD/ticks", params={"from": since, "count": 5})
        assert ticks.status_code == 200
        window = {"from": int(time.time()) - 2 * 86400, "to": int(time.time()) + 2 * 86400}
        for path in ("/positions", "/orders", "/history/orders", "/history/deals"):
            answer = http.get(ACCOUNT + path, params=window if "history" in path else None)
            assert answer.status_code == 200, (path, answer.text)
            assert isinstance(answer.json(), list)


def test_unknown_things_are_404_and_bad_input_422(service: Served) -> None:
    with service.client() as http:
        unknown_account = http.get("/v1/accounts/nope")
        unknown_symbol = http.get(ACCOUNT + "/symbols/NOSUCH/tick")
        bad_timeframe = http.get(ACCOUNT + "/symbols/EURUSD/rates", params={"timeframe": "H7"})
        bad_body = http.post(ACCOUNT + "/orders", json={"symbol": "EURUSD", "side": "up"},
                             headers=keyed("bad-body"))  # fmt: skip
    assert (unknown_account.status_code, unknown_account.headers["content-type"]) == (404, PROBLEM)
    assert unknown_symbol.status_code == 404
    assert (bad_timeframe.status_code, bad_timeframe.json()["field"]) == (422, "timeframe")
    assert bad_body.status_code == 422
    fields = {e["field"] for e in bad_body.json()["errors"]}
    assert {"side", "volume"} <= fields
    assert "Traceback" not in bad_body.text


# ---------------------------------------------------------------------- trading


def test_orders_are_placed_once_per_idempotency_key(service: Served) -> None:
    order = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}
    with service.client() as http:
        first = http.post(ACCOUNT + "/orders", json=order, headers={"Idempotency-Key": "http-1"})
        again = http.post(ACCOUNT + "/orders", json=order, headers={"Idempotency-Key": "http-1"})
        other = http.post(ACCOUNT + "/orders", json={**order, "volume": 0.2},
                          headers={"Idempotency-Key": "http-1"})  # fmt: skip
        positions = http.get(ACCOUNT + "/positions").json()
    assert first.status_code == 201, first.text
    assert again.json() == first.json()
    assert (other.status_code, other.json()["error"]) == (422, "MT5IdempotencyError")
    assert [p["ticket"] for p in positions].count(first.json()["order"]) == 1


def test_check_modify_close_and_cancel(service: Served) -> None:
    with service.client() as http:
        check = http.post(ACCOUNT + "/orders/check",
                          json={"symbol": "EURUSD", "side": "buy", "volume": 0.1})  # fmt: skip
        assert (check.status_code, check.json()["retcode"]) == (200, 0)
        buy = {"symbol": "EURUSD", "side": "buy", "volume": 0.2}
        opened = http.post(ACCOUNT + "/orders", json=buy, headers=keyed("cmcc-buy")).json()
        position = ACCOUNT + f"/positions/{opened['order']}"
        bid = http.get(ACCOUNT + "/symbols/EURUSD/tick").json()["bid"]
        modified = http.patch(position, json={"sl": round(bid - 0.01, 5)},
                              headers=keyed("cmcc-stops"))  # fmt: skip
        assert modified.status_code == 200, modified.text
        closed = http.post(position + "/close", json={"volume": 0.1}, headers=keyed("cmcc-close"))
        assert (closed.status_code, closed.json()["volume"]) == (200, 0.1)
        limit = {**buy, "volume": 0.1, "kind": "limit", "price": round(bid - 0.02, 5)}
        pending = http.post(ACCOUNT + "/orders", json=limit, headers=keyed("cmcc-limit"))
        assert pending.status_code == 201, pending.text
        ticket = pending.json()["order"]
        order = ACCOUNT + f"/orders/{ticket}"
        moved = {"price": round(bid - 0.03, 5), "sl": round(bid - 0.05, 5)}
        modified = http.patch(order, json=moved, headers=keyed("cmcc-move"))
        assert modified.status_code == 200, modified.text
        [listed] = [o for o in http.get(ACCOUNT + "/orders").json() if o["ticket"] == ticket]
        assert (listed["price_open"], listed["sl"]) == (moved["price"], moved["sl"])
        past_sl = http.patch(order, json={"price": round(bid - 0.06, 5)},
                             headers=keyed("cmcc-past-sl"))  # fmt: skip
        assert (past_sl.status_code, past_sl.json()["field"]) == (422, "sl"), past_sl.text
        cancelled = http.delete(order, headers=keyed("cmcc-cancel"))
        assert cancelled.status_code == 200
        gone = http.delete(order, headers=keyed("cmcc-cancel-again"))
        assert (gone.status_code, gone.json()["field"]) == (404, "ticket")
        move_gone = http.patch(order, json={"sl": 0}, headers=keyed("cmcc-move-gone"))
        assert (move_gone.status_code, move_gone.json()["field"]) == (404, "ticket")


def test_a_business_rejection_is_422_with_its_retcode(service: Served) -> None:
    with service.client() as http:
        answer = http.post(ACCOUNT + "/orders",
                           json={"symbol": "EURUSD", "side": "buy", "volume": 90.0},
                           headers=keyed("no-money"))  # fmt: skip
    body = answer.json()
    assert (answer.status_code, body["error"], body["retcode"]) == (422, "MT5TradeRejected", 10019)
    assert body["client_id"] >= 1


def test_halt_and_resume(service: Served) -> None:
    order = {"symbol": "EURUSD", "side": "sell", "volume": 0.1}
    with service.client() as http:
        assert http.post(ACCOUNT + "/halt", json={"reason": "desk"}).json() == {
            "halted": True, "reason": "desk",
        }  # fmt: skip
        refused = http.post(ACCOUNT + "/orders", json=order, headers=keyed("halted"))
        health = http.get("/v1/health").json()
        assert http.post(ACCOUNT + "/resume").json()["halted"] is False
        placed = http.post(ACCOUNT + "/orders", json=order, headers=keyed("resumed"))
    assert (refused.status_code, refused.json()["error"]) == (409, "MT5TradingHalted")
    assert placed.status_code == 201
    assert health["checks"]["demo/trading:halt"][0]["observedValue"] in (True, False)


def test_oversized_bodies_are_refused(service: Served) -> None:
    with service.client() as http:
        answer = http.post(ACCOUNT + "/orders", content=b"x" * 70_000,
                           headers={"content-type": "application/json"})  # fmt: skip
    assert (answer.status_code, answer.headers["content-type"]) == (413, PROBLEM)


def test_openapi_describes_every_route(service: Served) -> None:
    with service.client(key="") as http:
        schema = http.get("/openapi.json").json()
    paths = set(schema["paths"])
    for path in ("/v1/accounts/{account}/orders", "/v1/accounts/{account}/positions/{ticket}",
                 "/v1/accounts/{account}/halt", "/v1/health", "/readyz", "/livez"):  # fmt: skip
        assert path in paths


# ---------------------------------------------------------------------- configured


def _config(tmp_path: Path, keys: dict[str, tuple[str, list[str], int]]) -> Path:
    entries = "".join(
        f'[[api_keys]]\nname = "{name}"\nhash = "{hash_api_key(key)}"\n'
        f"scopes = {json.dumps(scopes)}\nrate_per_minute = {rate}\nburst = {min(rate, 3)}\n\n"
        for name, (key, scopes, rate) in keys.items()
    )
    path = tmp_path / "mt5gate.toml"
    path.write_text(
        "[service]\npublic_metrics = true\n\n"
        '[[accounts]]\nname = "main"\nterminal = "sim"\nlogin = 5001\n'
        'server = "MetaQuotes-Demo"\npassword_env = "MAIN_PASSWORD"\n\n' + entries
    )
    return path


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Served:
    folder = tmp_path_factory.mktemp("configured")
    keys = {"reader": ("mg_reader-key-0123456789abcdef", ["read"], 600),
            "slow": ("mg_slow-key-0123456789abcdef", ["read"], 3)}  # fmt: skip
    config = _config(folder, keys)
    served = start_service(folder, "--config", str(config), env={"MAIN_PASSWORD": "sim-pass-5001"})
    served.key = keys["reader"][0]
    yield served  # type: ignore[misc]
    served.stop()


def test_a_read_key_cannot_trade(configured: Served) -> None:
    with configured.client() as http:
        assert http.get("/v1/accounts/main").status_code == 200
        answer = http.post("/v1/accounts/main/orders",
                           json={"symbol": "EURUSD", "side": "buy", "volume": 0.1})  # fmt: skip
    assert (answer.status_code, answer.headers["content-type"]) == (403, PROBLEM)
    assert "trade" in answer.json()["detail"]


def test_rate_limits_answer_429_with_retry_after(configured: Served) -> None:
    with configured.client(key="mg_slow-key-0123456789abcdef") as http:
        answers = [http.get("/v1/accounts/main/symbols/EURUSD/tick") for _ in range(5)]
    codes = [a.status_code for a in answers]
    assert codes[:3] == [200, 200, 200]
    assert 429 in codes[3:]
    limited = next(a for a in answers if a.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1


def test_public_metrics_and_the_password_stays_inside(configured: Served) -> None:
    with configured.client(key="") as http:
        texts = [http.get("/metrics").text, http.get("/v1/health").text]
    with configured.client() as http:
        texts += [http.get("/v1/accounts").text, http.get("/v1/accounts/main").text]
    for text in texts:
        assert "sim-pass-5001" not in text


def test_sigterm_stops_the_service_cleanly(tmp_path: Path) -> None:
    served = start_service(tmp_path, relative_data_dir=True)
    code, err = served.stop()
    assert code in (0, -15), err  # uvicorn re-raises SIGTERM once it has shut down
    assert "Application shutdown complete" in err
    assert "SIMULATED" in err
    assert served.key
    assert served.key not in err


def test_ranges_return_at_most_count_rows(service: Served) -> None:
    everything = {"from": 0, "to": 4_000_000_000, "count": 3}
    with service.client() as http:
        bars = http.get(ACCOUNT + "/symbols/EURUSD/rates", params={**everything, "timeframe": "M1"})
        ticks = http.get(ACCOUNT + "/symbols/EURUSD/ticks", params=everything)
        too_many = http.get(
            ACCOUNT + "/symbols/EURUSD/ticks", params={**everything, "count": 10_001}
        )
    assert (bars.status_code, len(bars.json())) == (200, 3)
    assert (ticks.status_code, len(ticks.json())) == (200, 3)
    assert too_many.status_code == 422


def test_openapi_lists_the_configured_accounts(service: Served) -> None:
    with service.client(key="") as http:
        schema = http.get("/openapi.json").json()
    operation = schema["paths"]["/v1/accounts/{account}/symbols/{symbol}/tick"]["get"]
    (account,) = [p for p in operation["parameters"] if p["name"] == "account"]
    assert account["schema"]["enum"] == ["demo"]


def test_access_log_by_default_and_switched_off(service: Served, tmp_path: Path) -> None:
    quiet = start_service(tmp_path, env={"MT5GATE_ACCESS_LOG": "false"})
    try:
        for served in (service, quiet):
            with served.client(key="") as http:
                assert http.get("/livez").status_code == 200
        time.sleep(0.2)  # the log line is written after the response
        assert '"GET /livez HTTP/1.1" 200' in service.output()
    finally:
        _, quiet_output = quiet.stop()
    assert "GET /livez" not in quiet_output
    assert "Application startup complete" in quiet_output  # the rest of the log is still there


def test_framework_refusals_are_problems_too(service: Served) -> None:
    with service.client() as http:
        garbled = http.post(ACCOUNT + "/halt", content=b"\xff{not json",
                            headers={"content-type": "application/json"})  # fmt: skip
        nowhere = http.get("/v1/no/such/route")
        wrong_method = http.put(ACCOUNT + "/orders", json={})
    assert (garbled.status_code, garbled.headers["content-type"]) == (400, PROBLEM)
    assert garbled.json()["error"] == "HTTPError"
    assert (nowhere.status_code, nowhere.headers["content-type"]) == (404, PROBLEM)
    assert (wrong_method.status_code, wrong_method.headers["content-type"]) == (405, PROBLEM)
    assert "allow" in {name.lower() for name in wrong_method.headers}


def test_openapi_documents_the_problems_of_each_route(service: Served) -> None:
    with service.client(key="") as http:
        schema = http.get("/openapi.json").json()
    assert {"type", "title", "status", "detail", "error"} <= set(
        schema["components"]["schemas"]["Problem"]["required"]
    )
    place = schema["paths"]["/v1/accounts/{account}/orders"]["post"]["responses"]
    tick = schema["paths"]["/v1/accounts/{account}/symbols/{symbol}/tick"]["get"]["responses"]
    assert {"202", "400", "401", "403", "409", "413", "422", "429", "503"} <= set(place)
    assert {"401", "403", "404", "429", "503"} <= set(tick)
    assert "202" not in tick  # reads have no order outcome to lose
    assert list(place["422"]["content"]) == ["application/problem+json"]
    assert list(schema["paths"]["/v1/health"]["get"]["responses"]["200"]["content"]) == [HEALTH]
    assert "401" not in schema["paths"]["/livez"]["get"]["responses"]
