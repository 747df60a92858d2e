"""What monitors cost the harness: a 1000-instance simulated boot with monitors
off and on, side by side in one session, alternating (issue 16).

The simulator runs in a process of its own (`osbench sim serve`, tests/perf/
served.py), the harness in another (tests/perf/child.py with `--cloud`), as in
test_perf_boot.py: finding 6's profile (rootwrap-daemon) at time scale 4.
"On" is what an operator would switch on against such a cloud, at the default
interval (2 s, real seconds here: the harness's clock on a named cloud):

- `api`: every request the harness makes, by operation (no extra request);
- the simulator's metrics endpoint, scraped with `auth: cloud`;
- processes on this machine: every /proc entry read once per sample, the
  OpenStack presets plus the two osbench processes.

The figures are the harness process's CPU seconds and peak RSS (its own, from
the child), the requests the simulator served to the harness, and the
monitors' own requests per second per source (their samples over the run's
wall). On and off alternate so a busier minute of this shared machine falls on
both; the ratio of the medians is the headline, not the absolute seconds.
"""

from __future__ import annotations

from pathlib import Path
from statistics import median
from typing import Any

import yaml
from pytest_benchmark.fixture import BenchmarkFixture

from osbench import results
from tests.perf.conftest import Figures
from tests.perf.served import ServedSim, boot_served
from tests.perf.test_perf_boot import SEED, TIME_SCALE, scaled_profile, served_scenario_yaml

COUNT = 1000
ROUNDS = 3  # of each: on, off, on, off, ...

MONITORS = """\
monitors:
  interval: 2s
  processes:
    - {host: local, presets: [openstack], services: {harness: "tests\\\\.perf\\\\.child",
                                                      simulator: "osbench sim serve"}}
  prometheus:
    - {name: served-sim, url: "METRICS_URL", metrics: ["osbench_sim_*"], auth: cloud}
"""


def _round(sim: ServedSim, scenario: Path, out: Path) -> dict[str, Any]:
    m = boot_served(sim, scenario, out)
    assert m["status"] == "completed", m["errors"]
    run = results.load(Path(m["path"]))
    assert bool((run.table("instances")["outcome"] == "ok").all())
    sources = run.table("monitor_sources")
    m["monitor_rows"] = len(run.table("monitor"))
    m["monitor_sources"] = ({} if sources.empty else {
        row.source: {"samples": int(row.samples), "failed": int(row.failed)}
        for row in sources.itertuples()})
    m["harness_requests"] = m["sim_requests"]
    return m


def test_monitor_overhead(benchmark: BenchmarkFixture, tmp_path: Path,
                          figures: Figures) -> None:
    profile = scaled_profile(1)
    profile_path = tmp_path / "profile.yaml"
    profile_path.write_text(yaml.safe_dump(profile), encoding="utf-8")
    rounds: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}

    def one_pair() -> None:
        for mode in ("on", "off"):
            sim = ServedSim(profile_path, tmp_path / f"sim-{mode}-{len(rounds[mode])}",
                            time_scale=TIME_SCALE, seed=SEED)
            try:
                scenario = tmp_path / f"boot-{mode}.yaml"
                text = served_scenario_yaml(COUNT)
                if mode == "on":
                    url = sim.counts_url.replace("/osbench-sim/requests", "/osbench-sim/metrics")
                    text += MONITORS.replace("METRICS_URL", url)
                scenario.write_text(text, encoding="utf-8")
                rounds[mode].append(_round(sim, scenario,
                                           tmp_path / f"results-{mode}-{len(rounds[mode])}"))
            finally:
                sim.stop()
            assert "Traceback" not in sim.stderr_text, sim.stderr_text[-2000:]

    benchmark.pedantic(one_pair, rounds=ROUNDS, iterations=1)

    for m in rounds["on"]:  # every source sampled, none failed
        assert set(m["monitor_sources"]) == {"api", "processes@local",
                                              "prometheus:served-sim"}, m["monitor_sources"]
        assert all(s["failed"] <= 1 for s in m["monitor_sources"].values()), m
    for m in rounds["off"]:
        assert m["monitor_rows"] == 0

    def med(mode: str, key: str) -> float:
        return median(float(r[key]) for r in rounds[mode])

    cpu_on, cpu_off = med("on", "cpu_s"), med("off", "cpu_s")
    rss_on, rss_off = med("on", "peak_rss_mib"), med("off", "peak_rss_mib")
    per_source = {
        source: median(r["monitor_sources"][source]["samples"] / r["wall_s"]
                       for r in rounds["on"])
        for source in rounds["on"][0]["monitor_sources"] if source != "api"}
    benchmark.extra_info.update({
        "what": "harness process CPU and peak RSS for a 1000 boot on a served simulator, "
                "monitors on (api, the simulator's metrics, processes@local; 2 s) and off",
        "instances": COUNT, "rounds_each": ROUNDS, "time_scale": TIME_SCALE,
        **{f"{k}_{mode}": [round(float(r[k]), 3) for r in rounds[mode]]
           for mode in rounds for k in ("cpu_s", "peak_rss_mib", "wall_s", "harness_requests",
                                        "monitor_rows")},
        "monitor_requests_per_s": {k: round(v, 3) for k, v in per_source.items()},
    })
    figures("monitors on/off, boot 1000", (
        f"{ROUNDS} rounds each, alternating. Harness CPU median {cpu_on:.1f} s on / "
        f"{cpu_off:.1f} s off (x{cpu_on / cpu_off:.2f}, +{cpu_on - cpu_off:.1f} s); peak RSS "
        f"{rss_on:.0f} / {rss_off:.0f} MiB; requests to the cloud "
        f"{med('on', 'harness_requests'):.0f} / {med('off', 'harness_requests'):.0f} (the "
        f"monitors add none: api rows are the harness's own calls); samples per second: "
        + ", ".join(f"{k} {v:.2f}" for k, v in per_source.items())
        + f"; {med('on', 'monitor_rows'):.0f} monitor rows per run"))
    # The cost goal (issue 16): at the default interval a source makes at most one
    # request (or one command) per second.
    assert all(v <= 1.0 for v in per_source.values()), per_source
