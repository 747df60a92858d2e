"""API requests to follow N booting instances, counted at the simulated cloud:
osbench's tracker next to openstacksdk's `wait_for_server` per instance, at
N = 10, 100 and 1000 (issue 15: the per-server figure used to be `= N`,
computed; now both are measured).

Both run against the same served simulator (`osbench sim serve`, a fresh one
for each: tests/perf/served.py), same profile (healthy: the create is answered
at every N, so the naive client gets its servers), seed and time scale, and
the simulator counts every request it serves (`GET /osbench-sim/requests`).

- osbench: `osbench run` against it (`--cloud`), the poll interval its default
  5 modelled s. Its tracker lists only what changed in the run
  (`changes-since`) and the run's ports with one filtered list per cycle, so
  its cost per cycle is flat in N. `cleanup: never` (the simulator is thrown
  away), so every server listing the simulator counts is a poll's.
- openstacksdk, as a naive tool or Rally's runner waits: one multi-create of
  N, one listing of the N servers, then `conn.compute.wait_for_server(server)`
  for each in turn, at the SDK's default interval (2 s, given in modelled
  seconds: 2/time scale of real time). A server already ACTIVE in the listing
  costs no request; every other one costs a `GET /servers/{id}` per interval
  until it is. Only the requests of the waits are counted.

The two follow different spans: the SDK stops when the last server is ACTIVE,
osbench when the last guest has phoned home (later). So both totals and rates
(requests per modelled minute of following) are reported.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import openstack
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from osbench import results
from tests.perf.conftest import Figures
from tests.perf.served import ServedSim, boot_served

PROFILE = "healthy"
#: Low enough that the naive client's own time per request (~10-30 ms here)
#: stays small next to its 2 s interval in modelled time; at 20 a loop of 1000
#: GETs spent ~500 modelled s and its figures measured the client's speed.
TIME_SCALE = 5.0
#: osbench's default poll interval and openstacksdk's wait_for_server interval,
#: modelled seconds.
POLL_INTERVAL_S = 5.0
SDK_INTERVAL_S = 2.0
#: openstacksdk's default `wait` is 120 s; a 1000 boot takes ~215 modelled s to
#: be all ACTIVE, so the naive client is given the boot kind's active_timeout_s.
SDK_WAIT_S = 900.0
#: One server listing and one port listing per cycle, whatever N
#: (tests/boot/test_polling.py checks the same at 10 and 1000).
REQUESTS_PER_CYCLE = 2.0
SERVER_LISTING = ("compute", "GET", "/servers/detail")
PORT_LISTING = ("network", "GET", "/ports")
SERVER_SHOW = ("compute", "GET", "/servers/{server_id}")
#: GETs timed after the waits for the real time of one.
LATENCY_SAMPLES = 10


def scenario_yaml(count: int) -> str:
    s = TIME_SCALE
    return f"""\
name: perf-polling-{count}
kind: boot
params:
  count: {count}
  image: cirros-sim
  flavor: c1.small
  networks: [demo-network]
  phone_home_port: 0
  poll_interval_s: {POLL_INTERVAL_S / s:g}
  active_timeout_s: {900 / s:g}
  phone_home_timeout_s: {1200 / s:g}
  create_outcome_wait_s: {600 / s:g}
  cleanup: never
sla: ["phone_home_ok_pct == 100"]
"""


def sdk_naive_waits(sim: ServedSim, count: int) -> dict[str, Any]:
    """Boot `count` with openstacksdk and wait for each server in turn, as a naive
    tool does; the simulator's count of the waits' requests, and their span."""
    conn: Any = openstack.connect(load_yaml_config=False, load_envvars=False, **sim.entry)
    try:
        image = conn.image.find_image("cirros-sim", ignore_missing=False)
        flavor = conn.compute.find_flavor("c1.small", ignore_missing=False)
        network = conn.network.find_network("demo-network", ignore_missing=False)
        conn.compute.create_server(name="naive", image_id=image.id, flavor_id=flavor.id,
                                   networks=[{"uuid": network.id}], min_count=count,
                                   max_count=count)
        servers = list(conn.compute.servers(name="^naive"))
        assert len(servers) == count
        active_in_listing = sum(s.status == "ACTIVE" for s in servers)
        before = sim.request_counts()
        start = time.perf_counter()
        for server in servers:
            conn.compute.wait_for_server(server, interval=SDK_INTERVAL_S / TIME_SCALE,
                                         wait=SDK_WAIT_S / TIME_SCALE)
        span_s = time.perf_counter() - start
        counts = sim.request_counts() - before
        # One GET's real time, client and simulator together (not counted above).
        latencies = []
        for server in servers[:LATENCY_SAMPLES]:
            t0 = time.perf_counter()
            conn.compute.get_server(server)
            latencies.append(time.perf_counter() - t0)
    finally:
        conn.close()
    return {"counts": counts, "span_modelled_s": span_s * TIME_SCALE,
            "active_in_listing": active_in_listing,
            "get_ms": 1000 * statistics.median(latencies)}


@pytest.mark.parametrize("count", [10, 100, 1000])
def test_poll_cost_osbench_and_sdk(count: int, benchmark: BenchmarkFixture, tmp_path: Path,
                                   figures: Figures) -> None:
    scenario = tmp_path / f"perf-polling-{count}.yaml"
    scenario.write_text(scenario_yaml(count), encoding="utf-8")
    with ServedSim(PROFILE, tmp_path / "sim-osbench", time_scale=TIME_SCALE) as sim:
        m = benchmark.pedantic(boot_served, args=(sim, scenario, tmp_path / "results"),
                               rounds=1, iterations=1)
    assert m["status"] == "completed", m["errors"]
    run = results.load(Path(m["path"]))
    polls = run.table("polls")
    cycles = len(polls)
    assert cycles >= 3
    assert bool((run.table("instances")["outcome"] == "ok").all())
    counts: Counter[tuple[str, str, str]] = m["sim_request_counts"]
    assert counts[SERVER_SHOW] == 0  # osbench never asks for one server
    nova = counts[SERVER_LISTING]
    neutron = counts[PORT_LISTING]
    # Nova caps a page at 1000: a cycle in which all 1000 changed follows one
    # `next` link. That is the only extra request.
    assert cycles <= nova <= cycles + 1
    assert neutron == cycles
    median_per_cycle = float(polls["requests"].median())
    assert median_per_cycle == REQUESTS_PER_CYCLE
    ours_span_s = float(polls["t_s"].max()) * TIME_SCALE  # real s on its clock -> modelled

    with ServedSim(PROFILE, tmp_path / "sim-sdk", time_scale=TIME_SCALE) as sim:
        sdk = sdk_naive_waits(sim, count)
    sdk_counts: Counter[tuple[str, str, str]] = sdk["counts"]
    sdk_gets = sdk_counts[SERVER_SHOW]
    assert sum(sdk_counts.values()) == sdk_gets  # the waits make no other request
    waited = count - sdk["active_in_listing"]
    assert sdk_gets >= waited

    ours = nova + neutron
    figures_ = {
        "instances": count, "time_scale": TIME_SCALE, "profile": PROFILE,
        "osbench_cycles": cycles,
        "osbench_poll_interval_modelled_s": POLL_INTERVAL_S,
        "osbench_requests_per_cycle_median": median_per_cycle,
        "osbench_nova_requests": nova, "osbench_neutron_requests": neutron,
        "osbench_nova_requests_per_cycle": round(nova / cycles, 3),
        "osbench_requests": ours,
        "osbench_span_modelled_s": round(ours_span_s, 1),
        "osbench_requests_per_modelled_min": round(60 * ours / ours_span_s, 2),
        "sdk_interval_modelled_s": SDK_INTERVAL_S,
        "sdk_get_server_requests": sdk_gets,
        "sdk_servers_active_in_listing": sdk["active_in_listing"],
        "sdk_get_server_per_instance": round(sdk_gets / count, 3),
        "sdk_span_modelled_s": round(sdk["span_modelled_s"], 1),
        "sdk_requests_per_modelled_min": round(60 * sdk_gets / sdk["span_modelled_s"], 2),
        "sdk_get_server_median_real_ms": round(sdk["get_ms"], 2),
        "sim_cpu_s_osbench_run": round(m["sim_cpu_s"], 2),
    }
    benchmark.extra_info.update(figures_)
    benchmark.extra_info["what"] = (
        "requests counted at the simulator; the timed round is the osbench run's "
        "process (child.py --cloud), the SDK's waits are not timed")
    figures(f"polling N={count}",
            f"counted at the simulator. osbench: {ours} requests ({nova} server + {neutron} "
            f"port listings) over {cycles} cycles of {POLL_INTERVAL_S:g} s = "
            f"{ours / cycles:.2f}/cycle, {figures_['osbench_requests_per_modelled_min']:.1f}"
            f"/min over {ours_span_s:.0f} s to the last phone-home. openstacksdk "
            f"wait_for_server per instance, in turn: {sdk_gets} GET /servers/{{id}} "
            f"({sdk_gets / count:.2f}/instance; {sdk['active_in_listing']} already ACTIVE "
            f"when listed), {figures_['sdk_requests_per_modelled_min']:.1f}/min over "
            f"{sdk['span_modelled_s']:.0f} s to the last ACTIVE (one GET {sdk['get_ms']:.0f} ms "
            f"real); modelled s, time scale {TIME_SCALE:g}")
