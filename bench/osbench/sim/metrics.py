"""The modelled control plane's state at a modelled instant, as Prometheus text.

Every figure is read from what `ControlPlaneModel` planned (its create
requests and each instance's timeline, queue times included), never from a
number written into a profile for display: the DHCP agent's backlog is the
ports it has not finished at `now`, the conductor's busy time is the sum of
its builds' worker spans, and so on. `osbench.sim.server` serves it on the
admin-only `GET /osbench-sim/metrics`; `bench/osbench/sim/profiles/README.md`
says what each metric comes from.

A reading must stay cheap during a 10,000-instance run, so `ControlPlaneView`
keeps each kind of span sorted, with prefix sums, and answers a reading by
bisection: how many spans are open at `now`, the oldest of them, and busy
time as sum(min(now, end)) - sum(min(now, start)). The sorted views are
rebuilt when the model has planned more (once per create request); ports
deleted through the API are corrections, applied per reading.

Deleted servers and ports: the model does not re-plan, so the work planned for
them (their builds, the DHCP agent's notifications for their ports) still
counts in busy time and root-helper calls; a deleted port leaves the DHCP
backlog and BUILD at the instant it is deleted.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import cast

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from osbench.sim.model import ControlPlaneModel, Timeline

#: The Prometheus text exposition format this module writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SERVICES = ("nova-api", "nova-conductor", "neutron-server", "neutron-dhcp-agent")
_NEVER = math.inf


@dataclass(frozen=True)
class Snapshot:
    """The control plane at one modelled instant; one field per metric."""

    modelled_time_s: float
    #: Busy core-seconds up to now, and cores, per service in SERVICES.
    busy_seconds: dict[str, float]
    cores: dict[str, int]
    dhcp_agent_backlog_ports: int
    dhcp_agent_oldest_wait_s: float
    ports_build: int
    conductor_queue_builds: int
    root_helper_calls_in_flight: int
    root_helper_calls_total: int
    proxy_creates_in_flight: int
    create_oldest_in_flight_s: float
    proxy_timeout_s: float


class Spans:
    """Half-open spans [starts[i], ends[i]), keyed by their index i.

    Answers by bisection on sorted copies with prefix sums: how many spans are
    open at a time, how long they were busy up to it, and (with `oldest`) which
    open one started first. An end before its start is an empty span at the start."""

    def __init__(self, starts: list[float], ends: list[float], *, oldest: bool = False) -> None:
        self.starts = starts
        self.ends = [max(s, e) for s, e in zip(starts, ends, strict=True)]
        self._starts = sorted(starts)
        self._ends = sorted(self.ends)
        self._start_sums = [0.0, *accumulate(self._starts)]
        self._end_sums = [0.0, *accumulate(self._ends)]
        self._earliest = self._earliest_from_each_end() if oldest else []

    def open(self, now: float) -> int:
        """Spans with start <= now < end."""
        return bisect_right(self._starts, now) - bisect_right(self._ends, now)

    def is_open(self, key: int, now: float) -> bool:
        return self.starts[key] <= now < self.ends[key]

    def busy(self, now: float) -> float:
        """The sum over spans of the time each was open up to `now`:
        sum(min(now, end)) - sum(min(now, start))."""
        return _sum_min(self._ends, self._end_sums, now) - _sum_min(
            self._starts, self._start_sums, now)

    def oldest_open(self, now: float) -> tuple[float, int] | None:
        """(start, key) of the open span that started first, None if none is open."""
        assert len(self._earliest) == len(self._ends), "made without oldest=True"
        first_unfinished = bisect_right(self._ends, now)
        if first_unfinished == len(self._ends):
            return None
        start, key = self._earliest[first_unfinished]
        return (start, key) if start <= now else None

    def _earliest_from_each_end(self) -> list[tuple[float, int]]:
        """The earliest (start, key) of the spans from each position in end order on:
        if the spans not yet ended at `now` include an open one, it is that one."""
        earliest: list[tuple[float, int]] = []
        best = (_NEVER, -1)
        for key in sorted(range(len(self.ends)), key=self.ends.__getitem__, reverse=True):
            if self.starts[key] < best[0]:
                best = (self.starts[key], key)
            earliest.append(best)
        return earliest[::-1]


def _sum_min(values: list[float], sums: list[float], now: float) -> float:
    """sum(min(now, v) for v in values), `values` sorted with prefix `sums`."""
    k = bisect_right(values, now)
    return sums[k] + (len(values) - k) * now


def union(starts: list[float], ends: list[float]) -> tuple[list[float], list[float]]:
    """Spans merged where they overlap: the time at least one is open."""
    merged: list[list[float]] = []
    for start, end in sorted(zip(starts, ends, strict=True)):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [m[0] for m in merged], [m[1] for m in merged]


class ControlPlaneView:
    """Readings of one model's plan at any modelled instant (see the module doc)."""

    def __init__(self, model: ControlPlaneModel) -> None:
        self.model = model
        self._planned = (-1, -1)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the sorted views if the model planned more since the last call.

        ~20 ms for 10,000 instances; each snapshot() calls it, so a caller that
        must keep every reading fast calls it right after planning."""
        model = self.model
        if self._planned == (len(model.timelines), len(model.creates)):
            return
        self._planned = (len(model.timelines), len(model.creates))
        builds = model.timelines
        ports = [tl for tl in builds if tl.port_created_at is not None]
        self.ports: list[Timeline] = ports
        t0s = [c.t0 for c in model.creates]
        answered = [c.t0 + c.api_seconds for c in model.creates]
        self.creates = Spans(t0s, answered, oldest=True)
        self.api_busy = Spans(*union(t0s, answered))
        # A build waits for a worker from when it is visible until one starts it, or
        # until it times out in the queue (then it never starts); the worker is busy
        # until it is scheduled.
        visible = [tl.visible_at for tl in builds]
        worker = [_or(tl.build_start_at, tl.failed_at) for tl in builds]
        self.conductor_queue = Spans(visible, worker)
        self.conductor_busy = Spans(worker, [_or(tl.scheduled_at, 0.0) for tl in builds])
        # Every port's times are set when its build was scheduled: float, never None.
        created = cast(list[float], [tl.port_created_at for tl in ports])
        port_create_s = model.profile.neutron.port_create_s
        self.server_busy = Spans([c - port_create_s for c in created], created)
        self._agent_starts = cast(list[float], [tl.agent_start_at for tl in ports])
        self._agent_done = agent_done = cast(list[float], [tl.agent_done_at for tl in ports])
        self.agent_busy = Spans(self._agent_starts, agent_done)
        # A port waits at the agent from its creation until the agent is done with it,
        # and is BUILD from its binding until ACTIVE; both end if the plan deletes it.
        gone = [_or(tl.port_deleted_at, _NEVER) for tl in ports]
        self.backlog = Spans(created, [min(d, g) for d, g in zip(agent_done, gone, strict=True)],
                             oldest=True)
        self.build = Spans(cast(list[float], [tl.port_bound_at for tl in ports]),
                           [min(_or(tl.port_active_at, _NEVER), g)
                            for tl, g in zip(ports, gone, strict=True)])

    def snapshot(self, now: float,
                 port_deleted_at: Sequence[float | None] = ()) -> Snapshot:
        """The control plane at modelled time `now`.

        `port_deleted_at`: when each planned port was deleted through the API
        (None: not deleted), in plan order; empty when none was."""
        self.refresh()
        if port_deleted_at and len(port_deleted_at) != len(self.ports):
            raise ValueError(f"{len(port_deleted_at)} port deletion times for "
                             f"{len(self.ports)} planned ports")
        profile = self.model.profile
        cores = {"nova-api": 1, "nova-conductor": profile.control_plane.cores,
                 "neutron-server": profile.control_plane.cores, "neutron-dhcp-agent": 1}
        busy = {"nova-api": self.api_busy.busy(now),
                "nova-conductor": self.conductor_busy.busy(now),
                "neutron-server": self.server_busy.busy(now),
                "neutron-dhcp-agent": self.agent_busy.busy(now)}
        gone = [i for i, t in enumerate(port_deleted_at) if t is not None and t <= now]
        backlog_gone = {i for i in gone if self.backlog.is_open(i, now)}
        backlog = self.backlog.open(now) - len(backlog_gone)
        oldest = self.backlog.oldest_open(now)
        if oldest is not None and oldest[1] in backlog_gone:
            oldest = _oldest_open_except(self.backlog, now, backlog_gone)
        creates_oldest = self.creates.oldest_open(now)
        calls_total, calls_now = self._root_helper_calls(now)
        return Snapshot(
            modelled_time_s=now,
            busy_seconds=busy,
            cores=cores,
            dhcp_agent_backlog_ports=backlog,
            dhcp_agent_oldest_wait_s=0.0 if oldest is None else now - oldest[0],
            ports_build=self.build.open(now) - sum(self.build.is_open(i, now) for i in gone),
            conductor_queue_builds=self.conductor_queue.open(now),
            root_helper_calls_in_flight=calls_now,
            root_helper_calls_total=calls_total,
            proxy_creates_in_flight=self.creates.open(now),
            create_oldest_in_flight_s=0.0 if creates_oldest is None else now - creates_oldest[0],
            proxy_timeout_s=profile.nova_api.proxy_timeout_s,
        )

    def _root_helper_calls(self, now: float) -> tuple[int, int]:
        """(calls started, calls running) at `now`.

        The agent serves ports one at a time, in plan order; a port's service is
        `dhcp_updates_per_port` equal segments, each a host-file rewrite and then
        one privileged call of `privileged_call_s`."""
        neutron = self.model.profile.neutron
        updates = neutron.dhcp_updates_per_port
        # The agent's starts rise in plan order: each port starts after the last is done.
        current = bisect_right(self._agent_starts, now) - 1
        if current < 0 or updates <= 0:
            return 0, 0
        start, done = self._agent_starts[current], self._agent_done[current]
        if now >= done:
            return updates * (current + 1), 0
        segment = (done - start) / updates
        rewrite = max(0.0, segment - neutron.privileged_call_s)
        whole = min(updates - 1, int((now - start) // segment))
        calling = now - start - whole * segment >= rewrite
        return updates * current + whole + calling, int(calling)


def _or(value: float | None, default: float | None) -> float:
    """`value`, or `default` when it is None (a time that never comes is inf)."""
    chosen = default if value is None else value
    return _NEVER if chosen is None else chosen


def _oldest_open_except(spans: Spans, now: float, left_out: set[int]) -> tuple[float, int] | None:
    """The oldest open span not in `left_out` (a scan: only when the API deleted the oldest)."""
    open_spans = ((start, key) for key, start in enumerate(spans.starts)
                  if key not in left_out and spans.is_open(key, now))
    return min(open_spans, default=None)


def snapshot(model: ControlPlaneModel, now: float) -> Snapshot:
    """One reading of a model's plan (no API deletions); a view serves many faster."""
    return ControlPlaneView(model).snapshot(now)


def render(snap: Snapshot) -> str:
    """`snap` in the Prometheus text exposition format 0.0.4 (see CONTENT_TYPE)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(snap))
    return generate_latest(registry).decode("utf-8")


class _Families(Collector):
    """A collector of one snapshot's metric families."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        s = self.snap
        busy = CounterMetricFamily(
            "osbench_sim_service_busy_seconds_total",
            "Modelled busy core-seconds of a control-plane service up to the modelled instant",
            labels=["service"])
        cores = GaugeMetricFamily(
            "osbench_sim_service_cores", "Cores the modelled service can use", labels=["service"])
        for service in SERVICES:
            busy.add_metric([service], s.busy_seconds[service])
            cores.add_metric([service], s.cores[service])
        yield busy
        yield cores
        gauges = [
            ("osbench_sim_dhcp_agent_backlog_ports",
             "Ports created that the DHCP agent has not finished (waiting or in service)",
             s.dhcp_agent_backlog_ports),
            ("osbench_sim_dhcp_agent_oldest_wait_seconds",
             "Age of the oldest port in the DHCP agent's backlog (0 when it is empty)",
             s.dhcp_agent_oldest_wait_s),
            ("osbench_sim_ports_build", "Ports that exist, are bound and are not ACTIVE (BUILD)",
             s.ports_build),
            ("osbench_sim_conductor_queue_builds",
             "Builds visible and waiting for a conductor worker (not started, not timed out)",
             s.conductor_queue_builds),
            ("osbench_sim_root_helper_calls_in_flight",
             "Privileged calls through the DHCP agent's root helper running now",
             s.root_helper_calls_in_flight),
        ]
        for name, text, value in gauges:
            yield GaugeMetricFamily(name, text, value=value)
        yield CounterMetricFamily(
            "osbench_sim_root_helper_calls_total",
            "Privileged calls through the DHCP agent's root helper started",
            value=s.root_helper_calls_total)
        gauges = [
            ("osbench_sim_proxy_creates_in_flight",
             "Create requests that arrived and that nova-api has not finished",
             s.proxy_creates_in_flight),
            ("osbench_sim_create_oldest_in_flight_seconds",
             "Age of the oldest create request nova-api has not finished (0 when none)",
             s.create_oldest_in_flight_s),
            ("osbench_sim_proxy_timeout_seconds",
             "The reverse proxy's timeout in front of nova-api", s.proxy_timeout_s),
            ("osbench_sim_modelled_time_seconds", "The modelled instant of this reading",
             s.modelled_time_s),
        ]
        for name, text, value in gauges:
            yield GaugeMetricFamily(name, text, value=value)
