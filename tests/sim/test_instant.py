"""One request, one instant: the simulated cloud reads its clock once per request.

A port created between two readings of one request was listed (the later
reading) with no state at the earlier one, whose time its body used: an HTTP 500
(`max() arg is an empty sequence`) that broke the seed-replay runs on a busy
machine. These tests drive the clock by hand, so they hit that window every time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from osbench.clock import ScaledClock
from osbench.sim import SimCloud
from tests.sim.conftest import password_auth


class HandClock(ScaledClock):
    """Modelled time set by the test; each reading moves it on by `step` seconds, so two
    readings in one request see two instants. Counts its readings."""

    def __init__(self) -> None:
        super().__init__(time_scale=1.0)
        self.t = 0.0
        self.step = 0.0
        self.readings = 0

    def monotonic(self) -> float:
        self.readings += 1
        t, self.t = self.t, self.t + self.step
        return t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


@dataclass
class Api:
    """A simulated cloud on loopback whose clock the test holds, and a raw HTTP client."""

    sim: SimCloud
    clock: HandClock
    http: aiohttp.ClientSession
    auth: dict[str, Any]
    headers: dict[str, str]

    async def call(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.sim.base_url + path, json=json,
                                     headers=self.headers) as resp:
            return resp.status, await resp.json() if resp.content_length else None

    async def boot_one(self) -> dict[str, Any]:
        """Create one server; its id and the planned times of its port."""
        server = {"name": "instant", "imageRef": self.sim.image_id,
                  "flavorRef": self.sim.flavor_id, "networks": [{"uuid": self.sim.network_id}]}
        status, body = await self.call("POST", "/compute/v2.1/servers", {"server": server})
        assert status == 202, body
        return {"id": body["server"]["id"],
                "timeline": self.sim.servers[body["server"]["id"]].timeline}


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    clock = HandClock()
    async with SimCloud("healthy") as sim, aiohttp.ClientSession() as http:
        sim.clock = clock
        auth = password_auth(sim)
        async with http.post(sim.auth_url + "/auth/tokens", json=auth) as resp:
            assert resp.status == 201
            token = resp.headers["X-Subject-Token"]
        yield Api(sim, clock, http, auth, {"X-Auth-Token": token})
        assert not sim.internal_errors


async def test_a_port_created_during_a_listing_is_listed_whole_or_not_at_all(api: Api) -> None:
    server = await api.boot_one()
    created = server["timeline"].port_created_at
    assert created is not None
    api.clock.step = 0.2
    seen = []
    # Start each listing a little earlier than the last, from 0.05 s after the port's
    # creation to 1.2 s before it: some start lets any two readings of the clock in
    # one request fall on either side of the creation.
    for k in range(-1, 25):
        api.clock.t = created - 0.05 * k
        status, body = await api.call("GET", "/networking/v2.0/ports")
        assert status == 200, (k, body)
        ports = body["ports"]
        assert all(p["updated_at"] >= p["created_at"] for p in ports)
        seen.append(len(ports))
    assert seen[0] == 1 and seen[-1] == 0  # the window was crossed


async def test_every_request_reads_the_clock_once(api: Api) -> None:
    before = api.clock.readings
    server_id = (await api.boot_one())["id"]
    readings = {"POST /compute/v2.1/servers": api.clock.readings - before}
    timeline = api.sim.servers[server_id].timeline
    assert timeline.active_at is not None
    api.clock.t = timeline.active_at + 1.0
    port_id = api.sim.servers[server_id].port.id  # type: ignore[union-attr]
    project = api.sim.project_id
    calls: list[tuple[str, str, Any]] = [
        ("POST", "/identity/v3/auth/tokens", api.auth),
        ("GET", "/identity/v3/auth/tokens", None),
        ("GET", "/networking/v2.0/ports", None),
        ("GET", f"/networking/v2.0/ports/{port_id}", None),
        ("GET", f"/networking/v2.0/quotas/{project}/details.json", None),
        ("GET", "/compute/v2.1/servers/detail", None),
        ("GET", "/compute/v2.1/servers?changes-since=2000-01-01T00:00:00Z", None),
        ("GET", f"/compute/v2.1/servers/{server_id}", None),
        ("POST", f"/compute/v2.1/servers/{server_id}/action", {"os-getConsoleOutput": {}}),
        ("DELETE", f"/networking/v2.0/ports/{port_id}", None),
        ("DELETE", f"/compute/v2.1/servers/{server_id}", None),
    ]
    for method, path, body in calls:
        api.headers["X-Subject-Token"] = api.headers["X-Auth-Token"]
        before = api.clock.readings
        status, answer = await api.call(method, path, body)
        assert status < 300, (method, path, answer)
        readings[f"{method} {path.split('?')[0]}"] = api.clock.readings - before
    assert set(readings.values()) == {1}, readings
