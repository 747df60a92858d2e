"""RabbitMQ queue monitors: real rabbitmqctl output captured from minicloud, a real
management API answer served by a real aiohttp server on port 0, and, when
minicloud is up, the real rabbitmqctl."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from osbench.hosts.local import LocalHost
from osbench.monitors.config import MAX_SCRAPE_BYTES, RabbitmqSource
from osbench.monitors.rabbitmq import RabbitmqSampler, parse_queues, queue_readings
from osbench.monitors.sampler import MonitorError, Reading

DATA = Path(__file__).parent.parent / "data" / "monitors"
#: `rabbitmqctl -q list_queues -p / --formatter json name messages_ready
#: messages_unacknowledged consumers` on minicloud during a 20-instance boot.
RABBITMQCTL = DATA / "rabbitmqctl-list_queues-minicloud.json"
#: `GET /api/queues/%2F?columns=...` on minicloud (management plugin enabled
#: after the queues existed: they carry no stats), plus one queue declared after
#: it with 3 messages published.
API = DATA / "management-api-queues-minicloud.json"

USER, PASSWORD = "monitor", "s3cret-not-in-results"


def by(readings: list[Reading], metric: str, label: str) -> dict[str, float]:
    return {r.labels[label]: r.value for r in readings if r.metric == metric}


def sampler_for(readings_source: RabbitmqSource) -> RabbitmqSampler:
    return RabbitmqSampler(readings_source, None if readings_source.url else LocalHost())


def test_minicloud_rabbitmqctl_output_grouped() -> None:
    cfg = RabbitmqSource(host="local")
    s = sampler_for(cfg)
    readings = queue_readings(parse_queues(RABBITMQCTL.read_text(), "local"), s.groups())
    assert by(readings, "group_queues", "group") == {
        "neutron-dhcp-agent": 3, "nova-conductor": 3, "nova-scheduler": 3, "nova-compute": 3,
        # q-plugin, q-reports-plugin (two fanouts) and q-server-resource-versions
        "neutron-server-rpc": 10}
    assert by(readings, "group_unacked", "group") == {
        "neutron-dhcp-agent": 0, "nova-conductor": 1, "nova-scheduler": 0, "nova-compute": 0,
        "neutron-server-rpc": 0}
    assert set(by(readings, "group_ready", "group").values()) == {0}
    unacked = by(readings, "queue_unacked", "queue")
    assert unacked["conductor"] == 1
    assert sorted(q for q in unacked if q.startswith("dhcp_agent")) == [
        "dhcp_agent", "dhcp_agent.minicloud", "dhcp_agent_fanout_1b7654644740446ca084cb059e76e13a"]
    # neutron-server's own RPC queues form a group; its agent notifiers and the reply
    # queues belong to none
    assert not [q for q in unacked if q.startswith(("q-agent-notifier", "reply_"))]
    assert {q.split(".")[0].split("_fanout")[0] for q in unacked if q.startswith("q-")} == {
        "q-plugin", "q-reports-plugin", "q-server-resource-versions"}
    groups = {r.labels["queue"]: r.labels["group"] for r in readings if "queue" in r.labels}
    assert groups["compute.minicloud"] == "nova-compute"
    assert by(readings, "queue_consumers", "queue")["dhcp_agent.minicloud"] == 1
    # the deepest queue comes first
    first = next(r for r in readings if r.metric.startswith("queue_"))
    assert first.labels["queue"] == "conductor"


def test_custom_group_and_preset_subset() -> None:
    cfg = RabbitmqSource(host="local", presets=("neutron-dhcp-agent",),
                         queues={"neutron-server": r"q-(plugin|reports-plugin)(\..+)?"})
    s = sampler_for(cfg)
    readings = queue_readings(parse_queues(RABBITMQCTL.read_text(), "local"), s.groups())
    assert by(readings, "group_queues", "group") == {"neutron-dhcp-agent": 3,
                                                     "neutron-server": 4}


@pytest.mark.parametrize(("text", "message"), [
    ("", r"^local: printed nothing$"),
    ("Error: unable to perform an operation on node", r"^local: not JSON: 'Error: unable"),
    ('{"name": "x"}', r"^local: not a list of queues"),
    ('[{"messages_ready": 1}]', r"^local: a queue without a name"),
])
def test_garbage_is_a_monitor_error(text: str, message: str) -> None:
    with pytest.raises(MonitorError, match=message):
        parse_queues(text, "local")


# -- rabbitmqctl through a real LocalHost -----------------------------------------

@pytest.fixture
def rabbitmqctl_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only what the test puts there (and the shell's basics)."""
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    return tmp_path


def fake_rabbitmqctl(folder: Path, body: str) -> None:
    """A `rabbitmqctl` that checks its arguments are the sampler's, then runs `body`."""
    script = folder / "rabbitmqctl"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$*" = "-q list_queues -p / --formatter json name messages_ready '
        'messages_unacknowledged consumers" ] || { echo "bad args: $*" >&2; exit 64; }\n'
        + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.mark.skipif(shutil.which("rabbitmqctl", path="/usr/bin:/bin") is not None,
                    reason="rabbitmqctl is installed in /usr/bin: it cannot be hidden")
async def test_missing_rabbitmqctl_is_one_clear_error(rabbitmqctl_dir: Path) -> None:
    s = sampler_for(RabbitmqSource(host="local"))
    with pytest.raises(MonitorError, match=r"^local: rabbitmqctl not found on local$"):
        await s.sample()


async def test_rabbitmqctl_on_a_host(rabbitmqctl_dir: Path) -> None:
    fake_rabbitmqctl(rabbitmqctl_dir, f"cat {RABBITMQCTL}")
    s = sampler_for(RabbitmqSource(host="local"))
    assert s.source == "rabbitmq@local"
    await s.open()
    readings = await s.sample()
    assert by(readings, "group_unacked", "group")["nova-conductor"] == 1


@pytest.mark.parametrize(("body", "message"), [
    ("echo 'Error: this command requires the rabbit app to be running' >&2; exit 69",
     r"^local: rabbitmqctl list_queues exited with status 69: Error: this command requires"),
    ("echo 'Listing queues for vhost / ...'", r"^local: not JSON: 'Listing queues"),
    ("exit 127", r"^local: rabbitmqctl not found on local$"),
])
async def test_rabbitmqctl_failures(rabbitmqctl_dir: Path, body: str, message: str) -> None:
    fake_rabbitmqctl(rabbitmqctl_dir, body)
    with pytest.raises(MonitorError, match=message):
        await sampler_for(RabbitmqSource(host="local")).sample()


# -- the management API, served for real ------------------------------------------

async def api_handler(request: web.Request) -> web.StreamResponse:
    """/MODE/api/queues/%2F: MODE ok, fail, html, slow, huge."""
    mode, _, rest = request.raw_path.lstrip("/").partition("/")
    if rest != "api/queues/%2F?columns=name,messages_ready,messages_unacknowledged,consumers":
        return web.Response(status=404, text=f"unexpected {request.raw_path}")
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    if request.headers.get("Authorization") != expected:
        return web.Response(status=401, text='{"error":"not_authorised"}')
    if mode == "ok":
        return web.Response(text=API.read_text(), content_type="application/json")
    if mode == "fail":
        return web.Response(status=500, text="Internal Server Error")
    if mode == "html":
        return web.Response(text="<html>login</html>", content_type="text/html")
    if mode == "slow":
        await asyncio.sleep(5)
        return web.Response(text="[]")
    if mode == "huge":
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b" " * 65536
        for _ in range(MAX_SCRAPE_BYTES // len(chunk) + 2):
            await response.write(chunk)
        return response
    return web.Response(status=404)


@pytest.fixture
async def api_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", api_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSB_RMQ_USER", USER)
    monkeypatch.setenv("OSB_RMQ_PASSWORD", PASSWORD)


def api_sampler(url: str, timeout: float = 2.0) -> RabbitmqSampler:
    return RabbitmqSampler(RabbitmqSource(url=url, user_env="OSB_RMQ_USER",
                                          password_env="OSB_RMQ_PASSWORD", timeout=timeout),
                           None)


async def test_management_api(api_url: str, credentials: None) -> None:
    s = api_sampler(f"{api_url}/ok")
    assert s.source == f"rabbitmq@{api_url.removeprefix('http://')}"
    try:
        await s.open()
        readings = await s.sample()
    finally:
        await s.close()
    # minicloud's queues carried names only (no stats yet): counted, no values
    assert by(readings, "group_queues", "group")["neutron-dhcp-agent"] == 3
    assert by(readings, "group_ready", "group")["neutron-dhcp-agent"] == 0
    assert not [r for r in readings if r.metric.startswith("queue_")]


async def test_management_api_custom_group_sees_the_messages(api_url: str,
                                                             credentials: None) -> None:
    s = RabbitmqSampler(RabbitmqSource(url=f"{api_url}/ok/", user_env="OSB_RMQ_USER",
                                       password_env="OSB_RMQ_PASSWORD",
                                       queues={"mine": "osbench-.*"}), None)
    try:
        readings = await s.sample()
    finally:
        await s.close()
    assert by(readings, "queue_ready", "queue") == {"osbench-fixture": 3}
    assert by(readings, "queue_consumers", "queue") == {"osbench-fixture": 0}
    assert by(readings, "group_ready", "group")["mine"] == 3


@pytest.mark.parametrize(("mode", "message"), [
    ("fail", r": HTTP 500 Internal Server Error from "
             r"http://127\.0\.0\.1:\d+/fail/api/queues/%2F$"),
    ("html", r": not JSON: '<html>login</html>'$"),
    ("slow", r": http://127\.0\.0\.1:\d+/slow/api/queues/%2F did not answer within 1 s$"),
    ("huge", r": http://127\.0\.0\.1:\d+/huge/api/queues/%2F sent more than "
             rf"{MAX_SCRAPE_BYTES} bytes$"),
])
async def test_management_api_failures(api_url: str, credentials: None, mode: str,
                                       message: str) -> None:
    s = api_sampler(f"{api_url}/{mode}", timeout=1.0)
    try:
        with pytest.raises(MonitorError, match=r"^127\.0\.0\.1:\d+" + message) as info:
            await s.sample()
    finally:
        await s.close()
    assert PASSWORD not in str(info.value)


async def test_wrong_credentials_are_a_401(api_url: str, credentials: None,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSB_RMQ_PASSWORD", "wrong")
    s = api_sampler(f"{api_url}/ok")
    try:
        with pytest.raises(MonitorError, match=r": HTTP 401 Unauthorized from "):
            await s.sample()
    finally:
        await s.close()


async def test_missing_env_var_names_it(api_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSB_RMQ_USER", USER)
    monkeypatch.delenv("OSB_RMQ_PASSWORD", raising=False)
    s = api_sampler(f"{api_url}/ok")
    with pytest.raises(MonitorError, match=r"^127\.0\.0\.1:\d+: the environment variable "
                                           r"OSB_RMQ_PASSWORD \(password_env\) is not set$"):
        await s.open()
    await s.close()


async def test_dead_endpoint(credentials: None) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once closed
    s = api_sampler(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(MonitorError, match=rf"^127\.0\.0\.1:{port}: http://127\.0\.0\.1:"
                                               rf"{port}/api/queues/%2F: ClientConnectorError"):
            await s.sample()
    finally:
        await s.close()


# -- minicloud's real RabbitMQ, when it is up ------------------------------------

def minicloud_rabbitmq_running() -> bool:
    from osbench.minicloud import layout, services

    if os.geteuid() != 0:
        return False
    try:
        rec = services.PidBook(layout.default_state_dir()).load().get("rabbitmq")
    except Exception:
        return False
    return rec is not None and services.is_running(rec)


@pytest.mark.skipif(not minicloud_rabbitmq_running(),
                    reason="needs minicloud up (`osbench minicloud up`, as root; CI's "
                           "`nox -s minicloud`)")
async def test_live_rabbitmqctl_on_minicloud() -> None:
    s = RabbitmqSampler(RabbitmqSource(host="local", timeout=60), LocalHost())
    await s.open()
    readings = await s.sample()
    queues = by(readings, "group_queues", "group")
    assert queues["neutron-dhcp-agent"] >= 2, queues
    assert queues["nova-conductor"] >= 2, queues
    consumers = by(readings, "queue_consumers", "queue")
    assert consumers["dhcp_agent.minicloud"] >= 1
    assert json.dumps([r.labels for r in readings])  # labels are plain strings
