"""Commands on remote hosts over SSH (paramiko), translated into osbench's errors.

paramiko is blocking, so every SSHHost runs its work on its own thread pool:
one connection (Transport) per host, shared by all its commands, each command
on its own channel. The pool is sized for a sweep's parallel streams (a client
running 24 iperf3 clients at once), not the default pool's cpu_count + 4.

A command runs remotely under coreutils `timeout`, so a timed-out command is
killed on the host itself even when our side cannot reach it any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko

from osbench.errors import HostError
from osbench.hosts.base import CLOCK, CommandResult, Host, checked, command_text, timed_out
from osbench.hosts.inventory import HostKeyPolicy, HostSpec, Inventory

#: Parallel commands per host: one per stream of a sweep, with room to spare.
MAX_PARALLEL_COMMANDS = 64
#: Extra seconds our side waits past a command's timeout for the remote
#: `timeout` to kill it and report; after that the channel is dropped.
REMOTE_KILL_GRACE_S = 5.0
#: Exit statuses of `timeout` when it had to stop the command (TERM, then KILL).
_TIMEOUT_STATUSES = (124, 137)

_known_hosts_lock = threading.Lock()


def _remote_command(text: str, timeout_s: float) -> str:
    """`text` under coreutils `timeout`, stopped as soon as our channel closes.

    Without a PTY, sshd does not signal a command when the channel or connection
    goes (Ctrl-C, a cancelled stream, osbench killed): an iperf3 client would load
    the network until its -t ran out. So the channel's stdin is kept open and
    watched: at its EOF (the channel closed) the command gets SIGTERM. The command
    itself reads /dev/null (EOF at once).

    The SIGTERM goes to `timeout`'s whole process group (it makes one, led by
    itself), not only to `timeout`: the `timeout` of coreutils 9.1 (Debian 12)
    exits at once on a signal that lands while it is still inside fork(), and
    its child then runs on (newer coreutils block signals around that fork). A
    sweep cut by Ctrl-C just as its streams started left an iperf3 client
    loading the network for its whole -t. Before the group exists (timeout not
    started yet) the signal goes to the pid.
    """
    return (f"exec 3<&0; timeout -k 2 {timeout_s:.3f} {text} </dev/null & p=$!; "
            "(while read -r _ <&3; do :; done; kill -TERM -- -$p || kill -TERM $p)"
            " >/dev/null 2>&1 & w=$!; "
            "wait $p; s=$?; kill $w 2>/dev/null; exit $s")


class _UnknownHostKey(Exception):
    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(hostname)
        self.hostname = hostname
        self.key = key


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Verification: a host whose key is not known is refused."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        raise _UnknownHostKey(hostname, key)


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Accept a host seen for the first time and append its key to `known_hosts`."""

    def __init__(self, known_hosts: str) -> None:
        self.known_hosts = Path(known_hosts)

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with _known_hosts_lock:
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with self.known_hosts.open("a+", encoding="utf-8") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() > 0:
                    f.seek(f.tell() - 1)
                    if f.read(1) != "\n":
                        f.write("\n")
                f.write(line)


class SSHHost:
    """A remote host reached with paramiko: key file, agent, password from an
    environment variable, optional jump host, host keys verified by default."""

    def __init__(self, spec: HostSpec, *, known_hosts: str | None,
                 host_key_policy: HostKeyPolicy = "verify", jump: SSHHost | None = None,
                 connect_timeout_s: float = 10.0) -> None:
        self.name = spec.name
        self.spec = spec
        self.jump = jump
        self.known_hosts = known_hosts
        self.host_key_policy = host_key_policy
        self.connect_timeout_s = connect_timeout_s
        #: How many SSH connections this host has made (1 while the first lives).
        self.connect_count = 0
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._executor = ThreadPoolExecutor(MAX_PARALLEL_COMMANDS,
                                            thread_name_prefix=f"ssh-{spec.name}")

    def __repr__(self) -> str:
        via = f" via {self.jump.name}" if self.jump else ""
        return f"SSHHost({self.name!r}, {self.spec.user}@{self._endpoint()}{via})"

    async def run(self, argv: Sequence[str], *, timeout_s: float = 60.0,
                  check: bool = True) -> CommandResult:
        argv = tuple(argv)
        if not argv:
            raise ValueError("empty command")
        if self._closed:
            raise HostError("host is closed", host=self.name, command=command_text(argv))
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._run_blocking, argv, timeout_s,
                                      cancel)
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            cancel.set()  # drops the channel, which stops the remote command
            future.add_done_callback(_consume)
            raise
        return checked(result, check)

    async def close(self) -> None:
        self._closed = True
        await asyncio.to_thread(self._close_blocking)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- blocking side, on the host's threads ---------------------------------

    def _endpoint(self) -> str:
        return f"{self.spec.address}:{self.spec.port}"

    def transport(self) -> paramiko.Transport:
        """The host's live connection, made on first use (blocking)."""
        with self._lock:
            if self._closed:
                raise HostError("host is closed", host=self.name)
            if self._client is not None:
                live = self._client.get_transport()
                if live is not None and live.is_active():
                    return live
                self._client.close()
                self._client = None
            client = self._connect()
            self._client = client
            self.connect_count += 1
            made = client.get_transport()
            assert made is not None
            if isinstance(made.sock, socket.socket):
                # paramiko leaves Nagle on, so each command's small CHANNEL_OPEN
                # waited for a delayed ACK: 40 ms per command on loopback, 6 ms without
                made.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return made

    def _close_blocking(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _run_blocking(self, argv: tuple[str, ...], timeout_s: float,
                      cancel: threading.Event) -> CommandResult:
        start = CLOCK.monotonic()
        text = command_text(argv)
        transport = self.transport()
        try:
            chan = transport.open_session(timeout=self.connect_timeout_s)
            chan.exec_command(_remote_command(text, timeout_s))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostError(f"cannot start the command over SSH: {str(exc) or type(exc).__name__}",
                            host=self.name, command=text) from None
        out: list[bytes] = []
        err: list[bytes] = []
        deadline = start + timeout_s + REMOTE_KILL_GRACE_S
        with chan:
            while not (chan.eof_received or chan.closed):
                remaining = deadline - CLOCK.monotonic()
                if remaining <= 0 or cancel.is_set():
                    raise timed_out(self.name, argv, timeout_s)
                # poll, not select: select fails on descriptors past 1023, which a
                # raised open-file limit (osbench.fdlimit) makes possible.
                ready = select.poll()
                ready.register(chan, select.POLLIN)
                ready.poll(min(remaining, 0.5) * 1000)
                _drain(chan, out, err)
            _drain(chan, out, err)
            remaining = max(0.0, deadline - CLOCK.monotonic())
            if not chan.status_event.wait(remaining):
                if chan.closed:
                    raise HostError("the connection closed before the command finished",
                                    host=self.name, command=text)
                raise timed_out(self.name, argv, timeout_s)
            _drain(chan, out, err)
            status = chan.recv_exit_status()
        duration = CLOCK.monotonic() - start
        if status in _TIMEOUT_STATUSES and duration >= timeout_s:
            raise timed_out(self.name, argv, timeout_s)
        return CommandResult(host=self.name, argv=argv, exit_status=status,
                             stdout=b"".join(out).decode(errors="replace"),
                             stderr=b"".join(err).decode(errors="replace"),
                             duration_s=duration)

    def _connect(self) -> paramiko.SSHClient:
        spec = self.spec
        password = None
        if spec.password_env:
            password = os.environ.get(spec.password_env)
            if password is None:
                raise HostError(f"the environment variable {spec.password_env} (password_env) "
                                f"is not set; export it with the password for {spec.user}",
                                host=self.name)
        if spec.key_file and not Path(spec.key_file).is_file():
            raise HostError(f"key file {spec.key_file} does not exist", host=self.name)
        client = paramiko.SSHClient()
        if self.known_hosts and Path(self.known_hosts).is_file():
            try:
                client.load_host_keys(self.known_hosts)
            except (OSError, paramiko.SSHException) as exc:
                raise HostError(f"cannot read known_hosts file {self.known_hosts}: {exc}",
                                host=self.name) from None
        if self.host_key_policy == "tofu" and self.known_hosts:
            client.set_missing_host_key_policy(_TrustOnFirstUse(self.known_hosts))
        else:
            client.set_missing_host_key_policy(_RejectUnknown())
        sock = self._jump_channel()
        try:
            client.connect(
                spec.address, spec.port, username=spec.user, password=password,
                key_filename=spec.key_file, allow_agent=True,
                look_for_keys=spec.key_file is None and password is None,
                timeout=self.connect_timeout_s, banner_timeout=self.connect_timeout_s,
                auth_timeout=self.connect_timeout_s, channel_timeout=self.connect_timeout_s,
                sock=sock)
        except Exception as exc:
            client.close()
            if sock is not None:
                sock.close()
            raise self._connect_error(exc) from None
        return client

    def _jump_channel(self) -> paramiko.Channel | None:
        if self.jump is None:
            return None
        transport = self.jump.transport()
        try:
            return transport.open_channel("direct-tcpip", (self.spec.address, self.spec.port),
                                          ("127.0.0.1", 0), timeout=self.connect_timeout_s)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostError(f"jump host {self.jump.name} cannot reach {self._endpoint()}: "
                            f"{str(exc) or type(exc).__name__}", host=self.name) from None

    def _connect_error(self, exc: Exception) -> HostError:
        """What went wrong while connecting, in words that say what to do."""
        where = self._endpoint() + (f" via {self.jump.name}" if self.jump else "")
        file = self.known_hosts or "(no known_hosts file)"
        # as known_hosts names it
        key_name = (self.spec.address if self.spec.port == 22
                    else f"[{self.spec.address}]:{self.spec.port}")
        if isinstance(exc, paramiko.BadHostKeyException):
            return HostError(
                f"host key for {key_name} changed: {file} has {exc.expected_key.get_name()} "
                f"{exc.expected_key.fingerprint}, the host offered {exc.key.get_name()} "
                f"{exc.key.fingerprint}; this can be an attack. Remove the old key from {file} "
                f"(ssh-keygen -R '{key_name}' -f {file}) if the change is expected",
                host=self.name)
        if isinstance(exc, _UnknownHostKey):
            return HostError(
                f"host key for {key_name} is not in {file} (the host offered "
                f"{exc.key.get_name()} {exc.key.fingerprint}); add it after checking the "
                f"fingerprint, or set `host_key_policy: tofu` in the inventory to trust and "
                f"record keys on first use", host=self.name)
        if isinstance(exc, paramiko.PasswordRequiredException):
            return HostError(f"key file {self.spec.key_file} is encrypted; load it into "
                             f"ssh-agent instead", host=self.name)
        if isinstance(exc, paramiko.AuthenticationException):
            tried = ", ".join(filter(None, [
                f"key {self.spec.key_file}" if self.spec.key_file else "default keys",
                "agent", "password" if self.spec.password_env else None]))
            return HostError(f"authentication as {self.spec.user!r} at {where} failed "
                             f"(tried {tried}): {exc}", host=self.name)
        if isinstance(exc, socket.gaierror):
            return HostError(f"cannot resolve address {self.spec.address!r}: {exc.strerror}",
                             host=self.name)
        if isinstance(exc, TimeoutError):
            return HostError(f"connecting to {where} timed out after "
                             f"{self.connect_timeout_s:g} s", host=self.name)
        if isinstance(exc, paramiko.SSHException | OSError | EOFError):
            return HostError(f"cannot connect to {where}: {str(exc) or type(exc).__name__}",
                             host=self.name)
        raise exc


def _consume(future: asyncio.Future[CommandResult]) -> None:
    """Retrieve the outcome of a command nobody waits for any more."""
    if not future.cancelled():
        future.exception()


def _drain(chan: paramiko.Channel, out: list[bytes], err: list[bytes]) -> None:
    while chan.recv_ready():
        out.append(chan.recv(65536))
    while chan.recv_stderr_ready():
        err.append(chan.recv_stderr(65536))


def connect(inventory: Inventory, *, connect_timeout_s: float = 10.0) -> dict[str, Host]:
    """One SSHHost per inventory host, jump hosts wired; connections open on first use."""
    made: dict[str, SSHHost] = {}

    def make(name: str) -> SSHHost:
        if name not in made:
            spec = inventory.hosts[name]
            jump = make(spec.jump) if spec.jump else None
            made[name] = SSHHost(spec, known_hosts=inventory.known_hosts,
                                 host_key_policy=inventory.host_key_policy, jump=jump,
                                 connect_timeout_s=connect_timeout_s)
        return made[name]

    for name in inventory.hosts:
        make(name)
    return {name: made[name] for name in inventory.hosts}


async def close_all(hosts: Mapping[str, Host]) -> None:
    """Close every host, those reached through a jump host before the jump host."""

    def depth(host: Host) -> int:
        hops, jump = 0, getattr(host, "jump", None)
        while jump is not None:
            hops, jump = hops + 1, jump.jump
        return hops

    for host in sorted(hosts.values(), key=depth, reverse=True):
        with contextlib.suppress(OSError, paramiko.SSHException):
            await host.close()
