"""Processes on this machine, read from /proc (Linux): the one parser of
/proc/PID/stat, listing, finding by command line, zombies, stopping and
waiting for exit. Used by the lab and minicloud.

/proc lists the processes of this PID namespace whatever their network
namespace. A zombie (exited, not yet reaped: PID 1 of a container may never
reap an orphan) runs nothing and counts as gone everywhere here.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")

#: How often the waits below look again.
POLL_S = 0.1


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/PID/stat that osbench reads."""

    pid: int
    #: The command name (field 2), without its parentheses.
    comm: str
    #: One letter: R running, S sleeping, D disk wait, Z zombie, T stopped, ...
    state: str
    ppid: int
    pgid: int
    #: Field 22: when the process started, in clock ticks since boot. With the pid,
    #: it names one process for good: a reused pid starts at another tick.
    start_ticks: int

    @property
    def zombie(self) -> bool:
        return self.state == "Z"


def parse_stat(text: str) -> Stat:
    """The text of /proc/PID/stat; ValueError if it is not one.

    The command name (field 2) stands in parentheses and may itself hold spaces
    and parentheses (`a) S 1 (`): it ends at the LAST ')'.
    """
    head, paren, rest = text.rpartition(")")
    pid, open_paren, comm = head.partition(" (")
    fields = rest.split()
    if not (paren and open_paren) or len(fields) < 20:
        raise ValueError(f"not a /proc/PID/stat line: {text[:80]!r}")
    return Stat(pid=int(pid), comm=comm, state=fields[0], ppid=int(fields[1]),
                pgid=int(fields[2]), start_ticks=int(fields[19]))


def stat(pid: int) -> Stat | None:
    """The process `pid`, None if there is none (or it vanished while read)."""
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text())
    except (OSError, ValueError):
        return None


def pids() -> list[int]:
    """Every process of this PID namespace, zombies included."""
    return sorted(int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit())


def stats() -> list[Stat]:
    """Every process that could be read (one that exits meanwhile is left out)."""
    return [s for s in map(stat, pids()) if s is not None]


def start_ticks(pid: int) -> int | None:
    """When `pid` started (see Stat.start_ticks), None if no such process."""
    found = stat(pid)
    return found.start_ticks if found else None


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    found = stat(pid)
    return found is not None and not found.zombie


def descendants(pid: int) -> list[int]:
    """Every descendant of `pid` (children before their children)."""
    children: dict[int, list[int]] = {}
    for s in stats():
        children.setdefault(s.ppid, []).append(s.pid)
    out: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(children.get(child, []))
    return out


def ancestors(pid: int) -> set[int]:
    """The parent of `pid`, its parent and so on (PID 1 and 0 left out)."""
    out = set()
    while pid > 1 and (found := stat(pid)) is not None:
        pid = found.ppid
        out.add(pid)
    return out


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`."""
    return [s.pid for s in stats() if s.pgid == pgid and not s.zombie]


# -- finding by command line ------------------------------------------------------

def cmdline(pid: int) -> bytes | None:
    """The NUL-separated command line of `pid` (empty for a zombie), None if gone."""
    try:
        return (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None


def _naming_pattern(path: Path) -> re.Pattern[bytes]:
    # Arguments are NUL-separated; inside one (`sh -c '...'`, a title an sshd set
    # for itself) words end at spaces and quotes; `--pid-file=PATH` names PATH.
    edge = rb"\0\s'\"="
    return re.compile(rb"(?:^|(?<=[" + edge + rb"]))" + re.escape(bytes(path))
                      + rb"(?=$|[/" + edge + rb"])")


def names_path(pid: int, path: Path) -> bool:
    """True if the command line of `pid` names `path` or a file under it, as a word of
    its own or after `=` (`/a/b` is not named by `/a/bc`); a zombie's command line is
    empty and names nothing. The guard before signalling a pid known from a pidfile or
    a spawn long ago: a recycled pid would not name our files."""
    line = cmdline(pid)
    return line is not None and _naming_pattern(path).search(line) is not None


def naming(path: Path) -> dict[int, str]:
    """Live processes whose command line names `path`, with their command names, in
    every network namespace; this process and its ancestors are spared (they may
    name it: `osbench minicloud --state-dir DIR down`)."""
    spared = {os.getpid(), *ancestors(os.getpid())}
    pattern = _naming_pattern(path)
    found = {}
    for pid in pids():
        line = cmdline(pid)
        if pid not in spared and line and pattern.search(line) and (s := stat(pid)):
            found[pid] = s.comm
    return found


def pid_of(pidfile: Path) -> int | None:
    """The pid in `pidfile` while that process is still the one started with it: a
    recycled pid would not name the pidfile's directory on its command line."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if names_path(pid, pidfile.parent) else None


# -- stopping ------------------------------------------------------------------------

def _send(kill: Callable[[int, int], None], target: int, sig: signal.Signals) -> bool:
    try:
        kill(target, sig)
    except (ProcessLookupError, PermissionError):  # gone already, or not ours
        return False
    return True


def signal_each(pids: Iterable[int], sig: signal.Signals) -> list[int]:
    """Send `sig` to each of `pids`; the ones that got it (gone ones are passed over)."""
    return [pid for pid in pids if _send(os.kill, pid, sig)]


def wait_exit(alive: Callable[[], Collection[int]], timeout_s: float) -> list[int]:
    """Wait until `alive()` is empty or `timeout_s` has passed; what it then returns."""
    deadline = time.monotonic() + timeout_s
    left = alive()
    while left and time.monotonic() < deadline:
        time.sleep(POLL_S)
        left = alive()
    return sorted(left)


def terminate(alive: Callable[[], Collection[int]], *, grace_s: float,
              kill_wait_s: float = 5.0, groups: Iterable[int] = ()) -> list[int]:
    """SIGTERM whatever `alive()` returns (and the process `groups`), wait up to
    `grace_s` for it to exit, then SIGKILL what is left and wait `kill_wait_s` more.
    `alive()` is asked again each time: a stopping process may start others, and it
    decides what may be signalled (a pid whose command line no longer names our files
    is not ours any more). Returns what outlived SIGKILL (a process in D state, say)."""
    groups = tuple(groups)
    left: list[int] = []
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, kill_wait_s)):
        for pgid in groups:
            _send(os.killpg, pgid, sig)
        signal_each(alive(), sig)
        left = wait_exit(alive, wait_s)
        if not left:
            break
    return left
