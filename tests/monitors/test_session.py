"""Monitors around a real case (the test-only `tick` kind on this machine): every
reading journaled on the case clock, and sources that fail, time out or answer
garbage recorded once each while the case runs to its end."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from osbench import results
from osbench.errors import ScenarioError
from osbench.runner import Runner, RunOptions
from osbench.scenario import parse_scenario
from osbench.scenario.source import load_text

GOOD = """\
# HELP demo_queue_depth Messages waiting.
# TYPE demo_queue_depth gauge
demo_queue_depth{queue="dhcp_agent"} 7
demo_queue_depth{queue="conductor"} 2
# TYPE demo_requests_total counter
demo_requests_total 41
# TYPE other_metric gauge
other_metric 1
"""
SECRET = "s3cr3t-token-never-journaled"


@pytest.fixture
async def exporter() -> AsyncIterator[tuple[str, list[str]]]:
    """A real HTTP server on loopback with one good and several broken endpoints."""
    seen_auth: list[str] = []

    async def good(request: web.Request) -> web.Response:
        seen_auth.append(request.headers.get("Authorization", ""))
        return web.Response(text=GOOD, content_type="text/plain")

    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>it works</body></html>", content_type="text/html")

    async def error(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)  # never answers; the sampler's timeout ends it
        return web.Response()

    app = web.Application()
    app.router.add_get("/good", good)
    app.router.add_get("/garbage", garbage)
    app.router.add_get("/error", error)
    app.router.add_get("/silent", silent)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen_auth
    finally:
        await runner.cleanup()


def scenario(text: str):  # type: ignore[no-untyped-def]
    return parse_scenario(load_text(text, "test.yaml"))


async def test_readings_are_journaled_and_each_failing_source_once(
        exporter: tuple[str, list[str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, seen_auth = exporter
    monkeypatch.setenv("DEMO_TOKEN", SECRET)
    # A port nothing listens on: bound and closed at once.
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    dead_port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    sc = scenario(f"""\
name: monitored ticks
kind: tick
params: {{ticks: 6, interval_s: 1}}
monitors:
  interval: 1s
  prometheus:
    - {{name: good, url: "{url}/good", metrics: ["demo_*"], bearer_token_env: DEMO_TOKEN}}
    - {{name: garbage, url: "{url}/garbage", metrics: ["x"]}}
    - {{name: error, url: "{url}/error", metrics: ["x"]}}
    - {{name: silent, url: "{url}/silent", metrics: ["x"], timeout: 1s}}
    - {{name: dead, url: "http://127.0.0.1:{dead_port}/metrics", metrics: ["x"]}}
    - {{name: nomatch, url: "{url}/good", metrics: ["absent_*"]}}
""")
    result = await Runner(sc, RunOptions(results_dir=tmp_path / "results")).run()
    assert result.status == "completed", result.cases

    run = results.load(result.path)
    monitor = run.table("monitor")
    good = monitor[monitor["source"] == "prometheus:good"]
    assert set(good["metric"]) == {"demo_queue_depth", "demo_requests_total"}  # allow-list
    depth = good[good["metric"] == "demo_queue_depth"]
    assert sorted(set(depth["label.queue"])) == ["conductor", "dhcp_agent"]
    times = sorted(set(depth["t_s"]))
    assert len(times) >= 4, times  # a 6 s case sampled every 1 s
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.5 < g < 2.5 for g in gaps), gaps  # on the ticks, none piled up

    errors = run.table("monitor_errors")
    assert sorted(errors["source"]) == sorted(f"prometheus:{n}" for n in (
        "garbage", "error", "silent", "dead", "nomatch")), errors  # once per source
    by_source = dict(zip(errors["source"], errors["error"], strict=True))
    assert "not Prometheus text" in by_source["prometheus:garbage"]
    assert "HTTP 500" in by_source["prometheus:error"]
    assert by_source["prometheus:silent"] == "timed out"
    assert "Connect" in by_source["prometheus:dead"]
    assert "allow-list" in by_source["prometheus:nomatch"]

    sources = run.table("monitor_sources").set_index("source")
    assert sources.loc["prometheus:good", "failed"] == 0
    assert sources.loc["prometheus:good", "samples"] >= 4
    for name in ("garbage", "error", "dead"):
        assert sources.loc[f"prometheus:{name}", "failed"] >= 3  # every sample failed ...
        assert sources.loc[f"prometheus:{name}", "samples"] == 0  # ... and was counted

    # The token was sent, and is nowhere in the results.
    assert f"Bearer {SECRET}" in seen_auth
    text = "".join(p.read_text() for p in result.path.iterdir())
    assert SECRET not in text


@pytest.mark.parametrize(("monitors", "where", "says"), [
    ("{processes: [{presets: [nova-apii]}]}", "monitors.processes[0].presets[0]",
     "did you mean 'nova-api'"),
    ("{prometeus: []}", "monitors.prometeus", "did you mean 'prometheus'"),
    ("{interval: 0.5s}", "monitors.interval", "must be >= 1"),
    ("{interval: soon}", "monitors.interval", "not a duration"),
    ("{prometheus: [{name: a, url: 'ftp://x/metrics', metrics: [x]}]}",
     "monitors.prometheus[0].url", "http:// or https://"),
    ("{prometheus: [{name: a, url: 'http://x/metrics'}]}", "monitors.prometheus[0]",
     "missing required key 'metrics'"),
    ("{prometheus: [{name: a, url: 'http://x/m', metrics: [x]},"
     " {name: a, url: 'http://y/m', metrics: [x]}]}", "monitors", "used twice"),
    ("{rabbitmq: [{presets: [dhcp]}]}", "monitors.rabbitmq[0].presets[0]", "queue preset"),
    ("{guru_meditation: {service: neutron-dhcp}}", "monitors.guru_meditation.service",
     "did you mean 'neutron-dhcp-agent'"),
])
def test_bad_monitors_name_the_file_the_key_and_the_fix(monitors: str, where: str,
                                                       says: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario(f"name: x\nkind: tick\nparams: {{ticks: 1}}\nmonitors: {monitors}\n")
    text = str(info.value) + " " + (info.value.hint or "")
    assert "test.yaml" in text and where in text and says in text, text


def test_an_inventory_host_that_is_not_there_is_a_validation_error(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(json.dumps({"hosts": {"controller-1": {"address": "127.0.0.1"}}}))
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nkind: tick\nparams: {ticks: 1}\nmonitors:\n"
                    "  inventory: hosts.yaml\n  processes: [{host: controler-1}]\n")
    from osbench.scenario import load_scenario

    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    text = str(info.value) + " " + (info.value.hint or "")
    assert "monitors.processes[0].host" in text and "did you mean 'controller-1'" in text
