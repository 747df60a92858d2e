"""The versions check over real SSH into the local lab: one version difference
planted on one host (its own dpkg status file, in its sshd's mount namespace) is
found with host, package and both versions; every other host reports the same
version; after the plant is removed, no drift. And a host that does not answer
is recorded while the others are still compared.

Needs root (the lab); run under `flock /tmp/osbench-ns.lock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from osbench import lab, netns, results
from osbench.api import cleanup_run, compare_runs
from osbench.hosts import close_all, connect, load_inventory
from osbench.kinds.audit import probe, vantage
from osbench.kinds.audit.report import changes, verdict
from osbench.lab import LabConfig, planting
from osbench.runner import Runner, RunOptions, RunResult
from osbench.scenario import TargetSpec, parse_scenario
from osbench.scenario.source import load_text
from tests.support.lab import needs_root, running_lab

pytestmark = needs_root

PACKAGE = "openssh-server"  # the lab's own sshd: installed wherever the lab runs
PLANTED = "1:0.1-planted"


@pytest.fixture(scope="module")
def audit_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabConfig]:
    with running_lab(LabConfig(targets=3, ports_per_target=1, prefix="osba-", mgmt_net=207,
                               state_dir=tmp_path_factory.mktemp("lab"))) as config:
        yield config


def installed(package: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], check=True,
                          capture_output=True, text=True).stdout


def audit(inventory: Path, results_dir: Path, *, via_hosts: bool = False) -> results.Run:
    """A versions-only audit of `inventory`: named in its params, or (`via_hosts`)
    given as the run's --hosts."""
    named = "" if via_hosts else f"\n    inventory: {inventory}"
    text = f"""\
name: lab-drift
kind: audit
params:
  checks: [versions]
  versions:{named}
    roles: {{targets: [target1, target2, target3], others: [client, netnode]}}
    packages: ["{PACKAGE}", "iproute2", "python3-oslo*"]
    config_files: [/etc/hostname, /nonexistent/audit.conf]
    timeout_s: 20
sla: [drifted_packages == 0]
"""
    scenario = parse_scenario(load_text(text, "lab-drift.yaml"))
    target = TargetSpec(hosts=str(inventory)) if via_hosts else TargetSpec()
    result = asyncio.run(Runner(scenario, RunOptions(results_dir=results_dir,
                                                     target=target)).run())
    assert [c.error for c in result.cases] == [None]
    return results.load(result.path)


def test_planted_version_is_found_on_its_host_only(audit_lab: LabConfig,
                                                   tmp_path: Path) -> None:
    real = installed(PACKAGE)
    inventory = lab.inventory_path(audit_lab.state_dir)
    status = planting.DPKG_STATUS.read_text()
    asyncio.run(planting.plant_dpkg_status(
        audit_lab, "target2", planting.with_version(status, PACKAGE, PLANTED)))
    try:
        run = audit(inventory, tmp_path / "planted")
    finally:
        asyncio.run(planting.unplant(audit_lab, "target2"))
    drift = run.table("drift")
    assert drift[["role", "item_type", "item", "majority", "majority_hosts", "host",
                  "value"]].to_dict("records") == [
        {"role": "targets", "item_type": "package", "item": PACKAGE, "majority": real,
         "majority_hosts": 2, "host": "target2", "value": PLANTED}]
    seen = run.table("versions").query("item == @PACKAGE").set_index("host")["value"]
    assert seen.to_dict() == {"client": real, "netnode": real, "target1": real,
                              "target2": PLANTED, "target3": real}
    missing = run.table("versions").query("item == '/nonexistent/audit.conf'")
    assert set(missing["value"]) == {"(missing)"} and len(missing) == 5
    hosts = run.table("version_hosts")
    assert hosts["answered"].all() and len(hosts) == 5
    cases = run.table("cases")
    assert cases["metric.drifted_packages"].tolist() == [1.0]
    assert cases["metric.drifted_hosts"].tolist() == [1.0]
    assert cases["metric.drifted_configs"].tolist() == [0.0]
    assert run.table("sla")["passed"].tolist() == [False]
    assert verdict(run) == ("version drift on 1 host(s): 1 package(s), 0 config(s), "
                            "0 kernel role(s)")
    # No cloud is opened for a versions-only audit: this machine runs it, and
    # `osbench cleanup` has nothing to look for.
    assert [t["type"] for t in run.manifest["targets"]] == ["local"]
    assert "opened no cloud" in str(cleanup_run(run).nothing_to_do)
    # The plant is gone: every host agrees again (the inventory given as --hosts,
    # the run's target: recorded as such).
    again = audit(inventory, tmp_path / "clean", via_hosts=True)
    opened = again.manifest["targets"]
    assert [(t["type"], t["inventory"]) for t in opened] == [("hosts", str(inventory))]
    assert sorted(again.table("version_hosts")["host"]) == [
        "client", "netnode", "target1", "target2", "target3"]
    assert again.table("drift").empty
    assert again.table("sla")["passed"].tolist() == [True]
    # Between the two audits: the drift is fixed; the other way round it is new.
    row = {"role": "targets", "item_type": "package", "item": PACKAGE, "host": "target2",
           "value": PLANTED}
    assert changes(run, again)[0].to_dict("records") == [{"change": "fixed", **row}]
    assert changes(again, run)[0].to_dict("records") == [{"change": "new", **row}]
    assert changes(run, again)[1].empty  # no firewall check: no exposure either way
    verdicts = compare_runs(again, run).set_index("metric")["verdict"]
    # no probes in either run: nothing to compare there, and said so
    assert verdicts.to_dict() == {"hosts_in_step": "new failure", "probes_ok": "incomparable"}
    assert compare_runs(run, again).set_index("metric")["verdict"].to_dict() == {
        "hosts_in_step": "fixed", "probes_ok": "incomparable"}


def test_a_host_that_does_not_answer_is_recorded(audit_lab: LabConfig, tmp_path: Path) -> None:
    inventory = lab.inventory_path(audit_lab.state_dir)
    text = inventory.read_text().replace("hosts:\n", (
        "hosts:\n  gone:\n    address: 127.0.0.1\n    port: 1\n    user: root\n"
        f"    key_file: {audit_lab.user_key_file}\n"), 1)
    broken = tmp_path / "inventory.yaml"
    broken.write_text(text)
    scenario = parse_scenario(load_text(f"""\
name: lab-gone
kind: audit
params:
  checks: [versions]
  versions:
    inventory: {broken}
    roles: {{targets: [target1, gone, target3]}}
    packages: ["{PACKAGE}"]
""", "lab-gone.yaml"))
    result = asyncio.run(Runner(scenario, RunOptions(results_dir=tmp_path / "r")).run())
    run = results.load(result.path)
    hosts = run.table("version_hosts").set_index("host")
    assert hosts["answered"].to_dict() == {"target1": True, "gone": False, "target3": True}
    assert "cannot connect to 127.0.0.1:1" in str(hosts.loc["gone", "error"])
    assert run.table("drift").empty  # the two that answered agree
    assert run.table("cases")["metric.hosts_unanswered"].tolist() == [1.0]
    notes = run.table("audit_notes")["message"].tolist()
    assert any(n.startswith("host gone did not answer: gone: cannot connect") for n in notes)


def test_an_inventory_host_as_the_probes_vantage(audit_lab: LabConfig) -> None:
    """`vantage: host:client`: the probe helper runs on the lab's client over real SSH
    (with this machine's Python: lab hosts share its filesystem) and probes the
    network node's management address from there: sshd answers on 22, nothing on 23."""
    inventory = load_inventory(lab.inventory_path(audit_lab.state_dir))
    netnode = inventory.hosts["netnode"].address
    hosts = connect(inventory)

    async def go() -> tuple[dict[str, str | None], list[probe.Outcome]]:
        try:
            where = vantage.open_vantage("host:client", hosts, sys.executable)
            routes = await where.routes([netnode])
            probes = [probe.Probe("netnode", netnode, "tcp", 22, "open"),
                      probe.Probe("netnode", netnode, "tcp", 23, "closed")]
            outcomes = await where.run(probes, probe.Bounds(connect_timeout_s=1.0,
                                                            budget_s=10), lambda o: None)
            return routes, outcomes
        finally:
            await close_all(hosts)

    routes, outcomes = asyncio.run(go())
    assert routes == {netnode: inventory.hosts["client"].address}
    assert [(o.probe.port, o.seen, o.finding) for o in outcomes] == [
        (22, "open", "ok"), (23, "refused", "exposed")]


def test_a_stop_mid_collection_keeps_the_hosts_that_answered(audit_lab: LabConfig,
                                                             tmp_path: Path) -> None:
    """target2's dpkg-query hangs (a planted `sleep 60`); SIGINT's stop comes once
    the other two answered: their values are in the journal, the run says
    interrupted, and target2's command does not outlive the run."""
    dpkg_query = Path(str(shutil.which("dpkg-query")))
    asyncio.run(planting.plant_file(audit_lab, "target2", "#!/bin/sh\nexec sleep 60\n",
                                    dpkg_query, mode=0o755))
    inventory = lab.inventory_path(audit_lab.state_dir)
    scenario = parse_scenario(load_text(f"""\
name: lab-stop
kind: audit
params:
  checks: [versions]
  versions:
    inventory: {inventory}
    roles: {{targets: [target1, target2, target3]}}
    packages: ["{PACKAGE}"]
    timeout_s: 120
""", "lab-stop.yaml"))
    results_dir = tmp_path / "r"

    async def go() -> RunResult:
        runner = Runner(scenario, RunOptions(results_dir=results_dir))
        task = asyncio.ensure_future(runner.run())
        for _ in range(400):  # at most 20 s for two hosts to answer
            await asyncio.sleep(0.05)
            answered = {json.loads(line).get("host") for path in results_dir.glob(
                "*/events.jsonl") for line in path.read_text().splitlines()
                if '"table":"versions"' in line}
            if {"target1", "target3"} <= answered:
                break
        runner.request_stop("SIGINT")
        return await task

    try:
        result = asyncio.run(go())
    finally:
        asyncio.run(planting.unplant(audit_lab, "target2", dpkg_query))
    assert result.status == "interrupted"
    run = results.load(result.path)
    assert set(run.table("versions")["host"]) == {"target1", "target3"}

    def sleepers() -> list[int]:
        out = []
        for pid in netns.pids(f"{audit_lab.prefix}target2"):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x0060\x00":
                    out.append(pid)
        return out

    for _ in range(100):  # the channel's close reaches the remote side within ~5 s
        if not sleepers():
            break
        time.sleep(0.05)
    assert sleepers() == []
