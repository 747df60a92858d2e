"""LocalHost: real processes on this machine (and in a namespace, as root)."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from osbench.errors import HostError
from osbench.hosts import LocalHost
from tests.hosts.processes import gone


async def test_output_exit_status_and_duration() -> None:
    result = await LocalHost().run(["sh", "-c", "echo out; echo err >&2; exit 0"])
    assert (result.host, result.exit_status, result.stdout, result.stderr) == (
        "local", 0, "out\n", "err\n")
    assert result.argv == ("sh", "-c", "echo out; echo err >&2; exit 0")
    assert result.duration_s > 0


async def test_nonzero_exit_without_check() -> None:
    result = await LocalHost().run(["sh", "-c", "exit 4"], check=False)
    assert result.exit_status == 4


async def test_check_raises_naming_host_command_and_stderr() -> None:
    with pytest.raises(HostError) as info:
        await LocalHost("nn").run(["sh", "-c", "echo 'bad queue count' >&2; exit 1"])
    assert str(info.value) == ("nn: exit status 1: bad queue count (command: sh -c "
                               "'echo '\"'\"'bad queue count'\"'\"' >&2; exit 1')")
    assert (info.value.host, info.value.command) == (
        "nn", "sh -c 'echo '\"'\"'bad queue count'\"'\"' >&2; exit 1'")


async def test_no_stdin() -> None:
    result = await asyncio.wait_for(LocalHost().run(["cat"]), 5)
    assert result.stdout == ""


async def test_timeout_kills_the_command_and_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    with pytest.raises(HostError, match=r"^local: timed out after 0\.5 s and was killed "
                                        r"\(command: sh -c"):
        await LocalHost().run(["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"],
                              timeout_s=0.5)
    assert await gone(int(pidfile.read_text())), "the background child survived the timeout"


async def test_missing_command() -> None:
    with pytest.raises(HostError, match=r"^local: command not found: 'no-such-tool-osb'"):
        await LocalHost().run(["no-such-tool-osb", "x"])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates a network namespace")
async def test_inside_a_namespace() -> None:
    ns = f"osbt-h{uuid.uuid4().hex[:6]}"
    await LocalHost().run(["ip", "netns", "add", ns])
    try:
        result = await LocalHost("inside", netns=ns).run(["ip", "-o", "link", "show"])
        assert [line.split(":")[1].strip() for line in result.stdout.splitlines()] == ["lo"]
    finally:
        await LocalHost().run(["ip", "netns", "del", ns])
