"""Each instance's transitions at the cloud's own timestamps, on the case's clock.

A poll sees a transition late by up to `poll_interval_s`. The cloud stamps it
when it happens: Nova's `OS-SRV-USG:launched_at` (in the server listing the
tracker already makes) for ACTIVE, Neutron's port `updated_at` for the port's
ACTIVE (the listing that first shows it ACTIVE), the server's `updated` for
ERROR, and, once per failed instance at the end of the case, the failing event
of its instance actions (`GET /servers/{id}/os-instance-actions`, then the
create action's events).

A stamp is mapped onto the case's clock with the offset between the cloud's
clock and ours (`osbench.cloudclock`, from the HTTP Date headers of the case's
replies) and narrowed to what the polls saw: the transition happened after the
previous listing was sent and before the listing that showed it came back. A
stamp that contradicts the polls, or a case with no usable offset, keeps the
poll's time, and every time says which source it came from.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from osbench.cloudclient import CloudClient
from osbench.cloudclock import CloudTime, Offset, on_our_clock, parse_cloud_time
from osbench.errors import CloudError

#: Events of instance actions are shown to the server's owner from 2.51 (before,
#: to admins only, by Nova's default policy).
ACTIONS_MICROVERSION = "2.51"
#: The source of a time taken from the poll that first saw the transition.
POLL = "poll"


@dataclass
class Sighting:
    """One transition of one instance as the polls saw it (case seconds): it happened
    after `after_s` and by `seen_s`; `stamp` is the cloud's timestamp of it, if any."""

    seen_s: float
    after_s: float
    stamp: CloudTime | None = None
    stamp_source: str | None = None
    #: The instance action event that failed (ERROR from instance actions only).
    event: str | None = None


@dataclass(frozen=True)
class Resolved:
    """A transition's time (case seconds), where it came from, and how far the truth
    can be from it (None for a poll's time: late by up to the poll interval)."""

    t_s: float
    source: str
    uncertainty_s: float | None


def resolve(sighting: Sighting, offset: Offset | None, t0: float) -> Resolved:
    """The stamp's time on the case's clock, within the polls' bounds; else the poll's."""
    if sighting.stamp is not None and offset is not None and sighting.stamp_source:
        mapped = on_our_clock(sighting.stamp, offset, not_before=t0 + sighting.after_s,
                              not_after=t0 + sighting.seen_s)
        if mapped is not None:
            return Resolved(mapped.value_s - t0, sighting.stamp_source, mapped.uncertainty_s)
    return Resolved(sighting.seen_s, POLL, None)


def stamp_of(body: dict[str, Any], key: str) -> CloudTime | None:
    """The timestamp `key` of a server or port body, as an interval (None if absent)."""
    return parse_cloud_time(body.get(key))


@dataclass(frozen=True)
class FailedEvent:
    """The instance action event that failed: its name and when it finished."""

    event: str
    finished: CloudTime


async def failed_event(client: CloudClient, server_id: str) -> FailedEvent | None:
    """The last failed event of the server's create action (two requests), or None
    when the cloud shows none (no events for this user, none failed, no action)."""
    base = f"/servers/{server_id}/os-instance-actions"
    listed = await client.get_json("compute", base, microversion=ACTIONS_MICROVERSION)
    actions = [a for a in listed.get("instanceActions") or []
               if isinstance(a, dict) and a.get("action") == "create" and a.get("request_id")]
    if not actions:
        return None
    shown = await client.get_json("compute", f"{base}/{actions[0]['request_id']}",
                                  microversion=ACTIONS_MICROVERSION)
    failed = []
    for event in (shown.get("instanceAction") or {}).get("events") or []:
        finished = parse_cloud_time(event.get("finish_time"))
        if str(event.get("result")).lower() == "error" and finished is not None:
            failed.append(FailedEvent(str(event.get("event")), finished))
    return max(failed, key=lambda e: e.finished.high, default=None)


async def failed_events(client: CloudClient, server_ids: list[str], concurrency: int,
                        ) -> dict[str, FailedEvent | str]:
    """`failed_event` of each server (at most `concurrency` at once): the event, or
    the error text when the lookup failed."""
    gate = asyncio.Semaphore(concurrency)
    out: dict[str, FailedEvent | str] = {}

    async def one(server_id: str) -> None:
        async with gate:
            try:
                found = await failed_event(client, server_id)
            except CloudError as exc:
                out[server_id] = str(exc)
                return
        if found is not None:
            out[server_id] = found

    await asyncio.gather(*(one(s) for s in server_ids))
    return out
