"""Guru Meditation Reports (monitors/guru.py): minicloud's real neutron-dhcp-agent
signalled at a case's start; a service that is not running recorded as an error
while the case completes; and the backlog rule, fed by a real Prometheus endpoint
on loopback, triggering a local stand-in service exactly once per case."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from osbench import results
from osbench.monitors import attribution
from osbench.monitors import series as ms
from osbench.monitors.guru import MAX_REPORT_BYTES, case_slug, report_in
from osbench.runner import Runner, RunOptions
from osbench.scenario import parse_scenario
from osbench.scenario.source import load_text

HEADER = ("=" * 72 + "\n====" + "Guru Meditation".center(64) + "====\n" + "=" * 72)


async def run(text: str, tmp_path: Path) -> results.Run:
    sc = parse_scenario(load_text(text, "test.yaml"))
    result = await Runner(sc, RunOptions(results_dir=tmp_path / "results")).run()
    assert result.status == "completed", result.cases
    return results.load(result.path)


def missing(value: object) -> bool:
    """A journaled null, read back (None, or NaN in a column that has numbers)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


# -- the report's text --------------------------------------------------------------------


def test_report_starts_at_its_header_and_is_bounded() -> None:
    noise = "2024-01-01 INFO neutron.agent.dhcp.agent Synchronizing state\n"
    body = "\n\n" + "=" * 72 + "\n====" + "Package".center(64) + "====\n"
    assert report_in(noise * 3) is None
    assert report_in(noise + HEADER + body) == (HEADER + body, False)
    # journalctl -o cat, or a log whose first byte is the title line
    assert report_in(HEADER[73:] + body) == (HEADER[73:] + body, False)
    huge = HEADER + "\n" + "x" * (2 * MAX_REPORT_BYTES)
    text, cut = report_in(huge) or ("", False)
    assert cut and len(text.encode()) == MAX_REPORT_BYTES and text.startswith(HEADER)
    assert case_slug("concurrency=50#2") == "concurrency-50-2"
    assert case_slug("#1") == "1"


# -- no such process ----------------------------------------------------------------------


async def test_no_matching_process_is_an_error_row_and_the_case_completes(
        tmp_path: Path) -> None:
    absent = f"osbench-absent-{uuid.uuid4().hex}"
    r = await run(f"""\
name: guru none
kind: tick
params: {{ticks: 2, interval_s: 0.5}}
monitors:
  interval: 1s
  api: false
  processes: [{{host: local, presets: [neutron-dhcp-agent]}}]
  guru_meditation: {{service: neutron-dhcp-agent, when: start, pattern: {absent},
                    log: {tmp_path / "absent.log"}}}
""", tmp_path)
    (row,) = r.table("guru_reports").to_dict("records")
    assert row["error"] == f"neutron-dhcp-agent on local: no process matches '{absent}'"
    assert missing(row["pid"]) and missing(row["file"]) and row["bytes"] == 0
    assert row["trigger"].startswith("when: start")
    assert r.table("cases")["status"].tolist() == ["completed"]
    assert len(r.table("ticks")) == 2
    assert not (r.path / "guru").exists()


# -- the backlog rule, a real endpoint, a stand-in service ---------------------------------

#: A stand-in for an oslo service: prints a report on SIGUSR2 to its stderr (the
#: log), like oslo.reports; starts a child that matches too and catches SIGUSR2
#: (a worker: its parent matches, so it is not the main process).
FAKE_SERVICE = r"""
import os, signal, subprocess, sys, time
def report(signum, frame):
    bar = "=" * 72
    print(bar + "\n====" + "Guru Meditation".center(64) + "====\n" + bar, file=sys.stderr)
    print("Process %d (under %d)" % (os.getpid(), os.getppid()), file=sys.stderr, flush=True)
signal.signal(signal.SIGUSR2, report)
subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n"
                  "signal.signal(signal.SIGUSR2, lambda *a: print('worker signalled', "
                  "file=sys.stderr, flush=True))\ntime.sleep(120)", sys.argv[1]])
print("ready", file=sys.stderr, flush=True)
time.sleep(120)
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes],
                                              subprocess.Popen[bytes]]]:
    """(pattern, log, the service, a decoy): the decoy matches the pattern, is older
    and has no parent that matches, but does not catch SIGUSR2 (like a privsep
    daemon): signalling it would end it."""
    token = f"osbench-stand-in-{uuid.uuid4().hex[:12]}"
    log = tmp_path / "service.out"
    procs = []
    with log.open("ab") as out:
        decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", token],
                                 stdout=out, stderr=out, start_new_session=True)
        procs.append(decoy)
        service = subprocess.Popen([sys.executable, "-c", FAKE_SERVICE, token],
                                   stdout=out, stderr=out, start_new_session=True)
        procs.append(service)
    try:
        deadline = time.monotonic() + 15
        while "ready" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "ready" in log.read_text(), log.read_text()
        yield token, log, service, decoy
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


@pytest.fixture
async def rising_backlog() -> AsyncIterator[str]:
    """A real Prometheus endpoint on loopback whose DHCP-agent backlog rises at every
    scrape: the backlog rule fires at the 4th sample and keeps firing."""
    scrapes = 0

    async def metrics(request: web.Request) -> web.Response:
        nonlocal scrapes
        scrapes += 1
        return web.Response(text=(
            "# TYPE osbench_sim_dhcp_agent_backlog_ports gauge\n"
            f"osbench_sim_dhcp_agent_backlog_ports {scrapes}\n"), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        await runner.cleanup()


async def test_backlog_triggers_one_report_per_case_of_the_main_process(
        tmp_path: Path, rising_backlog: str,
        stand_in: tuple[str, Path, subprocess.Popen[bytes], subprocess.Popen[bytes]]) -> None:
    pattern, log, service, decoy = stand_in
    r = await run(f"""\
name: guru backlog
kind: tick
params: {{ticks: 6, interval_s: 1}}
repeat: 2
monitors:
  interval: 1s
  api: false
  prometheus:
    - {{name: fakesim, url: "{rising_backlog}",
       metrics: [osbench_sim_dhcp_agent_backlog_ports]}}
  guru_meditation: {{service: neutron-dhcp-agent, when: backlog, host: local,
                    pattern: {pattern}, log: {log}}}
""", tmp_path)
    reports = r.table("guru_reports")
    # once per case, though the backlog kept rising after it
    assert reports["case"].tolist() == ["default#1", "default#2"]
    monitor = r.table("monitor")
    for row in reports.to_dict("records"):
        assert missing(row["error"]), row["error"]
        assert row["pid"] == service.pid
        assert row["file"] == f"guru/{case_slug(row['case'])}-neutron-dhcp-agent.txt"
        text = (r.path / row["file"]).read_text()
        assert text.startswith(HEADER)
        assert f"Process {service.pid} (under" in text
        assert row["bytes"] == len(text.encode())
        assert row["trigger"].startswith(
            "backlog: neutron-dhcp-agent backlog (prometheus:fakesim) rose for 3 samples in "
            "a row, to ")
        assert row["trigger"].endswith(f" ports at t={attribution.num(row['t_s'])} s")
        # the same moment the judge stage names: the 3rd rise of the first stretch
        (s,) = ms.queue_series(monitor[monitor["case"] == row["case"]])
        (finding,) = attribution.backlog(monitor[monitor["case"] == row["case"]])
        a = int(np.flatnonzero(s.t == finding.start_s)[0])
        assert row["t_s"] == pytest.approx(s.t[a + attribution.BACKLOG_RISING_SAMPLES])
        samples_after = int((s.t > row["t_s"]).sum())
        assert samples_after >= 1  # the rule went on firing: no second report
    text = log.read_text()
    assert text.count("Guru Meditation") == 2  # one signal per case, to the main process
    assert "worker signalled" not in text
    assert decoy.poll() is None  # matched, older, but never signalled


# -- a service that never prints a report: the bounds --------------------------------------

#: Catches SIGUSR2 (so it is a main process) and prints nothing.
SILENT_SERVICE = r"""
import signal, sys, time
signal.signal(signal.SIGUSR2, lambda *a: None)
print("ready", file=sys.stderr, flush=True)
time.sleep(120)
"""


@pytest.fixture
def silent(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    token = f"osbench-silent-{uuid.uuid4().hex[:12]}"
    log = tmp_path / "silent.out"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-c", SILENT_SERVICE, token],
                                stdout=out, stderr=out, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while "ready" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield token, log, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


SILENT_SCENARIO = """\
name: guru silent
kind: tick
params: {{ticks: 2, interval_s: 0.5}}
monitors:
  interval: 1s
  api: false
  processes: [{{host: local, presets: [neutron-dhcp-agent]}}]
  guru_meditation: {{service: neutron-dhcp-agent, when: start, pattern: {token}, log: {log}}}
"""


async def test_no_report_within_the_wait_is_an_error_row(
        tmp_path: Path, silent: tuple[str, Path, subprocess.Popen[bytes]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from osbench.monitors import guru

    token, log, proc = silent
    monkeypatch.setattr(guru, "REPORT_WAIT_S", 1.0)
    r = await run(SILENT_SCENARIO.format(token=token, log=log), tmp_path)
    (row,) = r.table("guru_reports").to_dict("records")
    assert row["pid"] == proc.pid
    assert row["error"] == f"no Guru Meditation report in {log} within 1 s of SIGUSR2"
    assert missing(row["file"]) and row["bytes"] == 0
    assert proc.poll() is None


async def test_closing_cancels_a_trigger_past_its_bound_and_says_so(
        tmp_path: Path, silent: tuple[str, Path, subprocess.Popen[bytes]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from osbench.monitors import guru

    token, log, proc = silent
    monkeypatch.setattr(guru, "CLOSE_WAIT_S", 1.0)  # the report wait stays 10 s
    started = time.monotonic()
    r = await run(SILENT_SCENARIO.format(token=token, log=log), tmp_path)
    assert time.monotonic() - started < 8
    (row,) = r.table("guru_reports").to_dict("records")
    assert row["pid"] == proc.pid
    assert row["error"] == ("stopped before the report was read (the case's monitors "
                            "closed)")
    assert r.table("cases")["status"].tolist() == ["completed"]


# -- minicloud's real neutron-dhcp-agent ----------------------------------------------------


def minicloud_dhcp_agent() -> tuple[int, Path] | None:
    """(pid, log) of minicloud's DHCP agent when it runs (and we may signal it)."""
    from osbench.minicloud import layout, services

    if os.geteuid() != 0:
        return None
    try:
        state = layout.default_state_dir()
        rec = services.PidBook(state).load().get("neutron-dhcp-agent")
    except Exception:
        return None
    if rec is None or not services.is_running(rec):
        return None
    return rec.pid, state / "logs" / "neutron-dhcp-agent.out"


@pytest.mark.skipif(minicloud_dhcp_agent() is None,
                    reason="needs minicloud up (`osbench minicloud up`, as root; CI's "
                           "`nox -s minicloud`)")
async def test_minicloud_dhcp_agent_report_at_start(tmp_path: Path) -> None:
    from osbench.minicloud import layout

    found = minicloud_dhcp_agent()
    assert found is not None
    pid, log = found
    size = log.stat().st_size
    started = time.monotonic()
    r = await run(f"""\
name: guru minicloud
kind: tick
params: {{ticks: 2, interval_s: 0.5}}
monitors:
  interval: 1s
  api: false
  processes: [{{host: local, presets: [neutron-dhcp-agent]}}]
  guru_meditation: {{service: neutron-dhcp-agent, when: start, host: local, log: {log}}}
""", tmp_path)
    elapsed = time.monotonic() - started
    (row,) = r.table("guru_reports").to_dict("records")
    assert missing(row["error"]), row["error"]
    assert row["pid"] == pid
    assert row["trigger"].startswith("when: start")
    text = (r.path / row["file"]).read_text()
    assert text.startswith(HEADER)
    assert f"Process {pid} (under " in text  # oslo.reports' Processes section
    for section in ("Package", "Threads", "Green Threads", "Processes", "Configuration"):
        assert f"===={section.center(64)}====" in text
    assert "neutron/agent/dhcp/agent.py" in text  # the agent's own green threads
    assert 10_000 < row["bytes"] == len(text.encode()) <= MAX_REPORT_BYTES
    # only what the log gained after the signal
    assert text in log.read_bytes()[size:].decode(errors="replace")
    # oslo.config masks secret options; minicloud's passwords are not in the report
    secrets = json.loads((layout.default_state_dir() / "secrets.json").read_text())
    leaked = [k for k, v in secrets.items() if isinstance(v, str) and len(v) >= 8 and v in text]
    assert not leaked
    assert elapsed < 30
    print(f"\nminicloud guru meditation: pid {pid}, {row['bytes']} bytes, "
          f"{text.splitlines()[1].strip()!r}, run {elapsed:.1f} s")

