"""Keystone v3 subset: version discovery, password auth, token + catalog.

Tokens expire after the profile's `token_ttl_s` modelled seconds; the other
services then answer 401, so clients' re-authentication is exercised.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from osbench.sim.server import CLOUD, ApiError, Route, bad_request, json_body
from osbench.sim.state import iso

VERSION = "3.14"


def _version(base: str) -> dict[str, Any]:
    return {
        "id": f"v{VERSION}",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base}/identity/v3/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.identity-v3+json"}],
    }


async def versions(request: web.Request, now: float) -> web.Response:
    base = request.app[CLOUD].base_url
    return web.json_response({"versions": {"values": [_version(base)]}}, status=300)


async def version(request: web.Request, now: float) -> web.Response:
    return web.json_response({"version": _version(request.app[CLOUD].base_url)})


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            raise bad_request(f"Invalid input for field '{'.'.join(path)}': missing")
        data = data[key]
    return data


def _named(obj: Any, field: str) -> str:
    """The `name` or `id` of a user/project/domain reference."""
    if not isinstance(obj, dict):
        raise bad_request(f"Invalid input for field '{field}': expected an object")
    value = obj.get("name", obj.get("id"))
    if not isinstance(value, str):
        raise bad_request(f"Invalid input for field '{field}': needs a name or id")
    return value


async def issue_token(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    body = await json_body(request)
    methods = _get(body, "auth", "identity", "methods")
    if not isinstance(methods, list) or "password" not in methods:
        raise ApiError(401, "Only password authentication is supported by the simulator.")
    user = _get(body, "auth", "identity", "password", "user")
    name, password = _named(user, "user"), user.get("password")
    if name not in (cloud.username, cloud.user_id) or password != cloud.password:
        raise ApiError(401, "The request you have made requires authentication.")
    scope = body["auth"].get("scope")
    project = scope.get("project") if isinstance(scope, dict) else None
    if project is not None and _named(project, "scope.project") not in (
        cloud.project_name, cloud.project_id
    ):
        raise ApiError(401, "The request you have made requires authentication.")
    token = secrets.token_hex(16)
    expires = now + cloud.profile.keystone.token_ttl_s
    cloud.tokens[token] = expires
    origin = cloud.wall_origin
    payload: dict[str, Any] = {
        "methods": ["password"],
        "user": {"id": cloud.user_id, "name": cloud.username,
                 "domain": {"id": "default", "name": "Default"}, "password_expires_at": None},
        "audit_ids": [secrets.token_urlsafe(16)],
        "issued_at": iso(origin, now).replace("Z", ".000000Z"),
        "expires_at": iso(origin, expires).replace("Z", ".000000Z"),
    }
    if project is not None:
        payload["project"] = {"id": cloud.project_id, "name": cloud.project_name,
                              "domain": {"id": "default", "name": "Default"}}
        payload["roles"] = [{"id": "0" * 31 + "1", "name": "member"}]
        payload["catalog"] = catalog(cloud.base_url, cloud.region)
        payload["is_domain"] = False
    return web.json_response({"token": payload}, status=201, headers={"X-Subject-Token": token})


async def check_token(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    if not cloud.token_valid(request.headers.get("X-Subject-Token"), now):
        raise ApiError(404, "Could not find token.")
    return web.json_response({"token": {"methods": ["password"]}})


def catalog(base: str, region: str) -> list[dict[str, Any]]:
    """The service catalog: one public endpoint per service."""
    services = [
        ("identity", "keystone", f"{base}/identity"),
        ("compute", "nova", f"{base}/compute/v2.1"),
        ("network", "neutron", f"{base}/networking"),
        ("image", "glance", f"{base}/image"),
    ]
    return [
        {
            "type": kind,
            "name": name,
            "id": f"{index:032x}",
            "endpoints": [
                {"id": f"{index + 100:032x}", "interface": iface, "region": region,
                 "region_id": region, "url": url}
                for iface in ("public", "internal")
            ],
        }
        for index, (kind, name, url) in enumerate(services, start=1)
    ]


ROUTES = [
    Route("GET", "/", versions, authenticated=False),
    Route("GET", "/v3", version, authenticated=False),
    Route("GET", "/v3/", version, authenticated=False),
    Route("POST", "/v3/auth/tokens", issue_token, authenticated=False),
    Route("GET", "/v3/auth/tokens", check_token),
]
