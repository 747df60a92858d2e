"""Process monitors over SSH to a lab host (a network namespace with its own sshd):
real CPU of a process kept busy there, and a host whose sshd dies mid-sampling."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from osbench import netns, procs
from osbench.hosts import close_all, connect, load_inventory
from osbench.hosts.base import Host
from osbench.lab import LabConfig
from osbench.monitors.config import ProcessesSource
from osbench.monitors.processes import ProcessSampler
from osbench.monitors.sampler import MonitorError
from tests.monitors.test_processes import cpu_ticks, share_pct
from tests.support.lab import needs_root, running_lab

pytestmark = [needs_root, pytest.mark.root]

BUSY = "import time\nend = time.monotonic() + 8\nwhile time.monotonic() < end:\n    pass\n"
#: The sample's bound: the session gives each sample this long.
TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def monitor_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabConfig]:
    with running_lab(LabConfig(targets=1, ports_per_target=1, prefix="osbq-", mgmt_net=211,
                               state_dir=tmp_path_factory.mktemp("lab"))) as config:
        yield config


def sampler(host: Host, services: dict[str, str]) -> ProcessSampler:
    cfg = ProcessesSource(host="target1", presets=(), services=services, timeout=TIMEOUT_S)
    return ProcessSampler(cfg, host, "target1")


def pid_of(mark: str) -> int | None:
    for pid in procs.pids():
        try:
            if mark.encode() in (procs.PROC / str(pid) / "cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


async def test_cpu_of_a_busy_process_on_a_lab_host(monitor_lab: LabConfig) -> None:
    hosts = connect(load_inventory(monitor_lab.inventory_file))
    host = hosts["target1"]
    mark = f"osbench-lab-busy-{random.getrandbits(48):012x}"
    try:
        busy = asyncio.create_task(host.run([sys.executable, "-c", BUSY, mark], timeout_s=20))
        s = sampler(host, {"busy": mark, "idle": f"nothing-{mark}x"})
        assert s.source == "processes@target1" and not s.in_process
        for _ in range(50):
            pid = pid_of(mark)
            if pid is not None:
                break
            await asyncio.sleep(0.1)
        assert pid is not None, "the busy process never started"
        # it runs in the lab host's namespace: started through that host's sshd
        assert (procs.PROC / str(pid) / "ns/net").stat().st_ino == (
            netns.RUN_DIR / "osbq-target1").stat().st_ino
        await s.open()
        started, ticks = time.monotonic(), cpu_ticks(mark)
        await s.sample()
        await asyncio.sleep(1.5)
        readings = await s.sample()
        truth = share_pct(cpu_ticks(mark) - ticks, time.monotonic() - started)
        cpu = {r.labels["service"]: r.value for r in readings if r.metric == "service_cpu_pct"}
        # what the process really got on this (possibly loaded) machine, read apart
        assert abs(cpu["busy"] - truth) <= 20 and 10 <= cpu["busy"] <= 110, (cpu, truth)
        count = {r.labels["service"]: r.value for r in readings
                 if r.metric == "service_processes"}
        # the shell and `timeout` SSHHost wraps it in hold the mark too
        assert count["busy"] >= 1 and count["idle"] == 0
        assert {"host_cpu_pct", "host_cores", "host_load1", "host_mem_used_bytes",
                "host_mem_total_bytes"} <= {r.metric for r in readings}
        busy.cancel()
        with pytest.raises(asyncio.CancelledError):
            await busy
    finally:
        await close_all(hosts)


def sshd_and_sessions(pidfile: Path) -> list[int]:
    """The host's listening sshd and every sshd it forked for a connection."""
    daemon = int(pidfile.read_text())
    return [daemon, *(s.pid for s in procs.stats() if s.ppid == daemon)]


async def test_a_host_whose_sshd_is_killed_gives_a_monitor_error(monitor_lab: LabConfig
                                                                 ) -> None:
    """Last in this module: the lab host's sshd does not come back."""
    hosts = connect(load_inventory(monitor_lab.inventory_file))
    s = sampler(hosts["target1"], {"sshd": "sshd"})
    try:
        await s.open()
        assert any(r.metric == "service_processes" for r in await s.sample())
        pidfile = monitor_lab.state_dir / "hosts" / "target1" / "sshd.pid"
        for pid in sshd_and_sessions(pidfile):
            os.kill(pid, signal.SIGKILL)
        started = asyncio.get_running_loop().time()
        # paramiko may not have seen the connection drop yet: then opening the channel
        # fails, otherwise reconnecting does
        with pytest.raises(MonitorError, match=r"^target1: (cannot connect to |cannot start "
                                               r"the command over SSH)") as info:
            await asyncio.wait_for(s.sample(), TIMEOUT_S + 10)
        assert asyncio.get_running_loop().time() - started < TIMEOUT_S + 6
        assert "\n" not in str(info.value) and "read_host" not in str(info.value)
    finally:
        await close_all(hosts)
