"""The firewall check end to end: the API side on a simulated cloud served like a
real one (clouds.yaml, the admin's entry: hypervisors shown), the probes for real
to namespaces that hold the simulated instances' fixed IPs.

The security group (`default`, plus a rule opening tcp 8080 to everyone) is the
same for both in-scope instances; web-1's namespace enforces it (drops all but
8080), web-2's has no filter (the incident). db-1 is out of scope and gets no
namespace: no probe may go to it; web-3's address has no route from here: recorded,
not probed, and the run goes on. The audit must report web-2 exposed, with its
ports, on its hypervisor, and web-1 enforced; the report's verdict says so. Then
web-2 is filtered as its groups say and audited again: nothing exposed, and the
change between the two audits lists its four ports as fixed.

Needs root (namespaces, iptables); run under `flock /tmp/osbench-ns.lock`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from osbench import results
from osbench.api import compare_runs
from osbench.kinds.audit.report import changes, sections, verdict
from osbench.report.style import FigureOptions
from osbench.runner import Runner, RunOptions
from osbench.scenario import TargetSpec, parse_scenario
from osbench.scenario.source import load_text
from tests.audit.netns_instances import Spec, filter_ingress, instances
from tests.audit.sim_servers import boot
from tests.boot.conftest import SimThread
from tests.sim.conftest import SDK_INTERNAL_WARNINGS

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, iptables)"),
              *SDK_INTERNAL_WARNINGS]

SCENARIO = """\
name: audit-e2e
kind: audit
params:
  checks: [firewall]
  firewall:
    name_prefix: web-
    closed_sample: [22, 3306, 6379]
    connect_timeout_s: 1.0
sla: [exposed_instances == 0]
"""


def test_the_unfiltered_instance_is_exposed_and_only_it(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with SimThread(time_scale=60) as sim:
        booted = boot(sim)
        clouds = tmp_path / "clouds.yaml"
        clouds.write_text(yaml.safe_dump({"clouds": {"simadmin": sim.sim.cloud_config(True)}}))
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        web1, web2, web3 = booted["web-1"], booted["web-2"], booted["web-3"]
        # web-3's address is one this machine has no route to: the kernel refuses it
        # at once and no packet leaves (`unreachable` route).
        subprocess.run(["ip", "route", "add", "unreachable", f"{web3[1]}/32"], check=True)
        try:
            with instances([Spec((8080, 3306), allowed=(8080,), address=web1[1]),
                            Spec((8080, 6379), address=web2[1])]) as fakes:
                scenario = parse_scenario(load_text(SCENARIO, "audit-e2e.yaml"))
                options = RunOptions(results_dir=tmp_path / "r",
                                     target=TargetSpec(cloud="simadmin"))
                result = asyncio.run(Runner(scenario, options).run())
                # The fix: web-2 filtered as its groups say; audited again.
                filter_ingress(fakes[1].netns, (8080,))
                fixed = asyncio.run(Runner(scenario, options).run())
        finally:
            subprocess.run(["ip", "route", "del", "unreachable", f"{web3[1]}/32"], check=True)
        admin = sim.sim.connect(admin=True)
        try:
            hosts = {s.id: s.compute_host for s in admin.compute.servers()}
        finally:
            admin.close()
    assert [c.error for c in result.cases] == [None]
    run = results.load(result.path)
    instances_seen = run.table("instances").set_index("name")
    assert sorted(instances_seen.index) == ["web-1", "web-2", "web-3"]
    assert instances_seen.loc["web-2", "hypervisor"] == hosts[web2[0]]
    probes = run.table("probes")
    assert set(probes["address"]) == {web1[1], web2[1]}  # never db-1's, nor web-3's
    assert (f"the vantage (harness) has no route to {web3[1]} (web-3): not probed"
            in run.table("audit_notes")["message"].tolist())
    found = {(r["name"], r["port"]): (r["expected"], r["seen"], r["finding"])
             for r in probes.to_dict("records")}
    assert found == {
        ("web-1", 8080): ("open", "open", "ok"),
        ("web-1", 8081): ("closed", "filtered", "ok"),   # the edge above the open range
        ("web-1", 22): ("closed", "filtered", "ok"),
        ("web-1", 3306): ("closed", "filtered", "ok"),   # listening, dropped
        ("web-1", 6379): ("closed", "filtered", "ok"),
        ("web-2", 8080): ("open", "open", "ok"),
        ("web-2", 8081): ("closed", "refused", "exposed"),
        ("web-2", 22): ("closed", "refused", "exposed"),
        ("web-2", 3306): ("closed", "refused", "exposed"),
        ("web-2", 6379): ("closed", "open", "exposed"),
    }
    metrics = run.table("cases").iloc[0]
    assert (metrics["metric.exposed_instances"], metrics["metric.exposed_ports"],
            metrics["metric.unreachable_open_ports"],
            metrics["metric.hypervisors_affected"]) == (1.0, 4.0, 0.0, 1.0)
    assert run.table("sla")["passed"].tolist() == [False]
    assert verdict(run) == ("1 exposed instance(s) (4 port(s)), 0 unreachable open port(s), "
                            "on 1 hypervisor(s)")
    (section,) = sections([run], FigureOptions())
    (plot,) = section.plots
    per_host = {hosts[web1[0]]: 0}  # a clean hypervisor is drawn at zero ...
    per_host[hosts[web2[0]]] = 1   # ... unless web-2 shares it
    assert dict(zip(plot.data["hypervisor"], plot.data["exposed_instances"],
                    strict=True)) == per_host
    exposure = next(t for t in section.tables if t.name.startswith("audit-exposure"))
    assert sorted(exposure.frame["port"]) == [22, 3306, 6379, 8081]
    # After the fix: nothing exposed; the change between the audits says what was fixed.
    after = results.load(fixed.path)
    assert after.table("sla")["passed"].tolist() == [True]
    assert verdict(after) == "every probed instance enforced its security groups (3 in scope)"
    _, exposure_change = changes(run, after)
    assert sorted(zip(exposure_change["change"], exposure_change["name"],
                      exposure_change["port"], strict=True)) == [
        ("fixed", "web-2", 22), ("fixed", "web-2", 3306), ("fixed", "web-2", 6379),
        ("fixed", "web-2", 8081)]
    assert compare_runs(run, after).set_index("metric")["verdict"].to_dict() == {
        "hosts_in_step": "incomparable", "probes_ok": "fixed"}
