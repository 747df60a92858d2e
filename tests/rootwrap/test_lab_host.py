"""The rootwrap probe on a lab host over SSH: the helper runs there with the
host's Python and oslo.rootwrap, and the qdhcp namespace it made is removed."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from osbench import lab, results
from osbench.lab import LabConfig
from osbench.runner import Runner, RunOptions
from osbench.scenario import parse_scenario
from osbench.scenario.source import load_text
from tests.support.lab import needs_root, running_lab

pytestmark = needs_root

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def rootwrap_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabConfig]:
    with running_lab(LabConfig(targets=1, ports_per_target=1, prefix="osbr-", mgmt_net=206,
                               state_dir=tmp_path_factory.mktemp("lab"))) as config:
        yield config


def test_probe_on_the_network_node_over_ssh(rootwrap_lab: LabConfig, tmp_path: Path) -> None:
    text = f"""\
name: rootwrap-on-netnode
kind: rootwrap
params:
  host: netnode
  inventory: {lab.inventory_path(rootwrap_lab.state_dir)}
  python: {sys.executable}
  wrapper: {BIN / "oslo-rootwrap"}
  daemon_wrapper: {BIN / "oslo-rootwrap-daemon"}
  samples: 10
  warmup: 1
"""
    scenario = parse_scenario(load_text(text, "rootwrap-on-netnode.yaml"))
    result = asyncio.run(Runner(scenario, RunOptions(results_dir=tmp_path / "r")).run())
    assert result.status == "completed", [c.error for c in result.cases]
    run = results.load(result.path)
    samples = run.table("samples")
    assert samples.groupby("mode").size().to_dict() == {"daemon": 10, "direct": 10,
                                                        "rootwrap": 10}
    assert (samples["rc"] == 0).all()
    namespaces = run.table("namespaces")
    assert namespaces["host"].tolist() == ["netnode"]
    assert namespaces["created"].tolist() == [True]
    assert run.table("events").query("event == 'cleanup_done'")["detail"].str.contains(
        "remove namespace").any()
