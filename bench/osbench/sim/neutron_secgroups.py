"""Neutron v2.0 security groups and their rules: list, show, create, delete.

The project starts with Neutron's `default` group: egress open on IPv4 and IPv6,
ingress only from members of the group itself (`remote_group_id`). A port of a
server lists the ids of the server's groups (Nova here accepts `default` only).
The state lives beside the SimCloud it belongs to, so the simulated cloud's own
modules need no field for it. Lists page with `limit`/`marker` and honour
`fields=`, as the rest of the simulated Neutron does.
"""

from __future__ import annotations

import ipaddress
import uuid
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from osbench.sim.paging import neutron_matches, neutron_page, select_fields
from osbench.sim.server import CLOUD, ApiError, Route, bad_request, json_body
from osbench.sim.state import iso

if TYPE_CHECKING:
    from osbench.sim.cloud import SimCloud

#: Neutron's default quota per project (security_group: 10, security_group_rule: 100).
MAX_GROUPS = 10
MAX_RULES = 100

_PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58, "sctp": 132}
_RULE_KEYS = ("security_group_id", "direction", "ethertype", "protocol", "port_range_min",
              "port_range_max", "remote_ip_prefix", "remote_group_id", "description")


@dataclass
class _Store:
    """One simulated cloud's security groups (id -> body) and rules (id -> body)."""

    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    made: int = 0

    def new_id(self, base: str) -> str:
        self.made += 1
        return str(uuid.uuid5(uuid.UUID(base), f"made/{self.made}"))


_STORES: weakref.WeakKeyDictionary[SimCloud, _Store] = weakref.WeakKeyDictionary()


def _store(cloud: SimCloud) -> _Store:
    store = _STORES.get(cloud)
    if store is None:
        store = _STORES[cloud] = _Store()
        group = _group_body(cloud, cloud.security_group_id, "default",
                            "Default security group", 0.0)
        store.groups[group["id"]] = group
        for ethertype in ("IPv4", "IPv6"):
            for direction, remote in (("egress", None), ("ingress", group["id"])):
                rule = _rule_body(cloud, store, {
                    "security_group_id": group["id"], "direction": direction,
                    "ethertype": ethertype, "remote_group_id": remote}, 0.0)
                store.rules[rule["id"]] = rule
    return store


def _group_body(cloud: SimCloud, group_id: str, name: str, description: str,
                now: float) -> dict[str, Any]:
    stamp = iso(cloud.wall_origin, now)
    return {"id": group_id, "name": name, "description": description,
            "tenant_id": cloud.project_id, "project_id": cloud.project_id, "stateful": True,
            "shared": False, "tags": [], "created_at": stamp, "updated_at": stamp,
            "revision_number": 1}


def _rule_body(cloud: SimCloud, store: _Store, data: dict[str, Any],
               now: float) -> dict[str, Any]:
    stamp = iso(cloud.wall_origin, now)
    body: dict[str, Any] = {key: data.get(key) for key in _RULE_KEYS}
    body.update({"id": store.new_id(cloud.security_group_id), "ethertype":
                 data.get("ethertype") or "IPv4", "description": data.get("description") or "",
                 "tenant_id": cloud.project_id, "project_id": cloud.project_id,
                 "remote_address_group_id": None, "created_at": stamp, "updated_at": stamp,
                 "revision_number": 0})
    return body


def _with_rules(store: _Store, group: dict[str, Any]) -> dict[str, Any]:
    rules = [r for r in store.rules.values() if r["security_group_id"] == group["id"]]
    return {**group, "security_group_rules": rules}


def with_groups(cloud: SimCloud, ports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`ports` (Neutron's bodies) with the ids of their servers' security groups."""
    by_name = {g["name"]: g["id"] for g in _store(cloud).groups.values()}
    out = []
    for port in ports:
        server = cloud.servers.get(str(port.get("device_id")))
        out.append(port if server is None else {**port, "security_groups": [
            by_name[n] for n in server.security_groups if n in by_name]})
    return out


def _group(request: web.Request) -> dict[str, Any]:
    store = _store(request.app[CLOUD])
    group_id = request.match_info["group_id"]
    if group_id not in store.groups:
        raise ApiError(404, f"Security group {group_id} does not exist",
                       "SecurityGroupNotFound")
    return store.groups[group_id]


async def list_groups(request: web.Request, now: float) -> web.Response:
    store = _store(request.app[CLOUD])
    items = [_with_rules(store, g) for g in store.groups.values()]
    keys = ("id", "name", "project_id", "tenant_id")
    items = [i for i in items if neutron_matches(i, request, keys)]
    return neutron_page(request, items, "security_groups")


async def show_group(request: web.Request, now: float) -> web.Response:
    store = _store(request.app[CLOUD])
    body = _with_rules(store, _group(request))
    return web.json_response({"security_group": select_fields(request, [body])[0]})


async def create_group(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    store = _store(cloud)
    data = (await json_body(request)).get("security_group")
    if not isinstance(data, dict) or not isinstance(data.get("name", ""), str):
        raise bad_request("Invalid input: expected {'security_group': {'name': ...}}")
    if data.get("name") == "default":
        raise ApiError(409, "Default security group already exists.", "DuplicateSgName")
    if len(store.groups) >= MAX_GROUPS:
        raise ApiError(409, "Quota exceeded for resources: ['security_group'].",
                       "OverQuota")
    group = _group_body(cloud, store.new_id(cloud.security_group_id), data.get("name", ""),
                        str(data.get("description") or ""), now)
    store.groups[group["id"]] = group
    for ethertype in ("IPv4", "IPv6"):  # Neutron gives a new group open egress
        rule = _rule_body(cloud, store, {"security_group_id": group["id"],
                                         "direction": "egress", "ethertype": ethertype}, now)
        store.rules[rule["id"]] = rule
    return web.json_response({"security_group": _with_rules(store, group)}, status=201)


async def delete_group(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    store = _store(cloud)
    group = _group(request)
    if group["id"] == cloud.security_group_id:
        raise ApiError(409, "Insufficient rights for removing default security group.",
                       "SecurityGroupCannotRemoveDefault")
    for rule_id in [r for r, body in store.rules.items()
                    if body["security_group_id"] == group["id"]]:
        del store.rules[rule_id]
    del store.groups[group["id"]]
    return web.Response(status=204)


async def list_rules(request: web.Request, now: float) -> web.Response:
    store = _store(request.app[CLOUD])
    keys = ("id", "security_group_id", "direction", "ethertype", "protocol",
            "remote_ip_prefix", "remote_group_id")
    items = [r for r in store.rules.values() if neutron_matches(r, request, keys)]
    return neutron_page(request, items, "security_group_rules")


def _rule(request: web.Request) -> dict[str, Any]:
    store = _store(request.app[CLOUD])
    rule_id = request.match_info["rule_id"]
    if rule_id not in store.rules:
        raise ApiError(404, f"Security group rule {rule_id} does not exist",
                       "SecurityGroupRuleNotFound")
    return store.rules[rule_id]


async def show_rule(request: web.Request, now: float) -> web.Response:
    return web.json_response({"security_group_rule": select_fields(request,
                                                                   [_rule(request)])[0]})


def _checked_rule(store: _Store, data: Any) -> dict[str, Any]:
    """The new rule's fields, refused as Neutron refuses them (400/404/409)."""
    if not isinstance(data, dict):
        raise bad_request("Invalid input: expected {'security_group_rule': {...}}")
    unknown = sorted(set(data) - set(_RULE_KEYS) - {"tenant_id", "project_id"})
    if unknown:
        raise bad_request(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    if data.get("security_group_id") not in store.groups:
        raise ApiError(404, f"Security group {data.get('security_group_id')} does not exist",
                       "SecurityGroupNotFound")
    if data.get("direction") not in ("ingress", "egress"):
        raise bad_request(f"Invalid input for direction. Reason: {data.get('direction')!r} "
                          "is not in ['ingress', 'egress'].")
    if data.get("ethertype", "IPv4") not in ("IPv4", "IPv6"):
        raise bad_request(f"Invalid input for ethertype: {data.get('ethertype')!r}")
    protocol = data.get("protocol")
    if protocol is not None and str(protocol).lower() not in _PROTOCOLS and not (
            str(protocol).isdigit() and 0 <= int(protocol) <= 255):
        raise bad_request(f"Security group rule protocol {protocol} not supported.")
    low, high = data.get("port_range_min"), data.get("port_range_max")
    for value in (low, high):
        if value is not None and (not isinstance(value, int) or not 0 <= value <= 65535):
            raise bad_request(f"Invalid value for port {value!r}")
    if ((low is not None or high is not None) and str(protocol).lower() in ("tcp", "udp")
            and (low is None or high is None or low > high or low == 0)):
        raise bad_request("For TCP/UDP protocols, port_range_min must be <= "
                          "port_range_max")
    if data.get("remote_ip_prefix") and data.get("remote_group_id"):
        raise bad_request("Only remote_ip_prefix or remote_group_id may be provided.")
    if data.get("remote_ip_prefix"):
        try:
            ipaddress.ip_network(str(data["remote_ip_prefix"]), strict=False)
        except ValueError:
            raise bad_request(f"Invalid input for remote_ip_prefix: "
                              f"{data['remote_ip_prefix']!r}") from None
    return data


async def create_rule(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    store = _store(cloud)
    data = _checked_rule(store, (await json_body(request)).get("security_group_rule"))
    if len(store.rules) >= MAX_RULES:
        raise ApiError(409, "Quota exceeded for resources: ['security_group_rule'].",
                       "OverQuota")
    rule = _rule_body(cloud, store, data, now)
    same = [r for r in store.rules.values()
            if all(r[k] == rule[k] for k in _RULE_KEYS if k != "description")]
    if same:
        raise ApiError(409, f"Security group rule already exists. Rule id is {same[0]['id']}.",
                       "SecurityGroupRuleExists")
    store.rules[rule["id"]] = rule
    return web.json_response({"security_group_rule": rule}, status=201)


async def delete_rule(request: web.Request, now: float) -> web.Response:
    store = _store(request.app[CLOUD])
    del store.rules[_rule(request)["id"]]
    return web.Response(status=204)


ROUTES = [
    Route("GET", "/v2.0/security-groups", list_groups),
    Route("POST", "/v2.0/security-groups", create_group),
    Route("GET", "/v2.0/security-groups/{group_id}", show_group),
    Route("DELETE", "/v2.0/security-groups/{group_id}", delete_group),
    Route("GET", "/v2.0/security-group-rules", list_rules),
    Route("POST", "/v2.0/security-group-rules", create_rule),
    Route("GET", "/v2.0/security-group-rules/{rule_id}", show_rule),
    Route("DELETE", "/v2.0/security-group-rules/{rule_id}", delete_rule),
]
