"""The firewall check's API side: the instances in scope, their ports, the security
groups of those ports and every rule of them, read from Nova and Neutron.

Reads only (GET): the audit never changes a group, a rule or a port. Listings
follow `next` links to the end; filters that Neutron takes repeated (ids) are
sent in chunks, so a query line stays short whatever the scope's size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from osbench.cloudclient import CloudClient, _next_link
from osbench.errors import CloudError
from osbench.kinds.audit.params import FirewallParams

#: Ids per filtered Neutron request: 40 UUIDs keep a URL under 2 KiB.
CHUNK = 40
#: Nova's hostId is a per-project hash of the host; shown when the host is not.
HOST_ID_PREFIX = "hostId:"
#: The compute microversion from which a server's body carries its `tags` (and the
#: listing honours `?tags=`); asked for the `tag:` scope's listing only, so a cloud
#: older than that still serves the other scopes.
TAGS_MICROVERSION = "2.26"


@dataclass(frozen=True)
class Address:
    """One address of an instance, on one of its ports."""

    address: str
    port_id: str
    kind: str  # fixed | floating
    groups: tuple[str, ...]
    port_security: bool


@dataclass(frozen=True)
class Instance:
    id: str
    name: str
    status: str
    #: `OS-EXT-SRV-ATTR:host` (admin), else `hostId:<first 12>` (one per host and
    #: project), else "(unknown)".
    hypervisor: str
    addresses: tuple[Address, ...] = ()


@dataclass
class Scope:
    """What the API says about the instances in scope."""

    instances: list[Instance] = field(default_factory=list)
    #: group id -> its rules (Neutron's bodies).
    rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    group_names: dict[str, str] = field(default_factory=dict)
    #: What could not be read, and what that means for the result.
    notes: list[str] = field(default_factory=list)


def describe(p: FirewallParams) -> str:
    """The scope in words, for the dry run and the report."""
    parts = [f"project {p.project!r}" if p.project else "",
             f"name starting with {p.name_prefix!r}" if p.name_prefix else "",
             f"tag {p.tag!r}" if p.tag else ""]
    return "instances with " + " and ".join(x for x in parts if x)


async def _pages(client: CloudClient, service: str, path: str, key: str,
                 query: Sequence[tuple[str, str]], **kwargs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    url: str | None = f"{path}?{urlencode(query)}" if query else path
    while url:
        page = await client.get_json(service, url, **kwargs)
        out.extend(page.get(key, []))
        url = _next_link(page.get(f"{key}_links", []), path)
    return out


def _chunks(ids: Iterable[str]) -> list[list[str]]:
    items = sorted(set(ids))
    return [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]


async def _by_ids(client: CloudClient, path: str, key: str, name: str,
                  ids: Iterable[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for chunk in _chunks(ids):
        out.extend(await _pages(client, "network", path, key, [(name, i) for i in chunk]))
    return out


async def servers(client: CloudClient, p: FirewallParams) -> list[dict[str, Any]]:
    """The servers in scope (every page). A project other than the connection's
    needs admin (`all_tenants`)."""
    query: list[tuple[str, str]] = [("limit", "1000")]
    own = await client.project_id() if p.project else None
    if p.name_prefix:
        query.append(("name", "^" + re.escape(p.name_prefix)))
    if p.tag:
        query.append(("tags", p.tag))
    if p.project and p.project != own:
        query += [("all_tenants", "1"), ("project_id", p.project)]
    # The microversion goes as keystoneauth's `OpenStack-API-Version: compute 2.26`.
    found = await _pages(client, "compute", "/servers/detail", "servers", query,
                         **({"microversion": TAGS_MICROVERSION} if p.tag else {}))
    # The filters are the server's to honour; the scope is also checked here, so
    # a cloud that ignores one never widens what is probed.
    return [s for s in found
            if (not p.name_prefix or str(s.get("name", "")).startswith(p.name_prefix))
            # No tags in the body (compute API before 2.26) is no match, not a match.
            and (not p.tag or p.tag in (s.get("tags") or ()))
            and (not p.project or p.project in (own, s.get("tenant_id"), s.get("project_id")))]


def _hypervisor(server: dict[str, Any]) -> str:
    host = server.get("OS-EXT-SRV-ATTR:host")
    if host:
        return str(host)
    host_id = server.get("hostId")
    return f"{HOST_ID_PREFIX}{str(host_id)[:12]}" if host_id else "(unknown)"


async def read(client: CloudClient, p: FirewallParams) -> Scope:
    """Servers, ports, floating IPs, groups and rules of the scope."""
    scope = Scope()
    found = await servers(client, p)
    ports = await _by_ids(client, "/ports", "ports", "device_id", [s["id"] for s in found])
    floating: dict[str, list[str]] = {}
    try:
        for fip in await _by_ids(client, "/floatingips", "floatingips", "port_id",
                                 [pt["id"] for pt in ports]):
            floating.setdefault(str(fip.get("port_id")), []).append(
                str(fip["floating_ip_address"]))
    except CloudError as exc:
        if exc.status_code not in (404, 400):
            raise
        scope.notes.append(f"floating IPs not read ({exc}); fixed addresses only")
    group_ids = {g for pt in ports for g in pt.get("security_groups") or []}
    for group in await _by_ids(client, "/security-groups", "security_groups", "id", group_ids):
        scope.group_names[str(group["id"])] = str(group.get("name", ""))
    for rule in await _by_ids(client, "/security-group-rules", "security_group_rules",
                              "security_group_id", group_ids):
        scope.rules.setdefault(str(rule["security_group_id"]), []).append(rule)
    for gid in sorted(group_ids - set(scope.group_names)):
        scope.notes.append(f"security group {gid} of a port in scope is not visible to "
                           "this account: its rules are unknown (treated as none)")
    by_device: dict[str, list[dict[str, Any]]] = {}
    for pt in ports:
        by_device.setdefault(str(pt.get("device_id")), []).append(pt)
    for server in found:
        addresses: list[Address] = []
        for pt in by_device.get(server["id"], []):
            groups = tuple(pt.get("security_groups") or [])
            secure = pt.get("port_security_enabled") is not False
            fixed = [str(ip["ip_address"]) for ip in pt.get("fixed_ips") or []]
            addresses += [Address(a, pt["id"], "fixed", groups, secure) for a in fixed]
            addresses += [Address(a, pt["id"], "floating", groups, secure)
                          for a in floating.get(pt["id"], [])]
        scope.instances.append(Instance(str(server["id"]), str(server.get("name", "")),
                                        str(server.get("status", "")), _hypervisor(server),
                                        tuple(addresses)))
    return scope
