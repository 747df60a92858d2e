"""The simulator's instruments for comparing clients (osbench.sim.instruments):
requests per modelled second, and each server's true times, over HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp

from osbench.sim import SimCloud
from osbench.sim.instruments import MAX_SECONDS, REQUEST_RATE_PATH, TRUTH_PATH, RequestRate
from tests.sim.conftest import password_auth
from tests.sim.test_metrics import HandClock


async def _get(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


async def test_rate_and_truth_are_served_and_not_counted() -> None:
    clock = HandClock()
    async with SimCloud("healthy", time_scale=1.0) as sim, aiohttp.ClientSession() as http:
        sim.clock = clock
        clock.t = 10.2
        async with http.post(sim.auth_url + "/auth/tokens", json=password_auth(sim)) as resp:
            assert resp.status == 201
            headers = {"X-Auth-Token": resp.headers["X-Subject-Token"]}
        server = {"name": "t", "imageRef": sim.image_id, "flavorRef": sim.flavor_id,
                  "networks": [{"uuid": sim.network_id}], "min_count": 3, "max_count": 3}
        async with http.post(sim.base_url + "/compute/v2.1/servers", json={"server": server},
                             headers=headers) as resp:
            assert resp.status == 202, await resp.text()
        clock.t = 12.9
        for _ in range(4):
            async with http.get(sim.base_url + "/compute/v2.1/servers/detail",
                                headers=headers) as resp:
                assert resp.status == 200
        async with http.get(sim.base_url + "/networking/v2.0/ports", headers=headers) as resp:
            assert resp.status == 200
        counted = sim.request_counts()
        rate = await _get(http, sim.base_url + REQUEST_RATE_PATH)
        truth = await _get(http, sim.base_url + TRUTH_PATH)
        assert sim.request_counts() == counted  # the instruments are not counted
        assert rate["time_scale"] == 1.0
        assert rate["seconds"] == [
            {"second": 10, "total": 2, "services": {"identity": 1, "compute": 1},
             "routes": {"compute POST /servers": 1, "identity POST /auth/tokens": 1}},
            {"second": 12, "total": 5, "services": {"compute": 4, "network": 1},
             "routes": {"compute GET /servers/detail": 4, "network GET /ports": 1}}]
        assert sum(r["total"] for r in rate["seconds"]) == sum(counted.values())
        rows = truth["servers"]
        assert [r["name"] for r in rows] == ["t-1", "t-2", "t-3"]
        assert {r["id"] for r in rows} == set(sim.servers)
        for row in rows:
            tl = sim.servers[row["id"]].timeline
            assert row["create_s"] == 10.2  # the create request's arrival, not its reply
            assert row["active_s"] == tl.active_at and row["active_s"] > row["create_s"]
            assert row["visible_s"] == tl.visible_at and row["deleted_s"] is None
        assert (truth["profile"], truth["seed"], truth["time_scale"]) == ("healthy", 0, 1.0)
        assert not sim.internal_errors


def test_the_rate_keeps_a_bounded_number_of_seconds_in_order() -> None:
    rate = RequestRate()
    key = ("compute", "GET", "/servers/detail")
    for second in range(MAX_SECONDS + 5):
        rate.count(key, float(second))
    rate.count(key, MAX_SECONDS + 3.5)  # an instant read before a later request's count
    rows = rate.rows()
    assert len(rows) == MAX_SECONDS
    assert rows[0]["second"] == 5 and rows[-1]["second"] == MAX_SECONDS + 4
    assert rows[-2] == {"second": MAX_SECONDS + 3, "total": 2, "services": {"compute": 2},
                        "routes": {"compute GET /servers/detail": 2}}
    late = RequestRate()
    late.count(key, 7.2)
    late.count(key, 6.9)  # a new second older than the newest: rows stay in order
    assert [r["second"] for r in late.rows()] == [6, 7]
