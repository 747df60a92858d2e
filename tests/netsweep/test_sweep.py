"""The netsweep kind on a real namespace lab: SSH, ethtool -L, iperf3, restore.

Needs root (namespaces, sshd, ethtool); CI runs as root. The lab here has its
own prefix, management subnet and state dir, so it never touches a user's lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from osbench import lab, results
from osbench.hosts import LocalHost
from osbench.kinds.netsweep import channels
from osbench.lab import LabConfig
from osbench.runner import Runner, RunOptions
from osbench.scenario import TargetSpec, parse_scenario
from osbench.scenario.source import load_text
from tests.support.lab import needs_root, running_lab

pytestmark = needs_root

ROOT = Path(__file__).resolve().parents[2]
INTERFACES = ("cl0", "tg0")

SWEEP = """\
name: sweep-test
kind: netsweep
params:
  duration_s: {duration}
  runs: {runs}
  settle_s: 0s
{extra}
sweep:
  queues: {queues}
sla: ["throughput_gbps > 0"]
"""


@pytest.fixture(scope="module")
def sweep_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabConfig]:
    with running_lab(LabConfig(targets=3, ports_per_target=2, prefix="osbn-", mgmt_net=204,
                               state_dir=tmp_path_factory.mktemp("lab"))) as config:
        yield config


def read_channels(config: LabConfig) -> dict[str, channels.Channels]:
    node = LocalHost(name="netnode", netns=f"{config.prefix}netnode")
    return {i: asyncio.run(channels.read(node, i)).current for i in INTERFACES}


def scenario(duration: str = "1s", runs: int = 2, queues: str = "[1, 2, 4, 8]",
             extra: str = ""):  # type: ignore[no-untyped-def]
    text = SWEEP.format(duration=duration, runs=runs, queues=queues, extra=extra)
    return parse_scenario(load_text(text, "sweep-test.yaml"))


def options(config: LabConfig, tmp_path: Path) -> RunOptions:
    return RunOptions(results_dir=tmp_path / "r",
                      target=TargetSpec(hosts=str(lab.inventory_path(config.state_dir))))


def test_sweep_1_2_4_8_sums_iperf3_and_restores(sweep_lab: LabConfig, tmp_path: Path) -> None:
    original = read_channels(sweep_lab)
    result = asyncio.run(Runner(scenario(), options(sweep_lab, tmp_path)).run())
    assert result.status == "completed"
    run = results.load(result.path)
    runs = run.table("runs")
    assert sorted(set(runs["queues"])) == [1, 2, 4, 8]
    assert len(runs) == 8
    assert (runs["sum_gbps"] > 0).all()
    streams = run.table("streams")
    assert len(streams) == 8 * 3 and streams["ok"].all()
    summed = streams.groupby(["queues", "run"])["gbps"].sum()
    for _, row in runs.iterrows():
        assert row["sum_gbps"] == pytest.approx(summed[(row["queues"], row["run"])])
    set_rows = run.table("channels").query("event == 'set'")
    assert sorted(set(set_rows["rx"])) == [1, 2, 4, 8]
    assert (set_rows["rx"] == set_rows["tx"]).all()
    assert read_channels(sweep_lab) == original


def read_gro(config: LabConfig) -> dict[str, str]:
    """`generic-receive-offload` of the network node's links, read with `ethtool -k`."""
    node = LocalHost(name="netnode", netns=f"{config.prefix}netnode")
    states = {}
    for interface in INTERFACES:
        text = asyncio.run(node.run(["ethtool", "-k", interface])).stdout
        found = re.search(r"^generic-receive-offload: (on|off)", text, re.MULTILINE)
        assert found, text
        states[interface] = found[1]
    return states


def _journal(results_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for events in results_dir.glob("*/events.jsonl"):
        for line in events.read_text().splitlines():
            with contextlib.suppress(ValueError):  # a line still being written
                rows.append(json.loads(line))
    return rows


def _measuring(rows: list[dict[str, Any]]) -> tuple[int, str] | None:
    """(case number, variant) of the case whose streams run now (runs: 1): both links
    set to its queue count, no `runs` row of it yet; None between cases."""
    sets = [r for r in rows if r.get("table") == "channels" and r["event"] == "set"]
    done = sum(r.get("table") == "runs" for r in rows)
    if not sets or len(sets) % len(INTERFACES) or len(sets) // len(INTERFACES) != done + 1:
        return None
    return done + 1, sets[-1]["variant"]


def test_two_variants_side_by_side(sweep_lab: LabConfig, tmp_path: Path) -> None:
    # Two settings of the network node, as the field table's two kernels: GRO on
    # and off on its links, each set by its variant's setup and put back as found
    # by its teardown (a veth starts with GRO off: `gro-on` has to turn it on).
    original = read_gro(sweep_lab)
    gro = [[f"ethtool -K {i} gro {state}" for i in INTERFACES] for state in ("on", "off")]
    restore = [f"ethtool -K {i} gro {state}" for i, state in original.items()]
    text = SWEEP.format(duration="1s", runs=1, queues="[1, 2]", extra="").replace(
        "sweep:\n  queues: [1, 2]\n",
        "sweep:\n  queues: [1, 2]\n  zip:\n    variant: [gro-on, gro-off]\n"
        f"    setup: {json.dumps(gro)}\n    teardown: {json.dumps([restore, restore])}\n")
    sc = parse_scenario(load_text(text, "variants.yaml"))
    outcome: list[Any] = []
    runner = threading.Thread(target=lambda: outcome.append(
        asyncio.run(Runner(sc, options(sweep_lab, tmp_path)).run())))
    runner.start()
    # While each case's streams run, its variant's setting must be on the links.
    seen: dict[tuple[int, str], set[str]] = {}
    while runner.is_alive():
        case = _measuring(_journal(tmp_path / "r"))
        if case is not None:
            states = set(read_gro(sweep_lab).values())
            if _measuring(_journal(tmp_path / "r")) == case:  # still measuring: it counts
                seen.setdefault(case, set()).update(states)
        time.sleep(0.05)
    runner.join()
    (result,) = outcome
    assert result.status == "completed"
    assert seen == {(1, "gro-on"): {"on"}, (2, "gro-off"): {"off"},
                    (3, "gro-on"): {"on"}, (4, "gro-off"): {"off"}}, seen
    assert read_gro(sweep_lab) == original
    runs = results.load(result.path).table("runs")
    table = runs.pivot_table(index="queues", columns="variant", values="sum_gbps")
    assert list(table.columns) == ["gro-off", "gro-on"]
    assert list(table.index) == [1, 2]
    assert (table > 0).all().all()


def test_failing_setup_command_still_restores(sweep_lab: LabConfig, tmp_path: Path) -> None:
    original = read_channels(sweep_lab)
    sc = scenario(queues="[2]", extra="  setup: ['ethtool -L tg0 rx 3 tx 3', 'false']")
    result = asyncio.run(Runner(sc, options(sweep_lab, tmp_path)).run())
    assert result.cases[0].status == "error"
    assert "exit status 1" in (result.cases[0].error or "")
    assert read_channels(sweep_lab) == original


def test_sigint_mid_sweep_restores(sweep_lab: LabConfig, tmp_path: Path) -> None:
    original = read_channels(sweep_lab)
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(duration="5s", runs=3, queues="[1, 2]", extra=""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "osbench", "run", str(path), "--results", str(tmp_path / "r"),
         "--hosts", str(lab.inventory_path(sweep_lab.state_dir))],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the queues were changed
        events = list((tmp_path / "r").glob("*/events.jsonl"))
        if events and '"event":"set"' in events[0].read_text():
            break
        time.sleep(0.05)
    assert read_channels(sweep_lab) != original
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert read_channels(sweep_lab) == original
    # Ctrl-C stops the load too: no stream client outlives the run (they ran over SSH,
    # where dropping the channel alone would leave them running until their -t ended).
    assert _stream_clients() == [], "iperf3 clients still running after the run ended"


def _wait_until_every_stream_runs(config: LabConfig, tmp_path: Path) -> None:
    """An iperf3 server whose client was cut off mid-handshake (the SIGINT test) can
    answer "busy" for a while; this test is about a dead target, not that."""
    deadline = time.monotonic() + 60
    for attempt in range(1, 31):
        result = asyncio.run(Runner(scenario(queues="[4]", runs=1),
                                    options(config, tmp_path / f"settle-{attempt}")).run())
        streams = results.load(result.path).table("streams")
        if streams["ok"].all() or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert streams["ok"].all(), streams[["target", "error"]].to_dict("records")


def _stream_clients() -> list[str]:
    """Command lines of running iperf3 clients on this machine (the lab's hosts are
    namespaces of it), ignoring ones that are exiting by themselves within 2 s."""
    deadline = time.monotonic() + 2.0
    while True:
        clients = [p.read_text().replace("\0", " ").strip()
                   for p in Path("/proc").glob("[0-9]*/cmdline")
                   if _is_iperf3_client(p)]
        if not clients or time.monotonic() > deadline:
            return clients
        time.sleep(0.1)


def _is_iperf3_client(cmdline: Path) -> bool:
    try:
        argv = cmdline.read_bytes().split(b"\0")
    except OSError:  # the process exited while we looked
        return False
    return bool(argv) and argv[0].endswith(b"iperf3") and b"-c" in argv


def test_a_killed_target_fails_its_streams_and_restores(sweep_lab: LabConfig,
                                                        tmp_path: Path) -> None:
    # Last in this module: it stops target1's iperf3 servers for good.
    _wait_until_every_stream_runs(sweep_lab, tmp_path)
    original = read_channels(sweep_lab)
    # By pidfile: `ip netns exec ... pkill` would reach every namespace's iperf3.
    for pidfile in (sweep_lab.state_dir / "hosts" / "target1").glob("iperf3-*.pid"):
        os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
    sc = scenario(queues="[4]", runs=1)
    result = asyncio.run(Runner(sc, options(sweep_lab, tmp_path)).run())
    run = results.load(result.path)
    streams = run.table("streams")
    failed = streams[~streams["ok"]]
    assert set(failed["target"]) == {"target1"}, failed[["target", "error"]].to_dict("records")
    assert failed["error"].str.contains("unable to connect").all()
    assert run.table("runs")["sum_gbps"].isna().all()  # a partial sum is not a figure
    assert result.cases[0].metrics["runs_failed"] == 1
    assert not result.cases[0].sla_passed
    assert read_channels(sweep_lab) == original
