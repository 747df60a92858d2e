"""The judge stage on monitor tables made for each rule: every rule fires at its
threshold and not one step short of it (2 samples vs 3, 89% vs 90%, 4.9x vs 5x),
the ranking puts the symptom's own component first, and boot's symptoms come
from the boot tables with case-clock windows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from osbench import results
from osbench.kinds import get
from osbench.kinds.boot.symptoms import symptoms as boot_symptoms
from osbench.monitors import attribution as at
from osbench.monitors.attribution import Symptom
from tests.report.runs import boot_run

INTERVAL = 10.0


def rows(source: str, metric: str, values: Sequence[float], *, t0: float = 0.0,
         interval: float = INTERVAL, **labels: Any) -> list[dict[str, Any]]:
    return [{"case": "c", "t_s": t0 + i * interval, "source": source, "metric": metric,
             "value": float(v), **{f"label.{k}": w for k, w in labels.items()}}
            for i, v in enumerate(values)]


def table(*parts: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([r for part in parts for r in part])


def sim_cpu(service: str, pcts: Sequence[float], cores: int = 2) -> list[dict[str, Any]]:
    """The simulated cloud's busy-seconds counter giving `pcts` between samples."""
    busy = np.concatenate([[0.0], np.cumsum([p / 100 * cores * INTERVAL for p in pcts])])
    return (rows("prometheus:sim", "osbench_sim_service_busy_seconds_total", busy,
                 service=service)
            + rows("prometheus:sim", "osbench_sim_service_cores", [cores] * len(busy),
                   service=service))


def api(operation: str, latencies: Sequence[float], t0: float, *, status: int = 200,
        spacing: float = 5.0) -> list[dict[str, Any]]:
    return rows("api", "api_latency_s", latencies, t0=t0, interval=spacing,
                operation=operation, status=str(status), request_id="req")


DHCP = Symptom("dhcp", "dhcp_timeout", 14, 310.0, 340.0,
               "14 instances timed out DHCP between t=310 and 340 s")
BUILD = Symptom("build", "rpc_timeout", 4, 70.0, 80.0, "4 instances went to ERROR")


# -- saturation ------------------------------------------------------------------------


@pytest.mark.parametrize(("pcts", "fires"), [
    ([10, 90, 90, 90, 10], True),
    ([10, 90, 90, 10, 90, 90], False),   # 2 samples in a row, twice
    ([10, 89, 89, 89, 89, 10], False),   # 89% for longer
    ([100, 100, 100], True),
])
def test_sim_saturation_needs_90_pct_for_3_samples(pcts: list[float], fires: bool) -> None:
    found = at.saturation(table(sim_cpu("nova-conductor", pcts)))
    assert [f.subject for f in found] == (["nova-conductor"] if fires else [])


def test_sim_saturation_evidence_names_cores_samples_and_peak() -> None:
    (found,) = at.saturation(table(sim_cpu("nova-conductor", [50, 95, 100, 90, 40], cores=4)))
    # rates are taken at the later sample: t=20, 30, 40 for the 2nd..4th steps
    assert found.evidence == ("nova-conductor (prometheus:sim) at >= 90% of its 4 cores for "
                              "3 samples in a row, t=20 to 40 s (peak 100%)")
    assert found.start_s == 20.0
    assert found.magnitude == pytest.approx(100 / 90)


def test_sim_rates_use_the_modelled_instant_of_each_scrape() -> None:
    # Sent 10 s apart on the case clock, but the sim read its state 12.5 s apart:
    # 20 busy core-seconds per scrape on 2 cores is 80%, not 100%.
    busy = rows("prometheus:sim", "osbench_sim_service_busy_seconds_total",
                [0, 20, 40, 60, 80], service="nova-api")
    cores = rows("prometheus:sim", "osbench_sim_service_cores", [2] * 5, service="nova-api")
    modelled = rows("prometheus:sim", "osbench_sim_modelled_time_seconds",
                    [100, 112.5, 125, 137.5, 150])
    assert at.saturation(table(busy, cores)) != []
    assert at.saturation(table(busy, cores, modelled)) == []


def process_rows(service: str, cpu: Sequence[float], procs: int, host_cores: int,
                 family: str | None = None) -> list[dict[str, Any]]:
    labels = {"service": service, **({"family": family} if family else {})}
    n = len(cpu)
    return (rows("processes@ctl", "service_cpu_pct", cpu, **labels)
            + rows("processes@ctl", "service_processes", [procs] * n, **labels)
            + rows("processes@ctl", "host_cores", [host_cores] * n))


@pytest.mark.parametrize(("cpu", "procs", "host_cores", "fires"), [
    (180, 3, 2, True),    # 3 processes on 2 cores: 180% of one core is 90% of 2
    (178, 3, 2, False),   # 89%
    (95, 1, 8, True),     # one Python process uses one core however many the host has
    (94, 2, 8, False),    # two processes: 47% of 2 cores
])
def test_process_saturation_is_of_min_processes_and_host_cores(
        cpu: float, procs: int, host_cores: int, fires: bool) -> None:
    found = at.saturation(table(process_rows("nova-conductor", [cpu] * 3, procs, host_cores)))
    assert bool(found) is fires
    if fires:
        assert found[0].evidence.startswith("nova-conductor on ctl at >= 90% of ")


def test_a_service_family_is_judged_as_one() -> None:
    parts = table(process_rows("neutron-server-api", [90] * 3, 1, 4, family="neutron-server"),
                  process_rows("neutron-server-rpc", [90] * 3, 1, 4, family="neutron-server"))
    (found,) = at.saturation(parts)
    assert (found.subject, found.component) == ("neutron-server", "neutron-server")
    assert "of 2 cores" in found.evidence


def test_host_cpu_saturation() -> None:
    hot = table(rows("processes@ctl", "host_cpu_pct", [50, 90, 92, 95]),
                rows("processes@ctl", "host_cores", [8] * 4))
    (found,) = at.saturation(hot)
    assert (found.subject, found.component) == ("host ctl", "host")
    assert found.evidence.startswith("host ctl CPU at >= 90% of all 8 cores for 3 samples")
    assert at.saturation(table(rows("processes@ctl", "host_cpu_pct", [50, 90, 92, 80]))) == []


# -- backlog ---------------------------------------------------------------------------


def dhcp_queue(depths: Sequence[float]) -> pd.DataFrame:
    return table(rows("rabbitmq@ctl", "group_ready", depths, group="neutron-dhcp-agent"),
                 rows("rabbitmq@ctl", "group_unacked", [0] * len(depths),
                      group="neutron-dhcp-agent"))


@pytest.mark.parametrize(("depths", "fires"), [
    ([0, 5, 10, 20, 15], True),      # 3 rises in a row
    ([0, 5, 10, 8, 12, 20], False),  # 2 rises, a dip, 2 rises
    ([5, 5, 5, 5, 5], False),        # deep but not rising
])
def test_backlog_needs_3_rising_samples(depths: list[float], fires: bool) -> None:
    assert bool(at.backlog(dhcp_queue(depths))) is fires


def test_backlog_evidence_peak_when_and_drain_rate() -> None:
    # The example: peaked at 183 at t=96 s and drained at 2.1/s.
    depths = [0, 30, 60, 90, 120, 150, 183, 160, 120, 80, 40, 15, 15]
    monitor = dhcp_queue(depths).assign(t_s=lambda d: d["t_s"] * 1.6)  # 16 s apart
    (found,) = at.backlog(monitor)
    assert found.subject == "neutron-dhcp-agent queues"
    assert found.component == "neutron-dhcp-agent queue"
    assert ("peaked at 183 messages at t=96 s and drained at 2.1/s (to 15 by t=176 s)"
            in found.evidence)
    assert found.evidence.startswith("neutron-dhcp-agent queues (rabbitmq@ctl) rose for 6 "
                                     "samples in a row from 0 at t=0 s")


def test_backlog_that_never_drained_says_so() -> None:
    monitor = table(rows("prometheus:sim", "osbench_sim_dhcp_agent_backlog_ports",
                         [0, 1, 2, 3, 3]))
    (found,) = at.backlog(monitor)
    assert found.subject == "neutron-dhcp-agent backlog"
    assert found.evidence.endswith("and had not drained by the last sample (t=40 s)")


# -- API latency and the gateway -------------------------------------------------------


@pytest.mark.parametrize(("later", "fires"), [(0.5, True), (0.49, False)])
def test_api_p95_at_5x_first_minute_p50(later: float, fires: bool) -> None:
    monitor = table(api("list_servers", [0.1] * 6, t0=0.0),        # t=0..25: baseline
                    api("list_servers", [later] * 6, t0=60.0))     # after the first minute
    found = at.api_latency(monitor)
    assert bool(found) is fires
    if fires:
        assert found[0].evidence == (
            "list_servers: p95 0.5 s after its first 60 s, 5x its p50 of 0.1 s in them (6 "
            "then 6 requests; the first at >= 5x sent at t=60 s)")


def test_api_rule_needs_enough_requests_on_both_sides() -> None:
    assert at.api_latency(table(api("create", [0.1] * 5, t0=0.0),
                                api("create", [9.0] * 2, t0=100.0))) == []
    assert at.api_latency(table(api("create", [0.1] * 2, t0=0.0),
                                api("create", [9.0] * 5, t0=100.0))) == []


def test_gateway_504_with_the_sims_in_flight_evidence() -> None:
    monitor = table(
        api("create", [65.9], t0=2.0, status=504), api("list_servers", [0.2] * 3, t0=3.0),
        api("list_servers", [0.2], t0=20.0, status=500),
        rows("prometheus:sim", "osbench_sim_create_oldest_in_flight_seconds",
             [0, 20, 40, 60, 80, 0], t0=4.0, interval=20.0),
        rows("prometheus:sim", "osbench_sim_proxy_timeout_seconds", [60] * 6, t0=4.0,
             interval=20.0))
    (found,) = at.gateway(monitor)  # the 500 is the service's, not the proxy's
    assert found.subject == "gateway (create HTTP 504)"
    assert found.evidence == (
        "1 create request answered HTTP 504 by the proxy (the first sent at t=2 s, answered "
        "after 65.9 s); nova-api's oldest create in flight reached the proxy's 60 s timeout "
        "at t=64 s and peaked at 80 s at t=84 s")


def test_gateway_without_in_flight_metrics() -> None:
    (found,) = at.gateway(table(api("console", [60.0, 60.0], t0=0.0, status=502)))
    assert found.evidence == ("2 console requests answered HTTP 502 by the proxy (the first "
                              "sent at t=0 s, answered after 60 s)")


# -- symptoms and ranking --------------------------------------------------------------


def test_no_symptom_names_no_bottleneck_even_when_rules_fire() -> None:
    monitor = table(sim_cpu("nova-conductor", [100] * 5))
    assert at.fire(monitor) != []
    result = at.attribute(monitor, [])
    assert result.findings == () and result.verdict == at.NO_SYMPTOM


def test_a_symptom_and_no_rule_firing_is_no_bottleneck_seen() -> None:
    result = at.attribute(table(sim_cpu("nova-conductor", [50] * 5)), [DHCP])
    assert result.findings == () and result.verdict == "no bottleneck seen"


def test_ranking_puts_the_symptoms_own_components_first() -> None:
    monitor = table(
        sim_cpu("nova-api", [100] * 8),                           # biggest, unrelated
        sim_cpu("neutron-dhcp-agent", [100] * 40, cores=1),
        rows("prometheus:sim", "osbench_sim_dhcp_agent_backlog_ports",
             [0, 30, 80, 126, 172, 190, 150, 100, 50, 0]))
    result = at.attribute(monitor, [DHCP])
    assert [(f.rule, f.subject) for f in result.findings] == [
        ("backlog", "neutron-dhcp-agent backlog"),
        ("saturation", "neutron-dhcp-agent"),
        ("saturation", "nova-api")]
    assert result.verdict == "backlog: neutron-dhcp-agent backlog"
    assert [f.symptom for f in result.findings] == [DHCP, DHCP, None]
    # The same monitors with a build symptom: no finding relates to it.
    build = at.attribute(monitor, [BUILD])
    assert all(f.symptom is None for f in build.findings)


def test_a_finding_that_began_after_the_symptom_ranks_below_one_before() -> None:
    monitor = table(
        sim_cpu("nova-conductor", [10] * 8 + [100] * 4, cores=4),    # from t=90: too late
        rows("prometheus:sim", "osbench_sim_conductor_queue_builds", [0, 10, 20, 30, 5]))
    result = at.attribute(monitor, [BUILD])  # window ends at t=80
    assert [f.subject for f in result.findings] == ["nova-conductor queue", "nova-conductor"]
    early = table(sim_cpu("nova-conductor", [100] * 4, cores=4),
                  rows("prometheus:sim", "osbench_sim_conductor_queue_builds",
                       [0, 10, 20, 30, 5]))
    assert [f.subject for f in at.attribute(early, [BUILD]).findings] == [
        "nova-conductor", "nova-conductor queue"]


def test_magnitude_breaks_ties_between_sources_of_one_component() -> None:
    rising = [0, 10, 20, 30]
    monitor = table(
        rows("rabbitmq@ctl", "group_ready", [1, 2, 3, 4], group="neutron-dhcp-agent"),
        rows("prometheus:sim", "osbench_sim_dhcp_agent_backlog_ports", rising))
    found = at.attribute(monitor, [DHCP]).findings
    assert [f.source for f in found] == ["prometheus:sim", "rabbitmq@ctl"]


def test_the_api_area_puts_the_gateway_before_nova_api() -> None:
    api_symptom = Symptom("api", "create_error", 1, 2.0, 68.0, "1 create request ... 504")
    monitor = table(api("create", [65.9], t0=2.0, status=504),
                    sim_cpu("nova-api", [100] * 10, cores=1))
    assert [f.rule for f in at.attribute(monitor, [api_symptom]).findings] == [
        "gateway", "saturation"]


# -- boot's symptoms --------------------------------------------------------------------


def test_boot_spec_names_its_symptoms() -> None:
    spec = get("boot")
    assert spec is not None and spec.symptom_function() is boot_symptoms


def test_boot_symptoms_from_a_journal_written_run(tmp_path: Path) -> None:
    run = results.load(boot_run(tmp_path, "boot-run"))
    found = boot_symptoms(at.case_tables(run, "count=10"))
    by_what = {s.what: s for s in found}
    assert set(by_what) == {"vif_failure", "dhcp_timeout", "not_created", "create_error"}
    assert by_what["vif_failure"].area == "dhcp" and by_what["vif_failure"].count == 2
    silent = by_what["dhcp_timeout"]
    # ACTIVE 58 s after the create request sent at t=1 s: t=59 on the case clock
    assert (silent.area, silent.count, silent.start_s) == ("dhcp", 1, 59.0)
    assert silent.text == ("1 instance ACTIVE without an address, their consoles showing "
                           "the DHCP client giving up (ACTIVE at t=59 s)")
    create = by_what["create_error"]
    assert create.area == "api"
    assert create.text == ("1 create request for 10 instances answered HTTP 504 after 61 s "
                           "(sent at t=1 s)")
    assert (create.start_s, create.end_s) == (1.0, 62.0)
    assert by_what["not_created"].area == "api"
    assert boot_symptoms(at.case_tables(run, "count=0")) == []


def instance(i: int, outcome: str, **extra: Any) -> dict[str, Any]:
    return {"case": "c", "instance_id": f"i{i}", "batch": 1, "outcome": outcome, **extra}


def test_boot_symptoms_rpc_timeout_dhcp_give_up_times_and_slow_sla() -> None:
    tables = {
        "creates": pd.DataFrame([{"case": "c", "batch": 1, "size": 4, "sent_s": 2.0,
                                  "outcome": "accepted", "status": 202, "reply_s": 3.0}]),
        "instances": pd.DataFrame([
            instance(0, "error", fault="Timed out waiting for a reply to message ID abc"),
            instance(1, "no_phone_home", console_class="dhcp_timeout", time_to_active_s=100.0),
            instance(2, "no_phone_home", console_class="dhcp_timeout", time_to_active_s=130.0),
            instance(3, "ok", time_to_active_s=40.0)]),
        "timeline": pd.DataFrame([{"case": "c", "instance_id": "i0", "batch": 1,
                                   "event": "error", "t_s": 70.0}]),
        "consoles": pd.DataFrame([
            {"case": "c", "instance_id": f"i{i}", "class": "dhcp_timeout",
             "output": f"No DHCPOFFERS received.\nCloud-init v. 24.1 running 'init' at "
                       f"boot. Up {up} seconds.\n"} for i, up in ((1, 310.0), (2, 305.5))]),
        "sla": pd.DataFrame([{"case": "c", "criterion": "p95(time_to_active_s) <= 120",
                              "label": "p95(time_to_active_s)", "op": "<=",
                              "threshold": 120.0, "measured": 125.5, "passed": False}]),
    }
    found = {s.what: s for s in boot_symptoms(tables)}
    assert found["rpc_timeout"].area == "build"
    assert found["rpc_timeout"].text == ("1 instance went to ERROR by MessagingTimeout (an "
                                         "RPC reply that did not come in time) at t=72 s")
    # give-ups: sent 2 + ACTIVE 100 + uptime 310 = 412; 2 + 130 + 305.5 = 437.5
    dhcp = found["dhcp_timeout"]
    assert (dhcp.start_s, dhcp.end_s) == (412.0, 437.5)
    assert dhcp.text.startswith("2 instances timed out DHCP between t=412 and 438 s")
    slow = found["slow time_to_active_s"]
    assert slow.area == "slow"
    assert slow.text == ("SLA p95(time_to_active_s) <= 120 missed (measured 126 s): 1 "
                         "instance beyond 120 s at t=132 s")
