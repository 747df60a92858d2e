"""The cloud seam: openstacksdk behind asyncio, its exceptions turned into ours.

openstacksdk is synchronous (requests + keystoneauth), so every call runs in
a bounded thread pool. Only the REST calls osbench needs are here, each one
request (or one paged listing), so API load per poll cycle does not grow
with the number of instances.

Retries: idempotent requests (GET, DELETE) are retried with backoff on
connection resets and 502/503/504, and every retry is reported through
`on_retry`; a create (POST) is never retried: a 504 or a read timeout raises
CloudOutcomeUnknown and the caller reconciles by listing.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import openstack
import openstack.config
import openstack.connection
import openstack.exceptions
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1.exceptions import auth_plugins

from osbench import targets
from osbench.clock import Clock, RealClock
from osbench.errors import CloudError, CloudOutcomeUnknown, UserError
from osbench.scenario import TargetSpec

log = logging.getLogger("osbench.cloud")

T = TypeVar("T")

#: Statuses worth retrying for idempotent requests: a proxy or an overloaded
#: API answering for a moment (seen on a 2-core control plane, issue 9).
_RETRY_STATUSES = frozenset({502, 503, 504})
_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
#: Nova caps a page at 1000 servers; ask for that many to keep pages few.
PAGE_LIMIT = 1000
#: Seconds any one API request may take when the clouds.yaml entry sets no
#: `api_timeout`: without one, a server that accepts and never answers held
#: osbench for ever (issue 13). A create that times out is "outcome unknown",
#: reconciled by listing, never re-sent; 60 s is the field's proxy timeout.
DEFAULT_API_TIMEOUT_S = 60.0
#: keystoneauth plugins that authenticate with auth.password.
PASSWORD_PLUGINS = frozenset({"password", "v2password", "v3password"})


@dataclass(frozen=True)
class Retry:
    """One retried request, for the journal."""

    method: str
    url: str
    attempt: int
    reason: str


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request as the harness saw it (monitors' `api` source)."""

    operation: str
    method: str
    #: When it was sent and how long its reply took, on the client's clock.
    sent: float
    latency_s: float
    #: HTTP status, or 0 when no reply came (connection failure, timeout).
    status: int
    request_id: str | None
    #: The reply's HTTP `Date` header: the cloud's clock (`osbench.cloudclock`).
    date: str | None = None


def operation(method: str, url: str) -> str:
    """What a request does, in the words an operator uses (create, list servers, ...)."""
    path = urlsplit(url).path.rstrip("/")
    parts = [p for p in path.split("/") if p and p != "v2.0"]
    head = parts[0] if parts else ""
    if head == "servers":
        if method == "POST":
            return "console" if path.endswith("/action") else "create"
        if method == "DELETE":
            return "delete_server"
        return "list_servers" if len(parts) == 1 or parts[1] == "detail" else "show_server"
    if head == "ports":
        return "delete_port" if method == "DELETE" else "list_ports"
    if head in ("limits", "quotas"):
        return "quotas"
    return f"{method.lower()}_{head or 'root'}"


@dataclass(frozen=True)
class CreateReply:
    """The answer to one multi-create request."""

    status: int
    reservation_id: str | None
    request_id: str | None


def _translate(exc: BaseException, what: str) -> CloudError:
    if isinstance(exc, openstack.exceptions.HttpException):
        status = exc.status_code
        detail = exc.details or exc.message
        return CloudError(f"{what}: HTTP {status}: {detail}", status_code=status)
    if isinstance(exc, openstack.exceptions.SDKException | ks_exceptions.ClientException):
        return CloudError(f"{what}: {type(exc).__name__}: {exc}")
    return CloudError(f"{what}: {type(exc).__name__}: {exc}")


def _error_text(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        text = str(response.text or "").strip()
        return text[:200] or response.reason or ""
    if isinstance(body, dict) and len(body) == 1:
        inner = next(iter(body.values()))
        if isinstance(inner, dict) and "message" in inner:
            return str(inner["message"])
    if isinstance(body, dict) and "NeutronError" in body:
        return str(body["NeutronError"].get("message", body))
    return str(body)[:200]


class CloudClient:
    """Async front of one openstacksdk Connection."""

    def __init__(self, conn: Any, *, clock: Clock, max_workers: int = 8,
                 on_retry: Callable[[Retry], None] | None = None) -> None:
        self.conn = conn
        self.clock = clock
        self.on_retry = on_retry
        self.requests_made = 0
        #: Called on the event loop with a RequestRecord after every request.
        self.observers: list[Callable[[RequestRecord], None]] = []
        self._pool = ThreadPoolExecutor(max_workers=max_workers,
                                        thread_name_prefix="osbench-cloud")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.conn.close()

    async def _in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run an SDK call in the pool; its exceptions become CloudError."""
        try:
            return await self._in_thread(fn, *args, **kwargs)
        except (openstack.exceptions.SDKException, ks_exceptions.ClientException) as exc:
            raise _translate(exc, what) from exc

    async def _request(self, service: str, method: str, url: str,
                       **kwargs: Any) -> Any:
        # The proxy is made on first access (version discovery, auth): in the pool too.
        def send() -> Any:
            proxy = getattr(self.conn, service)
            response = proxy.request(url, method, **kwargs)
            if response.status_code == 401:
                # keystoneauth re-authenticates on a 401, but of several requests that
                # met the expired token together only the first does: the others find
                # the token already invalidated and give up. Refused before any work,
                # so sent once more, with the token the first one fetched.
                response = proxy.request(url, method, **kwargs)
            return response

        idempotent = method in ("GET", "DELETE")
        delays = _RETRY_DELAYS_S if idempotent else ()
        for attempt in range(len(delays) + 1):
            self.requests_made += 1
            reason = ""
            sent = self.clock.monotonic()
            response = None
            try:
                response = await self._in_thread(send)
            except ks_exceptions.ConnectFailure as exc:
                if not idempotent:
                    raise CloudError(f"{method} {url}: cannot connect: {exc}") from exc
                reason = type(exc).__name__
            except ks_exceptions.ClientException as exc:
                # keystoneauth reports a read timeout as ConnectTimeout: the request
                # may have been sent and acted on.
                if not idempotent:
                    raise CloudOutcomeUnknown(f"{method} {url}: {type(exc).__name__}: {exc}"
                                              ) from exc
                reason = type(exc).__name__
            else:
                if not (idempotent and response.status_code in _RETRY_STATUSES):
                    return response
                reason = f"HTTP {response.status_code}"
            finally:
                self._observe(method, url, sent, response)
            if attempt == len(delays):
                raise CloudError(f"{method} {url}: gave up after {attempt + 1} tries ({reason})")
            if self.on_retry is not None:
                self.on_retry(Retry(method=method, url=url, attempt=attempt + 1, reason=reason))
            await self.clock.sleep(delays[attempt])
        raise AssertionError("unreachable")

    def _observe(self, method: str, url: str, sent: float, response: Any) -> None:
        if not self.observers:
            return
        headers = response.headers if response is not None else {}
        record = RequestRecord(
            operation=operation(method, url), method=method, sent=sent,
            latency_s=self.clock.monotonic() - sent,
            status=response.status_code if response is not None else 0,
            request_id=headers.get("x-openstack-request-id") or headers.get(
                "x-compute-request-id"), date=headers.get("Date"))
        for observer in list(self.observers):
            observer(record)

    async def token(self) -> str:
        """The current token (keystoneauth renews it when due); never journal it."""
        return str(await self._in_thread(self.conn.session.get_token))

    async def _checked(self, service: str, method: str, url: str, **kwargs: Any) -> Any:
        """A request whose HTTP error statuses become CloudError."""
        response = await self._request(service, method, url, **kwargs)
        if response.status_code >= 400:
            raise CloudError(f"{method} {url}: HTTP {response.status_code}: "
                             f"{_error_text(response)}", status_code=response.status_code)
        return response

    async def get_json(self, service: str, url: str, **kwargs: Any) -> Any:
        response = await self._checked(service, "GET", url, **kwargs)
        # Decoded in the pool: a 10,000-port page is ~7 MiB of JSON, ~60 ms that
        # would otherwise stall the event loop (and the registration server on it).
        return await self._in_thread(response.json)

    async def _delete(self, service: str, url: str) -> bool:
        try:
            await self._checked(service, "DELETE", url)
        except CloudError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True

    # -- compute ---------------------------------------------------------
    async def create_servers(self, server: dict[str, Any]) -> CreateReply:
        """One multi-create `POST /servers` with `return_reservation_id`.

        The SDK's Server resource drops `return_reservation_id`, so the body is
        sent as is. Never retried: 504 and read timeouts raise
        CloudOutcomeUnknown, other failures CloudError.
        """
        body = {"server": {**server, "return_reservation_id": True}}
        # connect_retries=0: a retried POST could create the servers twice.
        response = await self._request("compute", "POST", "/servers", json=body,
                                       connect_retries=0)
        request_id = response.headers.get("x-openstack-request-id") or response.headers.get(
            "x-compute-request-id")
        if response.status_code == 504:
            raise CloudOutcomeUnknown("POST /servers: HTTP 504 from the API's proxy; the "
                                      "servers may still be created", status_code=504)
        if response.status_code >= 400:
            raise CloudError(f"POST /servers: HTTP {response.status_code}: "
                             f"{_error_text(response)}", status_code=response.status_code)
        reservation = response.json().get("reservation_id")
        return CreateReply(status=response.status_code, reservation_id=reservation,
                           request_id=request_id)

    async def list_servers(self, *, name_regex: str, changes_since: str | None = None,
                           all_fields: bool = True) -> list[dict[str, Any]]:
        """Servers whose name matches, changed since `changes_since`; all pages."""
        query: dict[str, Any] = {"name": name_regex, "limit": PAGE_LIMIT}
        if changes_since:
            query["changes-since"] = changes_since
        path = "/servers/detail" if all_fields else "/servers"
        out: list[dict[str, Any]] = []
        url: str | None = f"{path}?{urlencode(query)}"
        while url:
            page = await self.get_json("compute", url)
            out.extend(page.get("servers", []))
            url = _next_link(page.get("servers_links", []), path)
        return out

    async def console_output(self, server_id: str, length: int = 200) -> str:
        response = await self._checked("compute", "POST", f"/servers/{server_id}/action",
                                       json={"os-getConsoleOutput": {"length": length}})
        return str(response.json().get("output", ""))

    async def delete_server(self, server_id: str) -> bool:
        """Delete one server; False if it was already gone."""
        return await self._delete("compute", f"/servers/{server_id}")

    async def compute_limits(self) -> dict[str, int]:
        """Nova's absolute limits (maxTotalInstances, totalInstancesUsed, ...)."""
        body = await self.get_json("compute", "/limits")
        return {k: int(v) for k, v in body["limits"]["absolute"].items()
                if isinstance(v, int | float)}

    # -- network ---------------------------------------------------------
    async def list_ports(self, **filters: str | Iterable[str]) -> list[dict[str, Any]]:
        """Ports matching Neutron filters (repeat a key with a list), all pages."""
        query = [(k, v) for k, vs in filters.items()
                 for v in ([vs] if isinstance(vs, str) else vs)]
        out: list[dict[str, Any]] = []
        url: str | None = f"/ports?{urlencode(query)}"
        while url:
            page = await self.get_json("network", url)
            out.extend(page.get("ports", []))
            url = _next_link(page.get("ports_links", []), "/ports")
        return out

    async def delete_port(self, port_id: str) -> bool:
        """Delete one port; False if it was already gone."""
        return await self._delete("network", f"/ports/{port_id}")

    async def port_quota(self, project_id: str) -> tuple[int, int] | None:
        """(limit, used) ports of the project; None when the cloud does not say."""
        try:
            body = await self.get_json("network", f"/quotas/{project_id}/details.json")
        except CloudError as exc:
            if exc.status_code in (404, 400):
                return None
            raise
        port = body.get("quota", {}).get("port", {})
        if not isinstance(port, dict) or "limit" not in port:
            return None
        return int(port["limit"]), int(port.get("used", 0)) + int(port.get("reserved", 0))

    # -- lookups ---------------------------------------------------------
    async def _find(self, service: str, what: str, name_or_id: str, param: str) -> Any:
        """`conn.<service>.find_<what>(name_or_id)`; missing is a UserError naming `param`."""
        found = await self.call(
            f"find {what} {name_or_id!r}",
            lambda: getattr(getattr(self.conn, service), f"find_{what}")(
                name_or_id, ignore_missing=True))
        if found is None:
            raise UserError(f"{what} {name_or_id!r} not found on the cloud",
                            hint=f"set params.{param} to a {what} name or id the project "
                            "can use")
        return found

    async def find_image(self, name_or_id: str) -> dict[str, Any]:
        image = await self._find("image", "image", name_or_id, "image")
        return {"id": image.id, "name": image.name}

    async def find_flavor(self, name_or_id: str) -> dict[str, Any]:
        flavor = await self._find("compute", "flavor", name_or_id, "flavor")
        return {"id": flavor.id, "name": flavor.name, "vcpus": int(flavor.vcpus),
                "ram": int(flavor.ram)}

    async def find_network(self, name_or_id: str) -> dict[str, Any]:
        network = await self._find("network", "network", name_or_id, "networks")
        return {"id": network.id, "name": network.name}

    async def project_id(self) -> str:
        """The project the connection is scoped to (may authenticate: in the pool)."""
        return await self.call("project id", lambda: str(self.conn.current_project_id))


def _next_link(links: list[dict[str, Any]], path: str) -> str | None:
    """The `next` link of a listing as a path relative to the service endpoint."""
    for link in links:
        if link.get("rel") == "next":
            parts = urlsplit(str(link["href"]))
            query = parse_qs(parts.query)
            return f"{path}?{urlencode(query, doseq=True)}"
    return None


def isoformat_z(moment: datetime) -> str:
    """`2026-11-24T03:15:00Z`, the form Nova's `changes-since` takes."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class CloudTarget:
    """An opened cloud: the client, the clock, and a description without secrets."""

    def __init__(self, client: CloudClient, *, simulated: bool, description: dict[str, Any],
                 defaults: dict[str, Any] | None = None, sim: Any = None) -> None:
        self.client = client
        self.clock: Clock = client.clock
        self.simulated = simulated
        self._description = description
        #: image, flavor, network to use when the scenario names none (simulated cloud).
        self.defaults = defaults or {}
        #: The SimCloud when simulated (tests and benchmarks read its counters).
        self.sim = sim
        #: The cloud's clock against ours, per case that measured it (case id -> the
        #: boot tracker's `cloud_clock` row): in the manifest's target entry.
        self.cloud_clock: dict[str, dict[str, Any]] = {}

    def describe(self) -> dict[str, Any]:
        if self.cloud_clock:
            return {**self._description, "cloud_clock": dict(self.cloud_clock)}
        return dict(self._description)


def _describe_real(conn: Any, name: str) -> dict[str, Any]:
    config = conn.config
    auth = config.config.get("auth", {})
    return {
        "type": "cloud",
        "simulated": False,
        "cloud": name,
        "auth_url": auth.get("auth_url"),
        "region": config.region_name,
        "project": auth.get("project_name") or auth.get("project_id"),
        "api_timeout_s": config.config.get("api_timeout"),
    }


def _versions_real(conn: Any) -> dict[str, Any]:
    """What the cloud says it runs, for the run's provenance: each API's version (and
    its highest microversion) from the version documents, and the clouds.yaml entry's
    `osbench_metadata` mapping when it has one (minicloud puts the Debian package
    versions there)."""
    apis: dict[str, str] = {}
    for service in ("identity", "compute", "network", "image", "placement"):
        try:
            data = getattr(conn, service).get_endpoint_data()
        except (openstack.exceptions.SDKException, ks_exceptions.ClientException,
                AttributeError):
            continue
        if data is None or not data.api_version:
            continue
        text = ".".join(str(n) for n in data.api_version)
        if data.max_microversion:
            text += f" (max microversion {'.'.join(str(n) for n in data.max_microversion)})"
        apis[service] = text
    out: dict[str, Any] = {"api_versions": apis}
    metadata = conn.config.config.get("osbench_metadata")
    if isinstance(metadata, dict):
        out["metadata"] = metadata
    return out


def _cloud_region(name: str) -> Any:
    """clouds.yaml entry `name`, checked without touching the network; every way
    it can be wrong is one UserError naming the cloud."""
    hint = ("name an entry of clouds.yaml (./, ~/.config/openstack, /etc/openstack, or "
            "OS_CLIENT_CONFIG_FILE)")
    try:
        region = openstack.config.get_cloud_region(cloud=name)
    except openstack.exceptions.ConfigException as exc:
        raise UserError(f"cloud {name!r}: {exc}", hint=hint) from None
    except auth_plugins.NoMatchingPlugin as exc:
        raise UserError(f"cloud {name!r}: auth_type {exc.name!r} is not a keystoneauth "
                        "plugin", hint="e.g. auth_type: password, or v3applicationcredential"
                        ) from None
    except auth_plugins.MissingRequiredOptions as exc:
        missing = ", ".join(f"auth.{o.dest}" for o in exc.options)
        raise UserError(f"cloud {name!r}: clouds.yaml entry lacks {missing}",
                        hint="add it to the entry") from None
    auth = region.config.get("auth") or {}
    # keystoneauth finds a missing password only when it authenticates, and says
    # only "password is a required attribute".
    if region.config.get("auth_type") in PASSWORD_PLUGINS and not auth.get("password"):
        raise UserError(f"cloud {name!r}: clouds.yaml entry lacks auth.password",
                        hint="add it to the entry (or to secure.yaml beside clouds.yaml)")
    return region


def check_cloud(spec: TargetSpec) -> None:
    """The targets checker: a named cloud must be a usable clouds.yaml entry."""
    if spec.cloud:
        _cloud_region(spec.cloud)


def connect(name: str) -> Any:
    """An authenticated openstacksdk Connection to clouds.yaml entry `name`, every
    request bounded by its `api_timeout` (default DEFAULT_API_TIMEOUT_S). An
    unusable entry or an unreachable cloud is one UserError naming the cloud; the
    token is never part of it."""
    region = _cloud_region(name)
    if region.config.get("api_timeout") is None:
        region.config["api_timeout"] = DEFAULT_API_TIMEOUT_S
    conn = openstack.connection.Connection(config=region)
    auth_url = (region.config.get("auth") or {}).get("auth_url")
    try:
        conn.authorize()  # once, here: every later call reuses the token
    except Exception as exc:  # keystoneauth raises bare Exception for a missing password
        conn.close()
        text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise UserError(f"cloud {name!r}: cannot authenticate at {auth_url}: {text}",
                        hint=f"check the entry; every request times out after "
                        f"{region.config['api_timeout']:g} s (api_timeout)") from None
    return conn


@asynccontextmanager
async def open_cloud(spec: TargetSpec, seed: int) -> AsyncIterator[targets.Target]:
    """A real cloud when `spec.cloud` names one, else the embedded simulated cloud."""
    if spec.cloud:
        conn = await asyncio.to_thread(connect, spec.cloud)
        client = CloudClient(conn, clock=RealClock())
        try:
            yield CloudTarget(client, simulated=False,
                              description={**_describe_real(conn, spec.cloud),
                                           **await asyncio.to_thread(_versions_real, conn)})
        finally:
            await asyncio.to_thread(client.close)
        return
    from osbench.sim import SimCloud

    sim = SimCloud(profile=spec.sim_profile or "healthy", seed=seed,
                   time_scale=spec.time_scale)
    async with sim:
        client = CloudClient(sim.connect(), clock=sim.clock)
        defaults = {"image": sim.image_id, "flavor": sim.flavor_name, "network": sim.network_id}
        try:
            yield CloudTarget(client, simulated=True,
                              description={"type": "simulated-cloud", **sim.describe()},
                              defaults=defaults, sim=sim)
        finally:
            await asyncio.to_thread(client.close)


targets.register_opener("cloud", open_cloud, check_cloud)


def quiet_sdk_warnings() -> None:
    """openstacksdk warns about its own internals on every connect and proxy call;
    users can do nothing about them, and they bury osbench's own output."""
    try:
        from openstack import warnings as sdk_warnings
    except ImportError:
        return
    for category in (sdk_warnings.RemovedInSDK50Warning, sdk_warnings.RemovedInSDK60Warning,
                     sdk_warnings.RemovedFieldWarning):
        warnings.filterwarnings("ignore", category=category)
