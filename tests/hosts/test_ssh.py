"""SSHHost against a real sshd on 127.0.0.1 (root: the fixture skips otherwise)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
from pathlib import Path

import pytest

from osbench.errors import HostError
from osbench.hosts import SSHHost, close_all, connect, parse_inventory_text
from tests.hosts.conftest import (
    SSHServer,
    free_port,
    keygen,
    listening,
    needs_root,
    public_key,
)
from tests.hosts.processes import gone, parent_of


async def test_output_and_exit_status(sshd: SSHServer) -> None:
    host = sshd.host()
    try:
        ok = await host.run(["sh", "-c", "echo out; echo err >&2"])
        assert (ok.host, ok.exit_status, ok.stdout, ok.stderr) == ("box", 0, "out\n", "err\n")
        assert ok.argv == ("sh", "-c", "echo out; echo err >&2")
        assert ok.duration_s > 0
        failed = await host.run(["sh", "-c", "exit 7"], check=False)
        assert failed.exit_status == 7
    finally:
        await host.close()


async def test_arguments_are_quoted(sshd: SSHServer) -> None:
    host = sshd.host()
    try:
        tricky = ["a b", "$HOME", "it's", ";", "*"]
        result = await host.run(["printf", "%s\\n", *tricky])
        assert result.stdout.splitlines() == tricky
    finally:
        await host.close()


async def test_check_raises_host_error_with_stderr_tail(sshd: SSHServer) -> None:
    host = sshd.host()
    try:
        with pytest.raises(HostError) as info:
            await host.run(["sh", "-c", "echo 'no such device' >&2; exit 3"])
        assert str(info.value) == ("box: exit status 3: no such device "
                                   "(command: sh -c 'echo '\"'\"'no such device'\"'\"' >&2; "
                                   "exit 3')")
        assert info.value.host == "box"
    finally:
        await host.close()


async def test_commands_get_no_stdin(sshd: SSHServer) -> None:
    host = sshd.host()
    try:
        # With stdin open, cat would wait for it and the timeout would raise HostError.
        result = await host.run(["cat"], timeout_s=5)
        assert (result.exit_status, result.stdout) == (0, "")
    finally:
        await host.close()


async def test_timeout_kills_the_remote_command(sshd: SSHServer, tmp_path: Path) -> None:
    pidfile = tmp_path / "sleeper.pid"
    host = sshd.host()
    try:
        with pytest.raises(HostError, match=r"^box: timed out after 1 s and was killed"):
            await host.run(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"], timeout_s=1)
        assert await gone(int(pidfile.read_text())), "the remote command survived its timeout"
        # the connection still works afterwards
        assert (await host.run(["true"])).exit_status == 0
    finally:
        await host.close()


async def test_one_connection_serves_every_command(sshd: SSHServer) -> None:
    host = sshd.host()
    try:
        await host.run(["true"])
        first = host.transport()
        results = await asyncio.gather(*(host.run(["echo", str(i)]) for i in range(20)))
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(20)]
        assert host.transport() is first
        assert host.connect_count == 1
    finally:
        await host.close()


async def test_changed_host_key_is_refused(sshd: SSHServer) -> None:
    host = sshd.host()
    await host.run(["true"])
    await host.close()
    old = public_key(sshd.host_key)
    sshd.new_host_key()
    host = sshd.host()
    try:
        with pytest.raises(HostError) as info:
            await host.run(["true"])
    finally:
        await host.close()
    file = sshd.known_hosts()
    name = sshd.known_hosts_name
    assert re.sub(r"SHA256:[A-Za-z0-9+/=]+", "SHA256:...", str(info.value)) == (
        f"box: host key for {name} changed: {file} has ssh-ed25519 SHA256:..., the host "
        f"offered ssh-ed25519 SHA256:...; this can be an attack. Remove the old key from {file} "
        f"(ssh-keygen -R '{name}' -f {file}) if the change is expected")
    assert old in file.read_text()  # nothing was written


async def test_unknown_host_is_refused_by_default(sshd: SSHServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    host = SSHHost(sshd.spec(), known_hosts=str(empty))
    try:
        with pytest.raises(HostError, match=r"host key for \[127\.0\.0\.1\]:\d+ is not in "
                                            r".*empty_known_hosts .*host_key_policy: tofu"):
            await host.run(["true"])
    finally:
        await host.close()
    assert empty.read_text() == ""


async def test_tofu_accepts_and_records_a_new_key(sshd: SSHServer, tmp_path: Path) -> None:
    file = tmp_path / "tofu" / "known_hosts"
    host = SSHHost(sshd.spec(), known_hosts=str(file), host_key_policy="tofu")
    try:
        assert (await host.run(["echo", "hi"])).stdout == "hi\n"
    finally:
        await host.close()
    assert file.read_text() == sshd.known_hosts_line()
    # the recorded key now verifies, and a changed key is still refused under tofu
    verify = SSHHost(sshd.spec(), known_hosts=str(file))
    try:
        await verify.run(["true"])
    finally:
        await verify.close()
    sshd.new_host_key()
    again = SSHHost(sshd.spec(), known_hosts=str(file), host_key_policy="tofu")
    try:
        with pytest.raises(HostError, match="changed"):
            await again.run(["true"])
    finally:
        await again.close()


async def test_missing_password_variable(sshd: SSHServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSB_TEST_PW", raising=False)
    host = sshd.host(key_file=None, password_env="OSB_TEST_PW")
    try:
        with pytest.raises(HostError) as info:
            await host.run(["true"])
    finally:
        await host.close()
    assert str(info.value) == ("box: the environment variable OSB_TEST_PW (password_env) is "
                               "not set; export it with the password for root")


async def test_wrong_key_is_an_authentication_error(sshd: SSHServer, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    other = keygen(tmp_path / "id_other")
    host = sshd.host(key_file=str(other))
    try:
        with pytest.raises(HostError, match=r"^box: authentication as 'root' at "
                                            r"127\.0\.0\.1:\d+ failed \(tried key .*id_other"):
            await host.run(["true"])
    finally:
        await host.close()


@needs_root
async def test_the_sshd_fixture_moves_on_from_a_taken_port(tmp_path: Path) -> None:
    """The port race of the fixture: another process binds the port between our
    check and sshd's bind. sshd exits ("Address already in use"); start() moves on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        server = SSHServer(tmp_path, port, keygen(tmp_path / "id_user"),
                           keygen(tmp_path / "ssh_host_ed25519_key"))
        server.start()
        try:
            assert server.port != port and server.process is not None
            assert listening(server.process.pid, server.port)
            host = server.host()
            try:
                assert (await host.run(["true"])).exit_status == 0
            finally:
                await host.close()
        finally:
            server.stop()
    assert "Address already in use" in (tmp_path / "sshd.log").read_text()


async def test_nothing_listening(tmp_path: Path) -> None:
    port = free_port()
    host = SSHHost(SSHServer(tmp_path, port, tmp_path / "k", tmp_path / "h").spec(key_file=None),
                   known_hosts=None)
    try:
        with pytest.raises(HostError, match=rf"^box: cannot connect to 127\.0\.0\.1:{port}"):
            await host.run(["true"])
    finally:
        await host.close()


async def test_missing_key_file(sshd: SSHServer, tmp_path: Path) -> None:
    host = sshd.host(key_file=str(tmp_path / "nope"))
    try:
        with pytest.raises(HostError, match=r"^box: key file .*nope does not exist$"):
            await host.run(["true"])
    finally:
        await host.close()


async def test_jump_host_from_an_inventory(sshd: SSHServer) -> None:
    inventory = parse_inventory_text(f"""\
known_hosts: {sshd.known_hosts()}
hosts:
  bastion: {{address: 127.0.0.1, port: {sshd.port}, key_file: {sshd.user_key}}}
  inner:
    address: 127.0.0.1
    port: {sshd.port}
    key_file: {sshd.user_key}
    jump: bastion
    roles: [network_node]
""", "inv.yaml")
    hosts = connect(inventory)
    try:
        inner = hosts["inner"]
        assert isinstance(inner, SSHHost) and inner.jump is hosts["bastion"]
        result = await inner.run(["sh", "-c", "echo $SSH_CLIENT"])
        # the inner connection comes from the bastion's sshd, i.e. through the jump
        assert result.stdout.startswith("127.0.0.1 ")
        assert inner.connect_count == 1 and hosts["bastion"].connect_count == 1  # type: ignore[attr-defined]
        await inner.run(["true"])
        assert inner.connect_count == 1
    finally:
        await close_all(hosts)


async def test_jump_host_that_cannot_reach_the_target(sshd: SSHServer) -> None:
    bastion = sshd.host("bastion")
    port = free_port()
    inner = SSHHost(sshd.spec("inner", port=port), known_hosts=str(sshd.known_hosts()),
                    jump=bastion)
    try:
        with pytest.raises(HostError, match=rf"^inner: jump host bastion cannot reach "
                                            rf"127\.0\.0\.1:{port}"):
            await inner.run(["true"])
    finally:
        await close_all({"inner": inner, "bastion": bastion})


async def test_cancel_stops_the_command_when_timeout_cannot_pass_it_on(
        sshd: SSHServer, tmp_path: Path) -> None:
    # A stopped `timeout` stands in for coreutils 9.1's fork race (it exits on a
    # signal that lands inside fork(), leaving its child running): either way,
    # only a signal to the command's process group reaches the command.
    pidfile = tmp_path / "sleeper.pid"
    host = sshd.host()
    task = asyncio.create_task(host.run(
        ["sh", "-c", f"echo $$ > {pidfile}; kill -STOP $PPID; exec sleep 30"], timeout_s=60))
    timeout_pid = None
    try:
        for _ in range(200):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            await asyncio.sleep(0.05)
        sleeper = int(pidfile.read_text())
        timeout_pid = parent_of(sleeper)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await gone(sleeper), "the remote command outlived its cancelled run"
    finally:
        if timeout_pid is not None:
            os.kill(timeout_pid, signal.SIGKILL)
        await host.close()
