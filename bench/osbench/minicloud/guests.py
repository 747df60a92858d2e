"""The guest player: minicloud's stand-in for the guests Nova's fake driver never runs.

For each instance Nova reports ACTIVE on the minicloud network, it makes the
instance's tap device (named as Nova's Linux bridge VIF names it: `tap` + the
first 11 characters of the port id) as one end of a veth pair whose other end
lives in a network namespace of its own, carrying the port's MAC. Neutron's
Linux bridge agent finds the tap, wires it into the network's bridge and
reports the port up, so Neutron marks it ACTIVE for real. Then a real DHCP
client (`dhclient -1 -d`, kept in the foreground and stopped by the pid it was
spawned with, lease or not) asks the DHCP agent's dnsmasq for a lease from inside
the namespace; only after a lease does the player perform cloud-init's
`phone_home` as the instance's own user_data (read through Nova's API) asks
for, on loopback: `osbench.cloudinit`'s, shared with the simulated guests (a
form POST of the requested fields, every failure retried `tries` attempts in
all, 3 s apart; a 503 after its Retry-After, without limit). Guests whose
instance is gone are removed.

It runs as one daemon process started by `osbench minicloud up` (its PID is
recorded; `down` stops it), and stops itself after `max_lifetime_s` or when
minicloud's state file disappears. Every step of every guest is appended to
`guests.jsonl` in the state directory, which the CI checks read.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from osbench import cloudinit, procs
from osbench.minicloud import layout
from osbench.netns import exec_argv

log = logging.getLogger("osbench.minicloud.guests")

#: Nova's Linux bridge VIF: `tap` + the port id's first 11 characters (nova.network.model
#: NIC_NAME_LEN = 14).
TAP_PREFIX = "tap"
NIC_NAME_LEN = 14
#: Our namespaces: `osbmc-g-<port id[:11]>`, one per guest.
GUEST_NETNS_PREFIX = "osbmc-g-"
#: The cloud-init version the guests' phone_home says it is (in its User-Agent).
CLOUD_INIT_VERSION = "osbench-minicloud-guest"
#: A phone_home POST that takes longer than this is a failed try (cloud-init sets no
#: timeout; a guest of the player must not hang on one).
PHONE_HOME_TIMEOUT_S = 30.0
#: The Nova microversion that exposes OS-EXT-SRV-ATTR:user_data to admins.
USER_DATA_MICROVERSION = "2.3"
GUESTS_LOG = "guests.jsonl"
#: How long a DHCP client gets to exit on SIGTERM before SIGKILL (dhclient takes
#: milliseconds; the bound only matters for a client that hangs).
CLIENT_STOP_GRACE_S = 5.0
#: The last lines of a client's log kept for the journal when it gets no lease.
CLIENT_LOG_LINES = 20


def vif_name(port_id: str) -> str:
    """The tap device Nova's Linux bridge VIF driver names for a port."""
    if not port_id:
        raise ValueError("empty port id")
    return (TAP_PREFIX + port_id)[:NIC_NAME_LEN]


def guest_netns(port_id: str) -> str:
    """The namespace that plays the guest of a port."""
    return GUEST_NETNS_PREFIX + port_id[:11]


def vif_bridge(port: Mapping[str, Any], mapped_bridge: str) -> str:
    """The bridge a port's tap goes into: the binding's `bridge_name` when Neutron names
    one, else the bridge the agent's `bridge_mappings` gives the physical network
    (Zed's binding names none for a mapped flat network; os-vif would then pick
    `brq<network>`, a bridge the agent never connects to the provider network)."""
    details = port.get("binding:vif_details") or {}
    name = details.get("bridge_name") if isinstance(details, Mapping) else None
    return str(name) if name else mapped_bridge


def phone_home_config(user_data_b64: str | None) -> cloudinit.PhoneHome | cloudinit.Skipped:
    """The phone_home config in an instance's user_data as Nova's API shows it
    (base64, which Nova's metadata service decodes for the guest), or why none."""
    if not user_data_b64:
        return cloudinit.Skipped("no user data")
    try:
        user_data = base64.b64decode(user_data_b64, validate=True)
    except binascii.Error as exc:
        return cloudinit.Skipped(f"user_data is not base64: {exc}", malformed=True)
    return cloudinit.parse_user_data(user_data)


def dhclient_script(path: Path) -> Path:
    """A dhclient-script that only puts the leased address on the interface.

    Debian's /sbin/dhclient-script would also rewrite the machine's
    /etc/resolv.conf and run its exit hooks: not what a namespace guest may do.
    """
    path.write_text(
        "#!/bin/sh\n"
        "# osbench minicloud: configure the lease inside the guest namespace only.\n"
        'case "$reason" in\n'
        "  BOUND|RENEW|REBIND|REBOOT)\n"
        '    ip -4 addr flush dev "$interface" scope global\n'
        '    ip -4 addr add "$new_ip_address/$new_subnet_mask" dev "$interface" ;;\n'
        "esac\n"
        "exit 0\n")
    path.chmod(0o755)
    return path


def dhclient_conf(path: Path, timeout_s: int) -> Path:
    """dhclient's configuration: give up after `timeout_s` (Debian's dhclient has no
    command-line timeout; a real guest's default is 60 s, cloud images' up to 300 s)."""
    path.write_text(
        "# osbench minicloud guest\n"
        f"timeout {timeout_s};\n"
        "retry 60;\n"
        "request subnet-mask, broadcast-address, interface-mtu;\n")
    return path


def parse_lease(text: str) -> dict[str, str] | None:
    """The last lease in a dhclient lease file: fixed-address, server, times."""
    blocks = [b for b in text.split("lease {")[1:] if "}" in b]
    if not blocks:
        return None
    out: dict[str, str] = {}
    for line in blocks[-1].split("}")[0].splitlines():
        words = line.strip().rstrip(";").split(None, 1)
        if len(words) != 2:
            continue
        key, value = words
        if key == "fixed-address":
            out["address"] = value
        elif key == "option" and value.startswith("dhcp-server-identifier"):
            out["server"] = value.split()[-1]
        elif key in ("renew", "expire"):
            out[key] = value
    return out if "address" in out else None


async def post_phone_home(config: cloudinit.PhoneHome, instance_id: str,
                          values: dict[str, str], *,
                          sec_between: float = cloudinit.SEC_BETWEEN) -> cloudinit.Result:
    """cloud-init's phone_home POST for one instance, in real time."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        return await cloudinit.post_form(
            session, config.url_for(instance_id), config.form(values),
            policy=config.retry_policy(sec_between), version=CLOUD_INIT_VERSION,
            sleep=asyncio.sleep, timeout_s=PHONE_HOME_TIMEOUT_S)


@dataclass
class PlayerConfig:
    """What the player plays, and its bounds."""

    state_dir: Path
    cloud: str
    network_id: str
    #: The provider network's bridge (the agent's bridge_mappings).
    bridge: str = layout.PROVIDER_BRIDGE
    poll_interval_s: float = 2.0
    dhcp_timeout_s: int = 60
    #: Nova's vif_plugging_timeout: how long a guest waits for its port to go ACTIVE.
    vif_timeout_s: float = 300.0
    vif_poll_s: float = 1.0
    max_guests: int = 250
    setup_concurrency: int = 8
    max_lifetime_s: float = 6 * 3600.0
    #: The file whose removal (by `down`) stops the player.
    alive_file: Path | None = None


async def _until_bound(client: asyncio.subprocess.Process, output: deque[str]) -> bool:
    """Read a foreground dhclient's log until it reports a lease (True: its lease file is
    written by then) or ends (False: `-1` gave up)."""
    assert client.stdout is not None
    async for raw in client.stdout:
        line = raw.decode(errors="replace").strip()
        output.append(line)
        if line.startswith("bound to "):
            return True
    return False


class GuestPlayer:
    """Make, run and remove the guests of the instances on one network."""

    def __init__(self, config: PlayerConfig, conn: Any) -> None:
        self.config = config
        self.conn = conn
        #: port id -> the task playing it
        self.guests: dict[str, asyncio.Task[None]] = {}
        #: port id -> its DHCP client, kept from the moment it is spawned
        self.clients: dict[str, asyncio.subprocess.Process] = {}
        self._sem = asyncio.Semaphore(config.setup_concurrency)
        self._log = (config.state_dir / GUESTS_LOG).open("a", encoding="utf-8")
        self._script = dhclient_script(config.state_dir / "dhclient-script")
        self._dhclient_conf = dhclient_conf(config.state_dir / "dhclient.conf",
                                            config.dhcp_timeout_s)
        self._lease_dir = config.state_dir / "leases"
        self._lease_dir.mkdir(exist_ok=True)

    def close(self) -> None:
        """Close the journal (the player is done with)."""
        self._log.close()

    def record(self, event: str, **fields: Any) -> None:
        row = {"at": datetime.now(UTC).isoformat(), "event": event, **fields}
        self._log.write(json.dumps(row) + "\n")
        self._log.flush()
        os.fsync(self._log.fileno())

    async def _get(self, service: str, url: str, **kwargs: Any) -> Any:
        def send() -> Any:
            response = getattr(self.conn, service).get(url, **kwargs)
            response.raise_for_status()
            return response.json()

        return await asyncio.to_thread(send)

    async def poll_once(self) -> None:
        ports = (await self._get("network", f"/ports?network_id={self.config.network_id}"))[
            "ports"]
        ports = [p for p in ports if str(p.get("device_owner", "")).startswith("compute:")]
        servers = (await self._get("compute", "/servers/detail?all_tenants=1",
                                   microversion=USER_DATA_MICROVERSION))["servers"]
        by_id = {s["id"]: s for s in servers}
        wanted: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for port in ports:
            server = by_id.get(port.get("device_id", ""))
            if server is not None and server.get("status") == "ACTIVE":
                wanted[port["id"]] = (port, server)
        for port_id, (port, server) in wanted.items():
            if port_id in self.guests or len(self.guests) >= self.config.max_guests:
                continue
            self.guests[port_id] = asyncio.create_task(self._play(port, server))
        present_ports = {p["id"] for p in ports}
        for port_id in list(self.guests):
            if port_id not in present_ports:
                await self._remove(port_id, reason="port deleted")

    async def run(self) -> None:
        start = time.monotonic()
        self.record("player_started", pid=os.getpid(), network_id=self.config.network_id)
        alive = self.config.alive_file
        try:
            while time.monotonic() - start < self.config.max_lifetime_s:
                if alive is not None and not alive.exists():
                    self.record("player_stopping", reason=f"{alive} removed")
                    break
                try:
                    await self.poll_once()
                except Exception as exc:  # one failed poll must not end the player
                    self.record("poll_failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(self.config.poll_interval_s)
            else:
                self.record("player_stopping", reason="max_lifetime_s reached")
        finally:
            for port_id in list(self.guests):
                await self._remove(port_id, reason="player stopping")
            self.record("player_stopped")
            self.close()

    async def _run(self, *argv: str, timeout_s: float = 30.0) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise
        return int(proc.returncode or 0), out.decode(errors="replace").strip()

    async def _play(self, port: dict[str, Any], server: dict[str, Any]) -> None:
        port_id, instance_id = port["id"], server["id"]
        tap, netns = vif_name(port_id), guest_netns(port_id)
        try:
            async with self._sem:
                started = time.monotonic()
                bridge = vif_bridge(port, self.config.bridge)
                await self._plug(tap, netns, port["mac_address"], bridge)
                self.record("plugged", instance_id=instance_id, port_id=port_id, tap=tap,
                            netns=netns, mac=port["mac_address"], bridge=bridge)
            await self._wait_vif_plugged(instance_id, port_id, started)
            async with self._sem:
                lease = await self._dhcp(port_id, netns)
            self.record("dhcp", instance_id=instance_id, port_id=port_id, lease=lease,
                        seconds=round(time.monotonic() - started, 3))
            if lease is None:
                return  # a real guest without an address cannot phone home either
            await self._phone_home(server, lease)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.record("guest_failed", instance_id=instance_id, port_id=port_id,
                        error=f"{type(exc).__name__}: {exc}")

    async def _wait_vif_plugged(self, instance_id: str, port_id: str, started: float) -> None:
        """Boot the guest only once Neutron reports its port ACTIVE, as Nova's libvirt
        driver resumes a guest only on network-vif-plugged; after `vif_timeout_s` boot
        anyway, as Nova does with `vif_plugging_is_fatal = False`."""
        deadline = time.monotonic() + self.config.vif_timeout_s
        while time.monotonic() < deadline:
            port = (await self._get("network", f"/ports/{port_id}"))["port"]
            if port.get("status") == "ACTIVE":
                self.record("port_active", instance_id=instance_id, port_id=port_id,
                            seconds=round(time.monotonic() - started, 3))
                return
            await asyncio.sleep(self.config.vif_poll_s)
        self.record("vif_timeout", instance_id=instance_id, port_id=port_id,
                    seconds=round(time.monotonic() - started, 3))

    async def _plug(self, tap: str, netns: str, mac: str, bridge: str) -> None:
        for argv in (("ip", "netns", "add", netns),
                     ("ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0",
                      "netns", netns),
                     ("ip", "-n", netns, "link", "set", "eth0", "address", mac),
                     ("ip", "-n", netns, "link", "set", "lo", "up"),
                     ("ip", "-n", netns, "link", "set", "eth0", "up"),
                     # What Nova's Linux bridge VIF plug (os-vif, libvirt) does: the
                     # agent leaves compute-owned taps to the hypervisor.
                     ("ip", "link", "set", tap, "master", bridge),
                     ("ip", "link", "set", tap, "up")):
            rc, out = await self._run(*argv)
            if rc != 0 and not (argv[2] == "add" and "exists" in out):
                raise RuntimeError(f"{' '.join(argv)}: exit {rc}: {out}")

    async def _dhcp(self, port_id: str, netns: str) -> dict[str, str] | None:
        lease_file = self._lease_dir / f"{port_id}.leases"
        lease_file.unlink(missing_ok=True)
        # -d: the client never forks, so the pid spawned here is the client for its whole
        # life. Without -d, Debian's dhclient 4.4 forks at once, and after a lease its
        # child detaches into a session of its own and only then writes its pidfile: a
        # pidfile read while empty was forgotten with its client still running (9 of 40
        # leases on this machine, issue 13).
        client = await asyncio.create_subprocess_exec(
            *exec_argv(netns, ["dhclient", "-d", "-1", "-v", "-cf", str(self._dhclient_conf),
                               "-pf", str(self._lease_dir / f"{port_id}.pid"),
                               "-lf", str(lease_file), "-sf", str(self._script), "eth0"]),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        self.clients[port_id] = client
        output: deque[str] = deque(maxlen=CLIENT_LOG_LINES)
        try:
            bound = await asyncio.wait_for(_until_bound(client, output),
                                           self.config.dhcp_timeout_s + 30.0)
        except TimeoutError:
            bound = False
        finally:
            # A guest needs no renewals here: stop the client, lease or not.
            await self._stop_client(port_id)
        lease = parse_lease(lease_file.read_text()) if bound and lease_file.exists() else None
        if lease is None:
            self.record("dhcp_give_up", port_id=port_id, exit=client.returncode,
                        output="\n".join(output)[-500:])
        return lease

    async def _stop_client(self, port_id: str) -> None:
        """Stop a guest's DHCP client by the pid kept since its spawn: SIGTERM to its
        process group (its session holds it and any dhclient-script it runs), SIGKILL
        after CLIENT_STOP_GRACE_S. Each signal only while that pid's command line still
        names the lease directory: once reaped, the pid may be another process's."""
        client = self.clients.get(port_id)
        if client is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if client.returncode is None and procs.names_path(client.pid, self._lease_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(client.pid, sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.wait(), CLIENT_STOP_GRACE_S)
                break
        else:
            self.record("client_not_stopped", port_id=port_id, pid=client.pid)
            return  # left for `down`, which stops whatever names the state directory
        # Forgotten only once stopped: a removal cancelled half-way finds it again.
        self.clients.pop(port_id, None)

    async def _phone_home(self, server: dict[str, Any], lease: dict[str, str]) -> None:
        instance_id = server["id"]
        detail = (await self._get("compute", f"/servers/{instance_id}",
                                  microversion=USER_DATA_MICROVERSION))["server"]
        config = phone_home_config(detail.get("OS-EXT-SRV-ATTR:user_data"))
        if isinstance(config, cloudinit.Skipped):
            self.record("phone_home_skipped", instance_id=instance_id, reason=config.reason,
                        malformed=config.malformed)
            return
        hostname = str(detail.get("OS-EXT-SRV-ATTR:hostname") or detail.get("name"))
        result = await post_phone_home(config, instance_id,
                                       cloudinit.instance_values(instance_id, hostname))
        if result.ok:
            self.record("phone_home", instance_id=instance_id, url=result.url,
                        status=result.status, attempt=result.attempts,
                        address=lease["address"])
        else:
            self.record("phone_home_failed", instance_id=instance_id, url=result.url,
                        attempts=result.attempts, error=result.error)

    async def _remove(self, port_id: str, *, reason: str) -> None:
        """Remove a guest: end its task, stop its DHCP client (by pid, lease or not),
        delete its namespace and tap."""
        task = self.guests.pop(port_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._stop_client(port_id)
        (self._lease_dir / f"{port_id}.pid").unlink(missing_ok=True)
        netns = guest_netns(port_id)
        # Deleting the namespace deletes eth0 and with it its veth peer, the tap.
        await self._run("ip", "netns", "delete", netns)
        await self._run("ip", "link", "delete", vif_name(port_id))
        self.record("removed", port_id=port_id, netns=netns, reason=reason)


def main(argv: list[str] | None = None) -> int:
    """`python -m osbench.minicloud --state-dir DIR --cloud NAME --network ID`."""
    parser = argparse.ArgumentParser(prog="osbench-minicloud-guests")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--cloud", required=True)
    parser.add_argument("--network", required=True)
    parser.add_argument("--dhcp-timeout", type=int, default=60)
    parser.add_argument("--max-lifetime", type=float, default=6 * 3600.0)
    parser.add_argument("--alive-file", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    import openstack

    conn = openstack.connect(cloud=args.cloud)
    config = PlayerConfig(state_dir=args.state_dir, cloud=args.cloud, network_id=args.network,
                          dhcp_timeout_s=args.dhcp_timeout, max_lifetime_s=args.max_lifetime,
                          alive_file=args.alive_file)

    async def play() -> None:
        player = GuestPlayer(config, conn)
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            if task is not None:
                loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await player.run()

    asyncio.run(play())
    return 0

