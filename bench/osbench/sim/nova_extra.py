"""Nova v2.1 APIs clients ask for besides servers and flavors: server groups
(list/show/create/delete), availability zones, the project's usage
(`os-simple-tenant-usage`, `openstack usage show`), and the admin-only
hypervisors, services and all projects' usage.

Server groups only record what clients create (the scheduler model places
servers without them); `openstack server group list` and Rally's cleanup,
which lists them after every run, need the API to exist.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from osbench.sim.nova import FIXED_QUOTAS, microversion, respond
from osbench.sim.nova_servers import parse_time
from osbench.sim.server import (
    CLOUD,
    ApiError,
    Route,
    bad_request,
    json_body,
    query_int,
    require_admin,
    token,
)
from osbench.sim.state import iso, node_name, stable_id

_POLICIES = ("affinity", "anti-affinity")
_SOFT_POLICIES = ("soft-affinity", "soft-anti-affinity")  # microversion 2.15


def _group_body(request: web.Request, group: dict[str, Any]) -> dict[str, Any]:
    body = {"id": group["id"], "name": group["name"], "members": []}
    if microversion(request) >= (2, 64):
        body.update(policy=group["policy"], rules=group["rules"])
    else:
        body.update(policies=[group["policy"]], metadata={})
    if microversion(request) >= (2, 13):
        body.update(project_id=group["project_id"], user_id=group["user_id"])
    return body


def _parse_group(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """Nova's create schema: `policies: [one]` before 2.64, `policy` + `rules` from it."""
    group = body.get("server_group")
    if not isinstance(group, dict):
        raise bad_request("Invalid input for field/attribute server_group.")
    name = group.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise bad_request(f"Invalid input for field/attribute name. Value: {name!r}.")
    mv = microversion(request)
    allowed = _POLICIES + (_SOFT_POLICIES if mv >= (2, 15) else ())
    rules: dict[str, Any] = {}
    if mv >= (2, 64):
        policy, rules = group.get("policy"), group.get("rules", {})
        if not isinstance(rules, dict):
            raise bad_request(f"Invalid input for field/attribute rules. Value: {rules!r}.")
    else:
        policies = group.get("policies")
        if not isinstance(policies, list) or len(policies) != 1:
            raise bad_request(f"Invalid input for field/attribute policies. Value: {policies!r}.")
        policy = policies[0]
    if policy not in allowed:
        raise bad_request(f"Invalid input for field/attribute policy. Value: {policy!r}. "
                          f"{policy!r} is not one of {list(allowed)}")
    return {"name": name, "policy": policy, "rules": rules}


async def list_groups(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    groups = sorted(cloud.server_groups.values(), key=lambda g: g["seq"])
    offset = query_int(request, "offset", 0) or 0
    limit = query_int(request, "limit")
    page = groups[offset:offset + limit if limit is not None else None]
    return respond(request, {"server_groups": [_group_body(request, g) for g in page]})


def _group(request: web.Request) -> dict[str, Any]:
    group_id = request.match_info["group_id"]
    group = request.app[CLOUD].server_groups.get(group_id)
    if group is None:
        raise ApiError(404, f"Instance group {group_id} could not be found.")
    return group


async def show_group(request: web.Request, now: float) -> web.Response:
    return respond(request, {"server_group": _group_body(request, _group(request))})


async def create_group(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    group = _parse_group(request, await json_body(request))
    if len(cloud.server_groups) >= FIXED_QUOTAS["server_groups"]:
        raise ApiError(403, "Quota exceeded, too many server groups.")
    cloud.server_group_seq += 1
    seq = cloud.server_group_seq
    group.update(id=stable_id(f"server-group/{cloud.seed}/{seq}"), seq=seq,
                 project_id=cloud.project_id, user_id=token(request).user.id)
    cloud.server_groups[group["id"]] = group
    return respond(request, {"server_group": _group_body(request, group)})


async def delete_group(request: web.Request, now: float) -> web.Response:
    del request.app[CLOUD].server_groups[_group(request)["id"]]
    return web.Response(status=204)


def _hosts(request: web.Request) -> list[str]:
    return [f"compute-{i:02d}" for i in range(request.app[CLOUD].profile.compute.hosts)]


async def availability_zones(request: web.Request, now: float) -> web.Response:
    """The one zone `nova`; its hosts and services with `/detail` (admin only)."""
    detail = request.path.endswith("/detail")
    if detail:
        require_admin(request, "os_compute_api:os-availability-zone:detail")
    stamp = iso(request.app[CLOUD].wall_origin, now)
    zones: list[dict[str, Any]] = []
    if detail:
        up = {"available": True, "active": True, "updated_at": stamp}
        zones.append({"zoneName": "internal", "zoneState": {"available": True}, "hosts": {
            "controller": {"nova-conductor": up, "nova-scheduler": up}}})
        zones.append({"zoneName": "nova", "zoneState": {"available": True},
                      "hosts": {h: {"nova-compute": up} for h in _hosts(request)}})
    else:
        zones.append({"zoneName": "nova", "zoneState": {"available": True}, "hosts": None})
    return respond(request, {"availabilityZoneInfo": zones})


def _id(request: web.Request, kind: str, index: int) -> str | int:
    """Hypervisors' and services' ids: UUIDs from 2.53, integers before."""
    return stable_id(f"{kind}/{index}") if microversion(request) >= (2, 53) else index + 1


async def hypervisors(request: web.Request, now: float) -> web.Response:
    require_admin(request, "os_compute_api:os-hypervisors:list")
    return respond(request, {"hypervisors": _hypervisors(
        request, now, request.path.endswith("/detail"))})


async def show_hypervisor(request: web.Request, now: float) -> web.Response:
    require_admin(request, "os_compute_api:os-hypervisors:show")
    wanted = request.match_info["hypervisor_id"]
    for item in _hypervisors(request, now, True):
        if str(item["id"]) == wanted:
            return respond(request, {"hypervisor": item})
    raise ApiError(404, f"Hypervisor with ID '{wanted}' could not be found.")


async def hypervisor_statistics(request: web.Request, now: float) -> web.Response:
    """The hypervisors' totals; gone from 2.88, where Nova answers 404."""
    require_admin(request, "os_compute_api:os-hypervisors:statistics")
    if microversion(request) >= (2, 88):
        raise ApiError(404, "The resource could not be found.")
    items = _hypervisors(request, now, True)
    keys = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
            "free_ram_mb", "free_disk_gb", "current_workload", "running_vms",
            "disk_available_least")
    stats = {key: sum(item[key] for item in items) for key in keys}
    return respond(request, {"hypervisor_statistics": {"count": len(items), **stats}})


async def aggregates(request: web.Request, now: float) -> web.Response:
    """No host aggregates: the one zone is Nova's default."""
    require_admin(request, "os_compute_api:os-aggregates:index")
    return respond(request, {"aggregates": []})


def _hypervisors(request: web.Request, now: float, detail: bool) -> list[dict[str, Any]]:
    cloud = request.app[CLOUD]
    running: dict[str, int] = {}
    for server in cloud.servers.values():
        host = server.timeline.host
        if host is not None and server.state(now).status not in ("DELETED", "ERROR"):
            running[host] = running.get(host, 0) + 1
    items = []
    for index, host in enumerate(_hosts(request)):
        item: dict[str, Any] = {"id": _id(request, "hypervisor", index),
                                "hypervisor_hostname": node_name(host), "state": "up",
                                "status": "enabled"}
        if detail:
            item.update(hypervisor_type="QEMU", hypervisor_version=8002000,
                        host_ip=f"192.168.0.{10 + index}",
                        service={"id": _id(request, "service", index + 2), "host": host,
                                 "disabled_reason": None})
            if microversion(request) < (2, 88):  # the resource fields went away at 2.88
                item.update(vcpus=64, memory_mb=262144, local_gb=2000,
                            vcpus_used=0, memory_mb_used=0, local_gb_used=0,
                            free_ram_mb=262144, free_disk_gb=2000, current_workload=0,
                            running_vms=running.get(host, 0), disk_available_least=2000,
                            cpu_info="{}")
        items.append(item)
    return items


async def services(request: web.Request, now: float) -> web.Response:
    require_admin(request, "os_compute_api:os-services:list")
    stamp = iso(request.app[CLOUD].wall_origin, now).rstrip("Z") + ".000000"
    rows = [("nova-scheduler", "controller", "internal"),
            ("nova-conductor", "controller", "internal")]
    rows += [("nova-compute", h, "nova") for h in _hosts(request)]
    items = []
    for index, (binary, host, zone) in enumerate(rows):
        item: dict[str, Any] = {"id": _id(request, "service", index), "binary": binary,
                                "host": host, "zone": zone, "status": "enabled", "state": "up",
                                "updated_at": stamp, "disabled_reason": None}
        if microversion(request) >= (2, 11):
            item["forced_down"] = False
        items.append(item)
    for key in ("binary", "host"):
        if key in request.query:
            items = [i for i in items if i[key] == request.query[key]]
    return respond(request, {"services": items})


def _usage(request: web.Request, now: float) -> dict[str, Any]:
    """The project's usage between the query's `start` and `end` (default: the
    modelled now), each server counted from its creation to its deletion."""
    cloud = request.app[CLOUD]
    epoch = cloud.wall_origin.timestamp()
    start = parse_time(request.query["start"], "start") - epoch if "start" in request.query \
        else now
    end = parse_time(request.query["end"], "end") - epoch if "end" in request.query else now
    end = min(end, now)
    servers: list[dict[str, Any]] = []
    totals = {"hours": 0.0, "vcpus": 0.0, "memory_mb": 0.0, "local_gb": 0.0}
    for server in cloud.servers.values():
        born, gone = server.timeline.visible_at, server.deleted_at
        if born > end or (gone is not None and gone < start):
            continue  # lived outside the period
        hours = max(0.0, min(end, gone if gone is not None else end) - max(start, born)) / 3600
        flavor = server.flavor
        totals["hours"] += hours
        totals["vcpus"] += hours * flavor.vcpus
        totals["memory_mb"] += hours * flavor.ram_mb
        totals["local_gb"] += hours * flavor.disk_gb
        state = server.state(now)
        servers.append({
            "instance_id": server.id, "name": server.name, "hours": hours,
            "vcpus": flavor.vcpus, "memory_mb": flavor.ram_mb, "local_gb": flavor.disk_gb,
            "flavor": flavor.name, "tenant_id": cloud.project_id,
            "started_at": iso(cloud.wall_origin, born).rstrip("Z"),
            "ended_at": None if gone is None else iso(cloud.wall_origin, gone).rstrip("Z"),
            "state": "terminated" if state.status == "DELETED" else state.vm_state,
            "uptime": int(max(0.0, (gone if gone is not None else now) - born)),
        })
    body: dict[str, Any] = {
        "tenant_id": cloud.project_id, "total_hours": totals["hours"],
        "total_vcpus_usage": totals["vcpus"], "total_memory_mb_usage": totals["memory_mb"],
        "total_local_gb_usage": totals["local_gb"],
        "start": iso(cloud.wall_origin, start).rstrip("Z"),
        "stop": iso(cloud.wall_origin, end).rstrip("Z"),
    }
    if servers:
        body["server_usages"] = servers
    return body


async def project_usage(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    if request.match_info["project_id"] not in (cloud.project_id, cloud.project_name):
        return respond(request, {"tenant_usage": {}})  # Nova: an empty usage, not a 404
    return respond(request, {"tenant_usage": _usage(request, now)})


async def all_usage(request: web.Request, now: float) -> web.Response:
    require_admin(request, "os_compute_api:os-simple-tenant-usage:list")
    usage = _usage(request, now)
    if request.query.get("detailed") not in ("1", "True", "true"):
        usage.pop("server_usages", None)
    return respond(request, {"tenant_usages": [usage] if usage["total_hours"] else []})


def routes() -> list[Route]:
    """The routes of this module."""
    return [
        Route("GET", "/v2.1/os-server-groups", list_groups),
        Route("POST", "/v2.1/os-server-groups", create_group),
        Route("GET", "/v2.1/os-server-groups/{group_id}", show_group),
        Route("DELETE", "/v2.1/os-server-groups/{group_id}", delete_group),
        Route("GET", "/v2.1/os-availability-zone", availability_zones),
        Route("GET", "/v2.1/os-availability-zone/detail", availability_zones),
        Route("GET", "/v2.1/os-hypervisors", hypervisors),
        Route("GET", "/v2.1/os-hypervisors/detail", hypervisors),
        Route("GET", "/v2.1/os-hypervisors/statistics", hypervisor_statistics),
        Route("GET", "/v2.1/os-hypervisors/{hypervisor_id}", show_hypervisor),
        Route("GET", "/v2.1/os-aggregates", aggregates),
        Route("GET", "/v2.1/os-services", services),
        Route("GET", "/v2.1/os-simple-tenant-usage", all_usage),
        Route("GET", "/v2.1/os-simple-tenant-usage/{project_id}", project_usage),
    ]

