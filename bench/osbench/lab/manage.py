"""Build, inspect and remove the local lab (root only).

`up` is idempotent: a healthy lab with the same configuration is left as it
is; anything else (a partial lab, another size) is removed and built afresh.
`down` works from what exists, not from what `up` meant to make: every
namespace and root-namespace link with the lab's prefix, every process in
those namespaces and every process named by the lab's pidfiles.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from osbench import netns, procs
from osbench.clock import RealClock
from osbench.errors import HostError, MachineError, UserError
from osbench.hosts.local import LocalHost
from osbench.lab.topology import (
    CLIENT_SUBNET,
    TARGET_SUBNET,
    LabConfig,
    LabHost,
    default_state_dir,
)

SSHD = "/usr/sbin/sshd"
#: Tool -> the Debian package that provides it (./bootstrap installs them as root).
REQUIRED_TOOLS = {"ip": "iproute2", "ethtool": "ethtool", "iperf3": "iperf3",
                  "ssh-keygen": "openssh-client", SSHD: "openssh-server"}
#: How long a freshly started sshd or iperf3 gets to listen; both take ~10 ms.
READY_TIMEOUT_S = 10.0
#: How long processes get to exit on SIGTERM before SIGKILL.
STOP_GRACE_S = 2.0

_clock = RealClock()
_root = LocalHost("lab")


class LabError(MachineError):
    """This machine could not build or remove the lab: a tool it needs is missing or
    failed (`ip netns add`, sshd that does not listen). The message names it and says
    what to do. Running the lab without root is a UserError instead."""


@dataclass
class LabStatus:
    """What of the lab exists right now."""

    config: LabConfig | None
    namespaces: list[str] = field(default_factory=list)
    root_links: list[str] = field(default_factory=list)
    #: host -> sshd running
    sshd: dict[str, bool] = field(default_factory=dict)
    #: host -> (iperf3 servers running, expected)
    iperf3: dict[str, tuple[int, int]] = field(default_factory=dict)
    inventory: Path | None = None

    @property
    def healthy(self) -> bool:
        if self.config is None or self.inventory is None:
            return False
        return (set(self.config.namespaces()) <= set(self.namespaces)
                and all(self.sshd.values()) and len(self.sshd) == len(self.config.hosts())
                and all(up == want for up, want in self.iperf3.values()))

    @property
    def empty(self) -> bool:
        return not (self.namespaces or self.root_links or any(self.sshd.values())
                    or any(up for up, _ in self.iperf3.values()))

    def lines(self) -> list[str]:
        """The status for humans."""
        if self.config is None and self.empty:
            return ["lab: down (nothing exists)"]
        state = "up" if self.healthy else ("down" if self.empty else "partial")
        out = [f"lab: {state}"]
        if self.config is not None:
            c = self.config
            out.append(f"  {c.targets} targets, {c.queues} queues, ports {c.ports[0]}.."
                       f"{c.ports[-1]}, state {c.state_dir}")
        out.append(f"  namespaces: {' '.join(self.namespaces) or '-'}")
        out.append(f"  root-namespace links: {' '.join(self.root_links) or '-'}")
        for name, running in self.sshd.items():
            iperf = self.iperf3.get(name)
            extra = f", iperf3 {iperf[0]}/{iperf[1]}" if iperf else ""
            out.append(f"  {name}: sshd {'running' if running else 'NOT running'}{extra}")
        if self.inventory is not None:
            out.append(f"  inventory: {self.inventory}")
        return out


def inventory_path(state_dir: Path | None = None) -> Path:
    """Where `up` writes the inventory (it exists only while the lab is up)."""
    return LabConfig(state_dir=state_dir or default_state_dir()).inventory_file


def stored_config(state_dir: Path | None = None) -> LabConfig | None:
    """The configuration `up` recorded in `state_dir`, if any."""
    file = LabConfig(state_dir=state_dir or default_state_dir()).config_file
    try:
        return LabConfig.from_json(file.read_text())
    except (OSError, ValueError, TypeError, KeyError):
        return None


def require_root_and_tools() -> None:
    """UserError unless we are root; LabError unless every tool the lab runs is
    installed."""
    if os.geteuid() != 0:
        raise UserError("the local lab needs root (network namespaces, veth links, sshd)",
                        hint="run `sudo osbench lab ...`")
    missing = [f"{tool} ({pkg})" for tool, pkg in REQUIRED_TOOLS.items()
               if shutil.which(tool) is None]
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)}",
                       hint="run ./bootstrap as root, or apt-get install iproute2 iperf3 "
                            "openssh-server ethtool")


async def up(config: LabConfig) -> Path:
    """Build the lab (or keep it, if it is already up as `config` says); the inventory."""
    require_root_and_tools()
    current = await status(config.state_dir, prefix=config.prefix)
    if current.healthy and current.config == config:
        return config.inventory_file
    if not current.empty or config.config_file.exists():
        await down(config)
    try:
        await _build(config)
    except HostError as exc:
        raise LabError(f"lab up failed: {exc}",
                       hint="run `osbench lab down` to remove what was made") from None
    return config.inventory_file


async def down(config: LabConfig) -> list[str]:
    """Remove every process, namespace, link and file of the lab; what was removed."""
    require_root_and_tools()
    try:
        return await _remove(config)
    except HostError as exc:
        raise LabError(f"lab down failed: {exc}",
                       hint="run `osbench lab down` again once that is fixed") from None


async def _remove(config: LabConfig) -> list[str]:
    stored = stored_config(config.state_dir)
    prefixes = sorted({config.prefix} | ({stored.prefix} if stored else set()))
    removed: list[str] = []
    for pid in _pidfile_pids(config.state_dir):
        if await _stop([pid]):
            removed.append(f"process {pid}")
    namespaces = [ns for prefix in prefixes for ns in netns.names(prefix)]
    for ns in namespaces:
        pids = netns.pids(ns)
        if await _stop(pids):
            removed.append(f"{len(pids)} processes in {ns}")
    for ns in namespaces:
        await _root.run(["ip", "netns", "del", ns])
        removed.append(f"namespace {ns}")
    for link in [link for prefix in prefixes for link in netns.links(prefix)]:
        await _root.run(["ip", "link", "del", link], check=False)  # a veth dies with its peer
        removed.append(f"link {link}")
    if config.config_file.exists():
        shutil.rmtree(config.state_dir)
        removed.append(f"state {config.state_dir}")
    return removed


async def status(state_dir: Path | None = None, *, prefix: str | None = None) -> LabStatus:
    """What exists of the lab kept in `state_dir` (default: the usual one)."""
    config = stored_config(state_dir)
    prefix = prefix or (config.prefix if config else LabConfig.prefix)
    result = LabStatus(config=config, namespaces=netns.names(prefix),
                       root_links=netns.links(prefix))
    if config is not None:
        for host in config.hosts():
            result.sshd[host.name] = _alive(host.sshd_pidfile)
            if host.iperf3_ports:
                running = sum(_alive(host.iperf3_pidfile(p)) for p in host.iperf3_ports)
                result.iperf3[host.name] = (running, len(host.iperf3_ports))
        if config.inventory_file.is_file():
            result.inventory = config.inventory_file
    return result


# -- building -----------------------------------------------------------------

async def _build(config: LabConfig) -> None:
    _prepare_state_dir(config)
    hosts = config.hosts()
    await _keys(config, hosts)
    await _mgmt_network(config, hosts)
    await _data_network(config, hosts)
    await asyncio.gather(*(_start_sshd(config, h) for h in hosts))
    await asyncio.gather(*(_start_iperf3(h) for h in hosts if h.iperf3_ports))
    _write_inventory(config, hosts)


def _prepare_state_dir(config: LabConfig) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config.config_file.write_text(config.to_json())  # first: marks what `down` may remove
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir


async def _keys(config: LabConfig, hosts: Sequence[LabHost]) -> None:
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C"]
    jobs = [_root.run([*keygen, "osbench-lab", "-f", str(config.user_key_file)])]
    for host in hosts:
        host.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        jobs.append(_root.run([*keygen, f"osbench-lab-{host.name}", "-f", str(host.host_key)]))
    await asyncio.gather(*jobs)
    config.known_hosts_file.write_text("".join(
        f"{h.mgmt_address} {_public_key(h.host_key)}\n" for h in hosts))


def _public_key(private: Path) -> str:
    """`ssh-ed25519 AAAA...` of a key made by ssh-keygen (without its comment)."""
    kind, blob, *_ = Path(f"{private}.pub").read_text().split()
    return f"{kind} {blob}"


async def _mgmt_network(config: LabConfig, hosts: Sequence[LabHost]) -> None:
    br = config.bridge
    await _ip("link", "add", br, "type", "bridge")
    await _ip("addr", "add", f"{config.bridge_address}/24", "dev", br)
    await _ip("link", "set", br, "up")
    for ns in config.namespaces():
        await _ip("netns", "add", ns)
        await _ip("-n", ns, "link", "set", "lo", "up")
    for h in hosts:
        await _ip("link", "add", h.root_link, "type", "veth", "peer", "name", "mgmt0",
                  "netns", h.netns)
        await _ip("link", "set", h.root_link, "master", br, "up")
        await _ip("-n", h.netns, "addr", "add", f"{h.mgmt_address}/24", "dev", "mgmt0")
        await _ip("-n", h.netns, "link", "set", "mgmt0", "up")


async def _data_network(config: LabConfig, hosts: Sequence[LabHost]) -> None:
    client, netnode, *targets = hosts
    fabric = config.fabric_ns
    q = str(config.queues)
    multi = ["numtxqueues", q, "numrxqueues", q]
    await _ip("-n", client.netns, "link", "add", "name", "eth0", *multi, "type", "veth",
              "peer", "name", "cl0", "netns", netnode.netns, *multi)
    await _ip("-n", netnode.netns, "link", "add", "name", "tg0", *multi, "type", "veth",
              "peer", "name", "nn0", "netns", fabric, *multi)
    await _ip("-n", fabric, "link", "add", "br0", "type", "bridge")
    await _ip("-n", fabric, "link", "set", "nn0", "master", "br0", "up")
    for i, t in enumerate(targets, start=1):
        await _ip("-n", fabric, "link", "add", f"t{i}", "type", "veth", "peer", "name", "eth0",
                  "netns", t.netns)
        await _ip("-n", fabric, "link", "set", f"t{i}", "master", "br0", "up")
        await _ip("-n", t.netns, "addr", "add", f"{t.data_address}/24", "dev", "eth0")
        await _ip("-n", t.netns, "link", "set", "eth0", "up")
        await _ip("-n", t.netns, "route", "add", f"{CLIENT_SUBNET}.0/24", "via",
                  f"{TARGET_SUBNET}.1")
    await _ip("-n", fabric, "link", "set", "br0", "up")
    await _ip("-n", client.netns, "addr", "add", f"{client.data_address}/24", "dev", "eth0")
    await _ip("-n", client.netns, "link", "set", "eth0", "up")
    await _ip("-n", client.netns, "route", "add", f"{TARGET_SUBNET}.0/24", "via",
              f"{CLIENT_SUBNET}.1")
    await _ip("-n", netnode.netns, "addr", "add", f"{CLIENT_SUBNET}.1/24", "dev", "cl0")
    await _ip("-n", netnode.netns, "addr", "add", f"{TARGET_SUBNET}.1/24", "dev", "tg0")
    await _ip("-n", netnode.netns, "link", "set", "cl0", "up")
    await _ip("-n", netnode.netns, "link", "set", "tg0", "up")
    await LocalHost(netnode.name, netnode.netns).run(
        ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])


async def _ip(*args: str) -> None:
    await _root.run(["ip", *args])


def sshd_config_text(*, listen: str, host_key: Path, pidfile: Path, authorized_keys: Path,
                     comment: str) -> str:
    """An sshd_config for a generated state dir: root by key only, nothing from PAM."""
    return f"""\
# {comment}
ListenAddress {listen}
HostKey {host_key}
PidFile {pidfile}
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
X11Forwarding no
PrintMotd no
PrintLastLog no
# a sweep runs one command per stream at once over one connection
MaxSessions 128
MaxStartups 64:30:128
LogLevel ERROR
"""


#: Shell start-up files that bash reads for an SSH command; the lab blanks them.
_DOTFILES = ".bashrc .bash_profile .bash_login .profile"


def sshd_argv(config_file: Path, log_file: Path, home: Path, *,
              foreground: bool = False) -> list[str]:
    """Run sshd in a mount namespace of its own where root's shell start-up files
    are empty (copies in `home`).

    A lab host is meant to be a clean machine: this machine's ~/.bashrc (bash
    reads it for every SSH command) cost 150 ms and ~300 processes per command
    where it ran `pyenv init`; 24 parallel streams would spend seconds of CPU.
    Only the dotfiles are hidden, not the whole home: programs installed under
    it (a pyenv Python with oslo.rootwrap, say) stay usable over SSH.
    """
    script = ('for f in ' + _DOTFILES + '; do if [ -e "$2/$f" ]; then : > "$1/$f" && '
              'mount --bind "$1/$f" "$2/$f" || exit 1; fi; done; shift 2; exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
            str(home), pwd.getpwnam("root").pw_dir,
            SSHD, *(["-D"] if foreground else []), "-f", str(config_file), "-E", str(log_file)]


async def _start_sshd(config: LabConfig, host: LabHost) -> None:
    host.sshd_config.write_text(sshd_config_text(
        listen=f"{host.mgmt_address}:22", host_key=host.host_key, pidfile=host.sshd_pidfile,
        authorized_keys=Path(f"{config.user_key_file}.pub"),
        comment=f"osbench lab: sshd of {host.name} in namespace {host.netns}"))
    home = host.dir / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    await LocalHost(host.name, host.netns).run(
        sshd_argv(host.sshd_config, host.dir / "sshd.log", home))
    deadline = _clock.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with socket.create_connection((host.mgmt_address, 22), timeout=1.0):
                return
        except OSError as exc:
            if _clock.monotonic() > deadline:
                raise HostError(f"sshd does not listen on {host.mgmt_address}:22 after "
                                f"{READY_TIMEOUT_S:g} s: {exc}; see {host.dir / 'sshd.log'}",
                                host=host.name) from None
        await asyncio.sleep(0.02)


async def _start_iperf3(host: LabHost) -> None:
    inside = LocalHost(host.name, host.netns)
    for port in host.iperf3_ports:
        await inside.run(["iperf3", "-s", "-p", str(port), "-B", host.data_address, "-D",
                          "--pidfile", str(host.iperf3_pidfile(port)),
                          "--logfile", str(host.dir / f"iperf3-{port}.log")])
    wanted = {str(p) for p in host.iperf3_ports}
    deadline = _clock.monotonic() + READY_TIMEOUT_S
    while True:
        listing = (await inside.run(["ss", "-Hltn"])).stdout
        listening = {line.split()[3].rsplit(":", 1)[-1] for line in listing.splitlines()
                     if len(line.split()) > 3}
        if wanted <= listening:
            return
        if _clock.monotonic() > deadline:
            raise HostError(f"iperf3 does not listen on ports {sorted(wanted - listening)} "
                            f"after {READY_TIMEOUT_S:g} s; see {host.dir}", host=host.name)
        await asyncio.sleep(0.02)


def _write_inventory(config: LabConfig, hosts: Sequence[LabHost]) -> None:
    doc = {
        "known_hosts": str(config.known_hosts_file),
        "host_key_policy": "verify",
        "hosts": {
            h.name: {
                "address": h.mgmt_address,
                "user": "root",
                "key_file": str(config.user_key_file),
                "roles": list(h.roles),
                "data_address": h.data_address,
                **({"interfaces": list(h.interfaces)} if h.interfaces else {}),
                **({"iperf3_ports": list(h.iperf3_ports)} if h.iperf3_ports else {}),
            }
            for h in hosts
        },
    }
    header = (f"# written by `osbench lab up` ({config.targets} targets, {config.queues} "
              f"queues); removed by `osbench lab down`\n")
    config.inventory_file.write_text(header + yaml.safe_dump(doc, sort_keys=False))


# -- stopping ------------------------------------------------------------------

def _alive(pidfile: Path) -> bool:
    return procs.pid_of(pidfile) is not None


def _pidfile_pids(state_dir: Path) -> list[int]:
    pids = (procs.pid_of(p) for p in sorted(state_dir.glob("hosts/*/*.pid")))
    return [p for p in pids if p is not None]


async def _stop(pids: Sequence[int]) -> bool:
    """SIGTERM `pids`, SIGKILL whatever is left after STOP_GRACE_S; True if any ran."""
    if not any(procs.running(p) for p in pids):
        return False
    await asyncio.to_thread(procs.terminate, lambda: [p for p in pids if procs.running(p)],
                            grace_s=STOP_GRACE_S)
    return True
