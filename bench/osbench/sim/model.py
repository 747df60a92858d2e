"""The control-plane model: every instance's whole timeline, in modelled time.

When a create request arrives, `ControlPlaneModel.plan_batch` computes, from
the profile and the seed alone, when each instance's record appears, when it
is scheduled (or times out in the overloaded conductor queue), when its port
is created, bound and provisioned by the DHCP agent, whether Nova waits for
network-vif-plugged, when the guest boots, gets (or gives up on) a DHCP lease
and phones home. The API then only *reveals* the state at the current
modelled time, so outcome counts do not depend on wall-clock jitter on a busy
machine; only the phone-home POSTs and the proxy's 504 happen in real time.

Mechanisms, in pipeline order:
- nova-api creates the instance records one after another
  (`request_s + i * per_instance_s`); the reverse proxy gives up after
  `proxy_timeout_s`, but the request still completes.
- Scheduling/conductor work runs on `cores` workers, each build costing
  `build_cpu_s`, slowed when the pets have less memory than the services'
  working set (swapping). A build that waits longer than the RPC timeout
  fails: the deeper the overload, the more fail.
- One DHCP agent serves ports one at a time: each of a port's
  `dhcp_updates_per_port` notifications rewrites the host file (growing with
  its entries) and runs one privileged call through the root helper. A port
  is ACTIVE when the agent has processed it.
- vif plugging: fatal -> ERROR when the port is not ACTIVE within the
  timeout; not fatal -> the guest boots anyway and its DHCP client gives up
  after `dhcp_timeout_s` if the port is still not ready.

Approximation: batches are planned in arrival order, so a second create that
arrives while an earlier one is still in flight queues behind all of it.

The model keeps what it planned (`creates`, `timelines`) with the queue times
behind each outcome (a build's worker start, the DHCP agent's start and end on
a port), so `osbench.sim.metrics` can read the control plane's queues at any
modelled instant from the plan itself.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

from osbench.sim.profiles import Profile

VIF_FAULT = "Build of instance {id} aborted: Failed to allocate the network(s), not rescheduling."
RPC_FAULT = "Timed out waiting for a reply to message ID {msg_id}"


@dataclass(frozen=True)
class Fault:
    """Nova's `fault` of an ERROR server."""

    message: str
    code: int
    details: str


@dataclass(frozen=True)
class Timeline:
    """One instance's planned life; times are modelled seconds, None = never."""

    visible_at: float
    failed_at: float | None = None
    fault: Fault | None = None
    scheduled_at: float | None = None
    host: str | None = None
    port_created_at: float | None = None
    port_bound_at: float | None = None
    port_active_at: float | None = None
    port_deleted_at: float | None = None
    plug_at: float | None = None
    active_at: float | None = None
    dhcp_start_at: float | None = None
    lease_at: float | None = None
    dhcp_gave_up_at: float | None = None
    phone_home_at: float | None = None
    ipv6: bool = False
    #: A conductor worker starts the build (None: it timed out in the queue first).
    build_start_at: float | None = None
    #: The DHCP agent starts and finishes this port's notifications.
    agent_start_at: float | None = None
    agent_done_at: float | None = None


@dataclass(frozen=True)
class BatchPlan:
    """The plan for one create request."""

    api_seconds: float  # how long nova-api takes to answer
    timelines: list[Timeline]


@dataclass(frozen=True)
class CreateRecord:
    """One create request as nova-api serves it: busy from `t0` for `api_seconds`."""

    t0: float
    api_seconds: float
    count: int


@dataclass
class ControlPlaneModel:
    """Shared queue state of the control plane, advanced batch by batch."""

    profile: Profile
    seed: int
    #: Every create request planned, and every instance's timeline, in plan order.
    creates: list[CreateRecord] = field(default_factory=list)
    timelines: list[Timeline] = field(default_factory=list)
    _workers: list[float] = field(default_factory=list)  # heap of free-at times
    _agent_free_at: float = 0.0
    _host_entries: int = 0
    _batches: int = 0

    def __post_init__(self) -> None:
        self._workers = [0.0] * self.profile.control_plane.cores

    def build_service_s(self) -> float:
        """Mean control-plane seconds per build, including the swap slowdown."""
        cp = self.profile.control_plane
        missing = max(0.0, cp.working_set_gb - cp.memory_gb) / cp.working_set_gb
        return cp.build_cpu_s * (1.0 + cp.swap_slowdown * missing)

    def port_service_s(self, entries: int) -> float:
        """DHCP agent seconds for one port when the host file has `entries`."""
        nt = self.profile.neutron
        rewrite = nt.host_file_rewrite_s + nt.host_file_entry_s * entries
        return nt.dhcp_updates_per_port * (rewrite + nt.privileged_call_s)

    def plan_batch(self, t0: float, count: int, ids: list[str]) -> BatchPlan:
        """Plan `count` instances requested at modelled time `t0`."""
        rng = random.Random(f"{self.seed}/batch/{self._batches}")
        self._batches += 1
        api = self.profile.nova_api
        timelines = []
        for i in range(count):
            visible = t0 + api.request_s + (i + 1) * api.per_instance_s
            timelines.append(self._plan_one(visible, ids[i], rng))
        api_seconds = api.request_s + count * api.per_instance_s
        self.creates.append(CreateRecord(t0, api_seconds, count))
        self.timelines.extend(timelines)
        return BatchPlan(api_seconds, timelines)

    def _plan_one(self, visible: float, server_id: str, rng: random.Random) -> Timeline:
        cp, nt, cm, gs = (
            self.profile.control_plane,
            self.profile.neutron,
            self.profile.compute,
            self.profile.guest,
        )
        # Draw every random number up front, in a fixed order, so one instance
        # gets the same draws under every profile and outcomes are comparable.
        ipv6 = rng.random() < gs.ipv6_share
        msg_id = f"{rng.getrandbits(128):032x}"
        jitter, disk_z, boot_z, ci_z = (rng.gauss(0.0, 1.0) for _ in range(4))
        host = f"compute-{rng.randrange(cm.hosts):02d}"
        lease_delay = rng.uniform(0.05, 0.5)
        # Scheduling: FIFO over `cores` workers; too long a wait is an RPC timeout.
        free_at = self._workers[0]
        start = max(visible, free_at)
        if start - visible > cp.rpc_timeout_s:
            fault = Fault(RPC_FAULT.format(msg_id=msg_id), 500, "MessagingTimeout")
            return Timeline(visible, visible + cp.rpc_timeout_s, fault, ipv6=ipv6)
        service = self.build_service_s() * math.exp(cp.build_jitter * jitter)
        scheduled = start + service
        heapq.heapreplace(self._workers, scheduled)

        # Port: created by nova-compute, then queued at the single DHCP agent.
        created = scheduled + nt.port_create_s
        bound = created + nt.port_bind_s
        self._host_entries += 1
        agent_start = max(created, self._agent_free_at)
        agent_done = agent_start + self.port_service_s(self._host_entries)
        self._agent_free_at = agent_done
        port_active = max(bound, agent_done)

        plug = created + cm.disk_prep_median_s * math.exp(cm.disk_prep_sigma * disk_z)
        timeout = cm.vif_plugging_timeout_s
        if timeout > 0 and port_active > plug + timeout:
            if cm.vif_plugging_is_fatal:
                message = VIF_FAULT.format(id=server_id)
                fault = Fault(message, 500, "VirtualInterfaceCreateException")
                failed = plug + timeout
                return Timeline(
                    visible, failed, fault, scheduled, host, created, bound,
                    port_deleted_at=failed, ipv6=ipv6, build_start_at=start,
                    agent_start_at=agent_start, agent_done_at=agent_done,
                )
            spawn_from = plug + timeout
        elif timeout > 0:
            spawn_from = max(plug, port_active)
        else:
            spawn_from = plug
        active = spawn_from + cm.spawn_s

        # Guest: DHCP until the port is ready or the client gives up.
        dhcp_start = active + gs.boot_to_dhcp_median_s * math.exp(gs.boot_to_dhcp_sigma * boot_z)
        lease = gave_up = phone_home = None
        if port_active <= dhcp_start + gs.dhcp_timeout_s:
            waited = max(0.0, port_active - dhcp_start)
            retries = math.ceil(waited / gs.dhcp_retry_s)
            lease = dhcp_start + retries * gs.dhcp_retry_s + lease_delay
            phone_home = lease + gs.cloud_init_median_s * math.exp(gs.cloud_init_sigma * ci_z)
        else:
            gave_up = dhcp_start + gs.dhcp_timeout_s
        return Timeline(
            visible, None, None, scheduled, host, created, bound, port_active, None,
            plug, active, dhcp_start, lease, gave_up, phone_home, ipv6,
            build_start_at=start, agent_start_at=agent_start, agent_done_at=agent_done,
        )


@dataclass(frozen=True)
class Outcome:
    """Counts of one planned batch, as the field notes report them."""

    count: int
    error: int
    active: int
    phoned_home: int
    dhcp_gave_up: int
    api_seconds: float
    proxy_504: bool


def summarise(profile: Profile, plan: BatchPlan) -> Outcome:
    """Outcome counts of a plan (for tests and `osbench sim` diagnostics)."""
    tls = plan.timelines
    return Outcome(
        count=len(tls),
        error=sum(t.failed_at is not None for t in tls),
        active=sum(t.active_at is not None for t in tls),
        phoned_home=sum(t.phone_home_at is not None for t in tls),
        dhcp_gave_up=sum(t.dhcp_gave_up_at is not None for t in tls),
        api_seconds=plan.api_seconds,
        proxy_504=plan.api_seconds > profile.nova_api.proxy_timeout_s,
    )


def plan_once(profile: Profile, seed: int, count: int) -> BatchPlan:
    """Plan one batch of `count` instances on a fresh cloud (model-only)."""
    model = ControlPlaneModel(profile, seed)
    return model.plan_batch(0.0, count, [f"server-{i}" for i in range(count)])
