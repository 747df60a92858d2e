"""The harness's own cloud calls as a monitor: every request of a boot on the
simulated cloud, by operation, with its status and latency on the case clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from osbench import results
from osbench.cloudclient import operation
from osbench.runner import Runner, RunOptions
from osbench.scenario import parse_scenario
from osbench.scenario.source import load_text


@pytest.mark.parametrize(("method", "url", "expected"), [
    ("POST", "/servers", "create"),
    ("POST", "/servers/abc/action", "console"),
    ("GET", "/servers/detail?name=%5Eosb&limit=1000", "list_servers"),
    ("GET", "/servers?limit=2", "list_servers"),
    ("GET", "/servers/abc", "show_server"),
    ("DELETE", "/servers/abc", "delete_server"),
    ("GET", "/v2.0/ports?network_id=n", "list_ports"),
    ("DELETE", "/v2.0/ports/p", "delete_port"),
    ("GET", "/limits", "quotas"),
    ("GET", "/v2.0/quotas/p", "quotas"),
    ("GET", "/flavors/detail", "get_flavors"),
])
def test_requests_are_named_by_operation(method: str, url: str, expected: str) -> None:
    assert operation(method, url) == expected


async def test_every_request_of_a_boot_is_a_monitor_row(tmp_path: Path) -> None:
    sc = parse_scenario(load_text("""\
name: api monitored
kind: boot
params: {count: 10}
target: {sim_profile: healthy}
monitors: {interval: 5s, sim: false}
""", "api.yaml"))
    result = await Runner(sc, RunOptions(results_dir=tmp_path / "results")).run()
    assert result.status == "completed", result.cases
    run = results.load(result.path)
    api = run.table("monitor")
    api = api[api["source"] == "api"]
    assert set(api["metric"]) == {"api_latency_s"}
    ops = api.groupby("label.operation").size().to_dict()
    creates = run.table("creates")
    assert ops["create"] == len(creates)
    assert set(api[api["label.operation"] == "create"]["label.status"]) == {"202"}
    # Every listing the tracker counted is there (cleanup lists too).
    listed = ops["list_servers"] + ops["list_ports"]
    assert listed >= run.table("polls")["requests"].sum()
    assert ops["delete_server"] >= 10
    assert (api["value"] > 0).all()
    # The cloud's id of each request, for its logs: the simulated cloud names each one.
    assert api["label.request_id"].str.fullmatch(r"req-[0-9a-f-]{36}").all()
    assert api["label.request_id"].nunique() == len(api)
    # On the case clock: from the case start to its end (cleanup included).
    assert api["t_s"].min() >= 0
    # The create's row is on the same clock as the tracker's: stamped after the tracker
    # decided to send it and before its reply came (an order, not a wall-clock bound).
    first_create = api[api["label.operation"] == "create"]["t_s"].iloc[0]
    assert creates["sent_s"].iloc[0] <= first_create <= creates["reply_s"].iloc[0]
