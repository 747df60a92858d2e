"""The firewall check's API side on the simulated cloud as osbench opens it by
default (a simulated target): servers in scope, their ports' groups and rules,
what those rules open to this machine; and no probe at all, with the reason in
the run's notes and the report. The cloud opener is pointed (for this test only)
at a simulated cloud that already has servers, through the targets' own seam.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml

from osbench import results, targets
from osbench.cloudclient import CloudClient, CloudTarget
from osbench.kinds.audit import scope
from osbench.kinds.audit.params import FirewallParams
from osbench.kinds.audit.report import sections, verdict
from osbench.kinds.audit.run import SIM_SKIP
from osbench.progress import SilentProgress
from osbench.report.style import FigureOptions
from osbench.runner import Runner, RunOptions
from osbench.scenario import TargetSpec, parse_scenario
from osbench.scenario.source import load_text
from tests.audit.sim_servers import boot
from tests.boot.conftest import SimThread
from tests.sim.conftest import SDK_INTERNAL_WARNINGS

pytestmark = SDK_INTERNAL_WARNINGS

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "audit" / "sim-api.yaml"


def use_as_target(sim: SimThread, monkeypatch: pytest.MonkeyPatch, admin: bool = False
                  ) -> None:
    """Runs open `sim` as their (simulated) cloud target, as the member or the admin."""

    @asynccontextmanager
    async def opener(spec: TargetSpec, seed: int) -> AsyncIterator[CloudTarget]:
        client = CloudClient(sim.sim.connect(admin=admin), clock=sim.sim.clock)
        try:
            yield CloudTarget(client, simulated=True, sim=sim.sim,
                              description={"type": "simulated-cloud"},
                              defaults={"image": sim.sim.image_id,
                                        "flavor": sim.sim.flavor_name,
                                        "network": sim.sim.network_id})
        finally:
            await asyncio.to_thread(client.close)

    targets.check_target("cloud", TargetSpec())  # the real opener loaded first
    monkeypatch.setitem(targets._openers, "cloud", opener)


def test_api_side_on_the_simulated_cloud(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with SimThread(time_scale=60) as sim:
        booted = boot(sim, ("web-1", "web-2", "db-1"))
        use_as_target(sim, monkeypatch)
        scenario = parse_scenario(load_text(SCENARIO.read_text(), str(SCENARIO)))
        result = asyncio.run(Runner(scenario, RunOptions(results_dir=tmp_path / "r")).run())
    assert [c.error for c in result.cases] == [None]
    run = results.load(result.path)
    seen = run.table("instances").set_index("name")
    assert sorted(seen.index) == ["web-1", "web-2"]
    # A member sees no host name: Nova's per-project hostId stands for it.
    assert all(h.startswith("hostId:") for h in seen["hypervisor"])
    assert (seen["groups"] == "default").all()
    expected = run.table("expected")
    web1 = expected[expected["address"] == booted["web-1"][1]]
    assert dict(zip(web1["port"], web1["expected"], strict=True)) == {
        8080: "open", 8081: "closed", 22: "closed", 3306: "closed", 5432: "closed",
        6379: "closed", 9200: "closed", 11211: "closed", 27017: "closed"}
    assert "probes" not in run.tables
    assert SIM_SKIP in run.table("audit_notes")["message"].tolist()
    metrics = run.table("cases").iloc[0]
    assert metrics["metric.instances_in_scope"] == 2.0
    assert pd.isna(metrics["metric.exposed_instances"])  # not measured, not zero
    assert verdict(run) == "firewall not probed (2 instance(s) read from the API)"
    (section,) = sections([run], FigureOptions())
    assert any(SIM_SKIP in note for note in section.notes)


def test_a_scope_that_matches_nothing_is_recorded(tmp_path: Path) -> None:
    """The shipped scenario on a fresh embedded simulated cloud: no `web-` server."""
    scenario = parse_scenario(load_text(SCENARIO.read_text(), str(SCENARIO)))
    result = asyncio.run(Runner(scenario, RunOptions(results_dir=tmp_path / "r")).run())
    assert result.status == "completed" and [c.error for c in result.cases] == [None]
    run = results.load(result.path)
    assert run.table("audit_notes")["message"].tolist() == [
        "empty scope: no instance matched instances with name starting with 'web-'; "
        "nothing probed"]
    assert run.table("cases")["metric.instances_in_scope"].tolist() == [0.0]
    assert verdict(run) == "firewall: no instance in scope"


BOOT_SCENARIO = """\
name: audit-boot
kind: audit
params:
  checks: [firewall]
  firewall:
    boot: {poll_interval_s: 5s, timeout_s: 20m}
"""


def test_boot_one_probe_instance_per_hypervisor_and_delete_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SimThread(time_scale=60) as sim:
        mine = boot(sim, ("web-1",))  # not the audit's: must be left alone
        use_as_target(sim, monkeypatch, admin=True)
        scenario = parse_scenario(load_text(BOOT_SCENARIO, "audit-boot.yaml"))
        result = asyncio.run(Runner(scenario, RunOptions(results_dir=tmp_path / "r")).run())
        left, _ = sim.leftovers()
    assert [c.error for c in result.cases] == [None]
    run = results.load(result.path)
    hosts = sim.sim.profile.compute.hosts
    asked = run.table("boot")
    # Placed by the compute service's host (`nova:compute-NN`), not by the
    # hypervisor's FQDN, which the simulator reports as libvirt does.
    assert sorted(asked["asked_host"]) == [f"compute-{i:02d}" for i in range(hosts)]
    seen = run.table("instances")
    assert len(seen) == hosts and seen["name"].str.startswith("osbench-").all()
    assert "web-1" not in set(seen["name"])
    assert left == ["web-1"]  # every probe instance deleted, nothing else
    assert mine["web-1"][0] not in set(seen["instance"])
    notes = " ".join(run.table("audit_notes")["message"])
    assert "not on the hypervisor asked for" in notes  # the simulator places by itself
    assert SIM_SKIP in notes
    cleanup = run.table("boot_cleanup")
    assert cleanup[["deleted", "leftover"]].to_dict("records") == [
        {"deleted": hosts, "leftover": ""}]


def test_boot_needs_admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SimThread(time_scale=60) as sim:
        use_as_target(sim, monkeypatch)
        scenario = parse_scenario(load_text(BOOT_SCENARIO, "audit-boot.yaml"))
        result = asyncio.run(Runner(scenario, RunOptions(results_dir=tmp_path / "r")).run())
        left, _ = sim.leftovers()
    assert [c.error for c in result.cases] == [
        "UserError: params.firewall.boot needs admin rights (the hypervisors' list and the "
        "placement on each) (use a clouds.yaml entry of an admin, or scope the audit to "
        "existing instances (project, name_prefix, tag))"]
    assert left == []


class StopWhileBooting(SilentProgress):
    """SIGINT's stop as the probe instances are first counted (all created, booting)."""

    runner: Runner | None = None

    def update(self, **counters: int) -> None:
        if "booted" in counters and self.runner is not None:
            self.runner.request_stop("SIGINT")
            self.runner = None


def test_a_stop_while_booting_deletes_every_probe_instance(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SimThread(time_scale=60) as sim:
        use_as_target(sim, monkeypatch, admin=True)
        scenario = parse_scenario(load_text(BOOT_SCENARIO, "audit-boot.yaml"))
        stop = StopWhileBooting()
        runner = Runner(scenario, RunOptions(results_dir=tmp_path / "r"), progress=stop)
        stop.runner = runner
        result = asyncio.run(runner.run())
        left, _ = sim.leftovers()
    assert result.status == "interrupted"
    assert left == []
    run = results.load(result.path)
    assert len(run.table("boot")) == sim.sim.profile.compute.hosts
    assert run.table("boot_cleanup")["leftover"].tolist() == [""]


def test_probe_false_reads_the_api_and_sends_nothing(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator served like a real cloud (clouds.yaml): its instances' addresses
    are only its model's, so `probe: false` keeps the probes home."""
    with SimThread(time_scale=60) as sim:
        boot(sim, ("web-1",))
        clouds = tmp_path / "clouds.yaml"
        clouds.write_text(yaml.safe_dump({"clouds": {"served": sim.sim.cloud_config()}}))
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        text = SCENARIO.read_text().replace("    name_prefix: web-\n",
                                            "    name_prefix: web-\n    probe: false\n")
        scenario = parse_scenario(load_text(text, "served.yaml"))
        result = asyncio.run(Runner(scenario, RunOptions(
            results_dir=tmp_path / "r", target=TargetSpec(cloud="served"))).run())
    run = results.load(result.path)
    assert [c.error for c in result.cases] == [None]
    assert run.manifest["targets"][0]["simulated"] is False
    assert "probes" not in run.tables and len(run.table("expected")) == 9
    assert ("probes skipped: params.firewall.probe is false (the API side only)"
            in run.table("audit_notes")["message"].tolist())


def test_the_tag_scope_lists_servers_at_the_microversion_that_shows_tags() -> None:
    """A server's body carries `tags` from compute 2.26 on (the simulated Nova follows
    the real one): the `tag:` scope asks for it, or it would find nothing."""
    with SimThread(time_scale=60) as sim:
        conn = sim.sim.connect()
        try:
            for name, tags in (("web-1", ["audited"]), ("web-2", ["other"]), ("web-3", [])):
                conn.compute.post("/servers", json={"server": {
                    "name": name, "imageRef": sim.sim.image_id,
                    "flavorRef": sim.sim.flavor_id, "networks": [{"uuid": sim.sim.network_id}],
                    "tags": tags}}, microversion="2.52").raise_for_status()
        finally:
            conn.close()
        client = CloudClient(sim.sim.connect(), clock=sim.sim.clock)
        try:
            found = asyncio.run(scope.servers(client, FirewallParams(tag="audited")))
            both = asyncio.run(scope.servers(client, FirewallParams(name_prefix="web-",
                                                                    tag="other")))
        finally:
            client.close()
    assert [(s["name"], s["tags"]) for s in found] == [("web-1", ["audited"])]
    assert [s["name"] for s in both] == ["web-2"]
