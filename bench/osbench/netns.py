"""Network namespaces on this machine: which exist, which processes run in one,
how a command runs inside one. Used by the lab, minicloud and LocalHost.

A named namespace is the file `ip netns add` makes in /run/netns (what `ip
netns list` reads); a process runs in it when its /proc/PID/ns/net is that
namespace (what `ip netns pids` compares). Read here without running `ip`;
making and deleting namespaces is left to `ip` (root), by each caller's runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from osbench import procs

RUN_DIR = Path("/run/netns")
#: The network devices of this process's namespace.
SYS_NET = Path("/sys/class/net")


def names(prefix: str = "") -> list[str]:
    """The named namespaces starting with `prefix`, sorted."""
    try:
        return sorted(p.name for p in RUN_DIR.iterdir() if p.name.startswith(prefix))
    except FileNotFoundError:  # no namespace was ever added on this machine
        return []


def links(prefix: str = "") -> list[str]:
    """The network devices of this process's namespace starting with `prefix`, sorted."""
    return sorted(p.name for p in SYS_NET.iterdir() if p.name.startswith(prefix))


def pids(name: str) -> list[int]:
    """Processes running in namespace `name` (none if it does not exist)."""
    try:
        ns = (RUN_DIR / name).stat()
    except OSError:
        return []
    found = []
    for pid in procs.pids():
        try:
            mine = (procs.PROC / str(pid) / "ns" / "net").stat()
        except OSError:  # gone meanwhile, or a zombie
            continue
        if (mine.st_dev, mine.st_ino) == (ns.st_dev, ns.st_ino):
            found.append(pid)
    return found


def exec_argv(name: str | None, argv: Sequence[str]) -> tuple[str, ...]:
    """`argv` run inside namespace `name` (`ip netns exec`, root); as is for None."""
    return ("ip", "netns", "exec", name, *argv) if name else tuple(argv)
