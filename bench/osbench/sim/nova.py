"""Nova v2.1 subset, everything except servers: versions, microversions,
flavors, keypairs, limits and quota sets (servers live in `nova_servers`).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from osbench.sim.server import CLOUD, ApiError, Route, bad_request, json_body
from osbench.sim.state import Flavor

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 96)
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")
#: Quota keys a non-legacy project shows besides instances/cores/ram.
FIXED_QUOTAS = {"key_pairs": 100, "metadata_items": 128, "server_groups": 10,
                "server_group_members": 10}


def vstr(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def microversion(request: web.Request) -> tuple[int, int]:
    """The compute microversion a request asks for (2.1 when it names none)."""
    header = request.headers.get("OpenStack-API-Version", "")
    value = None
    for part in header.split(","):
        service, _, ver = part.strip().partition(" ")
        if service.lower() == "compute":
            value = ver.strip()
    value = value or request.headers.get("X-OpenStack-Nova-API-Version")
    if not value:
        return MIN_VERSION
    if value.lower() == "latest":
        return MAX_VERSION
    match = _VERSION_RE.match(value)
    if not match:
        raise bad_request(f"Invalid format for the API version: {value!r}")
    version = (int(match[1]), int(match[2]))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ApiError(
            406,
            f"Version {value} is not supported by the API. Minimum is {vstr(MIN_VERSION)}"
            f" and maximum is {vstr(MAX_VERSION)}.",
        )
    return version


def respond(request: web.Request, body: Any, status: int = 200) -> web.Response:
    """A JSON response carrying the microversion headers Nova sends."""
    version = vstr(microversion(request))
    return web.json_response(body, status=status, headers={
        "OpenStack-API-Version": f"compute {version}",
        "X-OpenStack-Nova-API-Version": version,
        "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
    })


def _version_doc(base: str) -> dict[str, Any]:
    return {
        "id": "v2.1", "status": "CURRENT", "version": vstr(MAX_VERSION),
        "min_version": vstr(MIN_VERSION), "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{base}/compute/v2.1/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.compute+json;version=2.1"}],
    }


async def versions(request: web.Request, now: float) -> web.Response:
    return web.json_response({"versions": [_version_doc(request.app[CLOUD].base_url)]})


async def version(request: web.Request, now: float) -> web.Response:
    return web.json_response({"version": _version_doc(request.app[CLOUD].base_url)})


def flavor_body(request: web.Request, flavor: Flavor, detail: bool) -> dict[str, Any]:
    base = request.app[CLOUD].base_url
    body: dict[str, Any] = {
        "id": flavor.id, "name": flavor.name,
        "links": [{"rel": "self", "href": f"{base}/compute/v2.1/flavors/{flavor.id}"}],
    }
    if microversion(request) >= (2, 55):
        body["description"] = None
    if detail:
        body.update({
            "ram": flavor.ram_mb, "vcpus": flavor.vcpus, "disk": flavor.disk_gb,
            "OS-FLV-EXT-DATA:ephemeral": 0, "OS-FLV-DISABLED:disabled": False,
            "os-flavor-access:is_public": True, "rxtx_factor": 1.0,
            "swap": 0 if microversion(request) >= (2, 75) else "",
        })
        if microversion(request) >= (2, 61):
            body["extra_specs"] = {}
    return body


async def list_flavors(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    detail = request.path.endswith("/detail")
    flavors = list(cloud.flavors.values())
    if "minRam" in request.query or "minDisk" in request.query:
        try:
            min_ram = int(request.query.get("minRam", 0))
            min_disk = int(request.query.get("minDisk", 0))
        except ValueError:
            raise bad_request("Invalid minRam or minDisk filter") from None
        flavors = [f for f in flavors if f.ram_mb >= min_ram and f.disk_gb >= min_disk]
    return respond(request, {"flavors": [flavor_body(request, f, detail) for f in flavors]})


async def show_flavor(request: web.Request, now: float) -> web.Response:
    flavor = request.app[CLOUD].flavors.get(request.match_info["flavor_id"])
    if flavor is None:
        raise ApiError(404, f"Flavor {request.match_info['flavor_id']} could not be found.")
    return respond(request, {"flavor": flavor_body(request, flavor, True)})


async def flavor_extra_specs(request: web.Request, now: float) -> web.Response:
    if request.match_info["flavor_id"] not in request.app[CLOUD].flavors:
        raise ApiError(404, f"Flavor {request.match_info['flavor_id']} could not be found.")
    return respond(request, {"extra_specs": {}})


def _keypair_body(name: str, public_key: str, request: web.Request) -> dict[str, Any]:
    body = {"name": name, "public_key": public_key,
            "fingerprint": "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"}
    if microversion(request) >= (2, 2):
        body["type"] = "ssh"
    return body


async def list_keypairs(request: web.Request, now: float) -> web.Response:
    keypairs = request.app[CLOUD].keypairs
    return respond(request, {"keypairs": [
        {"keypair": _keypair_body(n, k, request)} for n, k in keypairs.items()]})


async def show_keypair(request: web.Request, now: float) -> web.Response:
    name = request.match_info["name"]
    key = request.app[CLOUD].keypairs.get(name)
    if key is None:
        raise ApiError(404, f"Keypair {name} not found for user {request.app[CLOUD].user_id}")
    return respond(request, {"keypair": _keypair_body(name, key, request)})


async def create_keypair(request: web.Request, now: float) -> web.Response:
    body = await json_body(request)
    kp = body.get("keypair")
    if not isinstance(kp, dict) or not isinstance(kp.get("name"), str) or not kp["name"]:
        raise bad_request("Invalid input for field/attribute keypair. Value: missing name")
    public_key = kp.get("public_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIsim osbench-sim")
    if not isinstance(public_key, str):
        raise bad_request("Invalid input for field/attribute public_key.")
    keypairs = request.app[CLOUD].keypairs
    if kp["name"] in keypairs:
        raise ApiError(409, f"Key pair '{kp['name']}' already exists.")
    keypairs[kp["name"]] = public_key
    status = 201 if microversion(request) >= (2, 2) else 200
    return respond(request, {"keypair": _keypair_body(kp["name"], public_key, request)}, status)


async def delete_keypair(request: web.Request, now: float) -> web.Response:
    name = request.match_info["name"]
    if request.app[CLOUD].keypairs.pop(name, None) is None:
        raise ApiError(404, f"Keypair {name} not found.")
    return web.Response(status=202 if microversion(request) < (2, 2) else 204)


async def limits(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    used = cloud.usage()
    quotas = cloud.quotas
    absolute: dict[str, int] = {
        "maxTotalInstances": quotas["instances"], "totalInstancesUsed": used["instances"],
        "maxTotalCores": quotas["cores"], "totalCoresUsed": used["cores"],
        "maxTotalRAMSize": quotas["ram"], "totalRAMUsed": used["ram"],
        "maxServerMeta": 128, "maxTotalKeypairs": 100, "maxServerGroups": 10,
        "maxServerGroupMembers": 10, "totalServerGroupsUsed": used["server_groups"],
    }
    if microversion(request) < (2, 57):
        absolute.update({"maxImageMeta": 128, "maxPersonality": 5, "maxPersonalitySize": 10240})
    return respond(request, {"limits": {"rate": [], "absolute": absolute}})


def _project(request: web.Request) -> str:
    project = request.match_info["project_id"]
    cloud = request.app[CLOUD]
    if project not in (cloud.project_id, cloud.project_name):
        raise ApiError(404, f"Project {project} could not be found.")
    return cloud.project_id


def _quota_set(request: web.Request, detail: bool, defaults: bool = False) -> dict[str, Any]:
    cloud = request.app[CLOUD]
    limits = dict(cloud.default_quotas if defaults else cloud.quotas, **FIXED_QUOTAS)
    used = cloud.usage()
    body: dict[str, Any] = {"id": _project(request)}
    for key, limit in limits.items():
        body[key] = {"limit": limit, "in_use": used.get(key, 0), "reserved": 0} if detail else limit
    return body


async def show_quotas(request: web.Request, now: float) -> web.Response:
    return respond(request, {"quota_set": _quota_set(request, False)})


async def show_quota_detail(request: web.Request, now: float) -> web.Response:
    return respond(request, {"quota_set": _quota_set(request, True)})


async def show_quota_defaults(request: web.Request, now: float) -> web.Response:
    return respond(request, {"quota_set": _quota_set(request, False, defaults=True)})


async def update_quotas(request: web.Request, now: float) -> web.Response:
    _project(request)
    body = await json_body(request)
    changes = body.get("quota_set")
    if not isinstance(changes, dict):
        raise bad_request("Invalid input for field/attribute quota_set.")
    quotas = request.app[CLOUD].quotas
    for key, value in changes.items():
        if key == "force":
            continue
        if key not in quotas and key not in FIXED_QUOTAS:
            raise bad_request(f"Additional properties are not allowed ('{key}' was unexpected)")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise bad_request(f"Invalid input for field/attribute {key}. Value: {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise bad_request(f"Invalid input for quota {key}. Value: {value!r}") from None
        if number < -1:
            raise bad_request(f"Quota limit {number} for {key} must be -1 or greater.")
        if key in quotas:
            quotas[key] = number
    body = _quota_set(request, False)
    body.pop("id")
    return respond(request, {"quota_set": body})


def routes() -> list[Route]:
    """Nova routes other than servers."""
    from osbench.sim import nova_actions  # it imports this module

    return [
        *nova_actions.routes(),
        Route("GET", "/", versions, authenticated=False),
        Route("GET", "/v2.1", version, authenticated=False),
        Route("GET", "/v2.1/", version, authenticated=False),
        Route("GET", "/v2.1/flavors", list_flavors),
        Route("GET", "/v2.1/flavors/detail", list_flavors),
        Route("GET", "/v2.1/flavors/{flavor_id}", show_flavor),
        Route("GET", "/v2.1/flavors/{flavor_id}/os-extra_specs", flavor_extra_specs),
        Route("GET", "/v2.1/os-keypairs", list_keypairs),
        Route("POST", "/v2.1/os-keypairs", create_keypair),
        Route("GET", "/v2.1/os-keypairs/{name}", show_keypair),
        Route("DELETE", "/v2.1/os-keypairs/{name}", delete_keypair),
        Route("GET", "/v2.1/limits", limits),
        Route("GET", "/v2.1/os-quota-sets/{project_id}", show_quotas),
        Route("PUT", "/v2.1/os-quota-sets/{project_id}", update_quotas),
        Route("GET", "/v2.1/os-quota-sets/{project_id}/detail", show_quota_detail),
        Route("GET", "/v2.1/os-quota-sets/{project_id}/defaults", show_quota_defaults),
    ]
