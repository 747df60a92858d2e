"""Keystone v3 subset: version discovery, password auth, token + catalog,
the project and its two users (`/v3/projects`, `/v3/users`,
`/v3/auth/projects`).

Tokens expire after the profile's `token_ttl_s` modelled seconds; the other
services then answer 401, so clients' re-authentication is exercised. The
clock the simulator serves is the modelled wall clock (`wall_origin` plus
modelled seconds, as every `created`/`updated` stamp): a token's
`issued_at`/`expires_at` are stated in it to the microsecond, and it is
refused from exactly its stated `expires_at` on. At time scale 20 a token of
one modelled hour lives 180 real seconds; a client comparing `expires_at`
with its own real clock must map it through the served clock first (its
`Date`), as osbench's tracker does for every cloud stamp.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from osbench.sim.server import CLOUD, ApiError, Route, bad_request, json_body, token
from osbench.sim.state import Token, User, iso_us, stable_id

if TYPE_CHECKING:
    from osbench.sim.cloud import SimCloud

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


def _user(cloud: SimCloud, name: str, password: Any) -> User:
    for user in cloud.users.values():
        if name in (user.name, user.id) and password == user.password:
            return user
    raise ApiError(401, "The request you have made requires authentication.")


def _roles(user: User) -> list[dict[str, str]]:
    """The user's roles, each with one id for every user (Keystone's are per role)."""
    return [{"id": stable_id(f"role/{role}").replace("-", ""), "name": role}
            for role in user.roles]


def _token_body(cloud: SimCloud, record: Token, issued: float) -> dict[str, Any]:
    user, origin = record.user, cloud.wall_origin
    payload: dict[str, Any] = {
        "methods": ["password"],
        "user": {"id": user.id, "name": user.name,
                 "domain": {"id": "default", "name": "Default"}, "password_expires_at": None},
        "audit_ids": [secrets.token_urlsafe(16)],
        "issued_at": iso_us(origin, issued),
        "expires_at": iso_us(origin, record.expires),
    }
    if record.scoped:
        payload["project"] = _project_ref(cloud)
        payload["roles"] = _roles(user)
        payload["catalog"] = catalog(cloud.base_url, cloud.region)
        payload["is_domain"] = False
    return payload


def _project_ref(cloud: SimCloud) -> dict[str, Any]:
    return {"id": cloud.project_id, "name": cloud.project_name,
            "domain": {"id": "default", "name": "Default"}}


async def issue_token(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    body = await json_body(request)
    methods = _get(body, "auth", "identity", "methods")
    if not isinstance(methods, list) or "password" not in methods:
        raise ApiError(401, "Only password authentication is supported by the simulator.")
    user_ref = _get(body, "auth", "identity", "password", "user")
    user = _user(cloud, _named(user_ref, "user"), user_ref.get("password"))
    scope = body["auth"].get("scope")
    project = scope.get("project") if isinstance(scope, dict) else None
    if project is not None and _named(project, "scope.project") not in (
        cloud.project_name, cloud.project_id
    ):
        raise ApiError(401, "The request you have made requires authentication.")
    subject = secrets.token_hex(16)
    record = Token(user, now + cloud.profile.keystone.token_ttl_s, project is not None)
    cloud.tokens[subject] = record
    return web.json_response({"token": _token_body(cloud, record, now)}, status=201,
                             headers={"X-Subject-Token": subject})


async def check_token(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    record = cloud.token(request.headers.get("X-Subject-Token"), now)
    if record is None:
        raise ApiError(404, "Could not find token.")
    issued = record.expires - cloud.profile.keystone.token_ttl_s
    return web.json_response({"token": _token_body(cloud, record, issued)})


def _project_body(request: web.Request) -> dict[str, Any]:
    cloud = request.app[CLOUD]
    base = cloud.base_url
    return {**_project_ref(cloud), "domain_id": "default", "description": "osbench-sim",
            "enabled": True, "parent_id": "default", "is_domain": False, "tags": [],
            "options": {}, "links": {"self": f"{base}/identity/v3/projects/{cloud.project_id}"}}


def _user_body(request: web.Request, user: User) -> dict[str, Any]:
    base = request.app[CLOUD].base_url
    return {"id": user.id, "name": user.name, "domain_id": "default", "enabled": True,
            "password_expires_at": None, "options": {},
            "links": {"self": f"{base}/identity/v3/users/{user.id}"}}


def _collection(request: web.Request, key: str, items: list[dict[str, Any]]) -> web.Response:
    """Keystone's list: `name`/`enabled` filters, `links` without paging."""
    if "name" in request.query:
        items = [i for i in items if i["name"] == request.query["name"]]
    base = request.app[CLOUD].base_url
    return web.json_response({key: items, "links": {
        "self": f"{base}{request.path_qs}", "previous": None, "next": None}})


def _may_list(request: web.Request, action: str, user_id: str | None = None) -> None:
    """Keystone's default policy: admin lists all; a user reads only itself."""
    record = token(request)
    if not record.user.admin and (user_id is None or user_id != record.user.id):
        raise ApiError(403, "You are not authorized to perform the requested action: "
                            f"{action}.")


async def list_projects(request: web.Request, now: float) -> web.Response:
    _may_list(request, "identity:list_projects")
    return _collection(request, "projects", [_project_body(request)])


async def show_project(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    if request.match_info["project_id"] != cloud.project_id:
        raise ApiError(404, f"Could not find project: {request.match_info['project_id']}.")
    return web.json_response({"project": _project_body(request)})


async def auth_projects(request: web.Request, now: float) -> web.Response:
    """The projects the token's user has a role on: the one project, for both users."""
    return _collection(request, "projects", [_project_body(request)])


async def list_users(request: web.Request, now: float) -> web.Response:
    _may_list(request, "identity:list_users")
    users = request.app[CLOUD].users.values()
    return _collection(request, "users", [_user_body(request, u) for u in users])


async def show_user(request: web.Request, now: float) -> web.Response:
    user_id = request.match_info["user_id"]
    _may_list(request, "identity:get_user", user_id)
    for user in request.app[CLOUD].users.values():
        if user.id == user_id:
            return web.json_response({"user": _user_body(request, user)})
    raise ApiError(404, f"Could not find user: {user_id}.")


async def user_projects(request: web.Request, now: float) -> web.Response:
    _may_list(request, "identity:list_user_projects", request.match_info["user_id"])
    return _collection(request, "projects", [_project_body(request)])


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
                {"id": f"{index * 10 + number:032x}", "interface": iface, "region": region,
                 "region_id": region, "url": url}
                for number, iface in enumerate(("public", "internal"))
            ],
        }
        for index, (kind, name, url) in enumerate(services, start=1)
    ]


def _links(request: web.Request, kind: str, item_id: str) -> dict[str, str]:
    return {"self": f"{request.app[CLOUD].base_url}/identity/v3/{kind}/{item_id}"}


def _services(request: web.Request) -> list[dict[str, Any]]:
    cloud = request.app[CLOUD]
    return [{"id": s["id"], "type": s["type"], "name": s["name"], "enabled": True,
             "description": "", "links": _links(request, "services", s["id"])}
            for s in catalog(cloud.base_url, cloud.region)]


async def show_service(request: web.Request, now: float) -> web.Response:
    _may_list(request, "identity:get_service")
    for service in _services(request):
        if service["id"] == request.match_info["service_id"]:
            return web.json_response({"service": service})
    raise ApiError(404, f"Could not find service: {request.match_info['service_id']}.")


async def list_services(request: web.Request, now: float) -> web.Response:
    """The catalog's services (admin), as `openstack service list` reads them."""
    _may_list(request, "identity:list_services")
    items = _services(request)
    if "type" in request.query:
        items = [i for i in items if i["type"] == request.query["type"]]
    return _collection(request, "services", items)


async def list_endpoints(request: web.Request, now: float) -> web.Response:
    _may_list(request, "identity:list_endpoints")
    cloud = request.app[CLOUD]
    items = [{**{k: e[k] for k in ("id", "interface", "region", "region_id", "url")},
              "service_id": s["id"], "enabled": True,
              "links": _links(request, "endpoints", e["id"])}
             for s in catalog(cloud.base_url, cloud.region) for e in s["endpoints"]]
    for key in ("interface", "service_id", "region_id"):
        if key in request.query:
            items = [i for i in items if i[key] == request.query[key]]
    return _collection(request, "endpoints", items)


async def list_regions(request: web.Request, now: float) -> web.Response:
    region = request.app[CLOUD].region
    return _collection(request, "regions", [{
        "id": region, "description": "", "parent_region_id": None,
        "links": _links(request, "regions", region)}])


async def list_domains(request: web.Request, now: float) -> web.Response:
    _may_list(request, "identity:list_domains")
    return _collection(request, "domains", [{
        "id": "default", "name": "Default", "description": "The default domain",
        "enabled": True, "tags": [], "options": {},
        "links": _links(request, "domains", "default")}])


def _all_roles(request: web.Request) -> dict[str, str]:
    """Every role any user holds, by name: its id (as the token lists them)."""
    roles: dict[str, str] = {}
    for user in request.app[CLOUD].users.values():
        roles.update({r["name"]: r["id"] for r in _roles(user)})
    return roles


async def list_roles(request: web.Request, now: float) -> web.Response:
    _may_list(request, "identity:list_roles")
    return _collection(request, "roles", [
        {"id": role_id, "name": name, "domain_id": None, "description": None, "options": {},
         "links": _links(request, "roles", role_id)}
        for name, role_id in _all_roles(request).items()])


async def list_role_assignments(request: web.Request, now: float) -> web.Response:
    """Each user's roles on the project; a member may ask for its own (`user.id`)."""
    cloud = request.app[CLOUD]
    wanted = request.query.get("user.id")
    _may_list(request, "identity:list_role_assignments", wanted)
    names = request.query.get("include_names", "").lower() in ("1", "true")
    default = {"id": "default", "name": "Default"}
    items = []
    for user in cloud.users.values():
        if wanted is not None and user.id != wanted:
            continue
        for role in _roles(user):
            items.append({
                "role": dict(role) if names else {"id": role["id"]},
                "user": {"id": user.id, "name": user.name, "domain": default} if names
                else {"id": user.id},
                "scope": {"project": {**_project_ref(cloud)} if names
                          else {"id": cloud.project_id}},
                "links": {"assignment": f"{cloud.base_url}/identity/v3/projects/"
                                        f"{cloud.project_id}/users/{user.id}/roles/{role['id']}"},
            })
    base = cloud.base_url
    return web.json_response({"role_assignments": items, "links": {
        "self": f"{base}{request.path_qs}", "previous": None, "next": None}})


ROUTES = [
    Route("GET", "/", versions, authenticated=False),
    Route("GET", "/v3", version, authenticated=False),
    Route("GET", "/v3/", version, authenticated=False),
    Route("POST", "/v3/auth/tokens", issue_token, authenticated=False),
    Route("GET", "/v3/auth/tokens", check_token),
    Route("GET", "/v3/auth/projects", auth_projects),
    Route("GET", "/v3/projects", list_projects),
    Route("GET", "/v3/projects/{project_id}", show_project),
    Route("GET", "/v3/users", list_users),
    Route("GET", "/v3/users/{user_id}", show_user),
    Route("GET", "/v3/users/{user_id}/projects", user_projects),
    Route("GET", "/v3/services", list_services),
    Route("GET", "/v3/services/{service_id}", show_service),
    Route("GET", "/v3/endpoints", list_endpoints),
    Route("GET", "/v3/regions", list_regions),
    Route("GET", "/v3/domains", list_domains),
    Route("GET", "/v3/roles", list_roles),
    Route("GET", "/v3/role_assignments", list_role_assignments),
]
