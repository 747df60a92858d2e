"""osbench.procs and osbench.netns: /proc/PID/stat parsing, finding and stopping
processes, namespace listing (no root needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from osbench import netns, procs

#: /proc/PID/stat after the command name: state ppid pgrp session tty tpgid flags
#: minflt cminflt majflt cmajflt utime stime cutime cstime priority nice threads
#: itrealvalue starttime (field 22) ...
TAIL = "S 41 42 42 0 -1 4194560 96 0 0 0 0 0 0 0 20 0 1 0 123456 5000 100"


@pytest.mark.parametrize("comm", ["sleep", "a b", "x) S 1 (y", ")", "((", "a)(b) Z 9 9"])
def test_the_command_name_ends_at_the_last_parenthesis(comm: str) -> None:
    s = procs.parse_stat(f"4242 ({comm}) {TAIL}\n")
    assert (s.pid, s.comm, s.state, s.ppid, s.pgid, s.start_ticks) == (
        4242, comm, "S", 41, 42, 123456)
    assert not s.zombie
    assert procs.parse_stat(f"7 ({comm}) Z{TAIL[1:]}").zombie


@pytest.mark.parametrize("text", ["", "4242 sleep S 1", "4242 (sleep) S 1 2", "x (a) " + TAIL])
def test_what_is_not_a_stat_line_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        procs.parse_stat(text)


def test_this_process_as_proc_sees_it() -> None:
    me = procs.stat(os.getpid())
    assert me is not None and me.ppid == os.getppid() and me.pgid == os.getpgid(0)
    assert procs.running(os.getpid()) and os.getpid() in procs.pids()
    assert os.getppid() in procs.ancestors(os.getpid())
    assert procs.stat(2**22 + 1) is None and not procs.running(2**22 + 1)  # above pid_max


def test_a_reaped_child_is_gone_and_an_unreaped_one_a_zombie() -> None:
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while (s := procs.stat(child.pid)) is not None and not s.zombie:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert s is not None and s.zombie and not procs.running(child.pid)
    assert procs.cmdline(child.pid) == b""  # a zombie names nothing
    child.wait()
    assert procs.stat(child.pid) is None


def test_pidfile_naming_and_terminate(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    # `; exit`: sh must not exec sleep, or its command line would name nothing.
    ours = subprocess.Popen(["sh", "-c", "sleep 30; exit", f"{state}/x.pid"])
    lookalike = subprocess.Popen(["sh", "-c", "sleep 30; exit", f"{state}-old/x.pid"])
    try:
        deadline = time.monotonic() + 10
        while not procs.names_path(ours.pid, state):
            assert time.monotonic() < deadline, "the child never showed its command line"
            time.sleep(0.01)
        (state / "x.pid").write_text(f"{ours.pid}\n")
        (state / "y.pid").write_text(f"{lookalike.pid}\n")
        (state / "z.pid").write_text("not a pid\n")
        assert procs.pid_of(state / "x.pid") == ours.pid
        assert procs.pid_of(state / "y.pid") is None  # a pid our directory does not name
        assert procs.pid_of(state / "z.pid") is None
        assert procs.pid_of(state / "missing.pid") is None
        assert procs.naming(state) == {ours.pid: "sh"}
        assert ours.pid in procs.descendants(os.getpid())
        left = procs.terminate(lambda: [p for p in (ours.pid,) if procs.running(p)],
                               grace_s=5)
        assert left == []
        assert ours.wait(timeout=5) == -signal.SIGTERM
        assert lookalike.poll() is None
    finally:
        for proc in (ours, lookalike):
            proc.kill()
            proc.wait()


def test_what_ignores_sigterm_gets_sigkill() -> None:
    with subprocess.Popen([sys.executable, "-c", "import signal, time; "
                           "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                           "print('ready', flush=True); time.sleep(30)"],
                          stdout=subprocess.PIPE, text=True) as stubborn:
        try:
            assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"
            left = procs.terminate(
                lambda: [stubborn.pid] if procs.running(stubborn.pid) else [], grace_s=0.3)
            assert left == [] and stubborn.wait(timeout=5) == -signal.SIGKILL
        finally:
            stubborn.kill()


def test_namespaces_are_listed_from_run_netns(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns, "RUN_DIR", tmp_path / "absent")
    assert netns.names() == [] and netns.pids("x") == []
    monkeypatch.setattr(netns, "RUN_DIR", tmp_path)
    for name in ("osb-b", "osb-a", "other"):
        (tmp_path / name).touch()
    assert netns.names("osb-") == ["osb-a", "osb-b"]
    assert "lo" in netns.links() and netns.links("lo") == ["lo"]
    assert netns.exec_argv("osb-a", ["ip", "a"]) == ("ip", "netns", "exec", "osb-a", "ip", "a")
    assert netns.exec_argv(None, ["ip", "a"]) == ("ip", "a")
