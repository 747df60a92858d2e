"""The firewall audit's proof on minicloud (issue 20), run by `nox -s minicloud`
while minicloud is up (root):

    python -m tests.minicloud.audit_proof --results DIR

1. Makes security group `osbench-ci-open-8080` (one ingress rule: tcp 8080 from
   0.0.0.0/0) and five guests whose ports have port security on (the network's
   default is off): `osbench-audit-ci-1..3` in `default` only,
   `osbench-audit-ci-open` in `default` and the new group, all four tagged
   `osbench-audit-ci`, and `osbench-audit-ci-untagged` (default, no tag: the
   `tag:` scope must leave it out). Waits until each is ACTIVE, the Linux bridge
   agent has made its iptables chain for its tap, and the guest player has a
   DHCP lease for it.
2. Runs scenarios/minicloud/audit-firewall.yaml (probes from "the Internet"
   namespace, `osbench.minicloud.firewall`) three times, each into its own
   results directory: `enforced` (expects exit 0); `planted` after the incident
   on `osbench-audit-ci-2` (an ACCEPT for frames bridged out to its tap, first
   in FORWARD, before the agent's chains: its firewall no longer applies), which
   expects exit 1 (the SLA `exposed_instances == 0` fails), and checks that the
   rule is still there after the run (the agent did not undo it); `restored`
   after deleting exactly that rule (expects exit 0).
3. Always (finally, also on SIGTERM or Ctrl-C): deletes the planted rule if still
   there, then the guests, their ports and the group, by the ids it made, and
   nothing else. Killed outright (SIGKILL), the rule goes with `osbench minicloud
   down` (by its comment); the guests and the group stay in minicloud's
   database, and the next proof refuses to start until they are deleted (it
   names them) rather than audit them along with its own.

`DIR/audit-proof.json` records what it made, planted and saw (the CI checks in
test_ci_checks.py read it with the runs); it exits 1 when any step did not go
as expected.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from osbench import netns
from osbench.minicloud import firewall, layout, manage
from osbench.minicloud.guests import vif_name

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "minicloud" / "audit-firewall.yaml"
PORT = 8080
GROUP = f"osbench-ci-open-{PORT}"
PREFIX = "osbench-audit-ci-"
TAG = "osbench-audit-ci"
#: name -> (tagged, in the open group)
GUESTS = {f"{PREFIX}1": (True, False), f"{PREFIX}2": (True, False),
          f"{PREFIX}3": (True, False), f"{PREFIX}open": (True, True),
          f"{PREFIX}untagged": (False, False)}
PLANTED = f"{PREFIX}2"
#: The scenario's SLA fails on the planted exposure: `osbench run` exits 1.
EXPECTED_EXIT = {"enforced": 0, "planted": 1, "restored": 0}
#: Five guests of one request each: ACTIVE, chains and leases within ~40 s here.
READY_TIMEOUT_S = 300.0
RUN_TIMEOUT_S = 600.0
#: The Nova microversion that takes `tags` in a server's create body.
CREATE_TAGS_MICROVERSION = "2.52"
PROOF_FILE = "audit-proof.json"


@dataclass
class Proof:
    """What the proof made, planted and saw; written as it goes."""

    path: Path
    group_id: str | None = None
    ports: dict[str, str] = field(default_factory=dict)
    servers: dict[str, str] = field(default_factory=dict)
    planted: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    cleanup: list[str] = field(default_factory=list)

    def save(self) -> None:
        doc = {k: v for k, v in asdict(self).items() if k != "path"}
        self.path.write_text(json.dumps(doc, indent=1))


def say(text: str) -> None:
    print(f"audit proof: {text}", flush=True)


def wait(what: str, ready: Callable[[], bool], timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(2.0)


def plant_rule(tap: str) -> list[str]:
    """The incident: frames bridged out to `tap` accepted before the agent's chains."""
    return ["FORWARD", "-m", "physdev", "--physdev-out", tap, "--physdev-is-bridged",
            "-m", "comment", "--comment", firewall.PLANT_COMMENT, "-j", "ACCEPT"]


def iptables(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", *argv], capture_output=True, text=True,
                          check=check, timeout=60)


def rule_present(rule: list[str]) -> bool:
    return iptables("-C", *rule, check=False).returncode == 0


def leftovers(conn: Any) -> list[str]:
    """Servers and groups by the proof's names that it did not make now."""
    servers = [f"server {s.name} ({s.id})" for s in conn.compute.servers(all_projects=True)
               if str(s.name).startswith(PREFIX)]
    groups = [f"security group {g.name} ({g.id})" for g in conn.network.security_groups()
              if g.name == GROUP]
    return servers + groups


def make(conn: Any, proof: Proof, network_id: str) -> None:
    group = conn.network.create_security_group(
        name=GROUP, description="osbench audit proof: opens one port (issue 20)")
    proof.group_id = group.id
    proof.save()
    conn.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=PORT, port_range_max=PORT, remote_ip_prefix="0.0.0.0/0")
    default = conn.network.find_security_group("default", project_id=conn.current_project_id)
    image = conn.image.find_image(layout.IMAGE_NAME)
    flavor = conn.compute.find_flavor(layout.FLAVOR_NAME)
    for name, (tagged, opened) in GUESTS.items():
        groups = [default.id, group.id] if opened else [default.id]
        port = conn.network.create_port(network_id=network_id, name=name,
                                        port_security_enabled=True, security_group_ids=groups)
        proof.ports[name] = port.id
        proof.save()
        body: dict[str, Any] = {"name": name, "imageRef": image.id, "flavorRef": flavor.id,
                                "networks": [{"port": port.id}]}
        if tagged:
            body["tags"] = [TAG]
        response = conn.compute.post("/servers", json={"server": body},
                                     microversion=CREATE_TAGS_MICROVERSION)
        response.raise_for_status()
        proof.servers[name] = response.json()["server"]["id"]
        proof.save()


def ready(conn: Any, proof: Proof, state_dir: Path) -> None:
    """Every guest ACTIVE, its tap's ingress chain made by the agent, leased."""
    def active() -> bool:
        return all(conn.compute.get_server(sid).status == "ACTIVE"
                   for sid in proof.servers.values())

    wait("guests ACTIVE", active)
    chains = {name: f"neutron-linuxbri-i{pid[:10]}" for name, pid in proof.ports.items()}

    def filtered() -> bool:
        made = "\n".join(iptables("-S").stdout.splitlines())
        return all(f"-N {chain}" in made for chain in chains.values())

    wait("the Linux bridge agent's chains for the guests' taps", filtered)

    def leased() -> bool:
        rows = manage.guest_log(state_dir)
        got = {r["instance_id"] for r in rows if r["event"] == "dhcp" and r.get("lease")}
        return set(proof.servers.values()) <= got

    wait("a DHCP lease for every guest (guests.jsonl)", leased)


def audit(label: str, results: Path, proof: Proof) -> None:
    """One `osbench run` of the scenario into results/label; its exit status checked."""
    osbench = shutil.which("osbench", path=str(Path(sys.executable).parent)) or "osbench"
    out = results / label
    started = time.monotonic()
    done = subprocess.run([osbench, "run", str(SCENARIO), "--cloud", layout.CLOUD_NAME,
                           "--results", str(out)], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)
    seconds = time.monotonic() - started
    runs = sorted(p.parent for p in out.glob("*/manifest.json"))
    proof.runs[label] = {"exit": done.returncode, "expected_exit": EXPECTED_EXIT[label],
                         "run": str(runs[-1]) if runs else None,
                         "seconds": round(seconds, 1)}
    proof.save()
    say(f"{label}: exit {done.returncode} in {seconds:.1f} s; "
        + " | ".join(line.strip() for line in done.stdout.splitlines()[-4:]))
    if done.returncode != EXPECTED_EXIT[label] or not runs:
        proof.problems.append(f"{label}: exit {done.returncode}, expected "
                              f"{EXPECTED_EXIT[label]}: {done.stderr[-500:]}")


def clean(conn: Any, proof: Proof) -> None:
    """Delete what the proof made, by id; wait for the servers to go first (their
    ports are released before they can be deleted)."""
    for name, sid in proof.servers.items():
        conn.compute.delete_server(sid, ignore_missing=True)
        proof.cleanup.append(f"server {name} ({sid})")

    def gone() -> bool:
        return all(conn.compute.find_server(sid, ignore_missing=True) is None
                   for sid in proof.servers.values())

    wait("the proof's servers deleted", gone)
    for name, pid in proof.ports.items():
        conn.network.delete_port(pid, ignore_missing=True)
        proof.cleanup.append(f"port {name} ({pid})")
    if proof.group_id:
        conn.network.delete_security_group(proof.group_id, ignore_missing=True)
        proof.cleanup.append(f"security group {GROUP} ({proof.group_id})")
    proof.save()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="audit_proof")
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args(argv)
    import openstack

    args.results.mkdir(parents=True, exist_ok=True)
    proof = Proof(args.results / PROOF_FILE)
    state_dir = layout.default_state_dir()
    network_id = json.loads((state_dir / manage.RESOURCES_FILE).read_text())["network_id"]
    if layout.INTERNET_NETNS not in netns.names():
        say(f"no namespace {layout.INTERNET_NETNS}: is minicloud up?")
        return 2
    conn = openstack.connect(cloud=layout.CLOUD_NAME)
    # A stop (CI's timeout, Ctrl-C) still restores the rule and deletes the guests.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    rule: list[str] = []
    left = leftovers(conn)
    if left:
        conn.close()
        say("an earlier proof was stopped before its cleanup; delete what it left, then "
            "run again (`openstack --os-cloud minicloud server delete ...`): "
            + "; ".join(left))
        return 2
    try:
        make(conn, proof, network_id)
        ready(conn, proof, state_dir)
        proof.seconds["guests_ready"] = round(time.monotonic() - started, 1)
        say(f"{len(proof.servers)} guests ready in {proof.seconds['guests_ready']} s")
        audit("enforced", args.results, proof)
        tap = vif_name(proof.ports[PLANTED])
        rule = plant_rule(tap)
        iptables("-I", rule[0], "1", *rule[1:])
        proof.planted = {"name": PLANTED, "instance": proof.servers[PLANTED],
                         "port_id": proof.ports[PLANTED], "tap": tap,
                         "rule": "iptables -I " + " ".join(rule)}
        proof.save()
        say(f"planted on {PLANTED} ({tap}): {' '.join(rule)}")
        audit("planted", args.results, proof)
        # The agent must not have undone it during the run (else the run saw less).
        proof.planted["held_through_run"] = rule_present(rule)
        if not proof.planted["held_through_run"]:
            proof.problems.append("the planted rule was gone after the planted run")
        iptables("-D", *rule)
        proof.planted["restored"] = not rule_present(rule)
        rule = []
        proof.save()
        audit("restored", args.results, proof)
    except BaseException as exc:  # a stop too (SystemExit on SIGTERM): on the record
        proof.problems.append(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if rule and rule_present(rule):
            iptables("-D", *rule, check=False)
            proof.planted["restored"] = not rule_present(rule)
        try:
            clean(conn, proof)
        finally:
            conn.close()
            proof.seconds["total"] = round(time.monotonic() - started, 1)
            proof.save()
    for problem in proof.problems:
        say(f"FAILED: {problem}")
    say(f"{proof.seconds['total']} s in all; {proof.path}")
    return 1 if proof.problems else 0


if __name__ == "__main__":
    sys.exit(main())
