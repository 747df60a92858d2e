"""Fixtures for the simulated cloud: a real phone-home receiver and a helper
that runs openstacksdk (synchronous) in a worker thread."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiohttp import web

from osbench.sim import SimCloud

T = TypeVar("T")

#: openstacksdk 4.22 raises its own "removed in SDK 5.0/6.0" warnings from its
#: internals on ordinary use: every connect() (an all-None influxdb config),
#: every Flavor (`_compute_attributes`), every proxy call (`service_type`).
#: Callers cannot avoid them, so tests that drive the SDK ignore those two,
#: and RemovedFieldWarning: get_limits() asks for microversion 2.1, where Nova
#: (real and simulated) still returns maxPersonality, and the SDK warns on it.
SDK_INTERNAL_WARNINGS = [
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedFieldWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
]


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@dataclass
class Receiver:
    """A phone-home registration server listening on 127.0.0.1 (and ::1)."""

    port: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many POSTs first
    #: When set, the time of every POST (answered 500 or not) goes to `post_times`.
    clock: Callable[[], float] | None = None
    post_times: list[float] = field(default_factory=list)

    def user_data(
        self, post: str = "[hostname, fqdn, instance_id]", tries: int | None = None
    ) -> str:
        extra = f"\n  tries: {tries}" if tries is not None else ""
        text = (f"#cloud-config\nphone_home:\n  url: http://127.0.0.1:{self.port}/$INSTANCE_ID/\n"
                f"  post: {post}{extra}\n")
        return base64.b64encode(text.encode()).decode()

    def ids(self) -> set[str]:
        return {p["path_id"] for p in self.posts}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def handle(request: web.Request) -> web.Response:
        if rec.clock is not None:
            rec.post_times.append(rec.clock())
        if rec.fail_first > 0:
            rec.fail_first -= 1
            return web.Response(status=500)
        form = dict(await request.post())
        peer = request.transport.get_extra_info("peername") if request.transport else None
        rec.posts.append({"path_id": request.match_info["iid"], "form": form,
                          "agent": request.headers.get("User-Agent"),
                          "type": request.content_type, "family": 6 if ":" in peer[0] else 4})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{iid}/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = int(runner.addresses[0][1])
    if has_ipv6_loopback():
        await web.TCPSite(runner, "::1", rec.port).start()
    yield rec
    await runner.cleanup()


def password_auth(sim: SimCloud) -> dict[str, Any]:
    """Keystone's project-scoped password-auth body for the simulated cloud's user."""
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": sim.username, "password": sim.password, "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": sim.project_name, "domain": {"name": "Default"}}}}}


async def sdk(sim: SimCloud, work: Callable[[Any], T]) -> T:
    """Run `work(conn)` with a fresh openstacksdk connection in a worker thread."""

    def call() -> T:
        conn = sim.connect()
        try:
            return work(conn)
        finally:
            conn.close()

    return await asyncio.to_thread(call)


async def wait_until(sim: SimCloud, predicate: Callable[[], bool], modelled_s: float) -> None:
    """Poll `predicate` in modelled time; fail after `modelled_s`."""
    deadline = sim.clock.monotonic() + modelled_s
    while not predicate():
        if sim.clock.monotonic() > deadline:
            raise AssertionError(f"condition not met within {modelled_s} modelled seconds")
        await sim.clock.sleep(2.0)
