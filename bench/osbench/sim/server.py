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
  is admin-only, like a real cloud's service metrics: it needs a valid
  X-Auth-Token issued by the simulator (401 otherwise), and the simulator's
  only user is its cloud's admin.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import typedefs, web

from osbench.sim import metrics

if TYPE_CHECKING:
    from osbench.sim.cloud import SimCloud

#: A route's handler: the request and the modelled instant it is served at.
Handler = Callable[[web.Request, float], Awaitable[web.StreamResponse]]
CLOUD: web.AppKey[SimCloud] = web.AppKey("cloud")

#: URL prefix of each service's root (catalog endpoints are built from these).
PREFIXES = {
    "identity": "/identity",
    "compute": "/compute",
    "network": "/networking",
    "image": "/image",
}

_NOVA_KINDS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    406: "notAcceptable",
    409: "conflict",
    413: "overLimit",
}
_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           406: "Not Acceptable", 409: "Conflict", 413: "Request Entity Too Large",
           500: "Internal Server Error"}


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


def error_response(service: str, exc: ApiError) -> web.Response:
    """`exc` in the shape the real service uses."""
    status, message = exc.status, exc.message
    title = _TITLES.get(status, "Error")
    if status == 401 or service == "identity":
        body: Any = {"error": {"code": status, "title": title, "message": message}}
    elif service == "compute":
        body = {_NOVA_KINDS.get(status, "computeFault"): {"code": status, "message": message}}
    elif service == "network":
        body = {"NeutronError": {"type": exc.kind, "message": message, "detail": ""}}
    else:  # Glance answers errors with webob's plain-text pages
        text = f"{status} {title}\n\n{message}\n\n   "
        return web.Response(status=status, text=text, content_type="text/plain")
    return web.json_response(body, status=status)


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
        cloud.count_request(key)
        try:
            await request.read()  # kept by aiohttp for the handler's json_body
            now = cloud.now()  # the request's one instant: see the module doc
            token = request.headers.get("X-Auth-Token")
            if route.authenticated and not cloud.token_valid(token, now):
                raise ApiError(401, "The request you have made requires authentication.")
            return await route.handler(request, now)
        except ApiError as exc:
            response = error_response(service, exc)
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


def build_app(cloud: SimCloud, services: dict[str, list[Route]]) -> web.Application:
    """The aiohttp application serving every service's routes."""
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[CLOUD] = cloud
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
