"""Records of the simulated cloud and their state at a modelled time.

A record holds its planned `Timeline`; `state(now)` answers what the API
shows at modelled time `now` (status, task state, fault, port status).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from osbench.cloudinit import PhoneHome
from osbench.sim.model import Fault, Timeline

_NAMESPACE = uuid.UUID("5b1e4a4e-0000-4000-8000-05b3e0c1a0d0")


def stable_id(name: str) -> str:
    """A UUID that is the same in every run and for every seed."""
    return str(uuid.uuid5(_NAMESPACE, name))


@dataclass(frozen=True)
class User:
    id: str
    name: str
    password: str
    roles: tuple[str, ...]

    @property
    def admin(self) -> bool:
        return "admin" in self.roles


@dataclass(frozen=True)
class Token:
    """An issued token: valid until modelled time `expires`, as it states."""

    user: User
    expires: float
    scoped: bool


@dataclass(frozen=True)
class Flavor:
    id: str
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    subnet_id: str
    subnet_name: str
    cidr: str
    gateway_ip: str


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    size: int
    created: str


@dataclass
class Port:
    """A Neutron port created by nova-compute for one server."""

    id: str
    mac: str
    ip: str
    network: Network
    device_id: str
    timeline: Timeline
    deleted_at: float | None = None  # by an API call (server or port delete)

    def exists(self, now: float) -> bool:
        created = self.timeline.port_created_at
        if created is None or created > now:
            return False
        gone = [t for t in (self.deleted_at, self.timeline.port_deleted_at) if t is not None]
        return not gone or min(gone) > now

    def status(self, now: float) -> str:
        tl = self.timeline
        if tl.port_active_at is not None and tl.port_active_at <= now:
            return "ACTIVE"
        if tl.port_bound_at is not None and tl.port_bound_at <= now:
            return "BUILD"
        return "DOWN"

    def updated_at(self, now: float) -> float:
        tl = self.timeline
        times = [tl.port_created_at, tl.port_bound_at, tl.port_active_at]
        return max(t for t in times if t is not None and t <= now)


@dataclass(frozen=True)
class ServerState:
    status: str
    vm_state: str
    task_state: str | None
    power_state: int
    fault: Fault | None
    updated_at: float


@dataclass
class Server:
    """A Nova server as created by one multi-create request."""

    id: str
    name: str
    seq: int  # Nova's internal integer id: the sort tie-breaker
    reservation_id: str
    launch_index: int
    flavor: Flavor
    image_id: str
    network: Network
    key_name: str | None
    security_groups: list[str]
    metadata: dict[str, str]
    tags: list[str]
    user_data: str | None
    phone_home: PhoneHome | None
    timeline: Timeline
    port: Port | None
    console: list[tuple[float, str]] = field(default_factory=list)
    deleted_at: float | None = None

    def visible(self, now: float) -> bool:
        return self.timeline.visible_at <= now

    def state(self, now: float) -> ServerState:
        """What the API shows at modelled time `now`."""
        tl = self.timeline
        steps: list[tuple[float | None, str, str, str | None, int]] = [
            (tl.visible_at, "BUILD", "building", "scheduling", 0),
            (tl.scheduled_at, "BUILD", "building", "networking", 0),
            (tl.port_created_at, "BUILD", "building", "block_device_mapping", 0),
            (tl.plug_at, "BUILD", "building", "spawning", 0),
            (tl.failed_at, "ERROR", "error", None, 0),
            (tl.active_at, "ACTIVE", "active", None, 1),
        ]
        if self.deleted_at is not None and self.deleted_at <= now:
            return ServerState("DELETED", "deleted", None, 0, None, self.deleted_at)
        current = steps[0]
        for step in steps:
            if step[0] is not None and step[0] <= now and step[0] >= (current[0] or 0.0):
                current = step
        when, status, vm_state, task_state, power = current
        fault = tl.fault if status == "ERROR" else None
        return ServerState(status, vm_state, task_state, power, fault, when or tl.visible_at)


def iso(origin: datetime, t: float) -> str:
    """Nova/Neutron timestamp of modelled time `t` (seconds resolution, UTC)."""
    return (origin + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ")


def host_id(project_id: str, host: str | None) -> str:
    """Nova's hostId (nova.utils.generate_hostid): the host as one project sees it,
    stable across restarts and different per project; "" before scheduling."""
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


#: The domain of the modelled compute nodes' names: libvirt reports the machine's
#: FQDN as the hypervisor (node) name, while the compute service's host, which
#: placement and `OS-EXT-SRV-ATTR:host` use, is often its short name.
NODE_DOMAIN = "sim.example"


def node_name(host: str | None) -> str | None:
    """The hypervisor (node) name of a modelled compute host."""
    return f"{host}.{NODE_DOMAIN}" if host else host


def iso_us(origin: datetime, t: float) -> str:
    """Keystone's timestamp of modelled time `t` (microseconds, UTC)."""
    return (origin + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def port_body(port: Port, now: float, origin: datetime, project_id: str) -> dict[str, Any]:
    """Neutron's JSON for a port."""
    return {
        "id": port.id,
        "name": "",
        "network_id": port.network.id,
        "tenant_id": project_id,
        "project_id": project_id,
        "mac_address": port.mac,
        "admin_state_up": True,
        "status": port.status(now),
        "device_id": port.device_id,
        "device_owner": "compute:nova",
        "fixed_ips": [{"subnet_id": port.network.subnet_id, "ip_address": port.ip}],
        "allowed_address_pairs": [],
        "extra_dhcp_opts": [],
        "security_groups": [],
        "description": "",
        "binding:vnic_type": "normal",
        "port_security_enabled": True,
        "tags": [],
        "created_at": iso(origin, port.timeline.port_created_at or 0.0),
        "updated_at": iso(origin, port.updated_at(now)),
        "revision_number": 1,
    }


@dataclass(frozen=True)
class CreateSpec:
    """A validated `POST /servers` request."""

    name: str
    flavor: Flavor
    image_id: str
    network: Network
    key_name: str | None
    security_groups: list[str]
    metadata: dict[str, str]
    tags: list[str]
    user_data: str | None
    min_count: int
    max_count: int
    return_reservation_id: bool
