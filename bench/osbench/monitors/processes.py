"""CPU and memory of services on one host, and the host's own CPU, load and memory.

One sample is ONE command on the host, whatever the number of processes:
`python3 -c PROBE MARKER PATTERNS` reads /proc/[pid]/cmdline of every
process, /proc/[pid]/stat of those a service's pattern finds, and the host's
/proc/stat, /proc/loadavg, /proc/meminfo and /proc/uptime, and prints one
line of JSON. The probe is `read_host` below, sent as source: the same
function reads /proc in-process (on a thread) for a LocalHost, which is ~6x
cheaper. Measured with minicloud up (124 processes, the 13 preset services),
per sample: in-process 4 ms CPU, 4 ms wall; `python3 -I -S -c` on this
machine 24 ms CPU (20 of them the child's), 25 ms wall (77 ms and 106 ms when
python3 is a pyenv shim); over SSH to a lab host 4 ms here and 25 ms on the
host (sshd, shell, python3), 30 ms wall.

CPU is a rate between two samples, over the host's own /proc/uptime (not our
clock, so a slow SSH round trip does not dilute it). A process is one
(pid, start time) pair: a reused pid is another process. A process present in
both samples counts its ticks since the first; one that started in between
counts all of its ticks; one that ended is dropped. The first sample gives no
CPU rows.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from osbench.errors import HostError
from osbench.hosts.base import Host, stderr_tail
from osbench.hosts.local import LocalHost
from osbench.monitors.config import ProcessesSource
from osbench.monitors.presets import SERVICE_FAMILIES, process_patterns
from osbench.monitors.sampler import MonitorError, Reading, Sampler, host_script

#: Written in the probe's own command line: a process whose command line holds
#: it is a probe (ours, or the shell that started it), never a service, though
#: its arguments hold every service's pattern.
PROBE_MARKER = "osbench-process-probe"
#: Processes per service whose CPU ticks a sample carries (all are counted and
#: their RSS summed). A service with more (a pattern that finds everything)
#: has its CPU under-read rather than flooding the journal and the wire:
#: 1000 keys are ~25 kB of JSON.
MAX_PROCESSES_PER_SERVICE = 1000
#: The most a probe may print; more is garbage (the caps above keep a real
#: one under ~400 kB with 15 services).
MAX_OUTPUT_CHARS = 1_000_000
#: Bytes of a command line read for matching (Java and uwsgi lines run to a few kB).
MAX_CMDLINE_BYTES = 8192
#: The interpreter the probe runs with on a host (every OpenStack host has it):
#: isolated (-I: no PYTHON* variables, no user site) and without `site` (-S),
#: which the probe does not need: 6 ms less per start.
PYTHON = ("python3", "-I", "-S")
#: Exit status of a shell or `timeout` that found no such command.
_NOT_FOUND = 127


def read_host(patterns: dict[str, str], marker: str, max_per_service: int,
              max_cmdline: int, proc: str = "/proc") -> dict[str, Any]:
    """The probe: /proc of this machine read once, services matched by pattern.

    Self-contained (imports inside, Python 3.7+ only) because its source is
    what runs on remote hosts. A process counts under the first pattern that
    is found in its command line (NULs read as spaces); kernel threads (no
    command line), zombies and probes (`marker` in the line) never count.
    Returns {"tick", "uptime", "cpu" (the /proc/stat cpu line's first 8
    fields), "cores", "load1", "mem_total", "mem_available" (bytes),
    "services": {name: {"n", "rss" (bytes), "ticks": {"pid:start": utime+stime}}}}.
    """
    import os
    import re

    def read(path: str, limit: int = -1) -> bytes:
        # plain open(): the probe runs every interval on every host, keep it lean
        with open(proc + path, "rb") as f:  # noqa: PTH123
            return f.read(limit)

    def uptime() -> float:
        return float(read("/uptime").split()[0])

    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    compiled = [(name, re.compile(pattern)) for name, pattern in patterns.items()]
    services: dict[str, Any] = {name: {"n": 0, "rss": 0, "ticks": {}} for name in patterns}
    before = uptime()
    for entry in os.scandir(proc):
        pid = entry.name
        if not pid.isdigit():
            continue
        try:
            raw = read("/" + pid + "/cmdline", max_cmdline)
            if not raw:
                continue
            line = raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
            if marker in line:
                continue
            name = next((n for n, rx in compiled if rx.search(line)), None)
            if name is None:
                continue
            fields = read("/" + pid + "/stat").rpartition(b")")[2].split()
        except OSError:  # it exited meanwhile
            continue
        if len(fields) < 22 or fields[0] == b"Z":
            continue
        service = services[name]
        service["n"] += 1
        service["rss"] += int(fields[21]) * page
        if len(service["ticks"]) < max_per_service:
            # fields[k] is stat field k + 3: utime 14, stime 15, starttime 22
            started = pid + ":" + fields[19].decode()
            service["ticks"][started] = int(fields[11]) + int(fields[12])
    after = uptime()
    cores = 0
    cpu: list[int] = []
    for stat_line in read("/stat").splitlines():
        if stat_line.startswith(b"cpu "):
            cpu = [int(v) for v in stat_line.split()[1:9]]
        elif stat_line.startswith(b"cpu"):
            cores += 1
    load1 = float(read("/loadavg").split()[0])
    meminfo = {}
    for mem_line in read("/meminfo").splitlines():
        key, _, value = mem_line.partition(b":")
        if key in (b"MemTotal", b"MemAvailable"):
            meminfo[key.decode()] = int(value.split()[0]) * 1024
    return {"tick": tick, "uptime": (before + after) / 2, "cpu": cpu, "cores": cores,
            "load1": load1, "mem_total": meminfo.get("MemTotal", 0),
            "mem_available": meminfo.get("MemAvailable", 0), "services": services}


@functools.cache
def probe_script() -> str:
    """`read_host` as a script: `python3 -c SCRIPT MARKER PATTERNS_JSON` prints its JSON."""
    return host_script(read_host, "print(json.dumps(read_host(json.loads(sys.argv[2]), "
                       f"sys.argv[1], {MAX_PROCESSES_PER_SERVICE}, {MAX_CMDLINE_BYTES}), "
                       "separators=(',', ':')))")


@dataclass(frozen=True)
class _Snapshot:
    """One probe's output, checked."""

    tick: int
    uptime: float
    cpu: tuple[int, ...]
    cores: int
    load1: float
    mem_total: int
    mem_available: int
    #: service -> (processes, rss bytes, {"pid:start": ticks})
    services: Mapping[str, tuple[int, int, Mapping[str, int]]]


def _snapshot(data: object, host: str) -> _Snapshot:
    """The probe's output as a _Snapshot; MonitorError if it is not one."""
    try:
        if not isinstance(data, dict):
            raise TypeError(f"a {type(data).__name__}, not an object")
        services = {}
        for name, svc in data["services"].items():
            ticks = {str(k): int(v) for k, v in svc["ticks"].items()}
            services[str(name)] = (int(svc["n"]), int(svc["rss"]), ticks)
        snap = _Snapshot(tick=int(data["tick"]), uptime=float(data["uptime"]),
                         cpu=tuple(int(v) for v in data["cpu"]), cores=int(data["cores"]),
                         load1=float(data["load1"]), mem_total=int(data["mem_total"]),
                         mem_available=int(data["mem_available"]), services=services)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MonitorError(f"{host}: the process probe's output is not what it prints "
                           f"({type(exc).__name__}: {exc})") from None
    if snap.tick <= 0 or len(snap.cpu) != 8:
        raise MonitorError(f"{host}: the process probe's output is not what it prints "
                           f"(tick {snap.tick}, {len(snap.cpu)} cpu fields)")
    return snap


class ProcessSampler(Sampler):
    """`processes@HOST`: per service CPU (% of one core), RSS and count; host CPU, load, memory.

    `in_process` reads /proc here on a thread instead of running the probe
    (None: only for a LocalHost, which sees this machine's /proc whatever its
    network namespace); `python` is the interpreter's argv on the host.
    """

    def __init__(self, cfg: ProcessesSource, host: Host, host_name: str, *,
                 in_process: bool | None = None, python: tuple[str, ...] = PYTHON) -> None:
        self.source = f"processes@{host_name}"
        self.timeout_s = cfg.timeout
        self.host = host
        self.host_name = host_name
        self.patterns = process_patterns(cfg.presets, cfg.services)
        self.in_process = isinstance(host, LocalHost) if in_process is None else in_process
        self.python = python
        self._previous: _Snapshot | None = None

    async def open(self) -> None:
        for name, pattern in self.patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise MonitorError(f"{self.host_name}: service {name!r}: the pattern "
                                   f"{pattern!r} is not a regular expression ({exc})") from None

    async def sample(self) -> list[Reading]:
        snap = _snapshot(await self._read(), self.host_name)
        readings = readings_between(self._previous, snap)
        self._previous = snap
        return readings

    def _not_found(self) -> MonitorError:
        return MonitorError(f"{self.host_name}: {self.python[0]} not found on "
                            f"{self.host_name} (the process probe needs it)")

    async def _read(self) -> object:
        """The probe's output: parsed JSON, or the dict `read_host` returned here."""
        if self.in_process:
            try:
                return await asyncio.to_thread(read_host, self.patterns, PROBE_MARKER,
                                               MAX_PROCESSES_PER_SERVICE, MAX_CMDLINE_BYTES)
            except (OSError, ValueError) as exc:
                raise MonitorError(f"{self.host_name}: cannot read /proc: {exc}") from None
        argv = (*self.python, "-c", probe_script(), PROBE_MARKER,
                json.dumps(self.patterns, separators=(",", ":")))
        try:
            result = await self.host.run(argv, timeout_s=self.timeout_s, check=False)
        except HostError as exc:
            if "command not found" in str(exc):  # LocalHost's words for ENOENT
                raise self._not_found() from None
            # HostError names the host first and ends with the command (the whole probe)
            raise MonitorError(" ".join(str(exc).split(" (command: ")[0].split())) from None
        if result.exit_status == _NOT_FOUND:
            raise self._not_found()
        if result.exit_status != 0:
            tail = stderr_tail(result.stderr)
            raise MonitorError(f"{self.host_name}: the process probe exited with status "
                               f"{result.exit_status}" + (f": {tail}" if tail else ""))
        if len(result.stdout) > MAX_OUTPUT_CHARS:
            raise MonitorError(f"{self.host_name}: the process probe printed "
                               f"{len(result.stdout)} characters, over {MAX_OUTPUT_CHARS}")
        try:
            return json.loads(result.stdout)
        except ValueError:
            head = " ".join(result.stdout.split())[:80]
            raise MonitorError(f"{self.host_name}: the process probe printed no JSON: "
                               f"{head!r}" if head else
                               f"{self.host_name}: the process probe printed nothing") from None


def readings_between(previous: _Snapshot | None, now: _Snapshot) -> list[Reading]:
    """Readings of `now`, with CPU rates since `previous` (none without it)."""
    readings = [
        Reading("host_cores", float(now.cores)),
        Reading("host_load1", now.load1),
        Reading("host_mem_used_bytes", float(now.mem_total - now.mem_available)),
        Reading("host_mem_total_bytes", float(now.mem_total)),
    ]
    elapsed_s = now.uptime - previous.uptime if previous is not None else 0.0
    rates = previous is not None and elapsed_s > 0 and previous.tick == now.tick
    before: dict[str, int] = {}
    started_after = 0.0
    if rates:
        assert previous is not None
        total = sum(now.cpu) - sum(previous.cpu)
        # busy = everything but idle (field 4) and iowait (field 5)
        busy = total - (now.cpu[3] - previous.cpu[3]) - (now.cpu[4] - previous.cpu[4])
        if total > 0:
            readings.append(Reading("host_cpu_pct", min(100.0, max(0.0, 100.0 * busy / total))))
        before = {key: t for _, _, ticks in previous.services.values()
                  for key, t in ticks.items()}
        # a process that started after `previous` was taken counts from its start
        started_after = previous.uptime * now.tick
    for name, (count, rss, ticks) in now.services.items():
        labels = {"service": name}
        family = SERVICE_FAMILIES.get(name, name)
        if family != name:
            labels["family"] = family
        readings.append(Reading("service_processes", float(count), labels))
        if count == 0:
            continue
        readings.append(Reading("service_rss_bytes", float(rss), labels))
        if rates:
            used = 0
            for key, t in ticks.items():
                if key in before:
                    used += max(0, t - before[key])
                elif int(key.partition(":")[2]) >= started_after:
                    used += t
            readings.append(Reading("service_cpu_pct",
                                    100.0 * used / now.tick / elapsed_s, labels))
    return readings
