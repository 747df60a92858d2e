"""Process monitors on this machine: real processes, read through /proc in-process and
through the probe run as `python3 -c` (the way every remote host is read)."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from osbench import procs
from osbench.hosts.local import LocalHost
from osbench.monitors.config import ProcessesSource
from osbench.monitors.presets import PROCESS_PRESETS
from osbench.monitors.processes import (
    PROBE_MARKER,
    ProcessSampler,
    _Snapshot,
    readings_between,
)
from osbench.monitors.sampler import MonitorError, Reading

BUSY = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


def values(readings: list[Reading], metric: str) -> dict[str, float]:
    """service (or "" for a host metric) -> value."""
    return {r.labels.get("service", ""): r.value for r in readings if r.metric == metric}


def token() -> str:
    return f"osbench-test-{random.getrandbits(48):012x}"


def cpu_ticks(mark: str) -> int:
    """utime + stime of every process whose command line holds `mark`, read from /proc
    by the test itself: the truth a monitor's reading is checked against."""
    total = 0
    for pid in procs.pids():
        command = procs.cmdline(pid)
        if command and mark.encode() in command:
            try:
                fields = (procs.PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
    return total


def share_pct(ticks: int, seconds: float) -> float:
    return ticks / os.sysconf("SC_CLK_TCK") / seconds * 100


@pytest.fixture
def busy() -> Iterator[str]:
    """A process burning one core for up to 20 s; its command line holds the token.

    Niced up (as root; `nice` runs it anyway otherwise) so that other work on a
    2-core machine does not take its core while it is measured."""
    mark = token()
    proc = subprocess.Popen(["nice", "-n", "-10", sys.executable, "-c", BUSY.format(s=20), mark],
                            stderr=subprocess.DEVNULL)
    yield mark
    proc.kill()
    proc.wait()


@pytest.fixture
def idle() -> Iterator[str]:
    """A `sleep` with a duration no other process has: its own command line is the token."""
    seconds = f"{60 + random.random():.9f}"
    proc = subprocess.Popen(["sleep", seconds])
    yield f"^sleep {seconds}$"
    proc.kill()
    proc.wait()


def sampler(services: dict[str, str], *, in_process: bool = True,
            python: tuple[str, ...] = (sys.executable,), timeout: float = 10.0
            ) -> ProcessSampler:
    cfg = ProcessesSource(host="local", presets=(), services=services, timeout=timeout)
    return ProcessSampler(cfg, LocalHost(), "local", in_process=in_process, python=python)


async def two_samples(s: ProcessSampler, gap_s: float = 1.0) -> tuple[list[Reading],
                                                                        list[Reading]]:
    await s.open()
    first = await s.sample()
    await asyncio.sleep(gap_s)
    return first, await s.sample()


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "python3-probe"])
async def test_busy_idle_and_missing_services(busy: str, idle: str, in_process: bool) -> None:
    s = sampler({"busy": busy, "idle": idle, "nothing": token()}, in_process=in_process)
    assert s.source == "processes@local"
    started, ticks = time.monotonic(), cpu_ticks(busy)
    first, second = await two_samples(s)
    truth = share_pct(cpu_ticks(busy) - ticks, time.monotonic() - started)
    assert values(first, "service_cpu_pct") == {}, "the first sample has no rate"
    assert "host_cpu_pct" not in {r.metric for r in first}
    cpu = values(second, "service_cpu_pct")
    # What the process really got (a loaded machine gives it less than a core): the
    # reading is that, within the edges of the two windows, and clearly busy.
    assert abs(cpu["busy"] - truth) <= 20 and 10 <= cpu["busy"] <= 110, (cpu, truth)
    assert cpu["idle"] < 10, cpu
    assert values(second, "service_processes") == {"busy": 1, "idle": 1, "nothing": 0}
    rss = values(second, "service_rss_bytes")
    assert rss["busy"] > 1_000_000 and rss["idle"] > 0
    assert "nothing" not in rss and "nothing" not in cpu, "a missing service has only a count"


async def test_host_readings() -> None:
    _, second = await two_samples(sampler({}), gap_s=0.5)
    host = {r.metric: r.value for r in second if not r.labels}
    assert host["host_cores"] == os.sysconf("SC_NPROCESSORS_ONLN")
    assert host["host_mem_total_bytes"] == os.sysconf("SC_PHYS_PAGES") * os.sysconf(
        "SC_PAGE_SIZE")
    assert 0 < host["host_mem_used_bytes"] < host["host_mem_total_bytes"]
    assert 0 <= host["host_cpu_pct"] <= 100
    assert host["host_load1"] == pytest.approx(os.getloadavg()[0], abs=2)


async def test_the_probe_never_counts_itself() -> None:
    """Its own command line holds every pattern; the marker keeps it out."""
    s = sampler({"probe": "read_host", "marker": PROBE_MARKER}, in_process=False)
    await s.open()
    assert values(await s.sample(), "service_processes") == {"probe": 0, "marker": 0}


async def test_family_label_and_first_match_wins() -> None:
    cfg = ProcessesSource(host="local", presets=("neutron-server-rpc", "neutron-server-api"),
                          services={"everything": "."})
    s = ProcessSampler(cfg, LocalHost(), "local")
    readings = await s.sample()
    labels = {r.labels["service"]: dict(r.labels) for r in readings
              if r.metric == "service_processes"}
    assert labels["neutron-server-rpc"] == {"service": "neutron-server-rpc",
                                            "family": "neutron-server"}
    assert labels["everything"] == {"service": "everything"}


def snapshot(uptime: float, ticks: dict[str, int]) -> _Snapshot:
    return _Snapshot(tick=100, uptime=uptime, cpu=(0,) * 8, cores=2, load1=0.0,
                     mem_total=2, mem_available=1, services={"s": (len(ticks), 1, ticks)})


def test_rate_counts_new_processes_from_their_start_and_drops_the_gone() -> None:
    before = snapshot(40.0, {"10:100": 50, "11:200": 500, "12:300": 7})
    now = snapshot(42.0, {
        "10:100": 150,   # in both: +100
        "11:4100": 30,   # pid 11 reused: started at 41 s, after `before`: +30
        "13:4050": 20,   # new, started at 40.5 s: +20
        "14:300": 900,   # newly matched but older than `before`: unknown, left out
    })                   # 12 ended: dropped
    cpu = values(readings_between(before, now), "service_cpu_pct")
    assert cpu == {"s": pytest.approx((100 + 30 + 20) / 100 / 2.0 * 100)}


def test_no_rate_when_the_host_rebooted() -> None:
    before = snapshot(400.0, {"10:100": 50})
    now = snapshot(3.0, {"10:100": 60})
    assert values(readings_between(before, now), "service_cpu_pct") == {}


@pytest.mark.parametrize(("python", "message"), [
    (("echo", "not json"), r"^local: the process probe printed no JSON: 'not json -c "),
    (("true",), r"^local: the process probe printed nothing$"),
    (("sh", "-c", """echo '{"tick": 100}'""", "sh"),
     r"^local: the process probe's output is not what it prints \(KeyError: 'services'\)$"),
    (("sh", "-c", "echo 'Traceback: boom' >&2; exit 3", "sh"),
     r"^local: the process probe exited with status 3: Traceback: boom$"),
    (("sh", "-c", "head -c 2000000 /dev/zero", "sh"),
     r"^local: the process probe printed 2000000 characters, over 1000000$"),
    (("python3-osbench-missing",), r"^local: python3-osbench-missing not found on local "),
    (("sh", "-c", "exit 127", "sh"), r"^local: sh not found on local "),
], ids=["garbage", "empty", "wrong-json", "exit-status", "too-much", "no-python", "status-127"])
async def test_a_probe_that_fails_is_one_monitor_error(python: tuple[str, ...],
                                                       message: str) -> None:
    s = sampler({"x": "x"}, in_process=False, python=python)
    with pytest.raises(MonitorError, match=message) as info:
        await s.sample()
    assert "\n" not in str(info.value)


async def test_a_probe_that_hangs_is_killed_at_the_timeout() -> None:
    s = sampler({"x": "x"}, in_process=False, python=("sh", "-c", "exec sleep 30", "sh"),
                timeout=1.0)
    started = asyncio.get_running_loop().time()
    with pytest.raises(MonitorError, match=r"^local: timed out after 1 s and was killed$"):
        await s.sample()
    assert asyncio.get_running_loop().time() - started < 5


async def test_a_bad_pattern_fails_at_open() -> None:
    with pytest.raises(MonitorError, match=r"^local: service 'bad': the pattern '\(' is not "):
        await sampler({"bad": "("}).open()


def test_every_preset_compiles() -> None:
    import re

    for pattern in PROCESS_PRESETS.values():
        re.compile(pattern)
