"""Creating and tracking one boot case's instances until each has an outcome.

API load per poll cycle is fixed: one server listing (the case's name prefix,
`changes-since` the newest change already seen, all pages) and one port
listing per network, whether the case has 10 instances or 1000. No
per-server GET anywhere.

Times are seconds on the target's clock (modelled seconds on the simulated
cloud), measured from the instance's own create request. ACTIVE, port ACTIVE
and ERROR times are the cloud's own timestamps (`launched_at`, the port's
`updated_at`, the failing instance action event, once per failed instance at
the end), mapped onto the case's clock with the offset between the cloud's
clock and ours estimated from the replies' Date headers (`cloud_times`,
`osbench.cloudclock`); where a stamp is missing or contradicts the polls, the
poll that first saw the transition (late by up to `poll_interval_s`). Each
instance row says which source each time came from. Phone-home times are
taken by the registration server when the request arrives.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from osbench.cloudclient import CloudClient, CloudTarget, RequestRecord, isoformat_z
from osbench.cloudclock import OffsetEstimator
from osbench.errors import CloudError, CloudOutcomeUnknown
from osbench.kinds import CaseContext
from osbench.kinds.boot import cloud_times, console_log
from osbench.kinds.boot.cleanup import owned
from osbench.kinds.boot.phonehome import RegistrationServer

if TYPE_CHECKING:
    from osbench.kinds.boot.params import BootParams

#: Exactly one per instance.
OUTCOMES = ("ok", "error", "no_phone_home", "not_created", "build_timeout")

#: Nova's `changes-since` has one-second precision and compares `updated_at`
#: committed by several services; re-reading the last 2 s costs a few rows
#: and never misses a change.
CHANGES_SINCE_OVERLAP = timedelta(seconds=2)
#: Console logs fetched at once for silent instances.
CONSOLE_CONCURRENCY = 8


@dataclass
class Instance:
    """What was seen of one requested instance; times are case-relative seconds."""

    name: str
    batch: int
    sent_s: float
    id: str | None = None
    status: str | None = None
    build_s: float | None = None
    active_s: float | None = None
    error_s: float | None = None
    port_active_s: float | None = None
    phone_home_s: float | None = None
    address_family: str | None = None
    fault_message: str | None = None
    fault_code: int | None = None
    console_class: str | None = None
    create_failed: bool = False
    #: ACTIVE, port ACTIVE, ERROR as the polls saw them, with the cloud's stamps.
    active_seen: cloud_times.Sighting | None = None
    port_seen: cloud_times.Sighting | None = None
    error_seen: cloud_times.Sighting | None = None
    #: Where the final times came from (set at the end of the case).
    resolved: dict[str, cloud_times.Resolved] | None = None
    #: When a listing first showed it: its port could be told apart from then on.
    known_s: float | None = None

    def since_sent(self, t: float | None) -> float | None:
        return None if t is None else t - self.sent_s

    @property
    def settled(self) -> bool:
        """Nothing more can change its outcome."""
        return self.create_failed or self.phone_home_s is not None or self.status == "ERROR"


@dataclass
class CreateSend:
    """One create request: the names it asks for and, once answered, its outcome
    (`accepted`, `failed` or `unknown`); None while no reply has come."""

    batch: int
    names: list[str]
    sent_s: float
    outcome: str | None = None
    task: asyncio.Future[None] | None = None


def outcome(inst: Instance, active_timeout_s: float) -> str:
    """The one outcome of an instance, at the end of its case."""
    if inst.phone_home_s is not None:
        return "ok"
    if inst.create_failed or inst.id is None:
        return "not_created"
    if inst.status == "ERROR" or inst.error_s is not None:
        return "error"
    active = inst.since_sent(inst.active_s)
    if active is None or active > active_timeout_s:
        return "build_timeout"
    return "no_phone_home"


class Tracker:
    """Sends the creates and polls until every instance settled or time is up."""

    def __init__(self, ctx: CaseContext, client: CloudClient, registration: RegistrationServer,
                 *, prefix: str, batch_sizes: list[int], params: BootParams,
                 server: dict[str, Any], network_ids: list[str]) -> None:
        self.ctx = ctx
        self.client = client
        self.registration = registration
        self.prefix = prefix
        self.batch_sizes = batch_sizes
        self.params = params
        self.server = server
        self.network_ids = network_ids
        self.instances: dict[str, Instance] = {}
        self.by_id: dict[str, Instance] = {}
        #: One per create request sent, in order; each runs to its reply even when
        #: the case is cancelled, so cleanup knows what a create can still add.
        self.sends: list[CreateSend] = []
        self.creates_done = False
        self.last_sent_s = 0.0
        #: The case's start: `sent_s` and poll times share the monitors' origin.
        self.t0 = ctx.t0
        self._newest_update: datetime | None = None
        self._cycle = 0
        #: When the previous server listing, and each network's port listing, was
        #: sent: a transition first seen in the next one happened after it.
        self._listed_at: float | None = None
        self._ports_listed_at: dict[str, float] = {}
        #: The cloud's clock against ours, from every reply of the case; its
        #: `cloud_clock` row once the case ends.
        self.offsets = OffsetEstimator()
        self.clock_row: dict[str, Any] | None = None

    def _on_reply(self, record: RequestRecord) -> None:
        if record.status:
            self.offsets.add(record.sent, record.sent + record.latency_s, record.date)

    def now_s(self) -> float:
        return self.ctx.clock.monotonic() - self.t0

    def outcome_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for inst in self.instances.values():
            counts[outcome(inst, self.params.active_timeout_s)] += 1
        return counts

    # -- creating ----------------------------------------------------------
    async def _create_all(self) -> None:
        for batch, size in enumerate(self.batch_sizes, 1):
            if batch > 1 and self.params.batch is not None:
                await self.ctx.clock.sleep(self.params.batch.interval_s)
            await self._create(batch, size)
        self.creates_done = True

    async def _create(self, batch: int, size: int) -> None:
        name = f"{self.prefix}-b{batch}"
        # Nova names a multi-create's servers <name>-1..<name>-N, a single one <name>.
        names = [name] if size == 1 else [f"{name}-{i}" for i in range(1, size + 1)]
        sent = self.now_s()
        self.last_sent_s = sent
        batch_instances = [Instance(name=n, batch=batch, sent_s=sent) for n in names]
        self.instances.update({i.name: i for i in batch_instances})
        send = CreateSend(batch=batch, names=names, sent_s=sent)
        self.sends.append(send)
        # Shielded: cancelling the case does not stop a request already in the
        # worker thread, so its reply is still awaited and journaled, and cleanup
        # can tell whether it may still add servers (issue 13: 893 leaked).
        send.task = asyncio.ensure_future(self._send(send, batch_instances))
        await asyncio.shield(send.task)

    async def _send(self, send: CreateSend, batch_instances: list[Instance]) -> None:
        name, size = f"{self.prefix}-b{send.batch}", len(send.names)
        row: dict[str, Any] = {"batch": send.batch, "size": size, "name": name,
                               "sent_s": send.sent_s}
        try:
            reply = await self.client.create_servers(
                {**self.server, "name": name, "min_count": size, "max_count": size})
        except CloudOutcomeUnknown as exc:
            row |= {"outcome": "unknown", "status": exc.status_code, "error": str(exc)}
        except CloudError as exc:
            if exc.status_code is not None and exc.status_code >= 500:
                row |= {"outcome": "unknown", "status": exc.status_code, "error": str(exc)}
            else:
                row |= {"outcome": "failed", "status": exc.status_code, "error": str(exc)}
                for inst in batch_instances:
                    inst.create_failed = True
        else:
            row |= {"outcome": "accepted", "status": reply.status,
                    "reservation_id": reply.reservation_id, "request_id": reply.request_id}
        send.outcome = row["outcome"]
        row["reply_s"] = self.now_s()
        self.ctx.record("creates", row)

    # -- what a create can still add (for cleanup) ---------------------------
    def outcome_deadline(self, wait_s: float) -> float:
        """Clock time after which no create of the case can still add a server:
        `wait_s` after the last request was sent."""
        return self.t0 + self.last_sent_s + wait_s

    async def settle_creates(self, until: float) -> int:
        """Wait until every create request sent has its reply, or the clock passes
        `until`; returns how many are still unanswered."""
        pending = {s.task for s in self.sends if s.task is not None and not s.task.done()}
        if pending:
            timer = asyncio.ensure_future(self.ctx.clock.sleep(until - self.ctx.clock.monotonic()))
            try:
                while pending and not timer.done():
                    _, pending = await asyncio.wait(pending | {timer},
                                                    return_when=asyncio.FIRST_COMPLETED)
                    pending.discard(timer)
            finally:
                timer.cancel()
        return sum(s.outcome is None for s in self.sends)

    def names_that_may_appear(self) -> list[str]:
        """Server names a create may still add: those of requests unanswered or of
        unknown outcome (a proxy 504, a timeout) that were never seen. An accepted
        multi-create has made every record before its 202, a refused one none."""
        return [n for s in self.sends if s.outcome in (None, "unknown") for n in s.names
                if self.instances[n].id is None]

    # -- tracking ----------------------------------------------------------
    async def run(self) -> None:
        """Create, then poll until all settled or the phone-home deadline passed."""
        creator = asyncio.create_task(self._create_all())
        self.client.observers.append(self._on_reply)
        try:
            while True:
                if creator.done():
                    creator.result()  # a bug in creating must not pass silently
                await self._poll()
                if self.creates_done:  # set by _create_all as its last step
                    if all(i.settled for i in self.instances.values()):
                        break
                    if self.now_s() >= self.last_sent_s + self.params.phone_home_timeout_s:
                        break
                await self.ctx.clock.sleep(self.params.poll_interval_s)
        finally:
            self.client.observers.remove(self._on_reply)
            if not creator.done():
                creator.cancel()
                await asyncio.gather(creator, return_exceptions=True)

    async def _poll(self) -> None:
        self._cycle += 1
        before = self.client.requests_made
        since = (isoformat_z(self._newest_update - CHANGES_SINCE_OVERLAP)
                 if self._newest_update else None)
        sent = self.now_s()
        servers = await self.client.list_servers(name_regex=f"^{self.prefix}-",
                                                 changes_since=since)
        now = self.now_s()
        for server in servers:
            self._observe(server, now, self._listed_at)
        self._listed_at = sent
        ports_seen = 0
        for network_id in self.network_ids:
            sent = self.now_s()
            ports = await self.client.list_ports(network_id=network_id)
            ports_seen += len(ports)
            now = self.now_s()
            after = self._ports_listed_at.get(network_id)
            self._ports_listed_at[network_id] = sent
            for port in ports:
                inst = self.by_id.get(str(port.get("device_id")))
                if inst is not None and port.get("status") == "ACTIVE" and (
                        inst.port_active_s is None):
                    inst.port_active_s = now
                    # The previous port listing bounds it only if it could tell the
                    # port was this instance's (its server was known by then).
                    known = after is not None and inst.known_s is not None and (
                        inst.known_s <= after)
                    inst.port_seen = self._sighting(inst, now, after if known else None,
                                                    port, "updated_at")
                    self._event(inst, "port_active", now)
        self._match_arrivals()
        self.ctx.record("polls", {
            "cycle": self._cycle, "t_s": now, "requests": self.client.requests_made - before,
            "servers_listed": len(servers), "ports_listed": ports_seen,
            "changes_since": since,
        })
        self._show_progress()

    @staticmethod
    def _sighting(inst: Instance, now: float, after: float | None, body: dict[str, Any],
                  key: str | None, source: str | None = None) -> cloud_times.Sighting:
        """A transition first seen at `now`: after the previous listing (`after`) and
        the create, with the cloud's stamp `key` of `body`."""
        return cloud_times.Sighting(
            seen_s=now, after_s=inst.sent_s if after is None else max(after, inst.sent_s),
            stamp=cloud_times.stamp_of(body, key) if key else None,
            stamp_source=source or key)

    def _observe(self, server: dict[str, Any], now: float, after: float | None) -> None:
        inst = self.instances.get(str(server.get("name")))
        if inst is None or not owned(server, self.ctx.run_id):
            return
        if inst.id is None:
            inst.id = str(server["id"])
            inst.known_s = now
            self.by_id[inst.id] = inst
            self.registration.expect([inst.id])
        updated = server.get("updated")
        if isinstance(updated, str):
            stamp = datetime.fromisoformat(updated.replace("Z", "+00:00"))
            if self._newest_update is None or stamp > self._newest_update:
                self._newest_update = stamp
        status = str(server.get("status"))
        inst.status = status
        if status == "BUILD" and inst.build_s is None:
            inst.build_s = now
            self._event(inst, "build", now)
        elif status == "ACTIVE" and inst.active_s is None:
            inst.active_s = now
            inst.active_seen = self._sighting(inst, now, after, server, "OS-SRV-USG:launched_at",
                                              "launched_at")
            self._event(inst, "active", now)
        elif status == "ERROR" and inst.error_s is None:
            inst.error_s = now
            inst.error_seen = self._sighting(inst, now, after, server, "updated")
            fault = server.get("fault") or {}
            inst.fault_message = fault.get("message")
            inst.fault_code = fault.get("code")
            self._event(inst, "error", now)
        elif status in ("DELETED", "SOFT_DELETED") and inst.error_s is None:
            inst.status = "ERROR"
            inst.error_s = now
            inst.error_seen = self._sighting(inst, now, after, server, None)
            inst.fault_message = f"server was {status.lower()} during the run"
            self._event(inst, "error", now)

    def _match_arrivals(self) -> None:
        """Give each instance its first phone-home (arrivals may precede the listing)."""
        for arrival in self.registration.arrivals:
            inst = self.by_id.get(arrival.instance_id)
            if inst is not None and inst.phone_home_s is None:
                inst.phone_home_s = arrival.monotonic - self.t0
                inst.address_family = arrival.address_family
                self._event(inst, "phone_home", inst.phone_home_s)

    def _event(self, inst: Instance, event: str, t: float,
               source: str = cloud_times.POLL) -> None:
        self.ctx.record("timeline", {"instance_id": inst.id, "name": inst.name,
                                     "batch": inst.batch, "event": event,
                                     "t_s": inst.since_sent(t), "source": source})

    def _show_progress(self) -> None:
        values = self.instances.values()
        self.ctx.progress(
            requested=len(self.instances),
            build=sum(i.status == "BUILD" for i in values),
            active=sum(i.active_s is not None for i in values),
            phoned_home=sum(i.phone_home_s is not None for i in values),
            failed=sum(i.status == "ERROR" or i.create_failed for i in values),
        )

    # -- the end -----------------------------------------------------------
    async def _cloud_times(self) -> None:
        """Each sighting's time from the cloud's stamp where it holds (see cloud_times):
        first the failed instances' instance actions, then the offset, then the times.
        Journals one `cloud_clock` row and a timeline row per time a stamp moved."""
        failed = [i.id for i in self.instances.values() if i.id is not None
                  and i.error_seen is not None and i.error_seen.stamp_source == "updated"]
        self.client.observers.append(self._on_reply)
        try:
            found = await cloud_times.failed_events(self.client, failed, CONSOLE_CONCURRENCY)
        finally:
            self.client.observers.remove(self._on_reply)
        for server_id, event in found.items():
            seen = self.by_id[server_id].error_seen
            assert seen is not None
            if isinstance(event, str):
                self.ctx.record("instance_actions", {"instance_id": server_id, "error": event})
                continue
            seen.stamp, seen.stamp_source, seen.event = (event.finished, "instance_action",
                                                         event.event)
        offset = self.offsets.estimate()
        counts: dict[str, dict[str, int]] = {}
        for inst in self.instances.values():
            inst.resolved = {}
            for what, event, seen in (("active", "active", inst.active_seen),
                                      ("port_active", "port_active", inst.port_seen),
                                      ("error", "error", inst.error_seen)):
                if seen is None:
                    continue
                resolved = cloud_times.resolve(seen, offset, self.t0)
                inst.resolved[what] = resolved
                tally = counts.setdefault(f"{what}_sources", {})
                tally[resolved.source] = tally.get(resolved.source, 0) + 1
                if resolved.source != cloud_times.POLL:
                    self._event(inst, event, resolved.t_s, resolved.source)
                setattr(inst, {"active": "active_s", "port_active": "port_active_s",
                               "error": "error_s"}[what], resolved.t_s)
        # Our wall clock against the run's clock, read together once, so the offset
        # reads as "the cloud's clock minus ours".
        mono, wall = self.ctx.clock.monotonic(), self.ctx.clock.now().timestamp()
        row: dict[str, Any] = {
            "samples": self.offsets.samples, "unreadable": self.offsets.unreadable,
            "dropped": self.offsets.dropped, "clock_origin_s": self.t0,
            **counts}
        if offset is not None:  # at the case's origin (a rate other than 1 moves it)
            row |= {"offset_s": offset.at(self.t0) - (wall - mono), "rate": offset.rate,
                    "uncertainty_s": offset.uncertainty_s, "agreeing": offset.agreeing,
                    "cloud_time_at_origin": isoformat_us(
                        offset.offset_s + offset.rate * self.t0)}
        self.clock_row = row
        self.ctx.record("cloud_clock", row)
        if isinstance(self.ctx.target, CloudTarget):  # and in the manifest's target entry
            self.ctx.target.cloud_clock[self.ctx.case.case_id] = row

    async def finish(self) -> None:
        """Classify silent instances from their console logs; record one row each."""
        self._match_arrivals()
        await self._cloud_times()
        silent = [i for i in self.instances.values()
                  if outcome(i, self.params.active_timeout_s) == "no_phone_home"]
        gate = asyncio.Semaphore(CONSOLE_CONCURRENCY)

        async def read_console(inst: Instance) -> None:
            assert inst.id is not None
            async with gate:
                try:
                    text = await self.client.console_output(inst.id,
                                                            self.params.console_length)
                except CloudError as exc:
                    inst.console_class = "console_unavailable"
                    self.ctx.record("consoles", {"instance_id": inst.id, "error": str(exc)})
                    return
            inst.console_class = console_log.classify(text)
            self.ctx.record("consoles", {"instance_id": inst.id, "name": inst.name,
                                         "class": inst.console_class, "output": text})

        await asyncio.gather(*(read_console(i) for i in silent))
        for inst in self.instances.values():
            self.ctx.record("instances", {
                "instance_id": inst.id, "name": inst.name, "batch": inst.batch,
                "outcome": outcome(inst, self.params.active_timeout_s),
                "status": inst.status,
                "time_to_build_s": inst.since_sent(inst.build_s),
                "time_to_active_s": inst.since_sent(inst.active_s),
                "time_to_port_active_s": inst.since_sent(inst.port_active_s),
                "time_to_error_s": inst.since_sent(inst.error_s),
                "time_to_phone_home_s": inst.since_sent(inst.phone_home_s),
                **_sources(inst),
                "fault": inst.fault_message, "fault_code": inst.fault_code,
                "console_class": inst.console_class, "address_family": inst.address_family,
            })


def _sources(inst: Instance) -> dict[str, Any]:
    """Per transition: where its time came from, how far the truth can be from it, and
    the poll's own time (kept for comparison); the failed event's name for ERROR."""
    out: dict[str, Any] = {}
    for what, seen in (("active", inst.active_seen), ("port_active", inst.port_seen),
                       ("error", inst.error_seen)):
        resolved = (inst.resolved or {}).get(what)
        out[f"{what}_source"] = resolved.source if resolved else None
        out[f"{what}_uncertainty_s"] = resolved.uncertainty_s if resolved else None
        out[f"time_to_{what}_poll_s"] = inst.since_sent(seen.seen_s) if seen else None
    out["error_event"] = inst.error_seen.event if inst.error_seen else None
    return out


def isoformat_us(posix_s: float) -> str:
    """`2026-11-30T21:00:00.123456Z` of POSIX seconds."""
    return datetime.fromtimestamp(posix_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
