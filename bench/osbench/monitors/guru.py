"""One oslo Guru Meditation Report of a service per case, taken when its queue backs up.

`monitors: {guru_meditation: {service: neutron-dhcp-agent, when: backlog}}`:
the session feeds every sample to a `GuruWatcher`. When a queue of that
service (the component "<service> queue" of `monitors.series`: its RabbitMQ
group, rabbitmq_prometheus queues of that group, or the simulated cloud's
backlog) rises for `attribution.BACKLOG_RISING_SAMPLES` samples in a row, the
backlog rule fires, and the watcher triggers one report:

1. ONE command on the host (`find_and_signal`, run as `python3 -I -S -c`) finds
   the service's processes by its preset pattern, takes as its main process a
   matched process whose parent is not matched AND that catches SIGUSR2 (a
   privsep daemon is reparented to init and matches too, but SIGUSR2 would end
   it), the oldest if several; notes the log's size and signals that process.
2. oslo.reports prints the report on the service's stderr; the watcher reads
   only what the log gained after the signal (or `journalctl -u UNIT` since
   then), waiting at most REPORT_WAIT_S for the header and for the text to stop
   growing. On minicloud the DHCP agent's ~44 kB report appeared within 0.25 s.
3. The text from its header on, at most MAX_REPORT_BYTES, is kept with the run
   as `guru/<case>-<service>.txt`, and one `guru_reports` row says when, why
   (the rule's evidence), which pid, how many bytes, and what went wrong.

A failure (no such process, not permitted, no report in time) is that row's
`error`; it never reaches the case. `when: start` triggers at the case's first
sample instead: a way to check the plumbing before a long run.

oslo.config prints options declared secret (passwords, transport_url) as
"***" in the report's configuration section; anything else a deployment put
on a command line or in an option not declared secret is in the file.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osbench.clock import RealClock
from osbench.errors import HostError
from osbench.hosts.base import stderr_tail
from osbench.monitors import series as ms
from osbench.monitors.attribution import BACKLOG_RISING_SAMPLES, num
from osbench.monitors.config import GuruMeditation
from osbench.monitors.presets import PROCESS_PRESETS
from osbench.monitors.processes import MAX_CMDLINE_BYTES, PROBE_MARKER, PYTHON
from osbench.monitors.sampler import MonitorError, Reading, host_script
from osbench.monitors.session import describe_error

if TYPE_CHECKING:
    from osbench.hosts.base import Host
    from osbench.kinds.base import CaseContext

log = logging.getLogger("osbench.monitors")

#: The table of triggered reports, one row per trigger (so at most one per case).
TABLE = "guru_reports"
#: The signal oslo.reports' `setup_autorun` listens on, and its number on Linux.
SIGNAL_NAME, SIGNAL_NUMBER = "SIGUSR2", 12
#: Real seconds to wait for the report after the signal: it takes ~0.25 s on
#: minicloud's DHCP agent; a service busy in a C call answers once it returns.
REPORT_WAIT_S = 10.0
#: How often the log is read meanwhile; the report is complete once the text
#: after its header did not grow over one such interval.
POLL_S = 0.25
#: Most bytes of a report kept (minicloud's DHCP agent: 44 kB; a service with
#: thousands of green threads prints more). Longer ones are cut, and said so.
MAX_REPORT_BYTES = 1024 * 1024
#: Real seconds one command on the host (the signal, one read of the log) may take.
COMMAND_TIMEOUT_S = 10.0
#: Longest `close()` waits for a trigger in flight before cancelling it.
CLOSE_WAIT_S = REPORT_WAIT_S + 2 * COMMAND_TIMEOUT_S
#: The report's title line (oslo.reports' header view: "====" + the title
#: centred in 64 + "===="), under a line of 72 "=".
HEADER = re.compile(r"^====\s*Guru Meditation\s*====[ \t]*$", re.MULTILINE)
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
#: Exit status of a shell or `timeout` that found no such command.
_NOT_FOUND = 127


def find_and_signal(pattern: str, marker: str, log_path: str, signum: int,
                    max_cmdline: int, proc: str = "/proc") -> dict[str, Any]:
    """The probe: find the service's main process by `pattern` and signal it.

    Self-contained (imports inside, Python 3.7+) because its source is what runs
    on the host. Matches like the process monitor (pattern searched in the
    command line, NULs read as spaces; kernel threads, zombies and probes never).
    The main process: a matched one whose parent is not matched and that catches
    `signum` (SigCgt in /proc/PID/status), the oldest if several. `log_path`'s
    size (if any) is read before the signal. Returns {"matched", "pid", "time"
    (the host's clock at the signal), "size"} or {"matched", "error"}.
    """
    import os
    import re
    import time

    def read(path: str, limit: int = -1) -> bytes:
        with open(proc + path, "rb") as f:  # noqa: PTH123 - the probe stays lean
            return f.read(limit)

    def stat_of(pid: str) -> list[bytes]:
        return read("/" + pid + "/stat").rpartition(b")")[2].split()

    rx = re.compile(pattern)
    found: dict[str, Any] = {}
    for entry in os.scandir(proc):
        pid = entry.name
        if not pid.isdigit():
            continue
        try:
            raw = read("/" + pid + "/cmdline", max_cmdline)
            line = raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
            if not raw or marker in line or not rx.search(line):
                continue
            fields = stat_of(pid)
            caught = 0
            for status_line in read("/" + pid + "/status").splitlines():
                if status_line.startswith(b"SigCgt:"):
                    caught = int(status_line.split()[1], 16)
        except (OSError, IndexError, ValueError):  # it exited meanwhile
            continue
        if len(fields) < 20 or fields[0] == b"Z":
            continue
        # fields[k] is stat field k + 3: ppid 4, starttime 22
        found[pid] = (fields[1].decode(), int(fields[19]), bool(caught >> (signum - 1) & 1))
    out: dict[str, Any] = {"matched": len(found)}
    if not found:
        out["error"] = "no process matches " + repr(pattern)
        return out
    mains = sorted((start, int(pid)) for pid, (ppid, start, catches) in found.items()
                   if ppid not in found and catches)
    if not mains:
        out["error"] = (f"none of the {len(found)} matching processes is a main process "
                        f"that catches signal {signum} (signalling one would end it)")
        return out
    start, main = mains[0]
    try:
        if int(stat_of(str(main))[19]) != start:
            raise OSError
    except (OSError, IndexError, ValueError):
        out["error"] = f"process {main} exited before the signal"
        return out
    if log_path:
        try:
            out["size"] = os.stat(log_path).st_size  # noqa: PTH116
        except OSError as exc:
            out["error"] = f"cannot read the log {log_path}: {exc.strerror or exc}"
            return out
    out["pid"] = main
    out["time"] = time.time()
    try:
        os.kill(main, signum)
    except PermissionError:
        out["error"] = f"not permitted to signal process {main}"
    except ProcessLookupError:
        out["error"] = f"process {main} exited before the signal"
    return out


@functools.cache
def probe_script() -> str:
    """`find_and_signal` as a script: `python3 -c SCRIPT MARKER PATTERN LOG SIGNUM`."""
    return host_script(find_and_signal, "print(json.dumps(find_and_signal(sys.argv[2], "
                       f"sys.argv[1], sys.argv[3], int(sys.argv[4]), {MAX_CMDLINE_BYTES})))")


def report_in(text: str) -> tuple[str, bool] | None:
    """The report in `text` (from the "=" line above its title on) and whether it was
    cut at MAX_REPORT_BYTES; None without a title line."""
    header = HEADER.search(text)
    if header is None:
        return None
    start = header.start()
    above = text.rfind("\n", 0, max(0, start - 1)) + 1
    if start > 0 and set(text[above:start].strip()) == {"="}:
        start = above
    data = text[start:].encode()
    if len(data) <= MAX_REPORT_BYTES:
        return text[start:], False
    return data[:MAX_REPORT_BYTES].decode(errors="ignore"), True


def case_slug(case_id: str) -> str:
    """A case id as a file name: "concurrency=50#2" -> "concurrency-50-2"."""
    return _SLUG.sub("-", case_id).strip("-") or "case"


class GuruWatcher:
    """Watches one case's samples for `config.when` and triggers the report once."""

    def __init__(self, config: GuruMeditation, ctx: CaseContext, host: Host, *,
                 python: tuple[str, ...] = PYTHON) -> None:
        self.config = config
        self.ctx = ctx
        self.host = host
        self.python = python
        self.pattern = config.pattern or PROCESS_PRESETS[config.service]
        #: `monitors.series`' component of the service's queues.
        self.component = f"{config.service} queue"
        #: (source, series) -> (last depth, rises in a row up to it)
        self._rising: dict[tuple[str, str], tuple[float, int]] = {}
        self.fired = False
        self._task: asyncio.Task[None] | None = None
        self._clock = RealClock()

    # -- the rule, fed sample by sample ---------------------------------------------------

    def observe(self, source: str, t_s: float, readings: list[Reading]) -> None:
        """One sample of `source` at `t_s` (case clock); starts the trigger when due."""
        if self.fired:
            return
        try:
            if self.config.when == "start":
                self._fire(t_s, f"when: start (the case's first sample, from {source})")
                return
            for key, depth, subject, unit in self._depths(source, readings):
                last, rises = self._rising.get(key, (math.nan, 0))
                rises = rises + 1 if depth > last else 0
                self._rising[key] = (depth, rises)
                if rises >= BACKLOG_RISING_SAMPLES:
                    self._fire(t_s, f"backlog: {subject} ({source}) rose for {rises} "
                                    f"samples in a row, to {num(depth)} {unit} at "
                                    f"t={num(t_s)} s")
                    return
        except Exception as exc:  # a bug here must not end the sampler that fed it
            self.fired = True
            log.exception("guru meditation watcher failed")
            self._record(t_s, "", error=describe_error(exc))

    def _depths(self, source: str, readings: list[Reading]
                ) -> list[tuple[tuple[str, str], float, str, str]]:
        """The depths of the service's queues in one sample, as `monitors.series`
        reads them: RabbitMQ groups (ready + unacked), rabbitmq_prometheus queues of
        the group, and the simulated cloud's queue gauges."""
        service = self.config.service
        group = 0.0
        grouped = False
        queues: dict[str, float] = {}
        out = []
        for r in readings:
            if r.metric in ("group_ready", "group_unacked"):
                if r.labels.get("group") == service:
                    group += r.value
                    grouped = True
            elif r.metric in ms.SIM_QUEUES:
                subject, component, unit = ms.SIM_QUEUES[r.metric]
                if component == self.component:
                    out.append(((source, r.metric), r.value, subject, unit))
            elif ms._RABBIT_QUEUE.fullmatch(r.metric):
                queue = r.labels.get("queue", "")
                if ms.queue_group(queue) == service:
                    queues[queue] = queues.get(queue, 0.0) + r.value
        if grouped:
            out.append(((source, "group"), group, f"{service} queues", "messages"))
        out += [((source, f"queue {q}"), v, f"queue {q}", "messages")
                for q, v in sorted(queues.items())]
        return out

    def _fire(self, t_s: float, trigger: str) -> None:
        self.fired = True
        log.info("guru meditation of %s on %s: %s", self.config.service, self.config.host,
                 trigger)
        self._task = asyncio.get_running_loop().create_task(
            self._trigger(t_s, trigger), name=f"guru meditation {self.config.service}")

    # -- the trigger ----------------------------------------------------------------------

    async def _trigger(self, t_s: float, trigger: str) -> None:
        pid: int | None = None
        try:
            found = await self._signal()
            pid = int(found["pid"]) if found.get("pid") is not None else None
            if found.get("error"):
                raise MonitorError(f"{self.config.service} on {self.config.host}: "
                                   f"{found['error']}")
            since = float(found["size"] if self.config.log else found["time"])
            text, error = await self._wait_for_report(since)
            file = await self._store(text) if text else None
            self._record(t_s, trigger, pid=pid, file=file, size=len(text.encode()),
                         error=error)
        except asyncio.CancelledError:
            self._record(t_s, trigger, pid=pid, error="stopped before the report was read "
                         "(the case's monitors closed)")
            raise
        except Exception as exc:
            self._record(t_s, trigger, pid=pid, error=describe_error(exc))

    async def _run(self, argv: tuple[str, ...], what: str) -> str:
        """`argv` on the host; its stdout, or a MonitorError saying what failed (one
        line: the row's error)."""
        try:
            result = await self.host.run(argv, timeout_s=COMMAND_TIMEOUT_S, check=False)
        except HostError as exc:
            if "command not found" in str(exc):  # LocalHost's words for ENOENT
                raise MonitorError(f"{argv[0]} not found on {self.config.host} ({what} "
                                   "needs it)") from None
            raise MonitorError(" ".join(str(exc).split(" (command: ")[0].split())) from None
        if result.exit_status == _NOT_FOUND:
            raise MonitorError(f"{argv[0]} not found on {self.config.host} ({what} needs it)")
        if result.exit_status != 0:
            tail = stderr_tail(result.stderr)
            raise MonitorError(f"{what} exited with status {result.exit_status}"
                               + (f": {tail}" if tail else ""))
        return result.stdout

    async def _signal(self) -> Mapping[str, Any]:
        """Signal the main process: `find_and_signal`'s answer (its pid, and where the
        report starts: the log's size, or the host's clock for the journal)."""
        out = await self._run((*self.python, "-c", probe_script(), PROBE_MARKER, self.pattern,
                               self.config.log or "", str(SIGNAL_NUMBER)), "the signal probe")
        try:
            found = json.loads(out)
            if not isinstance(found, Mapping):
                raise TypeError
        except (ValueError, TypeError):
            raise MonitorError(f"the signal probe printed no JSON object: "
                               f"{' '.join(out.split())[:80]!r}") from None
        return found

    def _read_argv(self, since: float) -> tuple[str, ...]:
        if self.config.log:
            return ("dd", f"if={self.config.log}", "iflag=skip_bytes,count_bytes",
                    f"skip={int(since)}", f"count={2 * MAX_REPORT_BYTES}", "status=none")
        # whole seconds: older journalctl may not take fractions; a line of the same
        # second before the signal is not a report header of ours
        return ("journalctl", "-u", self.config.unit or self.config.service,
                f"--since=@{math.floor(since)}", "-o", "cat", "--no-pager", "-q")

    async def _wait_for_report(self, since: float) -> tuple[str, str | None]:
        """The report once it stopped growing (or what there was at the deadline), and
        an error if it was not found, not finished, or cut."""
        where = self.config.log or f"the journal of {self.config.unit or self.config.service}"
        deadline = self._clock.monotonic() + REPORT_WAIT_S
        previous: tuple[str, bool] | None = None
        while True:
            found = report_in(await self._run(self._read_argv(since), "reading the log"))
            if found is not None and found == previous:
                return found[0], ("cut at " + str(MAX_REPORT_BYTES) + " bytes"
                                  if found[1] else None)
            previous = found
            if self._clock.monotonic() >= deadline:
                if found is None:
                    return "", (f"no Guru Meditation report in {where} within "
                                f"{num(REPORT_WAIT_S)} s of {SIGNAL_NAME}")
                return found[0], (f"the report still grew after {num(REPORT_WAIT_S)} s; "
                                  "kept what was there")
            await self._clock.sleep(POLL_S)

    async def _store(self, text: str) -> str:
        """Write the report under the run's directory; its path relative to it."""
        run_path: Path | None = getattr(self.ctx, "run_path", None)
        if run_path is None:
            raise MonitorError("this case has no run directory to keep the report in")
        name = f"{case_slug(self.ctx.case.case_id)}-{self.config.service}"

        def write() -> Path:
            folder = run_path / "guru"
            folder.mkdir(exist_ok=True)
            path, n = folder / f"{name}.txt", 1
            while path.exists():  # two case ids that slug alike
                n += 1
                path = folder / f"{name}-{n}.txt"
            path.write_text(text, encoding="utf-8")
            return path

        path = await asyncio.to_thread(write)
        return path.relative_to(run_path).as_posix()

    def _record(self, t_s: float, trigger: str, *, pid: int | None = None,
                file: str | None = None, size: int = 0, error: str | None = None) -> None:
        self.ctx.record(TABLE, {"t_s": t_s, "service": self.config.service,
                                "host": self.config.host, "pid": pid, "trigger": trigger,
                                "bytes": size, "file": file, "error": error})
        if error:
            log.warning("guru meditation of %s on %s: %s", self.config.service,
                        self.config.host, error)

    async def close(self) -> None:
        """Wait for a trigger in flight (at most CLOSE_WAIT_S), else cancel it (its row
        says so) and give it COMMAND_TIMEOUT_S to end.

        asyncio.wait, not wait_for: on Python 3.11 wait_for can drop a cancel that
        arrives as the awaited task finishes (the session's loops met it)."""
        task = self._task
        if task is None:
            return
        try:
            done, _ = await asyncio.wait({task}, timeout=CLOSE_WAIT_S)
            if not done:
                task.cancel()
                await asyncio.wait({task}, timeout=COMMAND_TIMEOUT_S)
        except asyncio.CancelledError:
            task.cancel()
            raise
