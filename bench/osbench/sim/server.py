"""The simulated cloud's HTTP side: one aiohttp app for all four services.

Each service module (`keystone`, `nova`, `neutron`, `glance`) lists its
routes relative to its own root. This module mounts them, counts every
request by (service, method, route template), checks tokens, and turns
`ApiError` into each service's own error shape, so malformed input always
gets a 4xx and never a 500.

A request is served at one modelled instant, read once when it has fully
arrived (body included) and handed to its handler: the token check and every
state read and write of the request use it. Two readings let a port created
between them be listed with no state yet at the first (an HTTP 500,
`max() arg is an empty sequence`, on a busy machine).

Two routes are the simulator's own, not OpenStack's, and neither is counted:
- `GET /osbench-sim/requests` answers the request counts as JSON, so a
  benchmark driving a simulator in another process (`osbench sim serve`) can
  count any client's API calls at the cloud. It needs no token.
- `GET /osbench-sim/metrics` answers the modelled control plane's state at the
  request's instant in the Prometheus text format (`osbench.sim.metrics`). It
  needs a valid X-Auth-Token issued by the simulator (401 otherwise), of
  either of its users: osbench's `prometheus` monitor reads it with the
  member credentials a run uses.

A path no route serves, or a method a path does not take, is answered 404 or
405 in the shape of the service that owns the path's prefix (Nova's
`itemNotFound`, Neutron's `NeutronError`, Keystone's `error`, Glance's webob
page), not aiohttp's plain text, which clients fail to parse.
"""

from __future__ import annotations

import email.utils
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import typedefs, web

from osbench.sim import metrics

if TYPE_CHECKING:
    from osbench.sim.cloud import SimCloud
    from osbench.sim.state import Token

#: A route's handler: the request and the modelled instant it is served at.
Handler = Callable[[web.Request, float], Awaitable[web.StreamResponse]]
#: That instant, for its reply's Date header (a context variable: a string key on
#: the request warns from aiohttp 3.12, and web.RequestKey needs 3.12).
_INSTANT: ContextVar[float | None] = ContextVar("osbench_sim_instant", default=None)
CLOUD: web.AppKey[SimCloud] = web.AppKey("cloud")

#: URL prefix of each service's root (catalog endpoints are built from these).
PREFIXES = {
    "identity": "/identity",
    "compute": "/compute",
    "network": "/networking",
    "image": "/image",
}

#: nova.api.openstack.wsgi.Fault's names; any other status is a "computeFault".
_NOVA_KINDS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}
_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict",
           413: "Request Entity Too Large", 500: "Internal Server Error"}
#: What the services say for a path no route serves / a method it does not take.
_NO_ROUTE = {404: "The resource could not be found.",
             405: "The method is not allowed for the requested URL."}
_NEUTRON_KINDS = {404: "HTTPNotFound", 405: "HTTPMethodNotAllowed"}
#: The token record (osbench.sim.state.Token) of the request being served, once
#: checked: aiohttp serves each request in its own task, so a context variable
#: (web.RequestKey needs aiohttp 3.12, pyproject allows 3.9).
_TOKEN: ContextVar[Token | None] = ContextVar("osbench_sim_token", default=None)


class ApiError(Exception):
    """An API error; `kind` is Neutron's error type (e.g. "PortNotFound")."""

    def __init__(self, status: int, message: str, kind: str = "HTTPError") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "HTTPBadRequest")


@dataclass(frozen=True)
class Route:
    """One route of a service, `template` relative to the service root."""

    method: str
    template: str
    handler: Handler
    authenticated: bool = True


def error_response(service: str, exc: ApiError, accept: str = "") -> web.Response:
    """`exc` in the shape the real service uses (`accept`: the request's Accept)."""
    status, message = exc.status, exc.message
    title = _TITLES.get(status, "Error")
    if status == 401 or service == "identity":
        body: Any = {"error": {"code": status, "title": title, "message": message}}
    elif service == "compute":
        body = {_NOVA_KINDS.get(status, "computeFault"): {"code": status, "message": message}}
    elif service == "network":
        body = {"NeutronError": {"type": exc.kind, "message": message, "detail": ""}}
    elif "application/json" in accept:  # Glance: webob's error page, JSON when asked
        body = {"code": f"{status} {title}", "title": title, "message": message}
    else:  # ... and plain text otherwise
        text = f"{status} {title}\n\n{message}\n\n   "
        return web.Response(status=status, text=text, content_type="text/plain")
    return web.json_response(body, status=status)


def token(request: web.Request) -> Token:
    """The checked token of an authenticated route's request."""
    record = _TOKEN.get()
    if record is None:  # an unauthenticated route asked: a bug of the simulator's
        raise RuntimeError(f"{request.path}: no checked token")
    return record


def is_admin(request: web.Request) -> bool:
    """Whether the request's token carries the admin role (policy: admin-only fields)."""
    record = _TOKEN.get()
    return record is not None and record.user.admin


def require_admin(request: web.Request, action: str) -> None:
    """403 as the services' default policy answers a member for an admin-only API."""
    if not is_admin(request):
        raise ApiError(403, f"Policy doesn't allow {action} to be performed.")


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 like the real APIs give."""
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"Malformed request body: {exc}") from exc
    if not isinstance(data, dict):
        raise bad_request("Malformed request body: expected a JSON object")
    return data


def query_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    """An integer query parameter, 400 if it is not one."""
    value = request.query.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"Invalid input for query parameter {name}: {value!r}") from None
    if number < 0:
        raise bad_request(f"Invalid input for query parameter {name}: must be >= 0")
    return number


def counted_template(template: str) -> str:
    """The template a request is counted under: without the API version segment."""
    return re.sub(r"^/v\d+(\.\d+)?(?=/|$)", "", template) or "/"


def _wrap(service: str, route: Route) -> typedefs.Handler:
    key = (service, route.method, counted_template(route.template))

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await serve(request)
        # Every OpenStack API names each request, so a slow call can be found in its
        # logs; clients (and osbench's `api` monitor) read it (Nova sends both).
        request_id = f"req-{uuid.uuid4()}"
        response.headers["x-openstack-request-id"] = request_id
        if service == "compute":
            response.headers["x-compute-request-id"] = request_id
        return response

    async def serve(request: web.Request) -> web.StreamResponse:
        cloud = request.app[CLOUD]
        try:
            await request.read()  # kept by aiohttp for the handler's json_body
            now = cloud.now()  # the request's one instant: see the module doc
            cloud.count_request(key, now)  # counted at it: no second clock reading
            _INSTANT.set(now)
            record = cloud.token(request.headers.get("X-Auth-Token"), now)
            _TOKEN.set(record)
            if record is None and route.authenticated:
                raise ApiError(401, "The request you have made requires authentication.")
            return await route.handler(request, now)
        except ApiError as exc:
            response = error_response(service, exc, request.headers.get("Accept", ""))
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = f'Keystone uri="{cloud.auth_url}"'
            return response
        except Exception as exc:  # a bug in the simulator: still answer in the service's shape
            cloud.internal_errors.append(repr(exc))
            return error_response(service, ApiError(500, f"Internal simulator error: {exc!r}"))

    return handler


#: The simulator's request counts (see the module doc); no OpenStack service lives here.
REQUEST_COUNTS_PATH = "/osbench-sim/requests"


async def _request_counts(request: web.Request) -> web.Response:
    counts = request.app[CLOUD].request_counts()
    return web.json_response({"requests": [
        {"service": service, "method": method, "route": route, "count": n}
        for (service, method, route), n in sorted(counts.items())]})


#: The modelled control plane's metrics (see the module doc): admin-only, not counted.
METRICS_PATH = "/osbench-sim/metrics"


async def _metrics(request: web.Request) -> web.Response:
    cloud = request.app[CLOUD]
    now = cloud.now()  # the request's one instant, as for the services' routes
    if not cloud.token_valid(request.headers.get("X-Auth-Token"), now):
        response = error_response("identity", ApiError(
            401, "The request you have made requires authentication."))
        response.headers["WWW-Authenticate"] = f'Keystone uri="{cloud.auth_url}"'
        return response
    try:
        text = metrics.render(cloud.metrics_snapshot(now))
    except Exception as exc:  # a bug in the simulator: answer it, and keep it for the tests
        cloud.internal_errors.append(repr(exc))
        return web.Response(status=500, text=f"Internal simulator error: {exc!r}")
    return web.Response(body=text.encode("utf-8"), headers={"Content-Type": metrics.CONTENT_TYPE})


def _service_of(path: str) -> str:
    """The service whose prefix `path` is under ("identity" for none of them)."""
    for service, prefix in PREFIXES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return "identity"


@web.middleware
async def _no_route(request: web.Request, handler: typedefs.Handler) -> web.StreamResponse:
    """404/405 for what no route serves, in the owning service's shape; counted."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        if request.match_info.route.resource is not None:
            raise  # a handler's own (none raise these), not the router's
        service = _service_of(request.path)
        request.app[CLOUD].count_request((service, request.method, NO_ROUTE))
        response = error_response(service, ApiError(exc.status, _NO_ROUTE[exc.status],
                                                     _NEUTRON_KINDS[exc.status]),
                                  request.headers.get("Accept", ""))
        if isinstance(exc, web.HTTPMethodNotAllowed):
            response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        return response


#: The route template requests served by no route are counted under.
NO_ROUTE = "(no route)"


async def _modelled_date(request: web.Request, response: web.StreamResponse) -> None:
    """Every reply's `Date` in the clock the simulator serves (modelled wall time,
    running at its time scale), like its timestamps: a client that estimates the
    cloud's clock from Date headers (osbench.cloudclock) meets one clock. A
    service route's reply is dated at the request's one instant (between its
    arrival and its reply, as a real server's stamp is)."""
    cloud = request.app[CLOUD]
    now = _INSTANT.get()
    _INSTANT.set(None)  # a keep-alive connection serves its next request in this context
    if now is None:  # the simulator's own routes and unrouted paths
        now = cloud.now()
    response.headers["Date"] = email.utils.format_datetime(
        cloud.wall_origin + timedelta(seconds=now), usegmt=True)


def build_app(cloud: SimCloud, services: dict[str, list[Route]]) -> web.Application:
    """The aiohttp application serving every service's routes."""
    app = web.Application(client_max_size=16 * 1024 * 1024, middlewares=[_no_route])
    app[CLOUD] = cloud
    app.on_response_prepare.append(_modelled_date)
    app.router.add_get(REQUEST_COUNTS_PATH, _request_counts)
    app.router.add_get(METRICS_PATH, _metrics)
    for service, routes in services.items():
        prefix = PREFIXES[service]
        for route in routes:
            path = prefix + route.template if route.template != "/" else prefix + "/"
            app.router.add_route(route.method, path, _wrap(service, route))
            if route.template == "/":  # serve the root with and without the slash
                app.router.add_route(route.method, prefix, _wrap(service, route))
    return app
