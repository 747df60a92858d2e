"""Nova v2.1 servers: multi-create behind a reverse proxy, filtered and paged
listing, show with faults, delete, and the console-output action.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from osbench.sim.nova import microversion, respond
from osbench.sim.nova_actions import stamp
from osbench.sim.paging import next_href
from osbench.sim.server import CLOUD, ApiError, Route, bad_request, is_admin, json_body, query_int
from osbench.sim.state import CreateSpec, Server, host_id, iso, node_name

#: Nova's osapi_max_limit: one page never holds more servers than this.
MAX_PAGE = 1000
USER_DATA_MAX = 65535
PROXY_504 = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _field(
    server: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None
) -> Any:
    value = server.get(key, default)
    if value is default:
        return value
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise bad_request(f"Invalid input for field/attribute {key}. Value: {value!r}.")
    return value


def _count(server: dict[str, Any], key: str) -> int | None:
    value = server.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise bad_request(f"Invalid input for field/attribute {key}. Value: {value!r}. "
                          f"{value!r} is not a positive integer")
    return value


def _user_data(server: dict[str, Any]) -> str | None:
    raw = _field(server, "user_data", str)
    if raw is None:
        return None
    if len(raw) > USER_DATA_MAX:
        raise bad_request("User data too large. User data must be no larger than 65535 bytes")
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        raise bad_request("User data needs to be valid base 64.") from None


def parse_create(request: web.Request, body: dict[str, Any]) -> CreateSpec:
    """Validate a create request the way Nova's schema and API layer do."""
    cloud = request.app[CLOUD]
    server = body.get("server")
    if not isinstance(server, dict):
        raise bad_request("Invalid input for field/attribute server: missing or not an object")
    name = _field(server, "name", str)
    if not name or not name.strip() or len(name) > 255:
        raise bad_request(f"Invalid input for field/attribute name. Value: {name!r}.")
    image_ref = _field(server, "imageRef", str, "")
    if image_ref.rsplit("/", 1)[-1] not in cloud.images:
        raise bad_request("Can not find requested image")
    flavor_ref = _field(server, "flavorRef", (str, int))
    flavor = cloud.flavors.get(str(flavor_ref).rsplit("/", 1)[-1]) if flavor_ref else None
    if flavor is None:
        raise bad_request(f"Flavor {flavor_ref} could not be found.")
    networks = server.get("networks", "auto" if microversion(request) >= (2, 37) else None)
    if networks is None:
        networks = "auto"
    if networks == "auto":
        network = cloud.network
    elif isinstance(networks, list) and len(networks) == 1 and isinstance(networks[0], dict):
        net_id = networks[0].get("uuid")
        if net_id != cloud.network.id:
            raise bad_request(f"Network {net_id} could not be found.")
        network = cloud.network
    else:
        raise bad_request("The simulator supports exactly one network: "
                          "[{'uuid': NETWORK_ID}] or 'auto'.")
    key_name = _field(server, "key_name", str)
    if key_name is not None and key_name not in cloud.keypairs:
        raise bad_request("Invalid key_name provided.")
    groups = _field(server, "security_groups", list, [])
    group_names = []
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            raise bad_request(f"Invalid input for security_groups. Value: {groups!r}")
        if group["name"] != "default":
            raise bad_request(
                f"Security group {group['name']} not found for project {cloud.project_id}."
            )
        group_names.append(group["name"])
    metadata = _field(server, "metadata", dict, {})
    if len(metadata) > 128:
        raise ApiError(403, "Quota exceeded for metadata_items: Requested 129, but limit is 128")
    for key, value in metadata.items():
        if not isinstance(value, str) or not 0 < len(key) <= 255 or len(value) > 255:
            raise bad_request(f"Invalid input for field/attribute metadata. Value: {metadata!r}")
    tags = _field(server, "tags", list, [])
    if not all(isinstance(tag, str) and 0 < len(tag) <= 60 for tag in tags):
        raise bad_request(f"Invalid input for field/attribute tags. Value: {tags!r}")
    min_count = _count(server, "min_count") or 1
    max_count = _count(server, "max_count") or min_count
    if min_count > max_count:
        raise bad_request("min_count must be <= max_count")
    return CreateSpec(
        name=name, flavor=flavor, image_id=image_ref.rsplit("/", 1)[-1], network=network,
        key_name=key_name, security_groups=group_names or ["default"], metadata=metadata,
        tags=tags, user_data=_user_data(server), min_count=min_count, max_count=max_count,
        return_reservation_id=bool(_field(server, "return_reservation_id", bool, False)),
    )


async def create_servers(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    spec = parse_create(request, await json_body(request))
    count = cloud.fit_quota(spec)
    servers, api_seconds = cloud.create_batch(spec, count, now)
    timeout = cloud.profile.nova_api.proxy_timeout_s
    if api_seconds > timeout:
        # The proxy gives up; nova-api carries on and the servers appear as planned.
        await cloud.clock.sleep(timeout)
        return web.Response(status=504, text=PROXY_504, content_type="text/html",
                            headers={"Server": "nginx"})
    await cloud.clock.sleep(api_seconds)
    if spec.return_reservation_id:
        return respond(request, {"reservation_id": servers[0].reservation_id}, 202)
    first = servers[0]
    body = {"server": {
        "id": first.id, "links": _links(request, first), "OS-DCF:diskConfig": "MANUAL",
        "security_groups": [{"name": g} for g in first.security_groups],
        "adminPass": "simulated-password",
    }}
    response = respond(request, body, 202)
    response.headers["Location"] = _links(request, first)[0]["href"]
    return response


def _links(request: web.Request, server: Server) -> list[dict[str, str]]:
    base = request.app[CLOUD].base_url
    return [{"rel": "self", "href": f"{base}/compute/v2.1/servers/{server.id}"},
            {"rel": "bookmark", "href": f"{base}/compute/servers/{server.id}"}]


def server_body(request: web.Request, server: Server, now: float,
                show: bool = False) -> dict[str, Any]:
    """The detailed JSON of one server at modelled time `now`, as Nova's default
    policy shows it to the request's role (the OS-EXT-SRV-ATTR fields and
    host_status to admin only); `show`: the GET of one server, which alone
    carries `server_groups` (2.71)."""
    cloud = request.app[CLOUD]
    mv = microversion(request)
    state = server.state(now)
    origin = cloud.wall_origin
    flavor = server.flavor
    tl = server.timeline
    port = server.port
    addresses = {}
    if port is not None and port.exists(now):
        addresses[server.network.name] = [{"version": 4, "addr": port.ip,
                                           "OS-EXT-IPS:type": "fixed",
                                           "OS-EXT-IPS-MAC:mac_addr": port.mac}]
    body: dict[str, Any] = {
        "id": server.id, "name": server.name, "status": state.status,
        "tenant_id": cloud.project_id, "user_id": cloud.user_id,
        "metadata": server.metadata,
        "image": {"id": server.image_id, "links": []},
        "created": iso(origin, tl.visible_at), "updated": iso(origin, state.updated_at),
        "addresses": addresses, "accessIPv4": "", "accessIPv6": "",
        "links": _links(request, server), "OS-DCF:diskConfig": "MANUAL", "progress": 0,
        "OS-EXT-AZ:availability_zone": "nova", "config_drive": "",
        "key_name": server.key_name,
        # The model's instant of ACTIVE, to the microsecond, as Nova's compute host
        # stamps it (a MySQL/MariaDB-backed Nova keeps whole seconds: ".000000").
        "OS-SRV-USG:launched_at": (stamp(origin, tl.active_at)
                                   if tl.active_at is not None and tl.active_at <= now else None),
        "OS-SRV-USG:terminated_at": None,
        "security_groups": [{"name": g} for g in server.security_groups],
        "OS-EXT-STS:task_state": state.task_state, "OS-EXT-STS:vm_state": state.vm_state,
        "OS-EXT-STS:power_state": state.power_state,
        "os-extended-volumes:volumes_attached": [],
    }
    host = tl.host if tl.scheduled_at is not None and tl.scheduled_at <= now else None
    body["hostId"] = host_id(cloud.project_id, host)
    admin = is_admin(request)
    if admin:
        body.update({"OS-EXT-SRV-ATTR:host": host,
                     "OS-EXT-SRV-ATTR:hypervisor_hostname": node_name(host),
                     "OS-EXT-SRV-ATTR:instance_name": f"instance-{server.seq:08x}"})
    if mv >= (2, 47):
        body["flavor"] = {"vcpus": flavor.vcpus, "ram": flavor.ram_mb, "disk": flavor.disk_gb,
                          "ephemeral": 0, "swap": 0, "original_name": flavor.name,
                          "extra_specs": {}}
    else:
        body["flavor"] = {"id": flavor.id, "links": []}
    if mv >= (2, 3) and admin:
        user_data = server.user_data
        body.update({"OS-EXT-SRV-ATTR:reservation_id": server.reservation_id,
                     "OS-EXT-SRV-ATTR:launch_index": server.launch_index,
                     "OS-EXT-SRV-ATTR:kernel_id": "", "OS-EXT-SRV-ATTR:ramdisk_id": "",
                     "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                     "OS-EXT-SRV-ATTR:user_data": None if user_data is None else
                     base64.b64encode(user_data.encode("utf-8")).decode("ascii")})
    if mv >= (2, 3) and (admin or mv >= (2, 90)):  # 2.90: the hostname for everyone
        body["OS-EXT-SRV-ATTR:hostname"] = cloud.hostname(server)
    if mv >= (2, 9):
        body["locked"] = False
    if mv >= (2, 16) and admin:
        body["host_status"] = "UP" if host else ""
    if mv >= (2, 19):
        body["description"] = None
    if mv >= (2, 26):
        body["tags"] = server.tags
    if mv >= (2, 63):
        body["trusted_image_certificates"] = None
    if mv >= (2, 71) and show:
        body["server_groups"] = []
    if mv >= (2, 73):
        body["locked_reason"] = None
    if mv >= (2, 96):
        body["pinned_availability_zone"] = None
    if state.fault is not None:
        body["fault"] = {"message": state.fault.message, "code": state.fault.code,
                         "details": state.fault.details,
                         "created": iso(origin, tl.failed_at or now)}
    return body


def parse_time(value: str, name: str) -> float:
    """An ISO 8601 query value as a POSIX timestamp (naive means UTC, as in Nova)."""
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise bad_request(f"Invalid input for query parameters {name}. Value: {value}. "
                          f"'{value}' is not a 'date-time'") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def filter_servers(request: web.Request, now: float) -> list[Server]:
    """Servers matching the list filters, newest first (Nova's default sort)."""
    cloud = request.app[CLOUD]
    query = request.query
    since = before = None
    epoch = cloud.wall_origin.timestamp()
    if "changes-since" in query:
        since = parse_time(query["changes-since"], "changes-since") - epoch
    if "changes-before" in query:
        before = parse_time(query["changes-before"], "changes-before") - epoch
    name_re = None
    if "name" in query:
        try:
            name_re = re.compile(query["name"])
        except re.error:
            raise bad_request(f"Invalid regular expression in name: {query['name']!r}") from None
    statuses = {s.upper() for s in query.getall("status", [])}
    reservation = query.get("reservation_id")
    tags = set(query["tags"].split(",")) if "tags" in query else set()
    result = []
    for server in reversed(cloud.servers.values()):
        if not server.visible(now) or (reservation and server.reservation_id != reservation):
            continue
        state = server.state(now)
        include_deleted = since is not None or before is not None
        if state.status == "DELETED" and not include_deleted and "DELETED" not in statuses:
            continue
        if since is not None and state.updated_at < since:
            continue
        if before is not None and state.updated_at > before:
            continue
        if name_re is not None and not name_re.search(server.name):
            continue
        if statuses and state.status not in statuses:
            continue
        if tags and not tags <= set(server.tags):
            continue
        result.append(server)
    return result


def _page(request: web.Request, servers: list[Server]) -> tuple[list[Server], list[dict[str, str]]]:
    limit = min(query_int(request, "limit", MAX_PAGE) or 0, MAX_PAGE)
    marker = request.query.get("marker")
    if marker is not None:
        ids = [s.id for s in servers]
        if marker not in ids:
            if marker not in request.app[CLOUD].servers:
                raise bad_request(f"marker [{marker}] not found")
            servers = [s for s in servers if s.seq < request.app[CLOUD].servers[marker].seq]
        else:
            servers = servers[ids.index(marker) + 1:]
    page = servers[:limit]
    links = []
    if page and len(page) == limit:
        links.append({"rel": "next", "href": next_href(request, page[-1].id, limit)})
    return page, links


async def list_servers(request: web.Request, now: float) -> web.Response:
    page, links = _page(request, filter_servers(request, now))
    if request.path.endswith("/detail"):
        items = [server_body(request, s, now) for s in page]
    else:
        items = [{"id": s.id, "name": s.name, "links": _links(request, s)} for s in page]
    body: dict[str, Any] = {"servers": items}
    if links:
        body["servers_links"] = links
    return respond(request, body)


def _server(request: web.Request, now: float) -> Server:
    """The server of the URL as it is at `now`, the request's instant; 404 if gone."""
    server_id = request.match_info["server_id"]
    server = request.app[CLOUD].servers.get(server_id)
    if server is None or not server.visible(now) or server.state(now).status == "DELETED":
        raise ApiError(404, f"Instance {server_id} could not be found.")
    return server


async def show_server(request: web.Request, now: float) -> web.Response:
    return respond(request, {"server": server_body(request, _server(request, now), now,
                                                   show=True)})


async def delete_server(request: web.Request, now: float) -> web.Response:
    request.app[CLOUD].delete_server(_server(request, now), now)
    return web.Response(status=204)


async def server_action(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    server = _server(request, now)
    body = await json_body(request)
    if "os-getConsoleOutput" not in body:
        action = next(iter(body), "")
        raise bad_request(f"There is no such action: {action}")
    args = body["os-getConsoleOutput"]
    if not isinstance(args, dict):
        raise bad_request("Invalid input for field/attribute os-getConsoleOutput.")
    length = args.get("length")
    if isinstance(length, str) and re.fullmatch(r"-?\d+", length):
        length = int(length)
    if length is not None and (not isinstance(length, int) or isinstance(length, bool)
                               or length < -1):
        raise bad_request(f"Invalid input for field/attribute length. Value: {length!r}.")
    state = server.state(now)
    if state.status != "ACTIVE":
        raise ApiError(409, f"Instance {server.id} is not ready: vm_state {state.vm_state}")
    return respond(request, {"output": cloud.console_output(server, now, length)})


def routes() -> list[Route]:
    """The servers routes."""
    return [
        Route("POST", "/v2.1/servers", create_servers),
        Route("GET", "/v2.1/servers", list_servers),
        Route("GET", "/v2.1/servers/detail", list_servers),
        Route("GET", "/v2.1/servers/{server_id}", show_server),
        Route("DELETE", "/v2.1/servers/{server_id}", delete_server),
        Route("POST", "/v2.1/servers/{server_id}/action", server_action),
    ]
