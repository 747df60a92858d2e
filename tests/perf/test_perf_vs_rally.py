"""osbench against Rally and openstacksdk, side by side in one run (issue 18, part 3).

Each tool boots the same N = 100 instances on a simulated cloud of its own
(`osbench sim serve`, a process per tool: tests/perf/served.py), all four the
same profile (`healthy`), seed and time scale 1 (modelled seconds are real
seconds: Rally and the SDK poll at real-time intervals, so only at 1 do their
request counts mean what they would on a cloud). The four run at once, each
against its own simulator, to keep the run to the longest of them (Rally per
server, ~15 min); no simulator sees another's requests.

- osbench: `osbench run`, the boot kind, one create of N, its default 5 s poll
  interval, phone-home on, cleanup always (tests/perf/child.py, `--cloud`);
- Rally, `NovaServers.boot_and_delete_multiple_servers`: one request for N;
- Rally, `NovaServers.boot_and_delete_server`: N iterations at concurrency 10;
  both rally-openstack 4.1.0 unmodified, from Rally's own virtualenv
  (tests/rally/driver.py), its default intervals (1 s before the first poll,
  then every 2 s);
- openstacksdk: N threads, each creates one server, `wait_for_server` (its
  default 2 s interval; `wait` raised to 600 s, as its default 120 s is shorter
  than a boot here), then deletes it.

Measured at the simulator, for each, over its own run:
- requests per instance: all of them, and the status reads (GET of a server,
  the server listings, the port listings: what a client sends while it waits);
- peak requests per second (`GET /osbench-sim/request-rate`): of the status
  reads (the load of waiting), and of all requests (bursts of deletes count);
- the precision of each instance's time to ACTIVE: the time the tool reports
  minus the model's truth (`GET /osbench-sim/truth`: ACTIVE minus the arrival
  of the create request). Rally's per-server time is its `nova.boot_server`
  atomic action, each iteration matched to its server by the simulator's
  create and delete times (nearest first; the largest gap is printed); Rally's
  multiple-server scenario reports one time for all N (`nova.boot_servers`),
  so each instance's error is that time minus its own truth; the SDK's is the
  thread's create-to-ACTIVE.

Without Rally (no .nox/rally-venv), the benchmark says so and shows the others.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import openstack
from pytest_benchmark.fixture import BenchmarkFixture

from osbench import results
from osbench.sim import SimCloud
from osbench.sim.instruments import REQUEST_RATE_PATH, TRUTH_PATH
from tests.perf.conftest import Figures
from tests.perf.served import ServedSim, boot_served
from tests.rally.driver import (
    RallyEnv,
    boot_and_delete_multiple_task,
    boot_and_delete_task,
    not_installed_reason,
    rally_command,
)
from tests.sim.conftest import SDK_INTERNAL_WARNINGS

pytestmark = SDK_INTERNAL_WARNINGS

N = 100
PROFILE = "healthy"
#: `OSBENCH_VS_RALLY_SEED=1 nox -s perf -- -k vs_rally` checks the gap on another seed.
SEED = int(os.environ.get("OSBENCH_VS_RALLY_SEED", "0"))
TIME_SCALE = 1.0
RALLY_CONCURRENCY = 10
SDK_INTERVAL_S = 2.0  # wait_for_server's default
SDK_WAIT_S = 600.0
#: A Rally iteration and its server: the simulator saw the server's create and
#: delete requests within this (the two gaps added) of the iteration's boot and
#: delete actions starting, on the same machine's clock. A request takes ~1-30 ms
#: here; a busy 2-core machine delayed one by 0.86 s in the first run, so 5 s: the
#: pairs are taken nearest first, and the largest gap is printed.
MATCH_S = 5.0
#: What a client sends while it waits for servers to change: (service, method, route).
STATUS_READS = {("compute", "GET", "/servers/{server_id}"), ("compute", "GET", "/servers"),
                ("compute", "GET", "/servers/detail"), ("network", "GET", "/ports"),
                ("network", "GET", "/ports/{port_id}")}
#: The gap the issue's figures show, measured outside the project: at least this
#: many times osbench's status reads per instance for Rally per server and the SDK.
MIN_GAP = 10.0


@dataclass
class Measured:
    """One tool's run, as the simulator saw it."""

    tool: str
    counts: Counter[tuple[str, str, str]]
    #: The most requests in one second: all of them, and the status reads alone.
    peak_rps: int
    peak_reads_rps: int
    #: Reported minus true time to ACTIVE, seconds, one per instance.
    errors_s: list[float]
    servers: int
    wall_s: float
    notes: list[str] = field(default_factory=list)

    def per_instance(self, keys: Callable[[tuple[str, str, str]], bool]) -> float:
        return sum(n for key, n in self.counts.items() if keys(key)) / N

    @property
    def status_reads(self) -> float:
        return self.per_instance(lambda key: key in STATUS_READS)

    def row(self) -> dict[str, Any]:
        errors = sorted(self.errors_s)
        p95 = errors[min(len(errors) - 1, int(0.95 * len(errors)))]
        return {
            "tool": self.tool, "servers": self.servers,
            "status_reads_per_instance": round(self.status_reads, 2),
            "nova_get_per_instance": round(self.per_instance(
                lambda k: k[0] == "compute" and k[1] == "GET"), 2),
            "neutron_get_per_instance": round(self.per_instance(
                lambda k: k[0] == "network" and k[1] == "GET"), 2),
            "requests_per_instance": round(self.per_instance(lambda k: True), 2),
            "peak_status_reads_per_s": self.peak_reads_rps,
            "peak_requests_per_s": self.peak_rps,
            "active_error_median_s": round(statistics.median(errors), 3),
            "active_error_p95_s": round(p95, 3),
            "active_error_max_s": round(errors[-1], 3),
            "active_within_1s_pct": round(100 * sum(abs(e) <= 1.0 for e in errors) / len(errors)),
            "wall_s": round(self.wall_s),
        }


class Cloud:
    """One tool's simulator and its instruments."""

    #: Every simulator serving now, so an interrupted comparison stops them all.
    serving: ClassVar[set[Cloud]] = set()

    def __init__(self, folder: Path) -> None:
        self.sim = ServedSim(PROFILE, folder, time_scale=TIME_SCALE, seed=SEED)
        self.base = self.sim.counts_url.removesuffix("/osbench-sim/requests")
        Cloud.serving.add(self)

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.base + path, timeout=30) as answer:
            body: dict[str, Any] = json.load(answer)
        return body

    def truth(self) -> dict[str, Any]:
        return self.get(TRUTH_PATH)

    def measure(self, tool: str, work: Callable[[], Any]) -> tuple[Any, Measured]:
        """Run `work()` and count what the simulator served meanwhile."""
        counts0, start_s = self.sim.request_counts(), self.truth()["now_s"]
        wall0 = time.perf_counter()
        out = work()
        wall = time.perf_counter() - wall0
        counts = self.sim.request_counts() - counts0
        rows = [r for r in self.get(REQUEST_RATE_PATH)["seconds"] if r["second"] >= int(start_s)]
        truth = self.truth()
        made = [s for s in truth["servers"] if s["create_s"] is not None
                and s["create_s"] >= start_s]
        # Every instance became ACTIVE and was deleted by the tool: else nothing compares.
        assert len(made) == N, f"{tool}: {len(made)} servers made, not {N}"
        assert all(s["active_s"] is not None for s in made), f"{tool}: not all ACTIVE"
        assert all(s["deleted_s"] is not None for s in made), f"{tool}: not all deleted"
        reads = {" ".join(key) for key in STATUS_READS}
        peak_reads = max(sum(n for route, n in r["routes"].items() if route in reads)
                         for r in rows)
        return out, Measured(tool, counts, max(r["total"] for r in rows), peak_reads, [],
                             len(made), wall)

    def stop(self) -> None:
        self.sim.stop()
        Cloud.serving.discard(self)


def true_tta(server: dict[str, Any]) -> float:
    """The model's time to ACTIVE: ACTIVE minus the create request's arrival (s)."""
    return float(server["active_s"] - server["create_s"]) / TIME_SCALE


def wall(truth: dict[str, Any], modelled_s: float) -> float:
    """A modelled instant as a Unix time (Rally's timestamps), at time scale 1."""
    return datetime.fromisoformat(truth["wall_origin"]).timestamp() + modelled_s / TIME_SCALE


# -- the four tools -------------------------------------------------------------------------
def run_osbench(folder: Path) -> Measured:
    folder.mkdir(parents=True, exist_ok=True)
    scenario = folder / "vs-rally.yaml"
    scenario.write_text(f"""\
name: perf-vs-rally-{N}
kind: boot
params:
  count: {N}
  image: cirros-sim
  flavor: c1.small
  networks: [demo-network]
  phone_home_port: 0
sla: ["phone_home_ok_pct == 100"]
""", encoding="utf-8")
    cloud = Cloud(folder / "sim")
    try:
        figures, measured = cloud.measure(
            "osbench", lambda: boot_served(cloud.sim, scenario, folder / "results"))
        truth = {s["id"]: s for s in cloud.truth()["servers"]}
    finally:
        cloud.stop()
    assert figures["status"] == "completed", figures["errors"]
    instances = results.load(Path(figures["path"])).table("instances")
    assert bool((instances["outcome"] == "ok").all()), instances["outcome"].value_counts()
    measured.errors_s = [float(row.time_to_active_s) - true_tta(truth[row.instance_id])
                         for row in instances.itertuples()]
    measured.notes.append(f"results {figures['path']}")
    return measured


def run_rally(folder: Path, rally: Path, multiple: bool) -> Measured:
    tool = ("Rally boot_and_delete_multiple_servers" if multiple else
            f"Rally boot_and_delete_server x{RALLY_CONCURRENCY}")
    cloud = Cloud(folder / "sim")
    try:
        auth = cloud.sim.entry["auth"]
        env = RallyEnv(rally, folder / "rally", auth_url=auth["auth_url"],
                       region=cloud.sim.entry["region_name"], project=auth["project_name"],
                       member=(auth["username"], auth["password"]),
                       admin=(SimCloud.admin_username, SimCloud.admin_password))
        network = sdk_lookups(cloud.sim)[2]
        if multiple:
            task = boot_and_delete_multiple_task(count=N, image="cirros-sim",
                                                 flavor="c1.small", network_id=network)
        else:
            task = boot_and_delete_task(times=N, concurrency=RALLY_CONCURRENCY,
                                        image="cirros-sim", flavor="c1.small",
                                        network_id=network)
        run, measured = cloud.measure(tool, lambda: env.run_task(task, "vs"))
        truth = cloud.truth()
    finally:
        cloud.stop()
    assert run.iteration_errors() == [] and run.returncode == 0, run.log[-4000:]
    servers = [s for s in truth["servers"] if s["deleted_s"] is not None]
    iterations = run.workloads()[0]["data"]
    if multiple:
        (iteration,) = iterations
        (boot,) = [a for a in iteration["atomic_actions"] if a["name"] == "nova.boot_servers"]
        reported = boot["finished_at"] - boot["started_at"]
        measured.errors_s = [reported - true_tta(s) for s in servers]
        measured.notes.append("one time for all N (nova.boot_servers)")
    else:
        measured.errors_s, farthest = rally_errors(iterations, servers, truth)
        measured.notes.append(f"iterations matched to servers within {farthest:.2f} s")
        assert farthest < MATCH_S, measured.notes
    return measured


def rally_errors(iterations: list[dict[str, Any]], servers: list[dict[str, Any]],
                 truth: dict[str, Any]) -> tuple[list[float], float]:
    """Each iteration's nova.boot_server time minus its server's true time to ACTIVE,
    and the largest distance of a match (s).

    Rally's results name no server: an iteration is matched to the server whose create
    and delete requests reached the simulator nearest to its boot and delete actions'
    starts (the sum of the two gaps), the nearest pairs first, each server once."""
    def starts(iteration: dict[str, Any]) -> tuple[dict[str, Any], float, float]:
        actions = {a["name"]: a for a in iteration["atomic_actions"]}
        boot = actions["nova.boot_server"]
        return boot, boot["started_at"], actions["nova.delete_server"]["started_at"]

    actions = [starts(it) for it in iterations]
    seen = [(wall(truth, s["create_s"]), wall(truth, s["deleted_s"])) for s in servers]
    pairs = sorted((abs(c - b) + abs(d - e), i, j) for i, (_, b, e) in enumerate(actions)
                   for j, (c, d) in enumerate(seen))
    matched: dict[int, int] = {}
    taken: set[int] = set()
    farthest = 0.0
    for gap, i, j in pairs:
        if i not in matched and j not in taken:
            matched[i], farthest = j, max(farthest, gap)
            taken.add(j)
    assert len(matched) == len(iterations), "an iteration matched no server"
    errors = [actions[i][0]["finished_at"] - actions[i][0]["started_at"]
              - true_tta(servers[j]) for i, j in matched.items()]
    return errors, farthest


def sdk_lookups(sim: ServedSim) -> tuple[str, str, str]:
    """Image, flavor and network ids, found by name as a client would."""
    conn: Any = openstack.connect(load_yaml_config=False, load_envvars=False, **sim.entry)
    try:
        return (conn.image.find_image("cirros-sim", ignore_missing=False).id,
                conn.compute.find_flavor("c1.small", ignore_missing=False).id,
                conn.network.find_network("demo-network", ignore_missing=False).id)
    finally:
        conn.close()


def run_sdk(folder: Path) -> Measured:
    cloud = Cloud(folder / "sim")
    try:
        image, flavor, network = sdk_lookups(cloud.sim)
        conn: Any = openstack.connect(load_yaml_config=False, load_envvars=False,
                                      **cloud.sim.entry)
        conn.authorize()
        lock = threading.Lock()
        reported: dict[str, float] = {}

        def one(i: int) -> None:
            t0 = time.perf_counter()
            server = conn.compute.create_server(name=f"sdk-{i}", image_id=image,
                                                flavor_id=flavor, networks=[{"uuid": network}])
            server = conn.compute.wait_for_server(server, interval=SDK_INTERVAL_S,
                                                  wait=SDK_WAIT_S)
            with lock:
                reported[server.id] = time.perf_counter() - t0
            conn.compute.delete_server(server)

        def boot_all() -> None:
            with ThreadPoolExecutor(N) as pool:
                list(pool.map(one, range(N)))

        try:
            _, measured = cloud.measure(f"openstacksdk wait_for_server x{N} threads", boot_all)
        finally:
            conn.close()
        truth = {s["id"]: s for s in cloud.truth()["servers"]}
    finally:
        cloud.stop()
    measured.errors_s = [t - true_tta(truth[sid]) for sid, t in reported.items()]
    return measured


# -- the benchmark ----------------------------------------------------------------------------
def compare(folder: Path) -> list[Measured | str]:
    """The four tools at once, each on its own simulator; a line of text for a tool
    not run or failed (the others' figures are still printed)."""
    rally = rally_command()
    jobs: dict[str, Callable[[], Measured]] = {
        "osbench": lambda: run_osbench(folder / "osbench"),
        "openstacksdk": lambda: run_sdk(folder / "sdk")}
    if rally is not None:
        jobs["Rally multiple"] = lambda: run_rally(folder / "rally-multiple", rally, True)
        jobs["Rally per server"] = lambda: run_rally(folder / "rally-per-server", rally, False)

    def attempt(item: tuple[str, Callable[[], Measured]]) -> Measured | str:
        try:
            return item[1]()
        except Exception as exc:  # one tool's failure must not hide the others' figures
            return f"{item[0]}: FAILED: {type(exc).__name__}: {str(exc)[-1500:]}"

    with ThreadPoolExecutor(len(jobs)) as pool:
        try:
            done = list(pool.map(attempt, jobs.items()))
        except BaseException:  # Ctrl-C: stop the simulators, so every tool fails fast
            for cloud in list(Cloud.serving):
                cloud.sim.proc.kill()
            raise
    if rally is None:
        done.append(f"Rally: not run. {not_installed_reason()}")
    return done


def table(rows: list[dict[str, Any]]) -> list[str]:
    heads = [("tool", "tool"), ("status_reads_per_instance", "reads/inst"),
             ("nova_get_per_instance", "Nova GET/inst"),
             ("neutron_get_per_instance", "Neutron GET/inst"),
             ("requests_per_instance", "all req/inst"),
             ("peak_status_reads_per_s", "peak reads/s"), ("peak_requests_per_s", "peak all/s"),
             ("active_error_median_s", "ACTIVE err med s"),
             ("active_error_p95_s", "p95 s"), ("active_error_max_s", "max s"),
             ("active_within_1s_pct", "<=1 s %"), ("wall_s", "wall s")]
    width = {key: max(len(title), *(len(str(r[key])) for r in rows)) for key, title in heads}
    lines = ["  ".join(f"{title:<{width[key]}}" for key, title in heads)]
    lines += ["  ".join(f"{r[key]!s:<{width[key]}}" for key, _ in heads) for r in rows]
    return lines


def test_osbench_rally_and_sdk_on_the_same_cloud(benchmark: BenchmarkFixture, tmp_path: Path,
                                                 figures: Figures) -> None:
    done = benchmark.pedantic(compare, args=(tmp_path,), rounds=1, iterations=1)
    measured = [m for m in done if isinstance(m, Measured)]
    texts = [m for m in done if isinstance(m, str)]
    rows = [m.row() for m in measured]
    name = f"vs Rally/SDK N={N}"
    figures(name, f"{PROFILE}, seed {SEED}, time scale {TIME_SCALE:g}, one served simulator "
                  "per tool, counted at the simulator")
    for line in table(rows) if rows else []:
        figures(name, line)
    ours = next((m for m in measured if m.tool == "osbench"), None)
    for m in measured:
        if ours is not None and m is not ours:
            figures(name, f"{m.tool}: {ratio(m, ours)}")
        for note in m.notes:
            figures(name, f"{m.tool}: {note}")
    for text in texts:
        figures(name, text)
    benchmark.extra_info.update({"rows": rows, "instances": N, "profile": PROFILE,
                                 "seed": SEED, "time_scale": TIME_SCALE, "not_run": texts})
    assert not [t for t in texts if ": FAILED: " in t], texts
    assert ours is not None
    # The gap the issue measured outside the project must show here too.
    for m in measured:
        if m is not ours and "multiple" not in m.tool:
            assert m.status_reads >= MIN_GAP * ours.status_reads, rows
    assert ours.status_reads < 1.0, rows  # flat per cycle: well under one per instance


def ratio(m: Measured, ours: Measured) -> str:
    def nova_get(key: tuple[str, str, str]) -> bool:
        return key[0] == "compute" and key[1] == "GET"

    every = m.per_instance(lambda k: True) / ours.per_instance(lambda k: True)
    return (f"{m.status_reads / ours.status_reads:.0f}x the status reads per instance of "
            f"osbench ({m.per_instance(nova_get) / ours.per_instance(nova_get):.0f}x its Nova "
            f"GETs), {every:.0f}x all its requests; peak status reads/s "
            f"{m.peak_reads_rps / ours.peak_reads_rps:.1f}x, peak of all requests/s "
            f"{m.peak_rps / ours.peak_rps:.1f}x")
