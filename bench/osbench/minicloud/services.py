"""minicloud's processes: started directly (not through init scripts), each PID recorded.

Every service runs in a session of its own, so its process group is its PID;
`pids.json` in the state directory records each one with its kernel start
time, so a PID that was reused by an unrelated process is never signalled.
Stopping a service signals its process group and every descendant found by
walking /proc (sudo's `use_pty` puts the rootwrap daemon in a session of its
own, under sudo under the agent), SIGTERM first, SIGKILL after a grace period.
Reading /proc and signalling are `osbench.procs`'.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from osbench import procs
from osbench.errors import MachineError, StillRunning
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


def is_running(rec: Recorded) -> bool:
    """True if that very process still exists (not a zombie, not a reused PID)."""
    found = procs.stat(rec.pid)
    return found is not None and found.start_ticks == rec.start_ticks and not found.zombie


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
            raise MachineError(f"{self.path} is corrupt ({exc}): remove the processes it "
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
    ticks = procs.start_ticks(proc.pid)
    rec = Recorded(name=name, pid=proc.pid, start_ticks=ticks or 0, argv=argv)
    book.add(rec)
    return rec


def port_open(port: int, host: str = HOST, timeout_s: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout_s):
        return True
    return False


def stop(rec: Recorded, *, grace_s: float = STOP_GRACE_S) -> bool:
    """Stop a recorded process, its group and its descendants, and wait until every one
    of them has exited (SIGKILL after `grace_s`). False if it was already gone;
    StillRunning if any outlived SIGKILL."""
    if not is_running(rec):
        return False
    tree = set(procs.descendants(rec.pid))

    def alive() -> list[int]:
        # Its group (uwsgi workers, Erlang's helpers) and what it spawned elsewhere
        # (sudo's use_pty sessions), re-read each time: shutdown may spawn more.
        members = set(procs.group_members(rec.pid)) | {rec.pid} | tree
        return [p for p in members if procs.running(p)]

    procs.terminate(alive, grace_s=grace_s, groups=[rec.pid])
    own = _STARTED_HERE.pop(rec.pid, None)
    if own is not None:
        own.wait(timeout=grace_s)
    survivors = alive()
    if survivors:
        raise StillRunning(survivors)
    return True


def stop_naming(path: Path, *, grace_s: float = STOP_GRACE_S
                ) -> tuple[dict[int, str], dict[int, str]]:
    """Stop every process whose command line names `path` (`procs.naming`, in every
    network namespace): SIGTERM, SIGKILL after `grace_s`, each signal only while the
    pid still names `path`. Returns (stopped, outlived SIGKILL), each pid -> command
    name."""
    found = procs.naming(path)
    survivors = procs.terminate(lambda: [pid for pid in found if procs.names_path(pid, path)],
                                grace_s=grace_s)
    return ({pid: name for pid, name in found.items() if pid not in survivors},
            {pid: found[pid] for pid in survivors})
