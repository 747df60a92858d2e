"""The simulated cloud's control-plane metrics (issue 16), read from the model's queues.

Most tests read `osbench.sim.metrics` on the model alone, at many modelled
instants (no HTTP): the readings agree with a scan of every planned timeline,
and they show the field notes' mechanisms as queue shapes over seeds 0-4. The
last ones serve them over HTTP, from the embedded simulator and from
`osbench sim serve`.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import urllib.error
import urllib.request
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from osbench.clock import ScaledClock
from osbench.sim import SimCloud, load_profile
from osbench.sim.metrics import (
    CONTENT_TYPE,
    SERVICES,
    ControlPlaneView,
    Snapshot,
    render,
    snapshot,
)
from osbench.sim.model import ControlPlaneModel
from tests.sim.conftest import password_auth
from tests.support.served_sim import ServedSim

ROOT = Path(__file__).resolve().parents[2]

SEEDS = range(5)
WINDOW_S = 2.0
SATURATED = 0.9
GAUGES = ("osbench_sim_service_cores", "osbench_sim_dhcp_agent_backlog_ports",
          "osbench_sim_dhcp_agent_oldest_wait_seconds", "osbench_sim_ports_build",
          "osbench_sim_conductor_queue_builds", "osbench_sim_root_helper_calls_in_flight",
          "osbench_sim_proxy_creates_in_flight", "osbench_sim_create_oldest_in_flight_seconds",
          "osbench_sim_proxy_timeout_seconds", "osbench_sim_modelled_time_seconds")
COUNTERS = ("osbench_sim_service_busy_seconds", "osbench_sim_root_helper_calls")


def planned(profile: str, count: int, seed: int) -> ControlPlaneModel:
    """A model that planned one create of `count` at modelled time 0."""
    model = ControlPlaneModel(load_profile(profile), seed)
    model.plan_batch(0.0, count, [f"server-{i}" for i in range(count)])
    return model


def readings(model: ControlPlaneModel, step_s: float = 1.0) -> list[Snapshot]:
    """Snapshots every `step_s` from 0 until the DHCP agent is done and nothing waits."""
    ends = [t for tl in model.timelines
            for t in (tl.agent_done_at, tl.failed_at, tl.scheduled_at) if t is not None]
    view = ControlPlaneView(model)
    steps = math.ceil((max(ends) + 10.0) / step_s)
    return [view.snapshot(k * step_s) for k in range(steps + 1)]


def conductor_saturated_s(model: ControlPlaneModel) -> float:
    """The longest stretch of consecutive 2 s windows in which the conductor's busy
    fraction (rate of busy_seconds_total / cores) is at least 0.9."""
    snaps = readings(model, WINDOW_S)
    cores = snaps[0].cores["nova-conductor"]
    longest = run = 0
    for before, after in pairwise(snaps):
        busy = after.busy_seconds["nova-conductor"] - before.busy_seconds["nova-conductor"]
        run = run + 1 if busy / (WINDOW_S * cores) >= SATURATED else 0
        longest = max(longest, run)
    return longest * WINDOW_S


# -- a scan of every timeline: the definitions, read the slow way --------------------
def scanned(model: ControlPlaneModel, now: float,
            deleted: list[float | None]) -> dict[str, Any]:
    """Every metric from its definition in profiles/README.md, by a scan of the plan."""
    neutron = model.profile.neutron

    def busy(start: float, end: float) -> float:
        return max(0.0, min(now, end) - start)

    api_open = sorted((c.t0, min(now, c.t0 + c.api_seconds)) for c in model.creates)
    api_busy, covered_to = 0.0, -math.inf
    for start, end in api_open:  # the union: nova-api is busy while any create is
        start = max(start, covered_to)
        api_busy += max(0.0, end - start)
        covered_to = max(covered_to, end)
    in_flight = [now - c.t0 for c in model.creates if c.t0 <= now < c.t0 + c.api_seconds]
    figures: dict[str, Any] = {
        "busy": {"nova-api": api_busy, "nova-conductor": 0.0, "neutron-server": 0.0,
                 "neutron-dhcp-agent": 0.0},
        "queue": 0, "backlog": 0, "oldest": 0.0, "build": 0, "calls": 0, "calling": 0,
        "in_flight": len(in_flight), "create_oldest": max(in_flight, default=0.0)}
    for tl in model.timelines:
        if tl.build_start_at is None:  # timed out in the queue
            assert tl.failed_at is not None
            figures["queue"] += tl.visible_at <= now < tl.failed_at
            continue
        assert tl.scheduled_at is not None
        figures["busy"]["nova-conductor"] += busy(tl.build_start_at, tl.scheduled_at)
        figures["queue"] += tl.visible_at <= now < tl.build_start_at
    ports = [tl for tl in model.timelines if tl.port_created_at is not None]
    for tl, api_deleted in zip(ports, deleted or [None] * len(ports), strict=True):
        created, bound = tl.port_created_at, tl.port_bound_at
        start, done = tl.agent_start_at, tl.agent_done_at
        assert created is not None and bound is not None
        assert start is not None and done is not None
        figures["busy"]["neutron-server"] += busy(created - neutron.port_create_s, created)
        figures["busy"]["neutron-dhcp-agent"] += busy(start, done)
        gone = min((t for t in (tl.port_deleted_at, api_deleted) if t is not None),
                   default=math.inf)
        exists = created <= now < gone
        if exists and now < done:
            figures["backlog"] += 1
            figures["oldest"] = max(figures["oldest"], now - created)
        active = tl.port_active_at
        figures["build"] += exists and bound <= now and (active is None or now < active)
        segment = (done - start) / neutron.dhcp_updates_per_port
        for k in range(1, neutron.dhcp_updates_per_port + 1):
            call_start = start + k * segment - neutron.privileged_call_s
            figures["calls"] += call_start <= now
            figures["calling"] += call_start <= now < start + k * segment
    return figures


@pytest.mark.parametrize("profile", ["small-pets", "big-pets", "vif-fatal", "rootwrap-daemon"])
@pytest.mark.parametrize("deleted_share", [0.0, 0.3])
def test_readings_agree_with_a_scan_of_every_timeline(profile: str,
                                                      deleted_share: float) -> None:
    model = ControlPlaneModel(load_profile(profile), seed=1)
    # Two creates, the second while nova-api still serves the first.
    model.plan_batch(0.0, 90, [f"a-{i}" for i in range(90)])
    model.plan_batch(4.0, 60, [f"b-{i}" for i in range(60)])
    view = ControlPlaneView(model)
    rng = random.Random(f"{profile}/{deleted_share}")
    end = max(tl.agent_done_at or tl.failed_at or 0.0 for tl in model.timelines) + 5.0
    deleted = [rng.uniform(0.0, end) if rng.random() < deleted_share else None
               for _ in view.ports]
    for now in sorted(rng.uniform(0.0, end) for _ in range(200)):
        snap = view.snapshot(now, deleted)
        want = scanned(model, now, deleted)
        got = {"queue": snap.conductor_queue_builds, "backlog": snap.dhcp_agent_backlog_ports,
               "oldest": snap.dhcp_agent_oldest_wait_s, "build": snap.ports_build,
               "calls": snap.root_helper_calls_total,
               "calling": snap.root_helper_calls_in_flight,
               "in_flight": snap.proxy_creates_in_flight,
               "create_oldest": snap.create_oldest_in_flight_s}
        assert got == pytest.approx({k: want[k] for k in got}), now
        assert snap.busy_seconds == pytest.approx(want["busy"]), now
        assert snap.modelled_time_s == now


def test_a_deleted_port_leaves_the_backlog_and_build_but_its_work_still_counts() -> None:
    model = planned("big-pets", 200, 0)
    view = ControlPlaneView(model)
    now = 250.0
    before = view.snapshot(now)
    waiting = next(i for i, tl in enumerate(view.ports)
                   if tl.port_bound_at is not None and tl.port_bound_at <= now
                   and tl.agent_start_at is not None and tl.agent_start_at > now)
    deleted: list[float | None] = [None] * len(view.ports)
    deleted[waiting] = now - 1.0
    after = view.snapshot(now, deleted)
    assert after.dhcp_agent_backlog_ports == before.dhcp_agent_backlog_ports - 1
    assert after.ports_build == before.ports_build - 1
    assert after.busy_seconds == before.busy_seconds
    assert after.root_helper_calls_total == before.root_helper_calls_total
    # The oldest port in the backlog deleted: the next oldest is the oldest.
    oldest = min((i for i, tl in enumerate(view.ports)
                  if tl.port_created_at is not None and tl.port_created_at <= now
                  and tl.agent_done_at is not None and tl.agent_done_at > now),
                 key=lambda i: view.ports[i].port_created_at or 0.0)
    deleted[oldest] = now - 1.0
    assert view.snapshot(now, deleted).dhcp_agent_oldest_wait_s < before.dhcp_agent_oldest_wait_s
    assert scanned(model, now, deleted)["oldest"] == pytest.approx(
        view.snapshot(now, deleted).dhcp_agent_oldest_wait_s)


def test_the_text_parses_with_help_and_type_and_says_the_snapshot() -> None:
    model = planned("rootwrap-daemon", 400, 0)
    snap = snapshot(model, 30.0)
    text = render(snap)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == {*GAUGES, *COUNTERS}
    for name in COUNTERS:
        assert families[name].type == "counter"
        assert f"# TYPE {name}_total counter" in text and f"# HELP {name}_total " in text
    for name in GAUGES:
        assert families[name].type == "gauge"
        assert f"# TYPE {name} gauge" in text and f"# HELP {name} " in text
    busy = {s.labels["service"]: s.value for s in families[COUNTERS[0]].samples}
    cores = {s.labels["service"]: s.value for s in families["osbench_sim_service_cores"].samples}
    assert busy == pytest.approx(snap.busy_seconds) and set(busy) == set(SERVICES)
    assert cores == {"nova-api": 1, "nova-conductor": 16, "neutron-server": 16,
                     "neutron-dhcp-agent": 1}
    value = {name: families[name].samples[0].value for name in GAUGES[1:]}
    assert value["osbench_sim_dhcp_agent_backlog_ports"] == snap.dhcp_agent_backlog_ports > 0
    assert value["osbench_sim_proxy_creates_in_flight"] == 1
    assert value["osbench_sim_create_oldest_in_flight_seconds"] == 30.0
    assert value["osbench_sim_proxy_timeout_seconds"] == 60.0
    assert value["osbench_sim_modelled_time_seconds"] == 30.0
    calls = families["osbench_sim_root_helper_calls"].samples[0]
    assert calls.name == "osbench_sim_root_helper_calls_total"
    assert calls.value == snap.root_helper_calls_total > 0


# -- the field notes' mechanisms, as the queues show them -----------------------------
def test_small_pets_keep_the_conductor_saturated_far_longer_than_big_pets() -> None:
    small = [conductor_saturated_s(planned("small-pets", 100, seed)) for seed in SEEDS]
    big = [conductor_saturated_s(planned("big-pets", 100, seed)) for seed in SEEDS]
    figures = f"saturated seconds over seeds 0-4: small pets {small}, big pets {big}"
    # Small pets: 100 builds of ~3 s on 4 workers, ~75 s of work; big pets: 1.5 s
    # builds on 16 workers keep up with nova-api's 10 per second after a few seconds.
    assert min(small) >= 50, figures
    assert max(big) <= 20, figures
    assert min(small) >= 3 * max(big), figures


@pytest.mark.parametrize("profile", ["big-pets", "vif-fatal"])
def test_through_rootwrap_the_dhcp_backlog_outlasts_the_guests_dhcp_timeout(
        profile: str) -> None:
    dhcp_timeout = load_profile(profile).guest.dhcp_timeout_s
    for seed in SEEDS:
        snaps = readings(planned(profile, 200, seed))
        peak = max(snaps, key=lambda s: s.dhcp_agent_backlog_ports)
        oldest = max(s.dhcp_agent_oldest_wait_s for s in snaps)
        figures = (f"{profile} 200, seed {seed}: peak backlog {peak.dhcp_agent_backlog_ports} "
                   f"ports at {peak.modelled_time_s:.0f} s ({peak.ports_build} BUILD), "
                   f"oldest wait {oldest:.0f} s against dhcp_timeout_s {dhcp_timeout:.0f}")
        assert peak.dhcp_agent_backlog_ports > 150, figures
        assert peak.ports_build > 150, figures
        assert oldest > dhcp_timeout, figures


@pytest.mark.parametrize("count", [200, 400])
def test_with_the_daemon_the_oldest_wait_stays_well_below_the_dhcp_timeout(count: int) -> None:
    dhcp_timeout = load_profile("rootwrap-daemon").guest.dhcp_timeout_s
    oldest = [max(s.dhcp_agent_oldest_wait_s for s in readings(
        planned("rootwrap-daemon", count, seed))) for seed in SEEDS]
    figures = (f"rootwrap-daemon {count}: oldest wait over seeds 0-4 "
               f"{[round(w, 1) for w in oldest]} s against dhcp_timeout_s {dhcp_timeout:.0f}")
    assert max(oldest) < dhcp_timeout / 4, figures


def test_only_the_1000_create_outlasts_the_proxy_timeout() -> None:
    for seed in SEEDS:
        at_1000 = readings(planned("rootwrap-daemon", 1000, seed))
        timeout = at_1000[0].proxy_timeout_s
        late = [s for s in at_1000 if s.create_oldest_in_flight_s > timeout]
        assert late, f"seed {seed}: the 1000 create never outlasted the {timeout:.0f} s proxy"
        assert {s.proxy_creates_in_flight for s in late} == {1}, seed
        figures = (f"seed {seed}: the 1000 create in flight past the proxy's {timeout:.0f} s "
                   f"from {late[0].modelled_time_s:.0f} s to {late[-1].modelled_time_s:.0f} s")
        assert late[-1].create_oldest_in_flight_s == pytest.approx(100, abs=1.0), figures
        at_400 = readings(planned("rootwrap-daemon", 400, seed))
        longest = max(s.create_oldest_in_flight_s for s in at_400)
        assert longest < timeout, f"seed {seed}: the 400 create was in flight {longest:.1f} s"


# -- served over HTTP --------------------------------------------------------------------
class HandClock(ScaledClock):
    """Modelled time the test sets; a sleep moves it on at once."""

    def __init__(self) -> None:
        super().__init__(time_scale=1.0)
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


async def _token(http: aiohttp.ClientSession, sim: SimCloud) -> str:
    async with http.post(sim.auth_url + "/auth/tokens", json=password_auth(sim)) as resp:
        assert resp.status == 201
        return resp.headers["X-Subject-Token"]


async def _scrape(http: aiohttp.ClientSession, sim: SimCloud,
                  token: str | None) -> tuple[int, str, str]:
    headers = {"X-Auth-Token": token} if token is not None else {}
    async with http.get(sim.metrics_url, headers=headers) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def test_the_endpoint_is_admin_only_parses_and_is_not_counted() -> None:
    clock = HandClock()
    async with SimCloud("rootwrap-daemon") as sim, aiohttp.ClientSession() as http:
        sim.clock = clock
        assert sim.metrics_url == f"{sim.base_url}/osbench-sim/metrics"
        token = await _token(http, sim)
        counted = sim.request_counts()
        status, _, body = await _scrape(http, sim, None)
        assert status == 401, body
        assert json.loads(body)["error"]["code"] == 401
        assert (await _scrape(http, sim, "not-a-token"))[0] == 401
        status, content_type, text = await _scrape(http, sim, token)
        assert status == 200, text
        assert content_type == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
        assert {f.name for f in text_string_to_metric_families(text)} == {*GAUGES, *COUNTERS}
        assert sim.request_counts() == counted  # neither the 401s nor the 200 counted
        clock.t = sim.profile.keystone.token_ttl_s + 1.0  # the token has expired
        assert (await _scrape(http, sim, token))[0] == 401
        assert not sim.internal_errors


async def test_the_endpoint_reads_the_plan_at_the_request_instant() -> None:
    clock = HandClock()
    async with SimCloud("big-pets") as sim, aiohttp.ClientSession() as http:
        sim.clock = clock
        token = await _token(http, sim)
        headers = {"X-Auth-Token": token}
        server = {"name": "m", "imageRef": sim.image_id, "flavorRef": sim.flavor_id,
                  "networks": [{"uuid": sim.network_id}], "min_count": 40, "max_count": 40}
        async with http.post(sim.base_url + "/compute/v2.1/servers", json={"server": server},
                             headers=headers) as resp:
            assert resp.status == 202, await resp.text()
        # The DHCP agent (2.2 s a port through rootwrap) is behind nova-compute here.
        clock.t = 30.0
        status, _, text = await _scrape(http, sim, token)
        assert status == 200, text
        assert text == render(sim.metrics_snapshot(30.0))
        before = sim.metrics_snapshot(30.0)
        assert before.modelled_time_s == 30.0
        assert before.dhcp_agent_backlog_ports > 5 and before.ports_build > 5, before
        assert before.busy_seconds["nova-conductor"] > 0, before
        # Delete a server whose port is bound and still waits at the agent.
        waiting = next(s for s in sim.servers.values() if s.port is not None
                       and (s.port.timeline.port_bound_at or math.inf) <= 30.0
                       and (s.port.timeline.agent_start_at or 0.0) > 30.0)
        async with http.delete(f"{sim.base_url}/compute/v2.1/servers/{waiting.id}",
                               headers=headers) as resp:
            assert resp.status == 204
        families = {f.name: f for f in text_string_to_metric_families(
            (await _scrape(http, sim, token))[2])}

        def value(name: str) -> float:
            return float(families[name].samples[0].value)

        assert value("osbench_sim_dhcp_agent_backlog_ports") == (
            before.dhcp_agent_backlog_ports - 1)
        assert value("osbench_sim_ports_build") == before.ports_build - 1
        busy = {s.labels["service"]: s.value
                for s in families["osbench_sim_service_busy_seconds"].samples}
        assert busy == pytest.approx(before.busy_seconds)  # its work was planned, and counts
        assert not sim.internal_errors


def test_sim_serve_serves_the_metrics(tmp_path: Path) -> None:
    sim = ServedSim(tmp_path / "clouds.yaml", "--profile", "small-pets")
    try:
        auth = sim.entry["auth"]
        base = auth["auth_url"].removesuffix("/identity/v3")
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "password": auth["password"],
            "domain": {"name": "Default"}}}}}}
        request = urllib.request.Request(
            auth["auth_url"] + "/auth/tokens", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            token = reply.headers["X-Subject-Token"]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "/osbench-sim/metrics", timeout=10)
        refused.value.close()
        assert refused.value.code == 401
        request = urllib.request.Request(base + "/osbench-sim/metrics",
                                         headers={"X-Auth-Token": token})
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.headers["Content-Type"] == CONTENT_TYPE
            text = reply.read().decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        cores = {s.labels["service"]: s.value
                 for s in families["osbench_sim_service_cores"].samples}
        assert cores["nova-conductor"] == 4  # the small pets' cores
    finally:
        err = sim.stop()
    assert sim.proc.returncode == 0, err
