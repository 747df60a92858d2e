"""Nova's instance actions (`os-instance-actions`), read from the model's timelines.

Every server has a `create` action, started when nova-api made its record, with
Nova's events for a build: the conductor's `conductor_schedule_and_build_instances`
(its worker picks the build up and schedules it) and the compute host's
`compute__do_build_and_run_instance` (until ACTIVE or the failure). A failed
event has `result: Error` and makes its action's `message` "Error"; an event
not finished yet has neither `finish_time` nor `result`. A deleted server also
shows a `delete` action (from 2.21 actions of deleted servers are listed).

Policy as Nova's defaults (nova/api/openstack/compute/instance_actions.py):
before 2.51 events are shown to admins only; from 2.51 to the owner too,
without `traceback`; the event's `host` to admins from 2.62, its `hostId` to
everyone from 2.62; `updated_at` from 2.58; the event's `details` from 2.84.
An admin sees events at every microversion, with `traceback` (null: the
model's failures carry none).

Times are the model's, in modelled wall time with microseconds, naive UTC as
Nova writes them (`2026-11-30T21:00:00.123456`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from osbench.sim.nova import microversion, respond
from osbench.sim.server import CLOUD, ApiError, Route, is_admin
from osbench.sim.state import Server, host_id

#: Where the conductor's events run (a compute event's host is the server's).
CONDUCTOR_HOST = "controller"
_REQUEST_IDS = uuid.UUID("5b1e4a4e-0000-4000-8000-0ac7104e0000")


def stamp(origin: datetime, t: float) -> str:
    """Nova's timestamp of modelled time `t`: microseconds, naive UTC."""
    return (origin + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S.%f")


def request_id(server: Server, action: str) -> str:
    """The request id of one of a server's actions: a create's is its reservation's
    (one multi-create request), stable across runs."""
    key = server.reservation_id if action == "create" else f"{server.id}/{action}"
    return f"req-{uuid.uuid5(_REQUEST_IDS, key)}"


def _events(server: Server, now: float) -> list[dict[str, Any]]:
    """The create action's events known at `now`, raw (times modelled, None = not yet)."""
    tl = server.timeline
    fault = tl.fault.message if tl.fault is not None else None
    failed = tl.failed_at if tl.failed_at is not None and tl.failed_at <= now else None
    events = []
    # A build that timed out in the conductor's queue never started: its event
    # spans the wait, from the record to the failure.
    start = tl.build_start_at if tl.build_start_at is not None else tl.visible_at
    conductor_end = tl.scheduled_at if tl.scheduled_at is not None else failed
    if start <= now:
        events.append({"event": "conductor_schedule_and_build_instances", "start": start,
                       "finish": conductor_end if conductor_end is not None
                       and conductor_end <= now else None,
                       "error": tl.scheduled_at is None and failed is not None,
                       "host": CONDUCTOR_HOST, "details": fault})
    if tl.scheduled_at is not None and tl.scheduled_at <= now:
        end = tl.active_at if tl.active_at is not None else failed
        events.append({"event": "compute__do_build_and_run_instance",
                       "start": tl.scheduled_at,
                       "finish": end if end is not None and end <= now else None,
                       "error": failed is not None, "host": tl.host or "", "details": fault})
    return events


def _actions(server: Server, now: float) -> list[dict[str, Any]]:
    """The server's actions at `now`, newest first, with their raw events."""
    events = _events(server, now)
    changed = [t for e in events for t in (e["start"], e["finish"]) if t is not None]
    actions = [{"action": "create", "start": server.timeline.visible_at,
                "updated": max(changed, default=server.timeline.visible_at),
                "error": any(e["error"] for e in events), "events": events}]
    if server.deleted_at is not None and server.deleted_at <= now:
        actions.insert(0, {"action": "delete", "start": server.deleted_at,
                           "updated": server.deleted_at, "error": False, "events": [
                               {"event": "compute_terminate_instance",
                                "start": server.deleted_at, "finish": server.deleted_at,
                                "error": False, "host": server.timeline.host or "",
                                "details": None}]})
    return actions


def _action_body(request: web.Request, server: Server, action: dict[str, Any]) -> dict[str, Any]:
    cloud = request.app[CLOUD]
    body: dict[str, Any] = {
        "action": action["action"], "instance_uuid": server.id,
        "request_id": request_id(server, action["action"]), "user_id": cloud.user_id,
        "project_id": cloud.project_id, "start_time": stamp(cloud.wall_origin, action["start"]),
        "message": "Error" if action["error"] else None,
    }
    if microversion(request) >= (2, 58):
        body["updated_at"] = stamp(cloud.wall_origin, action["updated"])
    return body


def _event_body(request: web.Request, event: dict[str, Any]) -> dict[str, Any]:
    cloud = request.app[CLOUD]
    mv = microversion(request)
    admin = is_admin(request)
    finish = event["finish"]
    body: dict[str, Any] = {
        "event": event["event"], "start_time": stamp(cloud.wall_origin, event["start"]),
        "finish_time": None if finish is None else stamp(cloud.wall_origin, finish),
        "result": None if finish is None else "Error" if event["error"] else "Success",
    }
    if admin:
        body["traceback"] = None
    if admin and mv >= (2, 62):
        body["host"] = event["host"]
    if mv >= (2, 62):
        body["hostId"] = host_id(cloud.project_id, event["host"])
    if mv >= (2, 84):
        body["details"] = event["details"] if event["error"] and finish is not None else None
    return body


def _server(request: web.Request, now: float) -> Server:
    """The URL's server; a deleted one too from 2.21, as Nova reads deleted records."""
    server_id = request.match_info["server_id"]
    server = request.app[CLOUD].servers.get(server_id)
    gone = server is not None and server.deleted_at is not None and server.deleted_at <= now
    if server is None or not server.visible(now) or (gone and microversion(request) < (2, 21)):
        raise ApiError(404, f"Instance {server_id} could not be found.")
    return server


async def list_actions(request: web.Request, now: float) -> web.Response:
    server = _server(request, now)
    return respond(request, {"instanceActions": [
        _action_body(request, server, a) for a in _actions(server, now)]})


async def show_action(request: web.Request, now: float) -> web.Response:
    server = _server(request, now)
    wanted = request.match_info["request_id"]
    for action in _actions(server, now):
        if request_id(server, action["action"]) == wanted:
            body = _action_body(request, server, action)
            if is_admin(request) or microversion(request) >= (2, 51):  # a member from 2.51
                body["events"] = [_event_body(request, e) for e in reversed(action["events"])]
            return respond(request, {"instanceAction": body})
    raise ApiError(404, f"Action {wanted} not found")


def routes() -> list[Route]:
    """The instance-actions routes."""
    return [
        Route("GET", "/v2.1/servers/{server_id}/os-instance-actions", list_actions),
        Route("GET", "/v2.1/servers/{server_id}/os-instance-actions/{request_id}", show_action),
    ]
