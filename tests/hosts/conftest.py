"""A real sshd on 127.0.0.1 with generated keys, for SSHHost tests (root only)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from osbench.hosts import HostSpec, SSHHost
from osbench.lab.manage import SSHD, sshd_argv, sshd_config_text

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which(SSHD) is None,
    reason="needs root and openssh-server: starts a real sshd (CI runs as root)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: Ports tried before giving up: each is lost only to a process that bound it in
#: the moment between our check and sshd's bind.
SSHD_PORT_ATTEMPTS = 8
_PORTS = random.Random()


def sshd_port() -> int:
    """A port free now, below the kernel's ephemeral range.

    sshd cannot be handed a listening socket (no socket activation in OpenSSH 9.2;
    `-i` would serve one connection per sshd, not the daemon the lab runs), nor
    choose a port itself, so the port is released before sshd binds it. Below
    ip_local_port_range, no outgoing connection is given it meanwhile (the tests
    make hundreds); an explicit bind still can, and `SSHServer.start` moves on."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        port = _PORTS.randrange(10000, low)
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            return port


def listening(pid: int, port: int) -> bool:
    """True once process `pid` itself holds a socket listening on 127.0.0.1:`port`
    (a connection to the port could reach whoever else took it)."""
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
        fds = {str(fd.readlink()) for fd in Path(f"/proc/{pid}/fd").iterdir()}
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        # 0100007F: 127.0.0.1; 0A: LISTEN; field 10: the socket's inode.
        if (fields[1], fields[3]) == (f"0100007F:{port:04X}", "0A") and \
                f"socket:[{fields[9]}]" in fds:
            return True
    return False


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def public_key(path: Path) -> str:
    kind, blob, *_ = Path(f"{path}.pub").read_text().split()
    return f"{kind} {blob}"


@dataclass
class SSHServer:
    """A running sshd and the files a client needs to reach it."""

    dir: Path
    port: int
    user_key: Path
    host_key: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def known_hosts_name(self) -> str:
        return f"[127.0.0.1]:{self.port}"

    def known_hosts_line(self) -> str:
        return f"{self.known_hosts_name} {public_key(self.host_key)}\n"

    def start(self, *, keep_port: bool = False) -> None:
        """Start sshd and return once it listens. If its port was taken meanwhile
        (sshd exits: "Address already in use"), try another one, or with
        `keep_port` (a restart: clients know the host by its port) the same one
        again, a bounded number of times."""
        for _ in range(SSHD_PORT_ATTEMPTS):
            if self._start_once():
                return
            if keep_port:
                time.sleep(0.25)
            else:
                self.port = sshd_port()
        raise RuntimeError(f"sshd found no free port in {SSHD_PORT_ATTEMPTS} attempts "
                           f"(the last: {self.port}); see {self.dir / 'sshd.log'}")

    def _start_once(self) -> bool:
        """True once sshd listens on `port`; False if another process holds it."""
        config = self.dir / "sshd_config"
        config.write_text(sshd_config_text(
            listen=f"127.0.0.1:{self.port}", host_key=self.host_key,
            pidfile=self.dir / "sshd.pid", authorized_keys=Path(f"{self.user_key}.pub"),
            comment="osbench test sshd"))
        home = self.dir / "home"
        home.mkdir(exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        log = self.dir / "sshd.log"
        logged = log.stat().st_size if log.exists() else 0
        process = subprocess.Popen(sshd_argv(config, log, home, foreground=True))
        deadline = time.monotonic() + 10
        while not listening(process.pid, self.port):
            if process.poll() is not None:
                with log.open() as f:
                    f.seek(logged)
                    said = f.read()
                if "Address already in use" in said:
                    return False
                raise RuntimeError(f"sshd exited ({process.returncode}): {said.strip()}")
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise RuntimeError(f"sshd did not listen within 10 s; see {log}")
            time.sleep(0.02)
        self.process = process
        return True

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def new_host_key(self) -> None:
        """Restart with a freshly generated host key (a reinstalled or spoofed host)."""
        self.stop()
        self.host_key.unlink()
        Path(f"{self.host_key}.pub").unlink()
        keygen(self.host_key)
        self.start(keep_port=True)

    def spec(self, name: str = "box", **changes: object) -> HostSpec:
        fields: dict[str, object] = {"address": "127.0.0.1", "port": self.port,
                                     "key_file": str(self.user_key)}
        fields.update(changes)
        return HostSpec(name=name, **fields)  # type: ignore[arg-type]

    def known_hosts(self) -> Path:
        path = self.dir / "known_hosts"
        if not path.exists():
            path.write_text(self.known_hosts_line())
        return path

    def host(self, name: str = "box", **changes: object) -> SSHHost:
        """An SSHHost that verifies the server's key against a known_hosts file."""
        return SSHHost(self.spec(name, **changes), known_hosts=str(self.known_hosts()))


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SSHServer]:
    if os.geteuid() != 0:
        pytest.skip("needs root: starts a real sshd (CI runs as root)")
    server = SSHServer(dir=tmp_path, port=sshd_port(), user_key=keygen(tmp_path / "id_user"),
                       host_key=keygen(tmp_path / "ssh_host_ed25519_key"))
    server.start()
    yield server
    server.stop()
