"""Rally's own Nova scenarios against `osbench sim serve`, unmodified, with 0 errors
(issue 18, part 2).

rally-openstack 4.1.0 (Rally 5.1.1), from its own virtualenv, with its default
configuration, against a simulator served by a process of its own on loopback,
no proxy in between. The verdict is Rally's: every iteration of its JSON report
without an error, no failed iteration, its SLA (failure rate 0) passed, and
nothing logged at ERROR (its cleanup logs failures there, e.g. a 404 on
os-server-groups). The simulator then says every server Rally asked for was
deleted: Rally cleaned up after itself.

The profile `healthy` at time scale 20: an instance is ACTIVE ~2 s after its
create (real time), so the two tasks take ~1 min; the request counts per
instance at time scale 1 are the perf suite's (tests/perf/test_perf_vs_rally.py).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from osbench.sim import SimCloud
from osbench.sim.instruments import TRUTH_PATH
from tests.perf.served import ServedSim
from tests.rally.driver import (
    RallyEnv,
    TaskRun,
    boot_and_delete_multiple_task,
    boot_and_delete_task,
    not_installed_reason,
    rally_command,
)

PROFILE = "healthy"
TIME_SCALE = 20.0
#: boot_and_delete_server: 20 iterations, 10 at a time (two rounds);
#: boot_and_delete_multiple_servers: one request for 20.
TIMES, CONCURRENCY, MULTIPLE = 20, 10, 20


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedSim, RallyEnv]]:
    rally = rally_command()
    if rally is None:
        pytest.fail(not_installed_reason())  # the session installs it: its absence is a failure
    folder = tmp_path_factory.mktemp("rally")
    with ServedSim(PROFILE, folder / "sim", time_scale=TIME_SCALE) as sim:
        auth = sim.entry["auth"]
        env = RallyEnv(rally, folder / "rally", auth_url=auth["auth_url"],
                       region=sim.entry["region_name"], project=auth["project_name"],
                       member=(auth["username"], auth["password"]),
                       admin=(SimCloud.admin_username, SimCloud.admin_password))
        yield sim, env


def truth(sim: ServedSim) -> list[dict[str, Any]]:
    url = sim.counts_url.replace("/osbench-sim/requests", TRUTH_PATH)
    with urllib.request.urlopen(url, timeout=30) as answer:
        rows: list[dict[str, Any]] = json.load(answer)["servers"]
    return rows


def assert_no_errors(run: TaskRun, iterations: int) -> None:
    (workload,) = run.workloads()
    assert run.iteration_errors() == [], run.log[-4000:]
    assert run.logged_errors() == [], run.log[-4000:]
    assert workload["total_iteration_count"] == iterations, workload
    assert workload["failed_iteration_count"] == 0
    assert workload["pass_sla"] is True, workload["sla_results"]
    assert run.returncode == 0, run.log[-4000:]


def test_rally_sees_the_cloud_healthy(served: tuple[ServedSim, RallyEnv]) -> None:
    _, env = served
    out = env.check()  # raises on a non-zero exit, with Rally's message
    assert "existing@openstack" in out and ":-(" not in out, out


def test_boot_and_delete_server_has_no_error(served: tuple[ServedSim, RallyEnv]) -> None:
    sim, env = served
    before = {row["id"] for row in truth(sim)}
    task = boot_and_delete_task(times=TIMES, concurrency=CONCURRENCY, image="cirros-sim",
                                flavor="c1.small", network_id=_network_id(sim))
    run = env.run_task(task, "boot-and-delete")
    assert_no_errors(run, TIMES)
    made = [row for row in truth(sim) if row["id"] not in before]
    assert len(made) == TIMES
    assert all(row["active_s"] is not None and row["deleted_s"] is not None for row in made)
    atomic = {a["name"] for it in run.workloads()[0]["data"] for a in it["atomic_actions"]}
    assert {"nova.boot_server", "nova.delete_server"} <= atomic


def test_boot_and_delete_multiple_servers_has_no_error(
        served: tuple[ServedSim, RallyEnv]) -> None:
    sim, env = served
    before = {row["id"] for row in truth(sim)}
    task = boot_and_delete_multiple_task(count=MULTIPLE, image="cirros-sim", flavor="c1.small",
                                         network_id=_network_id(sim))
    run = env.run_task(task, "boot-and-delete-multiple")
    assert_no_errors(run, 1)
    made = [row for row in truth(sim) if row["id"] not in before]
    assert len(made) == MULTIPLE
    assert len({row["create_s"] for row in made}) == 1  # one create request for all
    assert all(row["active_s"] is not None and row["deleted_s"] is not None for row in made)


def _network_id(sim: ServedSim) -> str:
    """The simulator's network, found as any client would: by name, in Neutron."""
    import openstack

    conn: Any = openstack.connect(load_yaml_config=False, load_envvars=False, **sim.entry)
    try:
        return str(conn.network.find_network("demo-network", ignore_missing=False).id)
    finally:
        conn.close()
