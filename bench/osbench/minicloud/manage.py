"""Bring minicloud up, inspect it, take it down (root; disposable machines and CI only).

`up` runs phases, each idempotent, and reports how long each took: preflight
(root, refuse foreign configuration), install (pinned Debian packages),
configure, database, messaging, identity, sync (database schemas), services,
resources (network, image, flavor), guests (the guest player), versions.
`down` stops every process minicloud recorded (by PID), the DHCP agent's
dnsmasq (by its pidfile), any process whose command line still names the state
directory (in any namespace), and removes the guests, bridges and namespaces
minicloud's network made (the Internet namespace too), the Linux bridge
agent's iptables chains, and puts bridge-nf-call-iptables back as `up` found
it (`firewall`). It keeps packages, configuration and databases, so
the next `up` is quick; it never touches a configuration it did not write.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from osbench import netns, procs
from osbench.errors import MachineError, StillRunning, UserError
from osbench.hosts.base import stderr_tail
from osbench.minicloud import config, firewall, layout, services
from osbench.minicloud.guests import GUEST_NETNS_PREFIX, GUESTS_LOG

POLICY_RC = Path("/usr/sbin/policy-rc.d")
SECRETS_FILE = "secrets.json"
VERSIONS_FILE = "versions.json"
RESOURCES_FILE = "resources.json"
SYNCED_FILE = "synced.json"
ALIVE_FILE = "alive"
PLAYER = "guest-player"
#: How long a started service gets to accept connections (keystone's first
#: start on 2 cores: ~15 s; RabbitMQ ~10 s).
READY_TIMEOUT_S = 180.0


class MinicloudError(MachineError):
    """This machine failed minicloud: a tool (apt-get, rabbitmqctl, ...) failed, a
    service exited or never listened. The message names it and says where to look.
    A mistake of the user's (not root, a machine minicloud must not touch) is a
    UserError instead."""


@dataclass
class Phases:
    """Wall time of each phase of `up`, in order."""

    seconds: dict[str, float] = field(default_factory=dict)
    echo: Callable[[str], None] = print

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        self.echo(f"minicloud: {name} ...")
        try:
            yield
        finally:
            self.seconds[name] = time.monotonic() - start
            self.echo(f"minicloud: {name} {self.seconds[name]:.1f} s")

    def lines(self) -> list[str]:
        total = sum(self.seconds.values())
        return [f"  {name:<10} {s:7.1f} s" for name, s in self.seconds.items()] + [
            f"  {'total':<10} {total:7.1f} s"]


def run(argv: list[str] | tuple[str, ...], *, user: str | None = None,
        input_text: str | None = None, timeout_s: float = 600.0,
        env: dict[str, str] | None = None, check: bool = True,
        secrets: tuple[str, ...] = ()) -> str:
    """Run a command to completion; MinicloudError with its output's tail (one line)
    on failure. Each of `secrets` is shown as *** in that error (it goes to consoles
    and CI logs)."""
    full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                "HOME": "/root", **(env or {})}
    try:
        proc = subprocess.run(argv, input=input_text, capture_output=True, text=True,
                              timeout=timeout_s, env=full_env, user=user, group=user,
                              extra_groups=[] if user else None, cwd="/", check=False)
    except subprocess.TimeoutExpired:
        raise MinicloudError(_redacted(f"{' '.join(argv)}: no answer after {timeout_s:.0f} s",
                                       secrets)) from None
    except OSError as exc:
        raise MinicloudError(f"{argv[0]}: {exc}") from None
    if check and proc.returncode != 0:
        tail = stderr_tail(proc.stdout + proc.stderr) or "(no output)"
        raise MinicloudError(_redacted(f"{' '.join(argv)} failed (exit {proc.returncode}): "
                                       f"{tail}", secrets))
    return proc.stdout


def _redacted(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# -- preflight -------------------------------------------------------------

def foreign_configs(etc: Path = Path("/etc")) -> list[Path]:
    """Configuration directories with files minicloud did not write (no marker)."""
    out = []
    for name in layout.CONFIG_DIRS:
        directory = etc / name
        if not directory.is_dir() or (directory / layout.MARKER_NAME).exists():
            continue
        if any(p.is_file() and not p.name.endswith(".dpkg-new") for p in directory.iterdir()):
            out.append(directory)
    return out


def claim_configs(etc: Path = Path("/etc")) -> None:
    """Mark the configuration directories as minicloud's (before the packages fill them)."""
    for name in layout.CONFIG_DIRS:
        directory = etc / name
        directory.mkdir(parents=True, exist_ok=True)
        marker = directory / layout.MARKER_NAME
        if not marker.exists():
            marker.write_text("This configuration is written by `osbench minicloud up` and "
                              "belongs to it; minicloud is for disposable machines and CI.\n")


def preflight(etc: Path = Path("/etc")) -> None:
    if os.geteuid() != 0:
        raise UserError("minicloud needs root: it installs and runs OpenStack on this "
                        "machine", hint="run `sudo osbench minicloud ...` on a "
                        "disposable machine or CI runner")
    foreign = foreign_configs(etc)
    if foreign:
        raise UserError(
            f"refusing to touch OpenStack configuration minicloud did not write: "
            f"{', '.join(str(p) for p in foreign)}",
            hint="minicloud is for disposable machines and CI; use a fresh machine")
    if not Path("/usr/bin/apt-get").exists():
        raise UserError("minicloud needs Debian 12 (apt-get not found)",
                        hint="run it on a disposable Debian 12 machine or CI runner")


# -- install ---------------------------------------------------------------

def installed_version(package: str) -> str | None:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Status}|${Version}", package],
                             capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return None
    status, _, version = out.stdout.partition("|")
    return version if out.returncode == 0 and status.endswith(" installed") else None


def install() -> list[str]:
    """Install the pinned packages that are missing; returns what was asked of apt."""
    missing = [f"{name}={version}" for name, version in layout.PACKAGES.items()
               if installed_version(name) != version]
    if not missing:
        return []
    wrote_policy = False
    if not POLICY_RC.exists():
        # Exit 101: "action forbidden", so the packages do not start half-configured
        # daemons (minicloud starts them itself once configured).
        POLICY_RC.write_text("#!/bin/sh\n# osbench minicloud: no daemon starts from "
                             "package scripts\nexit 101\n")
        POLICY_RC.chmod(0o755)
        wrote_policy = True
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    try:
        run(["apt-get", "update"], env=env, timeout_s=600)
        run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env,
            timeout_s=1800)
    finally:
        if wrote_policy:
            POLICY_RC.unlink(missing_ok=True)
    return missing


# -- state -----------------------------------------------------------------

def load_secrets(state_dir: Path) -> config.Secrets:
    path = state_dir / SECRETS_FILE
    if path.exists():
        return config.Secrets.from_json(path.read_text())
    secrets = config.Secrets.generate()
    path.touch(mode=0o600)
    path.write_text(secrets.to_json())
    return secrets


def write_configs(secrets: config.Secrets) -> None:
    for path, text in config.render(secrets).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Services read their passwords as their own user (group-readable, never
        # world-readable, not even between creating and chmod).
        group = path.parts[2] if path.parts[2] in config.SERVICE_USERS else None
        if not path.exists() or path.read_text() != text:
            if group:
                write_private(path, text)
            else:
                path.write_text(text)
        if group:
            shutil.chown(path, "root", group)
            path.chmod(0o640)
    for directory in ("/run/mysqld", "/var/lib/nova/tmp", "/var/lib/neutron/tmp",
                      "/var/lib/glance/tmp", "/var/lib/glance/images", "/var/log/placement",
                      "/var/lib/placement"):
        Path(directory).mkdir(parents=True, exist_ok=True)
    for directory, owner in (("/run/mysqld", "mysql"), ("/var/lib/nova/tmp", "nova"),
                             ("/var/lib/neutron/tmp", "neutron"),
                             ("/var/lib/glance/tmp", "glance"),
                             ("/var/lib/glance/images", "glance"),
                             ("/var/log/placement", "placement"),
                             ("/var/lib/placement", "placement")):
        shutil.chown(directory, owner, owner)
    for user in config.SERVICE_USERS:
        logs = Path(f"/var/log/{user}")
        logs.mkdir(exist_ok=True)
        for path in (logs, *logs.iterdir()):
            shutil.chown(path, user, user)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (an existing file included)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def write_clouds_yaml(secrets: config.Secrets, path: Path = layout.CLOUDS_YAML) -> None:
    """Add or refresh the `minicloud` entry; other entries are kept as they are."""
    data: dict[str, Any] = {}
    if path.exists():
        data = yaml.safe_load(path.read_text()) or {}
    clouds = data.setdefault("clouds", {})
    entry = config.clouds_yaml_entry(secrets)
    old = clouds.get(layout.CLOUD_NAME)
    if isinstance(old, dict) and old.get("auth", {}).get("auth_url") != entry["auth"][
            "auth_url"]:  # type: ignore[index]
        raise UserError(f"{path} has a {layout.CLOUD_NAME!r} entry minicloud did not write",
                        hint="rename that entry")
    if isinstance(old, dict) and "osbench_metadata" in old:
        entry["osbench_metadata"] = old["osbench_metadata"]
    clouds[layout.CLOUD_NAME] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, yaml.safe_dump(data, sort_keys=False))


def set_cloud_metadata(metadata: dict[str, Any], path: Path = layout.CLOUDS_YAML) -> None:
    """Put `metadata` under the entry's `osbench_metadata`: osbench records it with every
    run against the cloud (the Debian package versions, for provenance)."""
    data = yaml.safe_load(path.read_text())
    data["clouds"][layout.CLOUD_NAME]["osbench_metadata"] = metadata
    write_private(path, yaml.safe_dump(data, sort_keys=False))


# -- processes -------------------------------------------------------------

def wait_port(name: str, port: int, rec: services.Recorded | None, log_dir: Path,
              timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if services.port_open(port):
            return
        if rec is not None and not services.is_running(rec):
            raise MinicloudError(f"{name} exited during start-up; see "
                                 f"{log_dir / (name + '.out')} and its log in /var/log")
        time.sleep(0.5)
    raise MinicloudError(f"{name} did not listen on 127.0.0.1:{port} within "
                         f"{timeout_s:.0f} s; see {log_dir / (name + '.out')}")


def ensure_service(name: str, state_dir: Path) -> bool:
    """Start a service unless its recorded process runs; True if started now."""
    svc = services.BY_NAME[name]
    book = services.PidBook(state_dir)
    rec = book.load().get(name)
    log_dir = state_dir / "logs"
    if rec is None or not services.is_running(rec):
        if svc.port is not None and services.port_open(svc.port):
            raise MinicloudError(f"127.0.0.1:{svc.port} ({name}) is taken by a process "
                                 "minicloud did not start", hint="stop it, then run up again")
        rec = services.spawn(name, svc.argv, log_dir=log_dir, book=book, user=svc.user,
                             env=svc.env)
        started = True
    else:
        started = False
    if svc.port is not None:
        wait_port(name, svc.port, rec, log_dir)
    return started


def stop_all(state_dir: Path) -> list[str]:
    """Stop every recorded process, last started first; returns what was stopped."""
    book = services.PidBook(state_dir)
    records = book.load()
    stopped = []
    # The guest player first: it removes its guests while Neutron still answers.
    order = [PLAYER] + [s.name for s in reversed(services.SERVICES)]
    order += [n for n in records if n not in order]
    for name in order:
        rec = records.get(name)
        if rec is None:
            continue
        try:
            if services.stop(rec):
                stopped.append(f"{name} (pid {rec.pid})")
        except StillRunning as exc:
            stopped.append(f"{name} (pid {rec.pid}) NOT stopped: {exc}; still recorded, "
                           "run `osbench minicloud down` again")
            continue
        book.remove(name)
    return stopped


# -- phases ----------------------------------------------------------------

def mysql(sql: str) -> str:
    return run(["mariadb", "--protocol=socket", "-uroot", "-N", "-B"], input_text=sql)


#: The RPC queue a server consumes once it is ready. Agents started earlier time out
#: their first call (60 s) and back off (~55 s more): ~2 min lost on 2 cores.
RPC_QUEUES = {"neutron-rpc-server": "q-plugin", "nova-conductor": "conductor"}


def wait_consumers(queue: str, service: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until RabbitMQ's `queue` has a consumer (the server behind it is listening)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = run(["rabbitmqctl", "-q", "list_queues", "name", "consumers"], timeout_s=120,
                  check=False)
        for line in out.splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == queue and words[1].isdigit() and int(
                    words[1]) > 0:
                return
        time.sleep(1.0)
    raise MinicloudError(f"{service} did not consume RPC queue {queue!r} within "
                         f"{timeout_s:.0f} s; see /var/log")


def rabbit_user(secrets: config.Secrets) -> None:
    users = run(["rabbitmqctl", "-q", "list_users"], timeout_s=120)
    if not any(line.split() and line.split()[0] == "openstack" for line in users.splitlines()):
        run(["rabbitmqctl", "add_user", "openstack", secrets.rabbit], timeout_s=120,
            secrets=(secrets.rabbit,))
    else:
        run(["rabbitmqctl", "change_password", "openstack", secrets.rabbit], timeout_s=120,
            secrets=(secrets.rabbit,))
    run(["rabbitmqctl", "set_permissions", "openstack", ".*", ".*", ".*"], timeout_s=120)


def keystone_setup(secrets: config.Secrets) -> None:
    run(["keystone-manage", "db_sync"], user="keystone", timeout_s=900)
    for what in ("fernet_setup", "credential_setup"):
        run(["keystone-manage", what, "--keystone-user", "keystone", "--keystone-group",
             "keystone"])
    # The password by environment (keystone-manage reads OS_BOOTSTRAP_PASSWORD), so it
    # is in no process listing and no error text.
    run(["keystone-manage", "bootstrap",
         "--bootstrap-admin-url", layout.url("keystone", "/v3/"),
         "--bootstrap-internal-url", layout.url("keystone", "/v3/"),
         "--bootstrap-public-url", layout.url("keystone", "/v3/"),
         "--bootstrap-region-id", layout.REGION], user="keystone", timeout_s=300,
        env={"OS_BOOTSTRAP_PASSWORD": secrets.admin}, secrets=(secrets.admin,))


def db_syncs() -> None:
    run(["placement-manage", "db", "sync"], user="placement", timeout_s=900)
    run(["glance-manage", "db_sync"], user="glance", timeout_s=900)
    run(["nova-manage", "api_db", "sync"], user="nova", timeout_s=900)
    cells = run(["nova-manage", "cell_v2", "list_cells"], user="nova")
    if " cell0 " not in cells:
        run(["nova-manage", "cell_v2", "map_cell0"], user="nova")
    if " cell1 " not in cells:
        run(["nova-manage", "cell_v2", "create_cell", "--name=cell1", "--verbose"], user="nova")
    run(["nova-manage", "db", "sync"], user="nova", timeout_s=900)
    run(["neutron-db-manage", "--config-file", "/etc/neutron/neutron.conf",
         "--config-file", "/etc/neutron/plugins/ml2/ml2_conf.ini", "upgrade", "heads"],
        user="neutron", timeout_s=1200)


def provider_bridge() -> None:
    """The provider network's bridge: no address, no physical port, goes nowhere."""
    name = layout.PROVIDER_BRIDGE
    if not Path(f"/sys/class/net/{name}").exists():
        run(["ip", "link", "add", name, "type", "bridge"])
    run(["ip", "link", "set", name, "up"])


def start_player(state_dir: Path, network_id: str) -> None:
    book = services.PidBook(state_dir)
    rec = book.load().get(PLAYER)
    if rec is not None and services.is_running(rec):
        return
    (state_dir / ALIVE_FILE).write_text(str(os.getpid()))
    argv = (sys.executable, "-m", "osbench.minicloud", "--state-dir", str(state_dir),
            "--cloud", layout.CLOUD_NAME, "--network", network_id, "--alive-file",
            str(state_dir / ALIVE_FILE))
    services.spawn(PLAYER, argv, log_dir=state_dir / "logs", book=book,
                   env={"HOME": "/root", "OS_CLIENT_CONFIG_FILE": str(layout.CLOUDS_YAML)})


def package_versions() -> dict[str, str | None]:
    return {name: installed_version(name) for name in layout.VERSION_PACKAGES}


def upstream_version(debian_version: str | None) -> str | None:
    """`2:26.2.2-1~deb12u5` -> `26.2.2`: without the epoch and the Debian revision."""
    if not debian_version:
        return None
    version = debian_version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def cloud_metadata(packages: dict[str, str | None]) -> dict[str, Any]:
    """What runs against minicloud record as its versions (see osbench.cloud)."""
    openstack = {name.removeprefix("python3-"): upstream_version(v)
                 for name, v in packages.items() if name.startswith("python3-")}
    return {"minicloud": {"openstack": openstack,
                          "debian_packages": {k.replace("-", "_"): v
                                              for k, v in packages.items()}}}


def up(state_dir: Path, echo: Callable[[str], None] = print) -> Phases:
    """Install, configure and start minicloud; every phase is idempotent."""
    from osbench.minicloud import resources

    phases = Phases(echo=echo)
    with phases.phase("preflight"):
        preflight()
        state_dir.mkdir(parents=True, exist_ok=True)
        state_dir.chmod(0o700)
        claim_configs()
    with phases.phase("install"):
        asked = install()
        echo(f"minicloud: installed {len(asked)} pinned package(s)" if asked
             else "minicloud: pinned packages already installed")
    with phases.phase("configure"):
        secrets = load_secrets(state_dir)
        write_configs(secrets)
        write_clouds_yaml(secrets)
    with phases.phase("database"):
        ensure_service("mariadb", state_dir)
        mysql(config.sql_setup(secrets))
    with phases.phase("messaging"):
        ensure_service("epmd", state_dir)
        ensure_service("rabbitmq", state_dir)
        rabbit_user(secrets)
    # Schemas and keystone's keys are done once per set of package versions.
    stamp = state_dir / SYNCED_FILE
    versions = json.dumps(package_versions(), sort_keys=True)
    synced = stamp.exists() and stamp.read_text() == versions
    with phases.phase("identity"):
        if not synced:
            keystone_setup(secrets)
        ensure_service("keystone", state_dir)
        resources.identity(secrets)
    with phases.phase("sync"):
        if not synced:
            db_syncs()
            stamp.write_text(versions)
    with phases.phase("services"):
        provider_bridge()
        firewall.bridge_netfilter(state_dir)  # before the Linux bridge agent starts
        firewall.internet()
        for svc in services.SERVICES[4:]:
            ensure_service(svc.name, state_dir)
            queue = RPC_QUEUES.get(svc.name)
            if queue:
                wait_consumers(queue, svc.name)
    with phases.phase("resources"):
        made = resources.compute_and_network(state_dir)
        (state_dir / RESOURCES_FILE).write_text(json.dumps(made, indent=1))
    with phases.phase("guests"):
        start_player(state_dir, made["network_id"])
    with phases.phase("versions"):
        metadata = cloud_metadata(package_versions())
        (state_dir / VERSIONS_FILE).write_text(json.dumps(metadata, indent=1))
        set_cloud_metadata(metadata)
    return phases


def down(state_dir: Path) -> list[str]:
    """Stop what minicloud started and remove the network plumbing it made."""
    removed: list[str] = []
    (state_dir / ALIVE_FILE).unlink(missing_ok=True)
    network_id = _network_id(state_dir)
    removed += [f"process {p}" for p in stop_all(state_dir)]
    # dnsmasq daemonises away from the DHCP agent: its pidfile names it, and its pid is
    # signalled only while its command line still names its pidfile's directory (a
    # recycled pid does not); dnsmasq of minicloud's own network only.
    if network_id:
        pid = procs.pid_of(Path(f"/var/lib/neutron/dhcp/{network_id}/pid"))
        if pid is not None:
            with contextlib.suppress(StillRunning):
                services.stop(services.Recorded("dnsmasq", pid,
                                                procs.start_ticks(pid) or 0, ()))
            removed.append(f"process dnsmasq (pid {pid})")
    # Whatever still names the state directory, in any namespace: a guest's dhclient
    # whose player died before stopping it, a player that was never recorded.
    stopped, survivors = services.stop_naming(state_dir)
    removed += [f"process {name} (pid {pid}) naming {state_dir}"
                for pid, name in stopped.items()]
    removed += [f"process {name} (pid {pid}) naming {state_dir} NOT stopped: it outlived "
                "SIGKILL; run `osbench minicloud down` again" for pid, name in survivors.items()]
    for pid_file in (state_dir / "leases").glob("*.pid"):
        pid_file.unlink()
    # Taps are found by their bridge, so before anything is unplugged; bridge last.
    links = sorted((link for link in netns.links() if _is_ours(link)),
                   key=lambda link: link == layout.PROVIDER_BRIDGE)
    for ns in netns.names():
        if ns.startswith(GUEST_NETNS_PREFIX) or ns == layout.INTERNET_NETNS or (
                network_id and ns == f"qdhcp-{network_id}"):
            run(["ip", "netns", "delete", ns], check=False)
            removed.append(f"namespace {ns}")
    for link in links:
        if Path(f"/sys/class/net/{link}").exists():
            run(["ip", "link", "delete", link], check=False)
            removed.append(f"link {link}")
    removed += firewall.remove_agent_rules() + firewall.remove_agent_ebtables()
    restored = firewall.restore_netfilter(state_dir)
    return removed + ([restored] if restored else [])


def _is_ours(link: str) -> bool:
    if link.startswith(layout.PREFIX):  # the provider bridge
        return True
    # A tap of ours hangs off minicloud's bridge (guests' veths, the DHCP port's peer).
    master = Path(f"/sys/class/net/{link}/master")
    return master.exists() and master.resolve().name == layout.PROVIDER_BRIDGE


def _network_id(state_dir: Path) -> str | None:
    with contextlib.suppress(OSError, ValueError, KeyError):
        return str(json.loads((state_dir / RESOURCES_FILE).read_text())["network_id"])
    return None


@dataclass
class Status:
    running: dict[str, bool]
    network_id: str | None
    guests: int
    namespaces: list[str]

    @property
    def healthy(self) -> bool:
        return bool(self.running) and all(self.running.values()) and len(self.running) == len(
            services.SERVICES) + 1

    def lines(self) -> list[str]:
        if not self.running:
            return ["minicloud: down (no process recorded)"]
        state = "up" if self.healthy else "partial"
        out = [f"minicloud: {state}"]
        out += [f"  {name}: {'running' if ok else 'NOT running'}"
                for name, ok in self.running.items()]
        out.append(f"  network: {self.network_id or '-'} (qdhcp-{self.network_id})"
                   if self.network_id else "  network: -")
        out.append(f"  guests: {self.guests} namespace(s)")
        return out


def status(state_dir: Path) -> Status:
    records = services.PidBook(state_dir).load()
    running = {name: services.is_running(rec) for name, rec in records.items()}
    namespaces = netns.names()
    guests = sum(ns.startswith(GUEST_NETNS_PREFIX) for ns in namespaces)
    return Status(running=running, network_id=_network_id(state_dir), guests=guests,
                  namespaces=namespaces)


def guest_log(state_dir: Path) -> list[dict[str, Any]]:
    """Every row the guest player journaled."""
    path = state_dir / GUESTS_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
