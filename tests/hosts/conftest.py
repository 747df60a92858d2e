"""A real sshd on 127.0.0.1 with generated keys, for SSHHost tests (root only)."""

from __future__ import annotations

import os
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

    def start(self) -> None:
        config = self.dir / "sshd_config"
        config.write_text(sshd_config_text(
            listen=f"127.0.0.1:{self.port}", host_key=self.host_key,
            pidfile=self.dir / "sshd.pid", authorized_keys=Path(f"{self.user_key}.pub"),
            comment="osbench test sshd"))
        home = self.dir / "home"
        home.mkdir(exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.process = subprocess.Popen(
            sshd_argv(config, self.dir / "sshd.log", home, foreground=True))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError as exc:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"sshd did not start; see {self.dir / 'sshd.log'}") from exc
                time.sleep(0.02)

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
        self.start()

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
    server = SSHServer(dir=tmp_path, port=free_port(), user_key=keygen(tmp_path / "id_user"),
                       host_key=keygen(tmp_path / "ssh_host_ed25519_key"))
    server.start()
    yield server
    server.stop()
