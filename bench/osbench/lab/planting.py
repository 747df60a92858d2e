"""Give one lab host different installed versions: its own dpkg status file (or
any file of its own, e.g. a dpkg-query that hangs, for the tests).

The lab's hosts share this machine's filesystem, so every one of them has the
same packages. Each lab sshd runs in a mount namespace of its own
(`manage.sshd_argv`), and every SSH session is a child of it: a file
bind-mounted over /var/lib/dpkg/status inside that namespace is what
`dpkg-query` reads there, on that host only, while this machine and the other
hosts keep the real one. `lab down` ends the namespace and the mount with it.
"""

from __future__ import annotations

import re
from pathlib import Path

from osbench import procs
from osbench.errors import HostError
from osbench.hosts.local import LocalHost
from osbench.lab.topology import LabConfig, LabHost

DPKG_STATUS = Path("/var/lib/dpkg/status")

_root = LocalHost("lab")


def with_version(status: str, package: str, version: str) -> str:
    """dpkg status text with `package`'s Version field set to `version`."""
    stanzas = status.split("\n\n")
    for i, stanza in enumerate(stanzas):
        if re.search(rf"^Package: {re.escape(package)}$", stanza, re.M):
            stanzas[i] = re.sub(r"^Version: .*$", f"Version: {version}", stanza, count=1,
                                flags=re.M)
            return "\n\n".join(stanzas)
    raise ValueError(f"package {package!r} is not in the status file")


def _lab_host(config: LabConfig, host: str) -> LabHost:
    for lab_host in config.hosts():
        if lab_host.name == host:
            return lab_host
    raise ValueError(f"no lab host {host!r}; hosts: {[h.name for h in config.hosts()]}")


def _sshd_pid(config: LabConfig, host: str) -> int:
    pid = procs.pid_of(_lab_host(config, host).sshd_pidfile)
    if pid is None:
        raise HostError("sshd is not running; run `osbench lab up`", host=host)
    return pid


async def plant_file(config: LabConfig, host: str, text: str, target: Path,
                     mode: int = 0o644) -> Path:
    """Make `text` the content of `target` as `host` sees it (until `unplant` or lab
    down); the file itself is kept in the host's lab directory."""
    pid = _sshd_pid(config, host)
    planted = _lab_host(config, host).dir / f"planted{str(target).replace('/', '-')}"
    planted.write_text(text)
    planted.chmod(mode)
    await _root.run(["nsenter", "--target", str(pid), "--mount",
                     "mount", "--bind", str(planted), str(target)])
    return planted


async def plant_dpkg_status(config: LabConfig, host: str, status: str) -> Path:
    """Make `status` the dpkg status file `host` sees (until `unplant` or lab down)."""
    return await plant_file(config, host, status, DPKG_STATUS)


async def unplant(config: LabConfig, host: str, target: Path = DPKG_STATUS) -> None:
    """Give `host` this machine's `target` back."""
    await _root.run(["nsenter", "--target", str(_sshd_pid(config, host)), "--mount",
                     "umount", str(target)])
