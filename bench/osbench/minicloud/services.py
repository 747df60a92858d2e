"""minicloud's processes: started directly (not through init scripts), each PID recorded.

Every service runs in a session of its own, so its process group is its PID;
`pids.json` in the state directory records each one with its kernel start
time, so a PID that was reused by an unrelated process is never signalled.
Stopping a service signals its process group and every descendant found by
walking /proc (sudo's `use_pty` puts the rootwrap daemon in a session of its
own, under sudo under the agent), SIGTERM first, SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from osbench.minicloud.layout import HOST, PORTS, SYSTEM_PYTHON

PIDS_FILE = "pids.json"
#: How long a service gets to exit on SIGTERM before SIGKILL; oslo services
#: take ~1-3 s on this machine, RabbitMQ up to ~5 s.
STOP_GRACE_S = 15.0


#: Services started by this process, kept so that Popen never warns about a child
#: it did not wait for (they are meant to outlive `up`); `stop` reaps its own.
_STARTED_HERE: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Service:
    """One process minicloud starts."""

    name: str
    argv: tuple[str, ...]
    #: Run as this user (None: root; uwsgi and mariadbd drop privileges themselves).
    user: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    #: TCP port on 127.0.0.1 it is ready once it accepts on (None: no port).
    port: int | None = None


def _py(name: str, *config: str) -> tuple[str, ...]:
    return (SYSTEM_PYTHON, f"/usr/bin/{name}", *(f"--config-file={c}" for c in config))


def _uwsgi(svc: str) -> tuple[str, ...]:
    return ("/usr/bin/uwsgi", "--ini", f"/etc/{svc}/minicloud-uwsgi.ini")


NEUTRON = "/etc/neutron/neutron.conf"
ML2 = "/etc/neutron/plugins/ml2/ml2_conf.ini"

#: In start order; `down` stops them in reverse.
SERVICES: tuple[Service, ...] = (
    Service("mariadb", ("/usr/sbin/mariadbd", "--user=mysql",
                        "--pid-file=/run/mysqld/mysqld.pid"), port=PORTS["mysql"]),
    Service("epmd", ("/usr/bin/epmd", "-address", HOST), user="rabbitmq", port=PORTS["epmd"],
            env={"HOME": "/var/lib/rabbitmq"}),
    Service("rabbitmq", ("/usr/lib/rabbitmq/bin/rabbitmq-server",), user="rabbitmq",
            port=PORTS["rabbitmq"], env={"HOME": "/var/lib/rabbitmq"}),
    Service("keystone", _uwsgi("keystone"), port=PORTS["keystone"]),
    Service("placement", _uwsgi("placement"), port=PORTS["placement"]),
    Service("glance", _uwsgi("glance"), port=PORTS["glance"]),
    Service("neutron-api", _uwsgi("neutron"), port=PORTS["neutron-api"]),
    Service("neutron-rpc-server", _py("neutron-rpc-server", NEUTRON, ML2), user="neutron"),
    Service("neutron-linuxbridge-agent",
            _py("neutron-linuxbridge-agent", NEUTRON, ML2,
                "/etc/neutron/plugins/ml2/linuxbridge_agent.ini"), user="neutron"),
    Service("neutron-dhcp-agent", _py("neutron-dhcp-agent", NEUTRON,
                                      "/etc/neutron/dhcp_agent.ini"), user="neutron"),
    Service("nova-api", _uwsgi("nova"), port=PORTS["nova-api"]),
    Service("nova-conductor", _py("nova-conductor", "/etc/nova/nova.conf"), user="nova"),
    Service("nova-scheduler", _py("nova-scheduler", "/etc/nova/nova.conf"), user="nova"),
    Service("nova-compute", _py("nova-compute", "/etc/nova/nova.conf",
                                "/etc/nova/nova-compute.conf"), user="nova"),
)
BY_NAME = {s.name: s for s in SERVICES}


@dataclass(frozen=True)
class Recorded:
    """A process minicloud started: its PID and the kernel's start time for it."""

    name: str
    pid: int
    start_ticks: int
    argv: tuple[str, ...]


def start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), None if no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def is_running(rec: Recorded) -> bool:
    """True if that very process still exists (not a zombie, not a reused PID)."""
    if start_ticks(rec.pid) != rec.start_ticks:
        return False
    try:
        state = Path(f"/proc/{rec.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class PidBook:
    """`pids.json`: what minicloud started and has not yet seen stop."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / PIDS_FILE

    def load(self) -> dict[str, Recorded]:
        try:
            rows = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ValueError(f"{self.path} is corrupt ({exc}): remove the processes it "
                             "named by hand, then the file") from None
        return {r["name"]: Recorded(name=r["name"], pid=int(r["pid"]),
                                    start_ticks=int(r["start_ticks"]), argv=tuple(r["argv"]))
                for r in rows}

    def save(self, records: Iterable[Recorded]) -> None:
        rows = [{"name": r.name, "pid": r.pid, "start_ticks": r.start_ticks,
                 "argv": list(r.argv)} for r in records]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows, indent=1))
        tmp.replace(self.path)

    def add(self, rec: Recorded) -> None:
        records = self.load()
        records[rec.name] = rec
        self.save(records.values())

    def remove(self, name: str) -> None:
        records = self.load()
        records.pop(name, None)
        self.save(records.values())


def spawn(name: str, argv: tuple[str, ...], *, log_dir: Path, book: PidBook,
          user: str | None = None, env: Mapping[str, str] | None = None) -> Recorded:
    """Start `argv` in a new session, output to `log_dir/NAME.out`; record it in `book`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", **(env or {})}
    with (log_dir / f"{name}.out").open("ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, env=full_env,
                                user=user, group=user, extra_groups=[] if user else None,
                                cwd="/")
    _STARTED_HERE[proc.pid] = proc
    ticks = start_ticks(proc.pid)
    rec = Recorded(name=name, pid=proc.pid, start_ticks=ticks or 0, argv=argv)
    book.add(rec)
    return rec


def port_open(port: int, host: str = HOST, timeout_s: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout_s):
        return True
    return False


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (children first), found by walking /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(children.get(child, []))
    return out


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            out.append(int(entry.name))
    return out


class StillRunning(Exception):
    """Processes of a stopped service outlived SIGKILL (their pids are the message)."""


def stop(rec: Recorded, *, grace_s: float = STOP_GRACE_S) -> bool:
    """Stop a recorded process, its group and its descendants, and wait until every one
    of them has exited (SIGKILL after `grace_s`). False if it was already gone;
    StillRunning if any outlived SIGKILL."""
    if not is_running(rec):
        return False
    tree = set(descendants(rec.pid))
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(rec.pid, signal.SIGTERM)
    _signal([rec.pid, *tree], signal.SIGTERM)

    def alive() -> list[int]:
        # Its group (uwsgi workers, Erlang's helpers) and what it spawned elsewhere
        # (sudo's use_pty sessions), re-read each time: shutdown may spawn more.
        members = set(group_members(rec.pid)) | {rec.pid} | tree
        return [p for p in members if Path(f"/proc/{p}").exists() and not _zombie(p)]

    deadline = time.monotonic() + grace_s
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(rec.pid, signal.SIGKILL)
        _signal(alive(), signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while alive() and time.monotonic() < deadline:
            time.sleep(0.1)
    own = _STARTED_HERE.pop(rec.pid, None)
    if own is not None:
        own.wait(timeout=grace_s)
    survivors = alive()
    if survivors:
        raise StillRunning(f"pids {sorted(survivors)} outlived SIGKILL")
    return True


def names_path(pid: int, path: Path) -> bool:
    """True if the command line of `pid` names `path` or a file under it, as a word of
    its own or after `=` (`/a/b` is not named by `/a/bc`); a zombie's command line is
    empty and names nothing. The guard before signalling a pid known from a pidfile or
    a spawn long ago: a recycled pid would not name minicloud's files."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return _naming_pattern(path).search(cmdline) is not None


def _naming_pattern(path: Path) -> re.Pattern[bytes]:
    # Arguments are NUL-separated; inside one (`sh -c '...'`) words end at spaces, quotes.
    edge = rb"\0\s'\"="
    return re.compile(rb"(?:^|(?<=[" + edge + rb"]))" + re.escape(bytes(path))
                      + rb"(?=$|[/" + edge + rb"])")


def _ancestors(pid: int) -> set[int]:
    out = set()
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        out.add(pid)
    return out


def naming(path: Path) -> dict[int, str]:
    """Live processes whose command line names `path`, with their command names, in
    every network namespace (they share this PID namespace's /proc); this process and
    its ancestors are spared (they may name it: `osbench minicloud --state-dir DIR down`)."""
    spared = {os.getpid(), *_ancestors(os.getpid())}
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in spared and names_path(
                int(entry.name), path):
            with contextlib.suppress(OSError):
                found[int(entry.name)] = (entry / "comm").read_text().strip()
    return found


def stop_naming(path: Path, *, grace_s: float = STOP_GRACE_S
                ) -> tuple[dict[int, str], dict[int, str]]:
    """Stop every process `naming` finds: SIGTERM, SIGKILL after `grace_s`, each signal
    only while the pid still names `path`. Returns (stopped, outlived SIGKILL), each
    pid -> command name."""
    found = naming(path)

    def alive() -> list[int]:
        return [pid for pid in found if names_path(pid, path)]

    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        _signal(alive(), sig)
        deadline = time.monotonic() + wait_s
        while alive() and time.monotonic() < deadline:
            time.sleep(0.1)
    survivors = alive()
    return ({pid: name for pid, name in found.items() if pid not in survivors},
            {pid: found[pid] for pid in survivors})


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
