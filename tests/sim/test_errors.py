"""Malformed input gets each service's own 4xx, never a 500."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from osbench.sim import SimCloud
from tests.sim.conftest import password_auth


@pytest.fixture
async def raw() -> Any:
    async with SimCloud("healthy", time_scale=100) as sim, aiohttp.ClientSession() as http:
        auth = password_auth(sim)
        async with http.post(sim.auth_url + "/auth/tokens", json=auth) as resp:
            assert resp.status == 201
            token = resp.headers["X-Subject-Token"]
        yield sim, http, {"X-Auth-Token": token}


GOOD = {"name": "x", "imageRef": "IMAGE", "flavorRef": "100", "networks": "auto"}
BAD_BODIES: list[Any] = [
    b"{not json", b"[1, 2]", b'"server"', {"server": "x"}, {"server": {}},
    {"server": dict(GOOD, name=5)}, {"server": dict(GOOD, min_count="two")},
    {"server": dict(GOOD, min_count=3, max_count=2)}, {"server": dict(GOOD, min_count=0)},
    {"server": dict(GOOD, user_data="not base64!")}, {"server": dict(GOOD, flavorRef="nope")},
    {"server": dict(GOOD, imageRef="nope")}, {"server": dict(GOOD, networks=[{"uuid": "x"}])},
    {"server": dict(GOOD, key_name="missing")}, {"server": dict(GOOD, metadata={"a": 1})},
    {"server": dict(GOOD, security_groups=["default"])}, {"server": dict(GOOD, tags=[1])},
    {"server": dict(GOOD, return_reservation_id="yes")},
]


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_bad_create_is_400_in_nova_shape(raw: Any, body: Any) -> None:
    sim, http, headers = raw
    if isinstance(body, dict) and isinstance(body.get("server"), dict):
        server = body["server"]
        body["server"] = {k: (sim.image_id if v == "IMAGE" else v) for k, v in server.items()}
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with http.post(f"{sim.base_url}/compute/v2.1/servers", headers=headers, **kwargs) as r:
        assert r.status == 400, await r.text()
        assert "message" in (await r.json())["badRequest"]
    assert not sim.internal_errors


@pytest.mark.parametrize(("path", "status", "key"), [
    ("/compute/v2.1/servers/detail?limit=x", 400, "badRequest"),
    ("/compute/v2.1/servers/detail?changes-since=yesterday", 400, "badRequest"),
    ("/compute/v2.1/servers/detail?marker=nope", 400, "badRequest"),
    ("/compute/v2.1/servers/detail?name=(", 400, "badRequest"),
    ("/compute/v2.1/servers/nope", 404, "itemNotFound"),
    ("/networking/v2.0/ports/nope", 404, "NeutronError"),
    ("/networking/v2.0/ports?limit=-1", 400, "NeutronError"),
])
async def test_bad_reads(raw: Any, path: str, status: int, key: str) -> None:
    sim, http, headers = raw
    async with http.get(sim.base_url + path, headers=headers) as r:
        assert r.status == status
        assert key in await r.json()


async def test_glance_404_is_plain_text_and_bad_microversion_406(raw: Any) -> None:
    sim, http, headers = raw
    async with http.get(f"{sim.base_url}/image/v2/images/nope", headers=headers) as r:
        assert r.status == 404 and "No image found" in await r.text()
    mv = dict(headers, **{"OpenStack-API-Version": "compute 2.999"})
    async with http.get(f"{sim.base_url}/compute/v2.1/flavors", headers=mv) as r:
        assert r.status == 406
    mv = dict(headers, **{"OpenStack-API-Version": "compute banana"})
    async with http.get(f"{sim.base_url}/compute/v2.1/flavors", headers=mv) as r:
        assert r.status == 400


async def test_no_or_bad_token_is_401_and_bad_password_too(raw: Any) -> None:
    sim, http, _ = raw
    async with http.get(f"{sim.base_url}/compute/v2.1/servers",
                        headers={"X-Auth-Token": "bogus"}) as r:
        assert r.status == 401 and "WWW-Authenticate" in r.headers
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": sim.username, "password": "wrong", "domain": {"name": "Default"}}}}}}
    async with http.post(sim.auth_url + "/auth/tokens", json=body) as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == 401
    async with http.post(sim.auth_url + "/auth/tokens", data=b"{") as r:
        assert r.status == 400
    async with http.post(sim.auth_url + "/auth/tokens", json={"auth": {}}) as r:
        assert r.status == 400


async def test_bad_console_action_and_quota_update(raw: Any) -> None:
    sim, http, headers = raw
    body = {"server": dict(GOOD, imageRef=sim.image_id)}
    async with http.post(f"{sim.base_url}/compute/v2.1/servers", headers=headers, json=body) as r:
        server_id = (await r.json())["server"]["id"]
    url = f"{sim.base_url}/compute/v2.1/servers/{server_id}/action"
    for action in ({"os-getConsoleOutput": {"length": "lots"}}, {"reboot": {}},
                   {"os-getConsoleOutput": []}):
        async with http.post(url, headers=headers, json=action) as r:
            assert r.status == 400
    quota_url = f"{sim.base_url}/compute/v2.1/os-quota-sets/{sim.project_id}"
    for change in ({"quota_set": {"instances": "many"}}, {"quota_set": {"bogus": 1}}, {}):
        async with http.put(quota_url, headers=headers, json=change) as r:
            assert r.status == 400
    assert not sim.internal_errors
