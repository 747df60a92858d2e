"""Neutron v2.0 subset: networks, subnets, ports (filters `device_id`,
`network_id`, `status`, DOWN -> BUILD -> ACTIVE as the DHCP agent works),
port deletion and quotas (security groups and rules: `neutron_secgroups`).
Lists page with `limit`/`marker` (next links keep every filter, repeats
included) and honour `fields=`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from osbench.sim import neutron_secgroups
from osbench.sim.paging import neutron_matches, neutron_page, select_fields
from osbench.sim.server import CLOUD, ApiError, Route, require_admin
from osbench.sim.state import Network, Port, iso, port_body, stable_id


async def versions(request: web.Request, now: float) -> web.Response:
    base = request.app[CLOUD].base_url
    return web.json_response({"versions": [{
        "id": "v2.0", "status": "CURRENT",
        "links": [{"rel": "self", "href": f"{base}/networking/v2.0/"}],
    }]})


async def version(request: web.Request, now: float) -> web.Response:
    return web.json_response({"resources": [
        {"name": n, "collection": f"{n}s", "links": []} for n in ("network", "subnet", "port")]})


def _network_body(request: web.Request, net: Network) -> dict[str, Any]:
    cloud = request.app[CLOUD]
    stamp = iso(cloud.wall_origin, 0.0)
    return {
        "id": net.id, "name": net.name, "status": "ACTIVE", "admin_state_up": True,
        "subnets": [net.subnet_id], "shared": False, "router:external": False,
        "tenant_id": cloud.project_id, "project_id": cloud.project_id, "mtu": 1450,
        "provider:network_type": "vxlan", "port_security_enabled": True,
        "availability_zones": ["nova"], "ipv4_address_scope": None,
        "ipv6_address_scope": None, "description": "", "tags": [],
        "created_at": stamp, "updated_at": stamp, "revision_number": 1,
    }


def _subnet_body(request: web.Request, net: Network) -> dict[str, Any]:
    cloud = request.app[CLOUD]
    return {
        "id": net.subnet_id, "name": net.subnet_name, "network_id": net.id,
        "tenant_id": cloud.project_id, "project_id": cloud.project_id,
        "ip_version": 4, "cidr": net.cidr, "gateway_ip": net.gateway_ip,
        "enable_dhcp": True, "dns_nameservers": [], "host_routes": [],
        "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.15.254"}],
        "ipv6_ra_mode": None, "ipv6_address_mode": None, "subnetpool_id": None,
        "description": "", "tags": [], "revision_number": 1,
    }


async def list_networks(request: web.Request, now: float) -> web.Response:
    items = [_network_body(request, request.app[CLOUD].network)]
    items = [i for i in items if neutron_matches(i, request, ("id", "name", "status", "shared"))]
    return neutron_page(request, items, "networks")


async def show_network(request: web.Request, now: float) -> web.Response:
    net = request.app[CLOUD].network
    if request.match_info["network_id"] != net.id:
        raise ApiError(404, f"Network {request.match_info['network_id']} could not be found.",
                       "NetworkNotFound")
    return web.json_response({"network": select_fields(request, [_network_body(request, net)])[0]})


async def list_subnets(request: web.Request, now: float) -> web.Response:
    items = [_subnet_body(request, request.app[CLOUD].network)]
    items = [i for i in items if neutron_matches(i, request, ("id", "name", "network_id", "cidr"))]
    return neutron_page(request, items, "subnets")


async def show_subnet(request: web.Request, now: float) -> web.Response:
    net = request.app[CLOUD].network
    if request.match_info["subnet_id"] != net.subnet_id:
        raise ApiError(404, f"Subnet {request.match_info['subnet_id']} could not be found.",
                       "SubnetNotFound")
    return web.json_response({"subnet": select_fields(request, [_subnet_body(request, net)])[0]})


def _ports(request: web.Request, now: float) -> list[Port]:
    """The ports that exist at `now`: the request's instant, also for their bodies."""
    cloud = request.app[CLOUD]
    return [p for p in cloud.ports.values() if p.exists(now)]


async def list_ports(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    items = [port_body(p, now, cloud.wall_origin, cloud.project_id)
             for p in _ports(request, now)]
    keys = ("id", "device_id", "network_id", "status", "mac_address", "device_owner", "name")
    # Groups only for the ports asked for: the tracker lists ports every poll cycle.
    items = [i for i in items if neutron_matches(i, request, keys)]
    return neutron_page(request, neutron_secgroups.with_groups(cloud, items), "ports")


def _port(request: web.Request, now: float) -> Port:
    port_id = request.match_info["port_id"]
    for port in _ports(request, now):
        if port.id == port_id:
            return port
    raise ApiError(404, f"Port {port_id} could not be found.", "PortNotFound")


async def show_port(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    (body,) = neutron_secgroups.with_groups(cloud, [port_body(
        _port(request, now), now, cloud.wall_origin, cloud.project_id)])
    return web.json_response({"port": select_fields(request, [body])[0]})


async def delete_port(request: web.Request, now: float) -> web.Response:
    _port(request, now).deleted_at = now
    return web.Response(status=204)


async def show_quota(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    if request.match_info["project_id"] not in (cloud.project_id, cloud.project_name):
        raise ApiError(404, "Project not found.", "NotFound")
    return web.json_response({"quota": {
        "port": cloud.profile.neutron.port_quota, "network": 100, "subnet": 100,
        "router": 10, "floatingip": 50, "security_group": 10, "security_group_rule": 100,
    }})


async def show_quota_details(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    await show_quota(request, now)  # same checks
    used = len(_ports(request, now))
    return web.json_response({"quota": {
        "port": {"limit": cloud.profile.neutron.port_quota, "used": used, "reserved": 0},
        "network": {"limit": 100, "used": 1, "reserved": 0},
        "subnet": {"limit": 100, "used": 1, "reserved": 0},
    }})


#: The API extensions whose behaviour the simulator has (alias, name): clients such as
#: `openstack extension list` and the SDK's feature checks read this list.
EXTENSIONS = (
    ("binding", "Port Binding"), ("network-mtu", "Network MTU"),
    ("port-security", "Port Security"), ("project-id", "project_id field enabled"),
    ("quotas", "Quota management support"), ("quota_details", "Quota details extension"),
    ("security-group", "security-group"),
    ("standard-attr-description", "standard-attr-description"),
    ("standard-attr-revisions", "Resource revision numbers"),
    ("standard-attr-timestamp", "Resource timestamps"),
)


def _extension(alias: str, name: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": name,
            "updated": "2024-01-01T00:00:00-00:00", "links": []}


async def list_empty(request: web.Request, now: float) -> web.Response:
    """Routers and floating IPs: the simulated project has none (one tenant network)."""
    return neutron_page(request, [], request.path.rsplit("/", 1)[-1])


async def list_agents(request: web.Request, now: float) -> web.Response:
    """The modelled agents (admin only): the one DHCP agent whose backlog the model
    keeps, and an Open vSwitch agent per compute host."""
    require_admin(request, "get_agent")
    cloud = request.app[CLOUD]
    stamp = iso(cloud.wall_origin, now).replace("T", " ").rstrip("Z")
    rows = [("DHCP agent", "neutron-dhcp-agent", "network-0", "dhcp_agent")]
    rows += [("Open vSwitch agent", "neutron-openvswitch-agent", f"compute-{i:02d}", "N/A")
             for i in range(cloud.profile.compute.hosts)]
    items: list[dict[str, Any]] = [
        {"id": stable_id(f"agent/{binary}/{host}"), "agent_type": kind, "binary": binary,
         "host": host, "topic": topic, "alive": True, "admin_state_up": True,
         "availability_zone": "nova" if kind == "DHCP agent" else None,
         "heartbeat_timestamp": stamp, "description": None, "configurations": {}}
        for kind, binary, host, topic in rows]
    keys = ("agent_type", "binary", "host")
    return neutron_page(request, [i for i in items if neutron_matches(i, request, keys)], "agents")


async def list_extensions(request: web.Request, now: float) -> web.Response:
    return web.json_response({"extensions": [_extension(a, n) for a, n in EXTENSIONS]})


async def show_extension(request: web.Request, now: float) -> web.Response:
    alias = request.match_info["alias"]
    for known, name in EXTENSIONS:
        if known == alias:
            return web.json_response({"extension": _extension(alias, name)})
    raise ApiError(404, f"Extension with alias {alias} does not exist", "HTTPNotFound")


ROUTES = [
    Route("GET", "/", versions, authenticated=False),
    Route("GET", "/v2.0/extensions", list_extensions),
    Route("GET", "/v2.0/extensions/{alias}", show_extension),
    Route("GET", "/v2.0/routers", list_empty),
    Route("GET", "/v2.0/floatingips", list_empty),
    Route("GET", "/v2.0/agents", list_agents),
    Route("GET", "/v2.0", version),
    Route("GET", "/v2.0/networks", list_networks),
    Route("GET", "/v2.0/networks/{network_id}", show_network),
    Route("GET", "/v2.0/subnets", list_subnets),
    Route("GET", "/v2.0/subnets/{subnet_id}", show_subnet),
    Route("GET", "/v2.0/ports", list_ports),
    Route("GET", "/v2.0/ports/{port_id}", show_port),
    Route("DELETE", "/v2.0/ports/{port_id}", delete_port),
    *neutron_secgroups.ROUTES,
    Route("GET", "/v2.0/quotas/{project_id}", show_quota),
    Route("GET", "/v2.0/quotas/{project_id}/details.json", show_quota_details),
    Route("GET", "/v2.0/quotas/{project_id}/details", show_quota_details),
]
