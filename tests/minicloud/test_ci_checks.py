"""The checks `nox -s minicloud` runs against a real minicloud (CI's proof).

They need runs the session made, so they skip unless it names them:
- `OSBENCH_MINICLOUD_BOOT_RUN` / `OSBENCH_MINICLOUD_ROOTWRAP_RUN` /
  `OSBENCH_MINICLOUD_SEARCH_RUN`: the run directories; the `live` checks run
  while minicloud is still up;
- `OSBENCH_MINICLOUD_AUDIT_{ENFORCED,PLANTED,RESTORED}_RUN` and
  `OSBENCH_MINICLOUD_AUDIT_PROOF` (tests/minicloud/audit_proof.py's record of what
  it made and planted): the firewall audit's three runs (issue 20);
- `OSBENCH_MINICLOUD_DOWN=1`: the `after_down` checks, after `osbench minicloud down`.
Once named, nothing here skips: every check asserts.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from osbench import netns, results
from osbench.minicloud import firewall, layout, manage, services
from osbench.minicloud.guests import GUEST_NETNS_PREFIX

BOOT_RUN = os.environ.get("OSBENCH_MINICLOUD_BOOT_RUN")
ROOTWRAP_RUN = os.environ.get("OSBENCH_MINICLOUD_ROOTWRAP_RUN")
SEARCH_RUN = os.environ.get("OSBENCH_MINICLOUD_SEARCH_RUN")
AUDIT_RUNS = {label: os.environ.get(f"OSBENCH_MINICLOUD_AUDIT_{label.upper()}_RUN")
              for label in ("enforced", "planted", "restored")}
AUDIT_PROOF = os.environ.get("OSBENCH_MINICLOUD_AUDIT_PROOF")
AFTER_DOWN = os.environ.get("OSBENCH_MINICLOUD_DOWN") == "1"
STATE_DIR = layout.default_state_dir()

live = pytest.mark.skipif(not BOOT_RUN, reason="needs a boot run on minicloud: run by "
                          "`nox -s minicloud` (OSBENCH_MINICLOUD_BOOT_RUN)")
after_down = pytest.mark.skipif(not AFTER_DOWN, reason="needs `osbench minicloud down` just "
                                "before: run by `nox -s minicloud` (OSBENCH_MINICLOUD_DOWN=1)")
#: Users minicloud's services run as; after `down` none of them may own a process.
SERVICE_USERS = ("keystone", "placement", "glance", "nova", "neutron", "rabbitmq", "mysql")
#: What the running minicloud must report: the versions layout pins (not a copy of them).
PINNED = {"nova": manage.upstream_version(layout.PACKAGES["nova-api"]),
          "neutron": manage.upstream_version(layout.PACKAGES["neutron-server"])}


def _boot() -> results.Run:
    assert BOOT_RUN
    return results.load(Path(BOOT_RUN))


def _guest_events() -> dict[str, list[dict[str, Any]]]:
    by_instance: dict[str, list[dict[str, Any]]] = {}
    for row in manage.guest_log(STATE_DIR):
        if "instance_id" in row:
            by_instance.setdefault(row["instance_id"], []).append(row)
    return by_instance


@live
def test_every_instance_active_and_phoned_home() -> None:
    run = _boot()
    instances = run.tables["instances"]
    assert len(instances) == 20
    assert (instances["outcome"] == "ok").all(), instances["outcome"].value_counts().to_dict()
    assert instances["time_to_active_s"].notna().all()
    assert instances["time_to_phone_home_s"].notna().all()


@live
def test_every_port_went_active_for_real() -> None:
    instances = _boot().tables["instances"]
    assert instances["time_to_port_active_s"].notna().all(), "a port never seen ACTIVE"


@live
def test_every_guest_got_a_real_lease_before_phoning_home() -> None:
    instances = _boot().tables["instances"]
    events = _guest_events()
    for instance_id in instances["instance_id"]:
        rows = events.get(instance_id, [])
        kinds = [r["event"] for r in rows]
        assert "plugged" in kinds, f"{instance_id}: no tap/namespace: {kinds}"
        assert "port_active" in kinds, f"{instance_id}: port never ACTIVE: {kinds}"
        leases = [r["lease"] for r in rows if r["event"] == "dhcp" and r.get("lease")]
        assert leases, f"{instance_id}: no DHCP lease: {rows}"
        assert leases[0]["address"].startswith("10.254.0."), leases[0]
        assert leases[0]["server"].startswith("10.254.0."), leases[0]  # the DHCP agent's dnsmasq
        assert kinds.index("phone_home") > kinds.index("dhcp"), kinds


@live
def test_real_provenance_with_openstack_versions() -> None:
    manifest = _boot().manifest
    targets = manifest["targets"]
    assert targets and all(t["simulated"] is False and t["type"] == "cloud" for t in targets)
    assert manifest["clock"] == "real"
    target = targets[0]
    assert target["cloud"] == "minicloud"
    assert "max microversion 2.93" in target["api_versions"]["compute"]
    openstack = target["metadata"]["minicloud"]["openstack"]
    assert {name: openstack[name] for name in PINNED} == PINNED


@live
def test_report_shows_real_provenance() -> None:
    report = Path(os.environ.get("OSBENCH_MINICLOUD_REPORT", "reports/minicloud")) / "report.md"
    text = report.read_text()
    assert "REAL cloud minicloud" in text
    assert "SIMULATED" not in text
    assert f"nova {PINNED['nova']}" in text


#: Services whose CPU the boot's monitors must have seen (issue 16); neutron-server
#: is minicloud's uwsgi API or its RPC server: either counts.
MONITORED = (("nova-api",), ("nova-conductor",), ("neutron-server-api", "neutron-server-rpc"),
             ("neutron-dhcp-agent",))


@live
def test_monitors_saw_the_real_control_plane() -> None:
    run = _boot()
    monitor = run.tables["monitor"]
    cpu = monitor[(monitor["source"] == "processes@local")
                  & (monitor["metric"] == "service_cpu_pct")]
    samples = cpu.groupby("label.service").size().to_dict()
    for names in MONITORED:
        assert any(samples.get(n, 0) >= 3 for n in names), (names, samples)
    # The real RabbitMQ's DHCP-agent queues, from the real rabbitmqctl.
    queues = monitor[monitor["source"].str.startswith("rabbitmq@")
                     & (monitor["metric"] == "queue_ready")]
    dhcp = queues[queues["label.group"] == "neutron-dhcp-agent"]
    assert len(dhcp) >= 3, queues.groupby("label.group").size().to_dict()
    sources = run.tables["monitor_sources"].set_index("source")
    assert sources.loc["processes@local", "samples"] >= 10
    assert sources.loc["api", "samples"] > 0
    # The report draws the control-plane panel under the boot timeline.
    report = Path(os.environ.get("OSBENCH_MINICLOUD_REPORT", "reports/minicloud")) / "report.md"
    text = report.read_text()
    assert "#### Control plane: " in text and "figures/boot-control-plane-1.svg" in text
    assert (report.parent / "figures" / "boot-control-plane-1.svg").is_file()


@live
def test_zero_servers_and_ports_left() -> None:
    cleanup = _boot().tables["cleanup"]
    assert len(cleanup) == 1
    row = cleanup.iloc[0]
    assert not row["kept"] and row["deleted"] == 20
    assert row["leftover_servers"] == 0 and row["leftover_ports"] == 0
    import openstack

    conn = openstack.connect(cloud=layout.CLOUD_NAME)
    try:
        servers = list(conn.compute.servers(all_projects=True))
        ports = [p for p in conn.network.ports()
                 if str(p.device_owner).startswith("compute:")]
    finally:
        conn.close()
    assert servers == [] and ports == []


@live
def test_guests_are_removed_with_their_instances() -> None:
    deadline = time.monotonic() + 60  # the player polls every 2 s
    while time.monotonic() < deadline:
        guests = netns.names(GUEST_NETNS_PREFIX)
        if not guests:
            break
        time.sleep(1)
    assert guests == [], "guest namespaces outlived their instances"
    removed = {r["port_id"] for r in manage.guest_log(STATE_DIR) if r["event"] == "removed"}
    plugged = {r["port_id"] for r in manage.guest_log(STATE_DIR) if r["event"] == "plugged"}
    assert plugged <= removed


@live
def test_create_was_sent_once_and_retries_are_journaled() -> None:
    run = _boot()
    creates = run.tables["creates"]
    assert len(creates) == 1 and (creates["outcome"] == "accepted").all()
    retries = run.tables.get("api_retries", pd.DataFrame(columns=["method"]))
    assert set(retries["method"]) <= {"GET", "DELETE"}  # never a POST


@live
def test_rootwrap_probe_ran_in_the_dhcp_agents_namespace() -> None:
    assert ROOTWRAP_RUN, "OSBENCH_MINICLOUD_ROOTWRAP_RUN not set"
    run = results.load(Path(ROOTWRAP_RUN))
    network_id = json.loads((STATE_DIR / manage.RESOURCES_FILE).read_text())["network_id"]
    namespaces = run.tables["namespaces"]
    assert list(namespaces["name"]) == [f"qdhcp-{network_id}"]
    assert not namespaces["created"].any()  # the agent's own namespace, not a fresh one
    modes = run.tables["modes"].set_index("mode")
    assert set(modes.index) == {"direct", "rootwrap", "daemon"}
    assert (modes["n"] > 0).all() and (modes["p50_ms"] > 0).all()
    params = run.manifest["scenario"]["params"]
    assert params["wrapper"] == "/usr/bin/neutron-rootwrap"
    assert params["daemon_wrapper"] == "/usr/bin/neutron-rootwrap-daemon"


@live
def test_capacity_search_on_the_real_nova() -> None:
    """scenarios/minicloud/search-5-40.yaml: grown from 5 by doubling, bisected to 5,
    never past 40, every point a real multi-create deleted before the next."""
    assert SEARCH_RUN, "OSBENCH_MINICLOUD_SEARCH_RUN not set"
    run = results.load(Path(SEARCH_RUN))
    summary = run.table("search_summary")
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row["status"] == "done" and not row["error"]
    assert row["capacity"] >= row["require"] == 10
    steps = run.table("search")
    assert steps["value"].iloc[0] == 5 and steps["value"].max() <= 40
    assert set(steps["verdict"]) <= {"pass", "fail"}
    passed = steps[steps["verdict"] == "pass"]["value"]
    failed = steps[steps["verdict"] == "fail"]["value"]
    assert passed.max() == row["capacity"]
    if row["first_fail"] is not None and row["first_fail"] == row["first_fail"]:
        assert failed.min() == row["first_fail"]
        assert row["first_fail"] - row["capacity"] <= row["resolution"]
        # Each failure says which criteria it missed.
        assert all(missed for missed in steps[steps["verdict"] == "fail"]["missed"])
    else:
        assert row["capacity"] == 40 and failed.empty
    # One case per point, each cleaned up in full before the next point.
    cleanup = run.table("cleanup")
    assert len(cleanup) == len(steps) == row["points"]
    assert (cleanup["leftover_servers"] == 0).all() and (cleanup["leftover_ports"] == 0).all()
    report = Path(os.environ.get("OSBENCH_MINICLOUD_REPORT", "reports/minicloud")) / "report.md"
    assert f"capacity {int(row['capacity'])}" in report.read_text()


@live
def test_active_times_are_novas_launched_at_on_our_clock() -> None:
    """Issue 18: every instance's ACTIVE time is Nova's `launched_at` (whole seconds
    on minicloud's MariaDB: `...T21:00:00.000000`, no zone), mapped with the offset
    of the cloud's clock read from the APIs' Date headers, and the manifest says
    that offset. minicloud's services share this machine's clock: offset ~0."""
    run = _boot()
    instances = run.tables["instances"]
    sources = instances["active_source"].value_counts().to_dict()
    assert sources == {"launched_at": len(instances)}, sources
    (clock,) = run.tables["cloud_clock"].to_dict("records")
    (target,) = run.manifest["targets"]
    entry = target["cloud_clock"][clock["case"]]
    assert entry["samples"] >= 10 and entry["agreeing"] >= 0.9 * entry["samples"], entry
    assert entry["uncertainty_s"] < 0.5, entry
    assert abs(entry["offset_s"]) <= entry["uncertainty_s"] + 0.05, entry
    # Not checked: each time's uncertainty (the mapping's own formula) and its bound by
    # the poll that saw it ACTIVE (the tracker clamps to it): both hold by construction.


# -- the firewall audit (issue 20) -----------------------------------------------

audit = pytest.mark.skipif(not AUDIT_PROOF, reason="needs the audit proof's runs on minicloud: "
                           "run by `nox -s minicloud` (OSBENCH_MINICLOUD_AUDIT_PROOF)")


def _proof() -> dict[str, Any]:
    assert AUDIT_PROOF
    return dict(json.loads(Path(AUDIT_PROOF).read_text()))


def _audit(label: str) -> tuple[results.Run, pd.DataFrame, dict[str, float]]:
    """A run of the proof: the run, its probes, its metrics."""
    path = AUDIT_RUNS[label]
    assert path, f"OSBENCH_MINICLOUD_AUDIT_{label.upper()}_RUN not set"
    run = results.load(Path(path))
    row = run.table("cases").iloc[0]
    metrics = {k.removeprefix("metric."): float(row[k]) for k in row.index
               if str(k).startswith("metric.") and row[k] is not None}
    return run, run.table("probes"), metrics


def _tagged(proof: dict[str, Any]) -> dict[str, str]:
    """Instance id -> name of the guests the `tag:` scope must find."""
    return {sid: name for name, sid in proof["servers"].items() if not name.endswith(
        "untagged")}


@audit
def test_audit_scope_is_the_tagged_guests_on_the_named_hypervisor() -> None:
    """name_prefix AND tag (compute 2.26 for the listing's tags): the untagged guest,
    same prefix, is not in scope; every instance's hypervisor is Nova's host name."""
    proof = _proof()
    assert len(proof["servers"]) == 5 and proof["problems"] == [], proof["problems"]
    for label in AUDIT_RUNS:
        run, _, metrics = _audit(label)
        instances = run.table("instances")
        assert dict(zip(instances["instance"], instances["name"], strict=True)) == _tagged(
            proof), label
        assert set(instances["hypervisor"]) == {layout.COMPUTE_HOST}, label
        assert metrics["instances_in_scope"] == 4
        notes = run.table("audit_notes")
        assert f"probes from netns:{layout.INTERNET_NETNS}" in notes["message"].tolist()
        assert proof["runs"][label]["exit"] == proof["runs"][label]["expected_exit"]


@audit
def test_audit_enforced_guests_are_reported_enforced() -> None:
    """No closed port answers from the Internet, every opened port does."""
    proof = _proof()
    _, probes, metrics = _audit("enforced")
    assert set(probes["instance"]) == set(_tagged(proof))
    closed = probes[probes["expected"] == "closed"]
    opened = probes[probes["expected"] == "open"]
    assert set(closed["seen"]) == {"filtered"}, closed["seen"].value_counts().to_dict()
    assert {22, 3306, 5432, 6379, 9200, 11211, 27017} <= set(closed["port"])
    # The opened port: reached (a RST from the guest, which runs no service) on the
    # guest whose group opens it, and only there; dropped on the others.
    assert len(opened) >= 1 and opened["seen"].isin(["open", "refused"]).all(), opened
    assert set(opened["name"]) == {n for n in proof["servers"] if n.endswith("-open")}
    assert (closed[closed["port"] == 8080]["name"].nunique()) == 3
    assert metrics["exposed_instances"] == 0 and metrics["exposed_ports"] == 0
    assert metrics["unreachable_open_ports"] == 0 and metrics["probes_inconclusive"] == 0
    assert metrics["probes_sent"] == len(probes)


@audit
def test_audit_finds_exactly_the_planted_guest_with_its_ports() -> None:
    proof = _proof()
    planted = proof["planted"]
    assert planted["held_through_run"] is True  # the agent did not undo it mid-run
    run, probes, metrics = _audit("planted")
    exposed = probes[probes["finding"] == "exposed"]
    assert set(exposed["instance"]) == {planted["instance"]}, exposed
    mine = probes[(probes["instance"] == planted["instance"])
                  & (probes["expected"] == "closed")]
    # Every port its rules close answered: the whole tap was let through.
    assert sorted(exposed["port"]) == sorted(mine["port"]) and 22 in set(exposed["port"])
    assert set(exposed["hypervisor"]) == {layout.COMPUTE_HOST}
    others = probes[(probes["instance"] != planted["instance"])
                    & (probes["expected"] == "closed")]
    assert set(others["seen"]) == {"filtered"}
    assert metrics["exposed_instances"] == 1 and metrics["hypervisors_affected"] == 1
    assert metrics["exposed_ports"] == len(mine) and metrics["unreachable_open_ports"] == 0
    sla = run.table("sla").set_index("criterion")
    assert not sla.loc["exposed_instances == 0", "passed"]
    assert proof["runs"]["planted"]["exit"] == 1


@audit
def test_audit_after_the_restore_none_is_exposed() -> None:
    proof = _proof()
    assert proof["planted"]["restored"] is True
    _, probes, metrics = _audit("restored")
    closed = probes[probes["expected"] == "closed"]
    assert set(closed["seen"]) == {"filtered"}
    # The planted guest probed as before (its closed ports, now dropped again).
    assert (closed["instance"] == proof["planted"]["instance"]).sum() >= 8
    assert metrics["exposed_instances"] == 0 and metrics["unreachable_open_ports"] == 0


@audit
def test_audit_proof_left_nothing_behind() -> None:
    """The proof's servers, ports and group gone; its rule and the agent's chains of
    those ports gone from iptables."""
    import subprocess

    import openstack

    proof = _proof()
    conn = openstack.connect(cloud=layout.CLOUD_NAME)
    try:
        servers = {s.id for s in conn.compute.servers(all_projects=True)}
        ports = {p.id for p in conn.network.ports()}
        groups = {g.id for g in conn.network.security_groups()}
    finally:
        conn.close()
    assert not servers & set(proof["servers"].values())
    assert not ports & set(proof["ports"].values())
    assert proof["group_id"] not in groups
    rules = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True,
                           check=True).stdout
    assert firewall.PLANT_COMMENT not in rules
    assert not [pid for pid in proof["ports"].values() if pid[:10] in rules]
    report = Path(os.environ.get("OSBENCH_MINICLOUD_REPORT", "reports/minicloud")) / "report.md"
    assert "1 exposed instance(s)" in report.read_text()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@after_down
def test_down_leaves_no_process_it_started() -> None:
    assert services.PidBook(STATE_DIR).load() == {}
    owners = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            uid = entry.stat().st_uid
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":  # exited, not yet reaped by its parent: runs nothing (a
            continue      # mysqld was seen so once, with an empty command line)
        owners[int(entry.name)] = (uid, cmd)
    import pwd

    users = {pwd.getpwnam(u).pw_uid: u for u in SERVICE_USERS}
    left = {pid: (users[uid], cmd) for pid, (uid, cmd) in owners.items() if uid in users}
    assert left == {}, f"processes of minicloud's service users remain: {left}"
    ours = {pid: cmd for pid, (_, cmd) in owners.items()
            if ("dnsmasq" in cmd and "/var/lib/neutron/dhcp" in cmd)
            or ("dhclient" in cmd and str(STATE_DIR) in cmd)
            or "osbench.minicloud" in cmd or "neutron-rootwrap-daemon" in cmd}
    assert ours == {}, f"processes minicloud started remain: {ours}"
    for name, port in layout.PORTS.items():
        assert not _listening(port), f"{name} still listens on 127.0.0.1:{port}"


def _naming_state_dir() -> dict[int, str]:
    """Processes whose command line names the state directory, with their network
    namespace: /proc here lists the processes of every network namespace. Found without
    minicloud's own code, and spared nothing but this test's own ancestry."""
    mine, pid = set(), os.getpid()
    while pid > 1:
        mine.add(pid)
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            netns = str((entry / "ns" / "net").readlink())
        except OSError:
            continue
        if str(STATE_DIR) in cmd:
            found[int(entry.name)] = f"{netns}: {cmd}"
    return found


@after_down
def test_down_leaves_no_process_naming_the_state_dir_in_any_namespace() -> None:
    assert _naming_state_dir() == {}
    # Again a little later: a DHCP client that detaches after its lease appeared only
    # once its parent had exited (issue 13).
    time.sleep(5)
    assert _naming_state_dir() == {}


@after_down
def test_down_puts_bridge_netfilter_back_and_removes_the_agents_chains() -> None:
    """bridge-nf-call-iptables as `up` found it (the record `down` kept); no chain of
    the Linux bridge agent's, nor a jump to one, in any table (IPv4, IPv6, ebtables)."""
    import subprocess

    assert not (STATE_DIR / "netfilter.json").exists()
    record = json.loads((STATE_DIR / "netfilter.restored.json").read_text())
    assert Path(record["sysctl"]).read_text().strip() == record["previous"]
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "raw", "mangle"):
            rules = subprocess.run([tool, "-w", "-t", table, "-S"], capture_output=True,
                                   text=True, check=True).stdout
            assert "neutron-" not in rules and firewall.PLANT_COMMENT not in rules, (
                tool, table, rules)
    for table in ("nat", "filter"):  # ARP/MAC spoofing protection of the guests' taps
        rules = subprocess.run(["ebtables", "-t", table, "-L"], capture_output=True,
                               text=True, check=True).stdout
        assert "neutron" not in rules, (table, rules)


@after_down
def test_down_removes_guests_bridge_and_namespaces() -> None:
    namespaces = netns.names()
    assert [ns for ns in namespaces if ns.startswith(("osbmc-", "qdhcp-"))] == []
    links = netns.links()
    assert [link for link in links if link.startswith(("osbmc-", "tap", "brq"))] == []
