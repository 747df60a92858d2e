"""The simulated cloud's own clock, as a client reads it: Nova's `launched_at` and
instance actions carry the model's instants to the microsecond, Neutron's port
`updated_at` the second of the port's ACTIVE, and every reply's `Date` header
the request's modelled instant (issue 18). The clock is held by the test."""

from __future__ import annotations

import email.utils
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from osbench.sim import SimCloud
from tests.sim.conftest import password_auth
from tests.sim.test_instant import Api, HandClock


async def _api(profile: str) -> AsyncIterator[Api]:
    clock = HandClock()
    async with SimCloud(profile) as sim, aiohttp.ClientSession() as http:
        sim.clock = clock
        auth = password_auth(sim)
        async with http.post(sim.auth_url + "/auth/tokens", json=auth) as resp:
            assert resp.status == 201, (await resp.text(), sim.internal_errors)
            token = resp.headers["X-Subject-Token"]
        yield Api(sim, clock, http, auth, {"X-Auth-Token": token})
        assert not sim.internal_errors


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async for a in _api("healthy"):
        yield a


def _wall(api: Api, t: float) -> datetime:
    return api.sim.wall_origin + timedelta(seconds=t)


def _nova_time(text: str) -> datetime:
    """Nova's naive UTC timestamp (`2026-11-30T21:00:00.123456`)."""
    assert not text.endswith("Z") and "+" not in text, text
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def _get(api: Api, path: str, version: str = "2.1") -> tuple[int, Any, Any]:
    headers = {**api.headers, "OpenStack-API-Version": f"compute {version}"}
    async with api.http.get(api.sim.base_url + path, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_launched_at_is_the_models_active_to_the_microsecond(api: Api) -> None:
    server = await api.boot_one()
    tl = server["timeline"]
    assert tl.active_at is not None
    api.clock.t = tl.active_at - 0.001
    _, body, _ = await _get(api, f"/compute/v2.1/servers/{server['id']}")
    assert body["server"]["status"] == "BUILD"
    assert body["server"]["OS-SRV-USG:launched_at"] is None
    api.clock.t = tl.active_at + 7.3
    _, body, _ = await _get(api, f"/compute/v2.1/servers/{server['id']}")
    launched = _nova_time(body["server"]["OS-SRV-USG:launched_at"])
    # To the microsecond (it was whole seconds and ".000000" before).
    assert abs((launched - _wall(api, tl.active_at)).total_seconds()) <= 1e-6


async def test_date_header_is_the_requests_modelled_instant(api: Api) -> None:
    for t in (0.0, 12.25, 99.999, 1000.5):
        api.clock.t = t
        _, _, headers = await _get(api, "/compute/v2.1/flavors")
        date = email.utils.parsedate_to_datetime(headers["Date"])
        truth = _wall(api, t)
        # An HTTP date names the second: the instant, truncated.
        assert date == truth.replace(microsecond=0), (t, headers["Date"])


async def test_port_updated_at_is_the_second_it_went_active(api: Api) -> None:
    server = await api.boot_one()
    tl = server["timeline"]
    api.clock.t = tl.port_active_at + 30.0
    _, body, _ = await _get(api, "/networking/v2.0/ports")
    (port,) = [p for p in body["ports"] if p["device_id"] == server["id"]]
    assert port["status"] == "ACTIVE"
    updated = datetime.fromisoformat(port["updated_at"].replace("Z", "+00:00"))
    assert updated == _wall(api, tl.port_active_at).replace(microsecond=0)


async def test_a_built_server_has_a_create_action_with_its_events(api: Api) -> None:
    server = await api.boot_one()
    tl = server["timeline"]
    base = f"/compute/v2.1/servers/{server['id']}/os-instance-actions"
    api.clock.t = tl.active_at + 5.0
    status, body, _ = await _get(api, base)
    assert status == 200
    (action,) = body["instanceActions"]
    assert action["action"] == "create" and action["message"] is None
    assert action["instance_uuid"] == server["id"] and action["request_id"].startswith("req-")
    assert "updated_at" not in action  # from 2.58
    # Before 2.51 a member sees no events (admin-only by Nova's default policy).
    _, shown, _ = await _get(api, f"{base}/{action['request_id']}")
    assert "events" not in shown["instanceAction"]
    _, shown, _ = await _get(api, f"{base}/{action['request_id']}", "2.84")
    detail = shown["instanceAction"]
    assert _nova_time(detail["updated_at"]) == _nova_time(_wall(api, tl.active_at).strftime(
        "%Y-%m-%dT%H:%M:%S.%f"))
    events = {e["event"]: e for e in detail["events"]}
    assert set(events) == {"conductor_schedule_and_build_instances",
                           "compute__do_build_and_run_instance"}
    compute = events["compute__do_build_and_run_instance"]
    assert compute["result"] == "Success" and compute["details"] is None
    assert abs((_nova_time(compute["finish_time"]) - _wall(api, tl.active_at)
                ).total_seconds()) <= 1e-6
    assert abs((_nova_time(compute["start_time"]) - _wall(api, tl.scheduled_at)
                ).total_seconds()) <= 1e-6
    # Policy: no traceback or host for a member; hostId is Nova's sha224.
    assert "traceback" not in compute and "host" not in compute
    assert compute["hostId"] == hashlib.sha224(
        (api.sim.project_id + tl.host).encode()).hexdigest()
    # While it builds, the compute event has no finish and no result.
    api.clock.t = (tl.scheduled_at + tl.active_at) / 2
    _, shown, _ = await _get(api, f"{base}/{action['request_id']}", "2.51")
    events = {e["event"]: e for e in shown["instanceAction"]["events"]}
    assert events["compute__do_build_and_run_instance"]["finish_time"] is None
    assert events["compute__do_build_and_run_instance"]["result"] is None
    assert events["conductor_schedule_and_build_instances"]["result"] == "Success"
    status, missing, _ = await _get(api, f"{base}/req-00000000-0000-0000-0000-000000000000")
    assert status == 404 and "itemNotFound" in missing
    # An admin sees events at 2.1 already, with traceback, and the host from 2.62.
    auth = password_auth(api.sim)
    auth["auth"]["identity"]["password"]["user"].update(
        name=api.sim.admin_username, password=api.sim.admin_password)
    async with api.http.post(api.sim.auth_url + "/auth/tokens", json=auth) as resp:
        assert resp.status == 201
        api.headers["X-Auth-Token"] = resp.headers["X-Subject-Token"]
    _, shown, _ = await _get(api, f"{base}/{action['request_id']}")
    assert all("traceback" in e and "host" not in e for e in shown["instanceAction"]["events"])
    _, shown, _ = await _get(api, f"{base}/{action['request_id']}", "2.62")
    events = {e["event"]: e for e in shown["instanceAction"]["events"]}
    assert events["compute__do_build_and_run_instance"]["host"] == tl.host


@pytest.mark.parametrize(("profile", "count", "event"), [
    ("vif-fatal", 200, "compute__do_build_and_run_instance"),
    ("small-pets", 100, "conductor_schedule_and_build_instances"),
])
async def test_a_failed_build_has_an_error_event_at_the_models_failure(
        profile: str, count: int, event: str) -> None:
    async for api in _api(profile):
        request = {"server": {"name": "fail", "imageRef": api.sim.image_id,
                              "flavorRef": api.sim.flavor_id, "min_count": count,
                              "networks": [{"uuid": api.sim.network_id}]}}
        status, _ = await api.call("POST", "/compute/v2.1/servers", request)
        assert status == 202
        failed = [s for s in api.sim.servers.values() if s.timeline.failed_at is not None]
        assert failed, f"{profile} {count}: no failure planned"
        server = failed[0]
        tl = server.timeline
        assert tl.failed_at is not None
        api.clock.t = max(t.failed_at or 0.0 for t in (s.timeline for s in failed)) + 1.0
        base = f"/compute/v2.1/servers/{server.id}/os-instance-actions"
        _, body, _ = await _get(api, base, "2.84")
        (action,) = body["instanceActions"]
        assert action["message"] == "Error"
        _, shown, _ = await _get(api, f"{base}/{action['request_id']}", "2.84")
        errors = [e for e in shown["instanceAction"]["events"] if e["result"] == "Error"]
        assert [e["event"] for e in errors] == [event]
        assert abs((_nova_time(errors[0]["finish_time"]) - _wall(api, tl.failed_at)
                    ).total_seconds()) <= 1e-6
        assert tl.fault is not None and errors[0]["details"] == tl.fault.message
        # The server's listing says ERROR, with no launched_at.
        _, listed, _ = await _get(api, f"/compute/v2.1/servers/{server.id}")
        assert listed["server"]["status"] == "ERROR"
        assert listed["server"]["OS-SRV-USG:launched_at"] is None


async def test_a_deleted_servers_actions_are_listed_from_2_21(api: Api) -> None:
    server = await api.boot_one()
    api.clock.t = server["timeline"].active_at + 1.0
    status, _ = await api.call("DELETE", f"/compute/v2.1/servers/{server['id']}")
    assert status == 204
    base = f"/compute/v2.1/servers/{server['id']}/os-instance-actions"
    status, _, _ = await _get(api, base, "2.20")
    assert status == 404
    status, body, _ = await _get(api, base, "2.21")
    assert status == 200
    assert [a["action"] for a in body["instanceActions"]] == ["delete", "create"]
