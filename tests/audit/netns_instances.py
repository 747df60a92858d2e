"""Network namespaces that play instances for the firewall probes: each one a veth
to the root namespace (a /30 of 198.19.240.0/24, the benchmarking range the lab
also uses), a listener process on some TCP and UDP ports, and optionally an
iptables filter that drops ingress like Neutron's firewall (DROP, never REJECT)
except the ports it allows. Everything is removed on exit, the namespaces with
their processes and links.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

PREFIX = "osbau-"
SUBNET = "198.19.240"

#: Binds every TCP and UDP port given, says "ready", echoes UDP, accepts TCP.
_LISTENER = """
import selectors, socket, sys
tcp = [int(p) for p in sys.argv[1].split(",") if p]
udp = [int(p) for p in sys.argv[2].split(",") if p]
sel = selectors.DefaultSelector()
for port in tcp:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64); sel.register(s, selectors.EVENT_READ, "tcp")
for port in udp:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    sel.register(s, selectors.EVENT_READ, "udp")
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.data == "tcp":
            conn, _ = key.fileobj.accept(); conn.close()
        else:
            data, addr = key.fileobj.recvfrom(2048); key.fileobj.sendto(data, addr)
"""


@dataclass(frozen=True)
class FakeInstance:
    """One namespace: its name, its address, the root side's address."""

    netns: str
    address: str
    gateway: str


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


def _remove(names: Sequence[str]) -> None:
    for name in names:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            subprocess.run(["kill", "-9", pid], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{name}r"], capture_output=True)


def filter_ingress(netns: str, allowed: Sequence[int]) -> None:
    """Drop every packet into `netns` but replies and new TCP to `allowed` (as
    Neutron's iptables driver does for a port whose groups open those ports)."""
    inside = ["ip", "netns", "exec", netns, "iptables"]
    _run(*inside, "-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED",
         "-j", "ACCEPT")
    for port in allowed:
        _run(*inside, "-A", "INPUT", "-p", "tcp", "--dport", str(port), "-j", "ACCEPT")
    _run(*inside, "-P", "INPUT", "DROP")


@dataclass(frozen=True)
class Spec:
    """What one namespace listens on and lets in (`allowed` None: no filter)."""

    tcp: Sequence[int]
    udp: Sequence[int] = ()
    allowed: Sequence[int] | None = None
    #: The instance's address (a /32 routed to it), default one of SUBNET.
    address: str | None = None


@contextlib.contextmanager
def instances(specs: Sequence[Spec]) -> Iterator[list[FakeInstance]]:
    """One namespace per spec; yields them once every listener is ready."""
    names = [f"{PREFIX}{i}" for i in range(len(specs))]
    _remove(names)  # leftovers of a killed run
    made: list[FakeInstance] = []
    listeners: list[subprocess.Popen[str]] = []
    try:
        for i, (name, spec) in enumerate(zip(names, specs, strict=True)):
            tcp, udp, allowed = spec.tcp, spec.udp, spec.allowed
            gateway, address = f"{SUBNET}.{4 * i + 1}", f"{SUBNET}.{4 * i + 2}"
            _run("ip", "netns", "add", name)
            _run("ip", "link", "add", f"{name}r", "type", "veth", "peer", "name", "eth0",
                 "netns", name)
            _run("ip", "addr", "add", f"{gateway}/30", "dev", f"{name}r")
            _run("ip", "link", "set", f"{name}r", "up")
            for argv in (["ip", "addr", "add", f"{address}/30", "dev", "eth0"],
                         ["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"]):
                _run("ip", "netns", "exec", name, *argv)
            if spec.address is not None:  # e.g. a simulated instance's fixed IP
                _run("ip", "netns", "exec", name, "ip", "addr", "add", f"{spec.address}/32",
                     "dev", "eth0")
                _run("ip", "route", "add", f"{spec.address}/32", "via", address)
                address = spec.address
            if allowed is not None:
                filter_ingress(name, allowed)
            proc = subprocess.Popen(
                ["ip", "netns", "exec", name, sys.executable, "-c", _LISTENER,
                 ",".join(map(str, tcp)), ",".join(map(str, udp))],
                stdout=subprocess.PIPE, text=True)
            listeners.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            made.append(FakeInstance(name, address, gateway))
        yield made
    finally:
        for proc in listeners:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        _remove(names)
