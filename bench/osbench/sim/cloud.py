"""SimCloud: the embedded simulated OpenStack cloud, as one object.

The HTTP server runs in the caller's asyncio event loop (`async with sim:`);
no thread of its own. openstacksdk is synchronous, so its calls must come
from worker threads (`await asyncio.to_thread(...)` or a thread pool), never
from the loop itself, or the loop deadlocks waiting for its own answer.

All times inside are modelled seconds on `sim.clock` (a `ScaledClock`):
`time_scale` modelled seconds pass per real second. Instance timelines are
planned when a create arrives (see `osbench.sim.model`); reads reveal them,
and so does the admin-only `metrics_url` (the control plane's queues, from the
same plan: `osbench.sim.metrics`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import re
import uuid
from collections import Counter
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

import osbench
from osbench.clock import ScaledClock
from osbench.sim import glance, instruments, keystone, neutron, nova, nova_extra, nova_servers
from osbench.sim.guest import (
    GuestIdentity,
    cancel_all,
    console_lines,
    console_output,
    parse_phone_home,
    phone_home,
    phone_home_request,
)
from osbench.sim.metrics import ControlPlaneView, Snapshot
from osbench.sim.model import ControlPlaneModel
from osbench.sim.profiles import DEFAULT_PROFILE, Profile, load_profile
from osbench.sim.server import METRICS_PATH, ApiError, build_app
from osbench.sim.state import (
    CreateSpec,
    Flavor,
    Image,
    Network,
    Port,
    Server,
    Token,
    User,
    stable_id,
)

SUBNET = ipaddress.ip_network("10.0.0.0/20")  # 4094 addresses: room for big boots


class SimCloud:
    """A simulated Keystone/Nova/Neutron/Glance on loopback; see the module doc.

    Two users share the one project: `username` with the `member` role (what
    osbench and `cloud_config()` use) and `admin_username` with `admin`, for
    clients that need an admin (Rally's environment, `openstack hypervisor
    list`); each sees the fields its role may see.
    """

    username = "osbench"
    password = "osbench-sim"
    admin_username = "admin"
    admin_password = "osbench-sim-admin"
    project_name = "osbench"
    region = "RegionOne"

    def __init__(
        self,
        profile: str | Profile = DEFAULT_PROFILE,
        seed: int = 0,
        time_scale: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.profile = profile if isinstance(profile, Profile) else load_profile(profile)
        self.seed = seed
        self.time_scale = time_scale if time_scale is not None else self.profile.time_scale
        self.host = host
        self._port = port
        self.clock = ScaledClock(self.time_scale)
        self.wall_origin = self.clock.wall_origin
        self.user_id = stable_id("user")
        self.admin_user_id = stable_id("user/admin").replace("-", "")
        self.users = {
            self.username: User(self.user_id, self.username, self.password, ("member", "reader")),
            self.admin_username: User(self.admin_user_id, self.admin_username,
                                      self.admin_password, ("admin", "member", "reader")),
        }
        self.project_id = stable_id("project").replace("-", "")
        self.security_group_id = stable_id("security-group")
        self.image_id = stable_id("image/cirros-sim")
        self.images = {self.image_id: Image(self.image_id, "cirros-sim", 21430272,
                                            "2024-01-01T00:00:00Z")}
        sizes = [("c1.small", 1, 1024, 10), ("c1.medium", 2, 2048, 20), ("c1.large", 4, 4096, 40)]
        self.flavors = {str(100 + i): Flavor(str(100 + i), n, c, r, d)
                        for i, (n, c, r, d) in enumerate(sizes)}
        self.flavor_name = "c1.small"
        self.flavor_ids = {f.name: f.id for f in self.flavors.values()}
        self.flavor_id = self.flavor_ids[self.flavor_name]
        self.network = Network(stable_id("network"), "demo-network", stable_id("subnet"),
                               "demo-subnet", str(SUBNET), "10.0.0.1")
        self.network_id = self.network.id
        self.key_name = "mykey"
        self.keypairs = {self.key_name: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIsim osbench"}
        quotas = self.profile.quotas
        self.default_quotas = {"instances": quotas.instances, "cores": quotas.cores,
                               "ram": quotas.ram_mb}
        self.quotas = dict(self.default_quotas)
        self.servers: dict[str, Server] = {}
        self.ports: dict[str, Port] = {}
        self.tokens: dict[str, Token] = {}
        self.server_groups: dict[str, dict[str, Any]] = {}
        self.server_group_seq = 0
        self.internal_errors: list[str] = []
        self.guest_stats: Counter[str] = Counter()
        self.model = ControlPlaneModel(self.profile, seed)
        self._metrics = ControlPlaneView(self.model)
        self._ids = random.Random(f"{seed}/ids")
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self.request_rate = instruments.RequestRate()
        self._guest_tasks: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    # -- lifecycle -------------------------------------------------------
    async def start(self) -> None:
        """Serve on `host:port` (port 0 picks a free one)."""
        app = build_app(self, {
            "identity": keystone.ROUTES,
            "compute": nova.routes() + nova_servers.routes() + nova_extra.routes(),
            "network": neutron.ROUTES,
            "image": glance.ROUTES,
        })
        instruments.add_routes(app)
        # cloud-init sets no request timeout: neither do the simulated guests.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        self._runner = web.AppRunner(app, access_log=None)
        try:
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self._port)
            await site.start()
        except BaseException:  # e.g. the port is taken: leave nothing open
            await self.stop()
            raise
        self._bound_port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Cancel every guest, close the guests' HTTP session and stop serving."""
        await cancel_all(set(self._guest_tasks.values()))
        self._guest_tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimCloud:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- addresses and client configuration -----------------------------------
    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("SimCloud is not started: use `async with sim:`")
        return self._bound_port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/identity/v3"

    @property
    def metrics_url(self) -> str:
        """The modelled control plane's Prometheus metrics; GET them with an
        X-Auth-Token of this cloud's (admin) user."""
        return f"{self.base_url}{METRICS_PATH}"

    def cloud_config(self, admin: bool = False) -> dict[str, Any]:
        """Keyword arguments for openstack.connect(), also a clouds.yaml entry:
        the member user's, or with `admin` the admin user's."""
        return {
            "auth": {
                "auth_url": self.auth_url,
                "username": self.admin_username if admin else self.username,
                "password": self.admin_password if admin else self.password,
                "project_name": self.project_name,
                "user_domain_name": "Default", "project_domain_name": "Default",
            },
            "auth_type": "password",
            "region_name": self.region,
            "identity_api_version": 3,
            "interface": "public",
        }

    def connect(self, admin: bool = False) -> Any:
        """A fresh openstacksdk Connection to this cloud (the caller closes it)."""
        import openstack  # slow import, only when a client is wanted

        return openstack.connect(load_yaml_config=False, load_envvars=False,
                                 **self.cloud_config(admin))

    def describe(self) -> dict[str, Any]:
        """What results record about this target."""
        return {
            "simulated": True,
            "profile": self.profile.name,
            "profile_params": self.profile.as_dict(),
            "seed": self.seed,
            "time_scale": self.time_scale,
            "versions": {
                "osbench": osbench.__version__, "keystone": keystone.VERSION,
                "nova_max_microversion": nova.vstr(nova.MAX_VERSION), "neutron": "2.0",
                "glance": glance.VERSION,
                "cloud_init": self.profile.guest.cloud_init_version,
            },
        }

    # -- request accounting ----------------------------------------------------
    def count_request(self, key: tuple[str, str, str], now: float | None = None) -> None:
        """Count a request served at modelled time `now` (read here if not given)."""
        self._counts[key] += 1
        self.request_rate.count(key, self.now() if now is None else now)

    def request_counts(self) -> Counter[tuple[str, str, str]]:
        """Requests served, by (service, method, route template)."""
        return Counter(self._counts)

    def reset_request_counts(self) -> None:
        self._counts.clear()

    # -- state used by the service modules -----------------------------------
    def now(self) -> float:
        """Current modelled time in seconds."""
        return self.clock.monotonic()

    def token(self, token: str | None, now: float) -> Token | None:
        """The record of a token still valid at `now`, else None."""
        record = self.tokens.get(token or "")
        return record if record is not None and now < record.expires else None

    def token_valid(self, token: str | None, now: float) -> bool:
        return self.token(token, now) is not None

    def usage(self) -> dict[str, int]:
        """Quota usage: every server not deleted, built or not."""
        live = [s for s in self.servers.values() if s.deleted_at is None]
        return {"instances": len(live), "cores": sum(s.flavor.vcpus for s in live),
                "ram": sum(s.flavor.ram_mb for s in live),
                "server_groups": len(self.server_groups)}

    def _ports_in_use(self) -> int:
        return sum(1 for p in self.ports.values()
                   if p.deleted_at is None and p.timeline.port_deleted_at is None)

    def fit_quota(self, spec: CreateSpec) -> int:
        """How many of the request fit the quotas (Nova's min/max semantics)."""
        used = self.usage()
        allowed = spec.max_count
        per = {"instances": 1, "cores": spec.flavor.vcpus, "ram": spec.flavor.ram_mb}
        for resource, cost in per.items():
            limit = self.quotas[resource]
            if limit < 0:
                continue
            fits = max(0, limit - used[resource]) // cost
            if fits < spec.min_count:
                raise ApiError(403, f"Quota exceeded for {resource}: Requested "
                                    f"{spec.min_count * cost}, but already used "
                                    f"{used[resource]} of {limit} {resource}")
            allowed = min(allowed, fits)
        ports_free = self.profile.neutron.port_quota - self._ports_in_use()
        if ports_free < spec.min_count:
            raise ApiError(403, "Maximum number of ports exceeded")
        return min(allowed, ports_free)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def hostname(self, server: Server) -> str:
        return re.sub(r"[^a-z0-9-]+", "-", server.name.lower()).strip("-")[:63] or "server"

    def create_batch(self, spec: CreateSpec, count: int,
                     now: float) -> tuple[list[Server], float]:
        """Record `count` servers, planned from modelled time `now`; start their guests."""
        ids = [self._uuid() for _ in range(count)]
        plan = self.model.plan_batch(now, count, ids)
        # Sorting the plan for the metrics here keeps every scrape under a millisecond
        # (a 10,000-instance create: ~25 ms of CPU here, ~0.5 s for the rest of it).
        self._metrics.refresh()
        reservation = "r-" + "".join(self._ids.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=8))
        cfg = parse_phone_home(spec.user_data)
        servers = []
        for index, (server_id, tl) in enumerate(zip(ids, plan.timelines, strict=True)):
            port = None
            if tl.port_created_at is not None:
                number = len(self.ports)
                octets = (number >> 16 & 255, number >> 8 & 255, number & 255)
                mac = "fa:16:3e:" + ":".join(f"{o:02x}" for o in octets)
                ip = str(SUBNET[10 + number % (SUBNET.num_addresses - 12)])
                port = Port(self._uuid(), mac, ip, spec.network, server_id, tl)
                self.ports[port.id] = port
            server = Server(
                id=server_id, name=spec.name if count == 1 else f"{spec.name}-{index + 1}",
                seq=len(self.servers) + 1, reservation_id=reservation, launch_index=index,
                flavor=spec.flavor, image_id=spec.image_id, network=spec.network,
                key_name=spec.key_name, security_groups=spec.security_groups,
                metadata=dict(spec.metadata), tags=list(spec.tags), user_data=spec.user_data,
                phone_home=cfg, timeline=tl, port=port,
            )
            identity = GuestIdentity(server.id, self.hostname(server))
            server.console = console_lines(tl, identity, port.ip if port else "",
                                           self.profile.guest.cloud_init_version, cfg is not None)
            self.servers[server.id] = server
            servers.append(server)
            if cfg is not None and tl.phone_home_at is not None:
                self._guest_tasks[server.id] = asyncio.create_task(self._guest(server, identity))
        return servers, plan.api_seconds

    async def _guest(self, server: Server, identity: GuestIdentity) -> None:
        tl, cfg = server.timeline, server.phone_home
        assert tl.phone_home_at is not None and cfg is not None and self._session is not None
        try:
            await self.clock.sleep(tl.phone_home_at - self.now())
            url, form = phone_home_request(cfg, identity, ipv6=tl.ipv6)
            await phone_home(self._session, self.clock, url, form, tries=cfg.tries,
                             version=self.profile.guest.cloud_init_version,
                             stats=self.guest_stats)
        finally:
            self._guest_tasks.pop(server.id, None)

    def delete_server(self, server: Server, now: float) -> None:
        """Delete a server and its port at `now`; its pending phone-home never happens."""
        server.deleted_at = now
        if server.port is not None and server.port.deleted_at is None:
            server.port.deleted_at = now
        task = self._guest_tasks.pop(server.id, None)
        if task is not None:
            task.cancel()

    def metrics_snapshot(self, now: float) -> Snapshot:
        """The modelled control plane at `now`, as `metrics_url` serves it."""
        return self._metrics.snapshot(now, [p.deleted_at for p in self.ports.values()])

    def console_output(self, server: Server, now: float, length: int | None) -> str:
        return console_output(server.console, now, None if length == -1 else length)
