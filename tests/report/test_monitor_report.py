"""The control-plane parts of a report, built from a real run: a 20-instance boot on
the embedded simulated cloud with monitors every 5 modelled seconds (its metrics
endpoint, the harness's API calls, and a Prometheus endpoint nobody listens on).
Every figure checked here is recomputed from the run's raw monitor rows."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osbench import results
from osbench.report import markdown
from osbench.report.build import build_report
from osbench.report.model import Plot, Report, Table

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = """\
name: monitored-boot
kind: boot
params: {{image: cirros-sim, flavor: c1.small, networks: [demo-network], count: 20}}
target: {{sim_profile: small-pets}}
monitors:
  interval: 5s
  prometheus:
    - {{name: dead, url: "http://127.0.0.1:{port}/metrics", metrics: [node_load1]}}
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> results.Run:
    where = tmp_path_factory.mktemp("monitored")
    scenario = where / "boot.yaml"
    scenario.write_text(SCENARIO.format(port=_closed_port()))
    proc = subprocess.run([sys.executable, "-m", "osbench", "run", str(scenario),
                           "--results", str(where / "results"), "--time-scale", "60"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = (where / "results").iterdir()
    return results.load(run_dir)


@pytest.fixture(scope="module")
def report(run: results.Run) -> Report:
    return build_report([run])


def _table(report: Report, name: str) -> pd.DataFrame:
    (table,) = [t for t in report.tables if t.name == name]
    assert isinstance(table, Table)
    return table.frame


def _panel(report: Report) -> Plot:
    (plot,) = [p for p in report.plots if p.name.startswith("boot-control-plane")]
    return plot


def _origin(run: results.Run) -> float:
    return float(run.table("creates")["sent_s"].min())


def test_the_panel_is_under_the_timeline_on_its_time_axis(run: results.Run,
                                                          report: Report) -> None:
    titles = [p.title for p in report.plots]
    assert titles[:3] == ["Instances ACTIVE and phoned home over time",
                          "Control plane: default", "Time to ACTIVE and to phone-home (CDF)"]
    panel, timeline = _panel(report), report.plots[0]
    assert [ax.get_title() for ax in panel.figure.axes[:3]] == [
        "Service CPU", "Queue depths", "API latency by operation"]
    limits = {ax.get_xlim() for plot in (timeline, panel) for ax in plot.figure.axes[:2]}
    assert len(limits) == 1  # one time axis for both figures
    assert panel.figure.axes[2].get_xlabel() == "time since create request (modelled s)"


def test_panel_points_are_the_monitor_rows_moved_to_the_timelines_origin(
        run: results.Run, report: Report) -> None:
    data = _panel(report).data
    monitor = run.table("monitor")
    raw = monitor[(monitor["source"] == "api")
                  & (monitor["label.operation"] == "list_servers")].sort_values("t_s")
    drawn = data[(data["panel"] == "api_latency_s") & (data["line"] == "list_servers")]
    assert len(drawn) == len(raw) > 0
    np.testing.assert_allclose(drawn["t_s"], raw["t_s"] - _origin(run))
    np.testing.assert_allclose(drawn["value"], raw["value"])
    backlog = monitor[monitor["metric"] == "osbench_sim_dhcp_agent_backlog_ports"]
    line = data[data["line"] == "neutron-dhcp-agent backlog (prometheus:sim)"]
    np.testing.assert_allclose(line["value"], backlog.sort_values("t_s")["value"])
    assert set(data[data["panel"] == "cpu_pct_of_cores"]["line"]) >= {
        "nova-api (prometheus:sim)", "nova-conductor (prometheus:sim)",
        "neutron-dhcp-agent (prometheus:sim)"}


def test_peaks_match_the_monitor_table(run: results.Run, report: Report) -> None:
    peaks = _table(report, "monitor-peaks").set_index(["source", "metric", "subject"])
    monitor = run.table("monitor")
    # a gauge: its largest reading, at the first time it was read
    backlog = monitor[monitor["metric"] == "osbench_sim_dhcp_agent_backlog_ports"]
    row = peaks.loc[("prometheus:sim", "osbench_sim_dhcp_agent_backlog_ports",
                     "neutron-dhcp-agent backlog")]
    assert row["peak"] == backlog["value"].max() > 0
    assert row["t_peak_s"] == backlog[backlog["value"] == backlog["value"].max()]["t_s"].min()
    # CPU: the busy-seconds counter's rate per modelled second over the service's cores
    sim = monitor[monitor["source"] == "prometheus:sim"]
    busy = sim[(sim["metric"] == "osbench_sim_service_busy_seconds_total")
               & (sim["label.service"] == "nova-conductor")].set_index("t_s")["value"]
    clock = sim[sim["metric"] == "osbench_sim_modelled_time_seconds"].set_index("t_s")["value"]
    cores = sim[(sim["metric"] == "osbench_sim_service_cores")
                & (sim["label.service"] == "nova-conductor")]["value"].iloc[0]
    pct = 100 * busy.diff() / clock.reindex(busy.index).diff() / cores
    row = peaks.loc[("prometheus:sim", "cpu_pct_of_cores", "nova-conductor")]
    assert row["peak"] == pytest.approx(pct.max())
    assert row["unit"] == f"% of {cores:g} cores"
    # API latency: the slowest request of the operation
    api = monitor[monitor["source"] == "api"]
    for op, part in api.groupby("label.operation"):
        assert peaks.loc[("api", "api_latency_s", op), "peak"] == part["value"].max()


def test_the_failed_monitor_is_named_with_its_error(run: results.Run, report: Report) -> None:
    sources = _table(report, "monitor-sources").set_index("source")
    dead = sources.loc["prometheus:dead"]
    assert dead["samples"] == 0 and dead["failed"] > 0
    assert "127.0.0.1" in dead["first_error"]
    assert dead["first_error_t_s"] == run.table("monitor_errors").set_index(
        "source").loc["prometheus:dead", "t_s"]
    assert sources.loc["prometheus:sim", "failed"] == 0
    (table,) = [t for t in report.tables if t.name == "monitor-sources"]
    assert table.note.startswith("Failed monitors (first error): prometheus:dead (default): ")
    assert list(run.table("monitor_errors")["source"]) == ["prometheus:dead"]  # once


def test_a_case_without_symptom_names_no_bottleneck(report: Report) -> None:
    assert _table(report, "monitor-symptoms").empty
    attribution = _table(report, "monitor-attribution")
    assert attribution.to_dict("records") == [
        {"series": "default", "rank": None, "rule": None, "subject": None,
         "evidence": "no symptom: no bottleneck named", "symptom": None}]


def test_the_sections_render(report: Report) -> None:
    text = markdown.render(report)
    assert "## What limited each case (attribution)" in text
    assert "## Control plane during each case" in text
    assert "Peak of every monitored series per case" in text
