"""minicloud's host side of security groups (issue 20): bridge netfilter, "the
Internet" namespace, and the Linux bridge agent's iptables chains.

- The agent's iptables driver filters bridged frames only while the kernel
  passes them to iptables (`br_netfilter`, `net.bridge.bridge-nf-call-iptables`
  = 1). `up` sets it and records the value it found in the state directory;
  `down` puts that value back and keeps the record as `netfilter.restored.json`
  (the after-down checks compare).
- The Internet: a namespace `osbmc-inet` whose veth is a port of the provider
  bridge, with an address of the subnet outside Neutron's allocation pool (so
  it never collides with a guest or the DHCP port) and no Neutron port, hence
  no security group of its own: it plays the outside world the firewall audit
  probes from (`vantage: netns:osbmc-inet`).
- The agent leaves its chains behind when it stops; `down` removes the chains
  named as the Linux bridge agent names them (`neutron-linuxbri-*`,
  `neutron-filter-top`; ebtables `neutronARP-*`, `neutronMAC-*`, left when it
  stops before it has unplugged a guest) and the jumps to them, nothing else.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from osbench import netns
from osbench.minicloud import layout

SYSCTL = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
NETFILTER_FILE = "netfilter.json"
NETFILTER_RESTORED = "netfilter.restored.json"
#: The chains the Linux bridge agent makes (its binary name cut to 16 characters).
AGENT_CHAIN = re.compile(r"^(neutron-linuxbri-\S+|neutron-filter-top)$")
#: Its ebtables chains: ARP and MAC spoofing protection, one of each per tap
#: (neutron.plugins.ml2.drivers.linuxbridge.agent.arp_protect).
AGENT_EB_CHAIN = re.compile(r"^neutron(ARP|MAC)-\S+$")
EB_TABLES = ("nat", "filter")
#: The comment on the rule the audit's proof plants (tests/minicloud/audit_proof.py):
#: the proof deletes it; `down` too, should the proof have been killed first.
PLANT_COMMENT = "osbench-minicloud-audit-proof-planted"
TABLES = ("filter", "raw", "mangle")


def _run(argv: list[str], check: bool = True) -> str:
    from osbench.minicloud.manage import run

    return run(argv, check=check, timeout_s=60)


def bridge_netfilter(state_dir: Path) -> str:
    """br_netfilter on and bridge-nf-call-iptables = 1; the value found is recorded
    once (a second `up` must not record minicloud's own 1). Returns the value found."""
    from osbench.minicloud.manage import MinicloudError

    if not SYSCTL.exists():
        _run(["modprobe", "br_netfilter"], check=False)
    if not SYSCTL.exists():
        raise MinicloudError(f"{SYSCTL} is missing and `modprobe br_netfilter` did not make "
                             "it: this kernel cannot filter bridged frames with iptables",
                             hint="use a kernel with br_netfilter (CONFIG_BRIDGE_NETFILTER)")
    found = SYSCTL.read_text().strip()
    record = state_dir / NETFILTER_FILE
    if not record.exists():
        record.write_text(json.dumps({"sysctl": str(SYSCTL), "previous": found}))
    if found != "1":
        SYSCTL.write_text("1\n")
    return found


def restore_netfilter(state_dir: Path) -> str | None:
    """Put back the recorded value; the record becomes NETFILTER_RESTORED. Returns what
    was done, or None when nothing was recorded."""
    record = state_dir / NETFILTER_FILE
    if not record.exists():
        return None
    previous = str(json.loads(record.read_text())["previous"])
    if SYSCTL.exists() and SYSCTL.read_text().strip() != previous:
        SYSCTL.write_text(previous + "\n")
    record.replace(state_dir / NETFILTER_RESTORED)
    return f"sysctl net.bridge.bridge-nf-call-iptables = {previous} (as found)"


def internet() -> None:
    """The Internet namespace on the provider bridge (idempotent)."""
    ns, veth = layout.INTERNET_NETNS, layout.INTERNET_VETH
    if ns not in netns.names():
        _run(["ip", "netns", "add", ns])
    if not Path(f"/sys/class/net/{veth}").exists():
        _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    # Quiet: no IPv6 (router solicitations, DAD) on a network that has none.
    _run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
    address = f"{layout.INTERNET_ADDRESS}/{layout.SUBNET_CIDR.split('/')[1]}"
    if address not in _run(["ip", "-n", ns, "-4", "addr", "show", "dev", "eth0"]):
        _run(["ip", "-n", ns, "addr", "add", address, "dev", "eth0"])
    for argv in (["ip", "-n", ns, "link", "set", "lo", "up"],
                 ["ip", "-n", ns, "link", "set", "eth0", "up"],
                 ["ip", "link", "set", veth, "master", layout.PROVIDER_BRIDGE],
                 ["ip", "link", "set", veth, "up"]):
        _run(argv)


def agent_rules(tool: str = "iptables") -> dict[str, list[str]]:
    """Table -> the agent's chains and the jumps to them (`-S` lines)."""
    out: dict[str, list[str]] = {}
    for table in TABLES:
        lines = _run([tool, "-w", "-t", table, "-S"], check=False).splitlines()
        ours = [line for line in lines if _is_agents(line)]
        if ours:
            out[table] = ours
    return out


def _is_agents(line: str) -> bool:
    """A chain of the agent's (`-N NAME`), a rule jumping to one (`-j NAME`), or the
    audit proof's planted rule."""
    words = shlex.split(line)
    if PLANT_COMMENT in words:
        return True
    if words[:1] == ["-N"]:
        return len(words) > 1 and bool(AGENT_CHAIN.match(words[1]))
    return any(AGENT_CHAIN.match(target) for target in _jump_targets(words))


def _jump_targets(words: list[str]) -> list[str]:
    """The chains a rule (iptables `-S` or ebtables `-L` words) jumps to."""
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-j"]


def remove_agent_rules() -> list[str]:
    """Remove the agent's chains, the jumps to them and the proof's planted rule, IPv4
    and IPv6; what went."""
    removed = []
    for tool in ("iptables", "ip6tables"):
        for table, lines in agent_rules(tool).items():
            chains = [line.split()[1] for line in lines if line.startswith("-N ")]
            # Rules in the built-in chains first, then empty and delete the chains.
            rules = [words for words in map(shlex.split, lines)
                     if words[0] == "-A" and not AGENT_CHAIN.match(words[1])]
            for words in rules:
                _run([tool, "-w", "-t", table, "-D", *words[1:]], check=False)
            for chain in chains:
                _run([tool, "-w", "-t", table, "-F", chain], check=False)
            for chain in chains:
                _run([tool, "-w", "-t", table, "-X", chain], check=False)
            removed.append(f"{tool} {table}: {len(chains)} chain(s) of the Linux bridge "
                           f"agent, {len(rules)} rule(s) in built-in chains")
    return removed


def agent_ebtables(table: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The agent's ebtables chains in `table`, and the rules of other chains that jump
    to them (chain, rule words), from `ebtables -L`."""
    chains: list[str] = []
    jumps: list[tuple[str, list[str]]] = []
    current = ""
    for line in _run(["ebtables", "-t", table, "-L"], check=False).splitlines():
        if line.startswith("Bridge chain: "):
            current = line.split()[2].rstrip(",")
            if AGENT_EB_CHAIN.match(current):
                chains.append(current)
        elif line.startswith("-") and current and not AGENT_EB_CHAIN.match(current):
            words = line.split()
            if any(AGENT_EB_CHAIN.match(target) for target in _jump_targets(words)):
                jumps.append((current, words))
    return chains, jumps


def remove_agent_ebtables() -> list[str]:
    """Remove the agent's ebtables chains and the jumps to them; what went."""
    removed = []
    for table in EB_TABLES:
        chains, jumps = agent_ebtables(table)
        for chain, words in jumps:
            _run(["ebtables", "-t", table, "-D", chain, *words], check=False)
        for chain in chains:
            _run(["ebtables", "-t", table, "-F", chain], check=False)
            _run(["ebtables", "-t", table, "-X", chain], check=False)
        if chains:
            removed.append(f"ebtables {table}: {len(chains)} chain(s) of the Linux bridge "
                           "agent")
    return removed
