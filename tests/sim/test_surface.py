"""The simulated cloud's API surface as real clients expect it (issue 18): JSON
404/405 bodies in each service's own shape, next links that keep repeated
query parameters, Neutron's `fields=`, Glance's `id=in:`, Nova's hostId and
its admin-only and newest-microversion fields, the admin-only APIs, server
groups, Keystone's projects and users, and a token's stated lifetime. The
clock is held by the test (tests.sim.test_instant.HandClock)."""

from __future__ import annotations

import email.utils
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from yarl import URL

from osbench.sim import SimCloud
from osbench.sim.server import NO_ROUTE
from tests.sim.conftest import password_auth
from tests.sim.test_instant import Api, HandClock


async def _token(http: aiohttp.ClientSession, sim: SimCloud, admin: bool) -> dict[str, Any]:
    auth = password_auth(sim)
    if admin:
        auth["auth"]["identity"]["password"]["user"].update(
            name=sim.admin_username, password=sim.admin_password)
    async with http.post(sim.auth_url + "/auth/tokens", json=auth) as resp:
        assert resp.status == 201, await resp.text()
        return {"id": resp.headers["X-Subject-Token"], "body": (await resp.json())["token"],
                "date": resp.headers["Date"]}


class Both(Api):
    """The member's Api, and the admin's token."""

    admin_headers: dict[str, str]

    async def get(self, path: str, admin: bool = False, version: str | None = None,
                  **headers: str) -> tuple[int, Any, Any]:
        sent = dict(self.admin_headers if admin else self.headers, **headers)
        if version is not None:
            sent["OpenStack-API-Version"] = f"compute {version}"
        url = path if path.startswith("http") else self.sim.base_url + path
        async with self.http.get(url, headers=sent) as resp:
            body = await resp.json() if resp.content_type == "application/json" else \
                await resp.text()
            return resp.status, body, resp.headers

    async def boot(self, count: int) -> list[str]:
        status, body = await self.call("POST", "/compute/v2.1/servers", _create(self.sim, count))
        assert status == 202, body
        return [s.id for s in self.sim.servers.values() if s.name.startswith("surface")]


def _create(sim: SimCloud, count: int) -> dict[str, Any]:
    return {"server": {"name": "surface", "imageRef": sim.image_id, "flavorRef": sim.flavor_id,
                       "networks": [{"uuid": sim.network_id}], "min_count": count,
                       "max_count": count}}


@pytest.fixture
async def api() -> AsyncIterator[Both]:
    clock = HandClock()
    async with SimCloud("healthy") as sim, aiohttp.ClientSession() as http:
        sim.clock = clock
        clock.t = 100.0
        member, admin = await _token(http, sim, False), await _token(http, sim, True)
        both = Both(sim, clock, http, password_auth(sim), {"X-Auth-Token": member["id"]})
        both.admin_headers = {"X-Auth-Token": admin["id"]}
        yield both
        assert not sim.internal_errors


# -- unknown routes --------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "status", "shape"), [
    ("GET", "/compute/v2.1/os-no-such-thing", 404, {"itemNotFound": {
        "code": 404, "message": "The resource could not be found."}}),
    ("PATCH", "/compute/v2.1/flavors", 405, {"badMethod": {
        "code": 405, "message": "The method is not allowed for the requested URL."}}),
    ("GET", "/networking/v2.0/qos/policies", 404, {"NeutronError": {
        "type": "HTTPNotFound", "message": "The resource could not be found.", "detail": ""}}),
    ("PUT", "/networking/v2.0/ports", 405, {"NeutronError": {
        "type": "HTTPMethodNotAllowed",
        "message": "The method is not allowed for the requested URL.", "detail": ""}}),
    ("GET", "/identity/v3/OS-FEDERATION/mappings", 404, {"error": {
        "code": 404, "title": "Not Found", "message": "The resource could not be found."}}),
    ("GET", "/image/v2/metadefs/namespaces", 404, {
        "code": "404 Not Found", "title": "Not Found",
        "message": "The resource could not be found."}),
    ("GET", "/nowhere", 404, {"error": {
        "code": 404, "title": "Not Found", "message": "The resource could not be found."}}),
])
async def test_unknown_routes_answer_json_in_the_services_shape(
        api: Both, method: str, path: str, status: int, shape: dict[str, Any]) -> None:
    headers = {**api.headers, "Accept": "application/json"}
    async with api.http.request(method, api.sim.base_url + path, headers=headers) as resp:
        assert resp.status == status
        assert resp.content_type == "application/json"
        assert await resp.json() == shape
        if status == 405:
            assert "GET" in resp.headers["Allow"].split(",")
    service = {"compute": "compute", "networking": "network", "image": "image"}.get(
        path.split("/")[1], "identity")
    assert api.sim.request_counts()[(service, method, NO_ROUTE)] == 1


async def test_glance_without_json_accept_answers_webobs_plain_text(api: Both) -> None:
    status, body, headers = await api.get("/image/v2/no-such", Accept="text/html")
    assert status == 404 and headers["Content-Type"].startswith("text/plain")
    assert body.startswith("404 Not Found")


# -- paging and fields -------------------------------------------------------------
async def _follow(api: Both, url: str, key: str, links: str) -> list[str]:
    """Every id of a listing, following its next links (bounded)."""
    seen: list[str] = []
    for _ in range(50):
        status, body, _ = await api.get(url)
        assert status == 200, body
        seen += [item["id"] for item in body[key]]
        nxt = [link["href"] for link in body.get(links, []) if link["rel"] == "next"]
        if not nxt:
            return seen
        url = nxt[0]
    raise AssertionError("more than 50 pages")


async def test_nova_next_links_keep_repeated_query_parameters(api: Both) -> None:
    ids = await api.boot(5)
    tl = api.sim.servers[ids[0]].timeline
    assert tl.active_at is not None
    # Between the first ACTIVE and the last: some servers ACTIVE, some BUILD.
    api.clock.t = tl.active_at
    states = {i: api.sim.servers[i].state(api.clock.t).status for i in ids}
    assert set(states.values()) == {"ACTIVE", "BUILD"}, states
    query = "status=ACTIVE&status=BUILD&limit=2"
    status, body, _ = await api.get(f"/compute/v2.1/servers/detail?{query}")
    assert status == 200
    href = URL(body["servers_links"][0]["href"])
    assert href.query.getall("status") == ["ACTIVE", "BUILD"]
    paged = await _follow(api, f"{api.sim.base_url}/compute/v2.1/servers/detail?{query}",
                          "servers", "servers_links")
    assert sorted(paged) == sorted(ids)  # all five, once each, across three pages
    active = await _follow(api, f"{api.sim.base_url}/compute/v2.1/servers?status=ACTIVE&limit=1",
                           "servers", "servers_links")
    assert sorted(active) == sorted(i for i, s in states.items() if s == "ACTIVE")


async def test_neutron_next_links_keep_repeated_filters_and_fields_select(api: Both) -> None:
    ids = await api.boot(5)
    api.clock.t = max(api.sim.servers[i].timeline.port_created_at or 0.0 for i in ids)
    wanted = sorted(ids)[:3]
    query = "&".join(f"device_id={i}" for i in wanted) + "&limit=1"
    ports = await _follow(api, f"{api.sim.base_url}/networking/v2.0/ports?{query}", "ports",
                          "ports_links")
    devices = {p.id: p.device_id for p in api.sim.ports.values()}
    assert sorted(devices[p] for p in ports) == wanted
    status, body, _ = await api.get("/networking/v2.0/ports?fields=id&fields=status")
    assert status == 200 and len(body["ports"]) == 5
    assert all(set(p) == {"id", "status"} for p in body["ports"])
    status, body, _ = await api.get("/networking/v2.0/ports?fields=id,mac_address&limit=2")
    assert [set(p) for p in body["ports"]] == [{"id", "mac_address"}] * 2
    net = api.sim.network_id
    status, body, _ = await api.get(f"/networking/v2.0/networks/{net}?fields=name")
    assert body == {"network": {"name": "demo-network"}}


async def test_neutron_lists_its_extensions(api: Both) -> None:
    status, body, _ = await api.get("/networking/v2.0/extensions")
    aliases = {e["alias"] for e in body["extensions"]}
    assert status == 200 and {"security-group", "quotas", "port-security"} <= aliases
    status, body, _ = await api.get("/networking/v2.0/extensions/quotas")
    assert status == 200 and body["extension"]["alias"] == "quotas"
    status, body, _ = await api.get("/networking/v2.0/extensions/l3-ha")
    assert status == 404 and body["NeutronError"]["type"] == "HTTPNotFound"


async def test_glance_in_filter_and_schemas(api: Both) -> None:
    image = api.sim.image_id
    other = "00000000-0000-4000-8000-000000000000"
    status, body, _ = await api.get(f"/image/v2/images?id=in:{other},{image}")
    assert [i["id"] for i in body["images"]] == [image]
    status, body, _ = await api.get(f"/image/v2/images?id=in:{other}")
    assert body["images"] == []
    status, schema, _ = await api.get("/image/v2/schemas/image")
    assert status == 200 and schema["name"] == "image"
    status, one, _ = await api.get(f"/image/v2/images/{image}")
    # Every property of the body is one the schema declares, of a type it allows.
    types = {"string": str, "integer": int, "boolean": bool, "array": list, "null": type(None)}
    for key, value in one.items():
        declared = schema["properties"][key]["type"]
        allowed = declared if isinstance(declared, list) else [declared]
        assert isinstance(value, tuple(types[t] for t in allowed)), (key, value, allowed)
    status, schemas, _ = await api.get("/image/v2/schemas/images")
    assert schemas["properties"]["images"]["items"] == schema
    # python-glanceclient's shell discovers the version at /versions: 200 there, 300 at /.
    status, listed, _ = await api.get("/image/versions")
    assert status == 200 and listed["versions"][0]["id"].startswith("v2.")


# -- server bodies -------------------------------------------------------------------
ADMIN_ONLY = {"OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:hypervisor_hostname",
              "OS-EXT-SRV-ATTR:instance_name", "OS-EXT-SRV-ATTR:reservation_id",
              "OS-EXT-SRV-ATTR:launch_index", "OS-EXT-SRV-ATTR:kernel_id",
              "OS-EXT-SRV-ATTR:ramdisk_id", "OS-EXT-SRV-ATTR:root_device_name",
              "OS-EXT-SRV-ATTR:user_data", "host_status"}


async def test_admin_only_fields_are_hidden_from_the_member(api: Both) -> None:
    server_id = (await api.boot(1))[0]
    tl = api.sim.servers[server_id].timeline
    assert tl.active_at is not None
    api.clock.t = tl.active_at + 1.0
    path = f"/compute/v2.1/servers/{server_id}"
    _, member, _ = await api.get(path, version="2.89")
    _, admin, _ = await api.get(path, admin=True, version="2.89")
    assert not ADMIN_ONLY & set(member["server"]), sorted(member["server"])
    assert "OS-EXT-SRV-ATTR:hostname" not in member["server"]
    assert set(admin["server"]) >= ADMIN_ONLY
    assert admin["server"]["OS-EXT-SRV-ATTR:host"] == tl.host
    assert admin["server"]["OS-EXT-SRV-ATTR:launch_index"] == 0
    _, listed, _ = await api.get("/compute/v2.1/servers/detail", version="2.89")
    assert not ADMIN_ONLY & set(listed["servers"][0])
    # 2.90 shows the hostname to everyone; 2.96 adds pinned_availability_zone.
    _, newest, _ = await api.get(path, version="2.96")
    _, before, _ = await api.get(path, version="2.95")
    assert newest["server"]["OS-EXT-SRV-ATTR:hostname"] == "surface"
    assert newest["server"]["pinned_availability_zone"] is None
    assert "pinned_availability_zone" not in before["server"]
    assert newest["server"]["locked_reason"] is None and newest["server"]["server_groups"] == []


async def test_host_id_is_novas_and_stable_across_restarts(api: Both) -> None:
    server_id = (await api.boot(1))[0]
    tl = api.sim.servers[server_id].timeline
    assert tl.scheduled_at is not None and tl.host is not None
    api.clock.t = tl.scheduled_at - 0.001
    _, body, _ = await api.get(f"/compute/v2.1/servers/{server_id}")
    assert body["server"]["hostId"] == ""  # not scheduled yet
    api.clock.t = tl.scheduled_at
    _, body, _ = await api.get(f"/compute/v2.1/servers/{server_id}")
    expected = hashlib.sha224((api.sim.project_id + tl.host).encode()).hexdigest()
    assert body["server"]["hostId"] == expected
    # A second simulator of the same seed (a restart), the same create at the same
    # instant: the same host, so the same hostId (Python's hash() of a string, the old
    # hostId, differs from one process to the next).
    clock = HandClock()
    async with SimCloud("healthy") as again, aiohttp.ClientSession() as http:
        again.clock, clock.t = clock, 100.0
        token = await _token(http, again, False)
        headers = {"X-Auth-Token": token["id"]}
        async with http.post(again.base_url + "/compute/v2.1/servers", json=_create(again, 1),
                             headers=headers) as resp:
            second = (await resp.json())["server"]["id"]
        tl2 = again.servers[second].timeline
        assert tl2.host == tl.host and tl2.scheduled_at is not None
        clock.t = tl2.scheduled_at
        async with http.get(f"{again.base_url}/compute/v2.1/servers/{second}",
                            headers=headers) as resp:
            assert (await resp.json())["server"]["hostId"] == expected


async def test_usage_counts_each_servers_life_within_the_period(api: Both) -> None:
    ids = await api.boot(2)
    born = [api.sim.servers[i].timeline.visible_at for i in ids]
    api.clock.t = born[0] + 600.0
    status, _ = await api.call("DELETE", f"/compute/v2.1/servers/{ids[0]}")
    assert status == 204
    api.clock.t = born[0] + 1200.0  # within the tokens' hour
    # Ten minutes for the deleted one, the rest of the twenty for the other.
    hours = (600.0 + api.clock.t - born[1]) / 3600
    start = (api.sim.wall_origin + timedelta(seconds=born[0] - 3600.0)).isoformat()[:26]
    path = f"/compute/v2.1/os-simple-tenant-usage/{api.sim.project_id}?start={start}"
    status, body, _ = await api.get(path)
    usage = body["tenant_usage"]
    assert status == 200 and abs(usage["total_hours"] - hours) < 1e-6, usage
    flavor = api.sim.flavors[api.sim.flavor_id]
    assert abs(usage["total_vcpus_usage"] - hours * flavor.vcpus) < 1e-6
    states = {u["instance_id"]: u["state"] for u in usage["server_usages"]}
    assert states == {ids[0]: "terminated", ids[1]: "active"}
    status, body, _ = await api.get("/compute/v2.1/os-simple-tenant-usage")
    assert status == 403
    status, body, _ = await api.get(f"/compute/v2.1/os-simple-tenant-usage?start={start}",
                                    admin=True)
    assert status == 200 and len(body["tenant_usages"]) == 1


# -- admin-only APIs, server groups, Keystone ---------------------------------------
@pytest.mark.parametrize("path", [
    "/compute/v2.1/os-hypervisors", "/compute/v2.1/os-hypervisors/detail",
    "/compute/v2.1/os-services", "/compute/v2.1/os-availability-zone/detail",
    "/compute/v2.1/os-aggregates", "/networking/v2.0/agents",
    "/identity/v3/users", "/identity/v3/projects", "/identity/v3/services",
    "/identity/v3/endpoints", "/identity/v3/domains", "/identity/v3/roles",
    "/identity/v3/role_assignments",
])
async def test_admin_apis_refuse_the_member(api: Both, path: str) -> None:
    status, body, _ = await api.get(path)
    assert status == 403, body
    status, body, _ = await api.get(path, admin=True)
    assert status == 200, body


async def test_admin_listings_agree_with_the_catalog_and_tokens(api: Both) -> None:
    _, services, _ = await api.get("/identity/v3/services", admin=True)
    assert {s["type"] for s in services["services"]} == {"identity", "compute", "network",
                                                         "image"}
    _, endpoints, _ = await api.get("/identity/v3/endpoints?interface=public", admin=True)
    ids = [e["id"] for e in endpoints["endpoints"]]
    assert len(ids) == 4 and len(set(ids)) == 4
    _, roles, _ = await api.get("/identity/v3/roles", admin=True)
    assert {r["name"] for r in roles["roles"]} == {"admin", "member", "reader"}
    mine = f"/identity/v3/role_assignments?user.id={api.sim.user_id}"
    status, assigned, _ = await api.get(mine)
    by_id = {r["id"]: r["name"] for r in roles["roles"]}
    assert status == 200
    assert {by_id[a["role"]["id"]] for a in assigned["role_assignments"]} == {"member", "reader"}
    _, hypervisors, _ = await api.get("/compute/v2.1/os-hypervisors", admin=True, version="2.96")
    first = hypervisors["hypervisors"][0]
    status, one, _ = await api.get(f"/compute/v2.1/os-hypervisors/{first['id']}", admin=True,
                                   version="2.96")
    assert status == 200 and one["hypervisor"]["hypervisor_hostname"] == "compute-00.sim.example"
    status, stats, _ = await api.get("/compute/v2.1/os-hypervisors/statistics", admin=True)
    assert status == 200 and stats["hypervisor_statistics"]["count"] == 40
    status, _, _ = await api.get("/compute/v2.1/os-hypervisors/statistics", admin=True,
                                 version="2.88")
    assert status == 404  # removed at 2.88
    service = services["services"][0]
    status, one, _ = await api.get(f"/identity/v3/services/{service['id']}", admin=True)
    assert status == 200 and one["service"] == service
    _, named, _ = await api.get(f"{mine}&include_names=true")
    assert {a["user"]["name"] for a in named["role_assignments"]} == {"osbench"}
    _, agents, _ = await api.get("/networking/v2.0/agents?agent_type=DHCP+agent", admin=True)
    assert [a["binary"] for a in agents["agents"]] == ["neutron-dhcp-agent"]
    for path in ("/networking/v2.0/routers", "/networking/v2.0/floatingips"):
        status, body, _ = await api.get(path)
        assert status == 200 and body == {path.rsplit("/", 1)[-1]: []}


async def test_member_reads_its_projects_and_zones(api: Both) -> None:
    for path in ("/identity/v3/auth/projects", f"/identity/v3/users/{api.sim.user_id}/projects"):
        status, body, _ = await api.get(path)
        assert status == 200 and [p["name"] for p in body["projects"]] == ["osbench"], body
    status, body, _ = await api.get("/compute/v2.1/os-availability-zone")
    assert status == 200
    assert body["availabilityZoneInfo"] == [
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]


@pytest.mark.parametrize(("version", "create", "shape"), [
    ("2.1", {"name": "g", "policies": ["anti-affinity"]}, {"policies": ["anti-affinity"]}),
    ("2.64", {"name": "g", "policy": "soft-affinity"}, {"policy": "soft-affinity",
                                                         "rules": {}}),
])
async def test_server_groups(api: Both, version: str, create: dict[str, Any],
                             shape: dict[str, Any]) -> None:
    headers = {**api.headers, "OpenStack-API-Version": f"compute {version}"}
    url = api.sim.base_url + "/compute/v2.1/os-server-groups"
    async with api.http.post(url, json={"server_group": create}, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        group = (await resp.json())["server_group"]
    assert {k: group[k] for k in shape} == shape and group["members"] == []
    _, listed, _ = await api.get("/compute/v2.1/os-server-groups", version=version)
    assert [g["id"] for g in listed["server_groups"]] == [group["id"]]
    _, quota, _ = await api.get(f"/compute/v2.1/os-quota-sets/{api.sim.project_id}/detail")
    assert quota["quota_set"]["server_groups"]["in_use"] == 1
    async with api.http.delete(f"{url}/{group['id']}", headers=headers) as resp:
        assert resp.status == 204
    _, listed, _ = await api.get("/compute/v2.1/os-server-groups", version=version)
    assert listed["server_groups"] == []
    bad = {"name": "g", "policies": ["soft-affinity"]}  # soft policies need 2.15
    async with api.http.post(url, json={"server_group": bad}, headers=api.headers) as resp:
        assert resp.status == 400 and "badRequest" in await resp.json()


# -- token lifetime ------------------------------------------------------------------
def _keystone_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_token_lives_as_long_as_it_states_in_the_served_clock(api: Both) -> None:
    """Stated in the served (modelled wall) clock, as the reply's Date is, and
    refused from exactly its `expires_at` on: at time scale 20, one stated hour
    is 180 real seconds for every reader of that clock."""
    api.clock.t = 1000.25
    token = await _token(api.http, api.sim, False)
    issued, expires = (_keystone_time(token["body"][k]) for k in ("issued_at", "expires_at"))
    ttl = api.sim.profile.keystone.token_ttl_s
    assert (expires - issued).total_seconds() == ttl
    date = email.utils.parsedate_to_datetime(token["date"])
    assert date == issued.replace(microsecond=0)  # the Date of the reply: the same clock
    until = (expires - api.sim.wall_origin).total_seconds()
    assert abs(until - (1000.25 + ttl)) < 1e-5
    headers = {"X-Auth-Token": token["id"]}
    api.clock.t = until - 0.001
    async with api.http.get(api.sim.base_url + "/compute/v2.1/flavors", headers=headers) as r:
        assert r.status == 200
    async with api.http.get(api.sim.auth_url + "/auth/tokens",
                            headers={**headers, "X-Subject-Token": token["id"]}) as r:
        assert (await r.json())["token"]["expires_at"] == token["body"]["expires_at"]
    api.clock.t = until + 0.001
    async with api.http.get(api.sim.base_url + "/compute/v2.1/flavors", headers=headers) as r:
        assert r.status == 401
