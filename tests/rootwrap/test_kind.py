"""The rootwrap kind end to end through the Runner, on this machine (root)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from osbench import results
from osbench.runner import Runner, RunOptions
from osbench.scenario import parse_scenario
from osbench.scenario.source import load_text

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="needs root and iproute2 (network namespaces)")

BASE = """\
name: rootwrap-test
kind: rootwrap
params:
  modes: [{modes}]
  samples: 4
  warmup: 1
{extra}
sla: ["output_mismatches == 0", "samples_total >= 1"]
"""


def scenario(modes: str = "direct, sudo, rootwrap, daemon", extra: str = ""):  # type: ignore[no-untyped-def]
    return parse_scenario(load_text(BASE.format(modes=modes, extra=extra), "rw.yaml"))


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def leftovers() -> set[str]:
    return {p.name for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("osbench-rootwrap-*")}


def test_run_journals_samples_of_every_mode_and_cleans_up(tmp_path: Path) -> None:
    before_ns, before_tmp = namespaces(), leftovers()
    result = asyncio.run(Runner(scenario(), RunOptions(results_dir=tmp_path, seed=3)).run())
    assert result.status == "completed", result.cases[0].error
    run = results.load(result.path)
    samples = run.table("samples")
    modes = ["direct", "rootwrap", "daemon"]
    if shutil.which("sudo"):
        modes.insert(1, "sudo")
    else:
        skipped = run.table("skipped")
        assert skipped.to_dict("records") == [
            {"case": "default", "mode": "sudo", "reason": "sudo is not installed on local"}]
    assert sorted(samples["mode"].unique()) == sorted(modes)
    assert samples.groupby("mode").size().to_dict() == dict.fromkeys(modes, 4)
    assert (samples["rc"] == 0).all() and (samples["latency_ms"] > 0).all()
    summary = run.table("modes").set_index("mode")
    assert summary.loc["direct", "ratio"] == 1.0
    for mode in modes:
        assert summary.loc[mode, "n"] == 4
        assert summary.loc[mode, "p50_ms"] == pytest.approx(
            samples[samples["mode"] == mode]["latency_ms"].median())
    metrics = result.cases[0].metrics
    assert metrics["rootwrap_ratio"] == pytest.approx(
        summary.loc["rootwrap", "p50_ms"] / summary.loc["direct", "p50_ms"])
    assert metrics["daemon_startup_ms"] > 0
    assert metrics["output_mismatches"] == 0
    # The qdhcp namespace existed for the case and is gone; so is the config.
    created = run.table("namespaces")["name"].iloc[0]
    assert created.startswith("qdhcp-") and run.table("namespaces")["created"].iloc[0]
    assert "dev tap0" in run.table("output")["reference"].iloc[0]
    assert namespaces() == before_ns
    assert leftovers() == before_tmp


def test_named_namespace_is_used_and_never_removed(tmp_path: Path) -> None:
    name = "osbr-qdhcp-named"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        sc = scenario("direct, rootwrap", f"  qdhcp_netns: {name}")
        result = asyncio.run(Runner(sc, RunOptions(results_dir=tmp_path)).run())
        assert result.status == "completed", result.cases[0].error
        assert name in namespaces()
        row = results.load(result.path).table("namespaces").iloc[0]
        assert (row["name"], bool(row["created"])) == (name, False)
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_probe_inside_a_named_namespace(tmp_path: Path) -> None:
    name = "osbr-runner"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        sc = scenario("direct, rootwrap, daemon", f"  netns: {name}")
        result = asyncio.run(Runner(sc, RunOptions(results_dir=tmp_path)).run())
        assert result.status == "completed", result.cases[0].error
        samples = results.load(result.path).table("samples")
        assert samples.groupby("mode").size().to_dict() == {"daemon": 4, "direct": 4,
                                                            "rootwrap": 4}
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_denied_command_fails_the_case_with_mode_and_command(tmp_path: Path) -> None:
    before = namespaces()
    sc = scenario("direct, rootwrap",
                  "  command: [ip, netns, exec, '{netns}', cat, /etc/hostname]")
    result = asyncio.run(Runner(sc, RunOptions(results_dir=tmp_path)).run())
    case = result.cases[0]
    assert case.status == "error"
    assert "mode rootwrap: denied by the rootwrap filters (exit 99" in (case.error or "")
    assert "cat /etc/hostname" in (case.error or "")
    assert "samples" not in results.load(result.path).tables
    assert namespaces() == before


def test_modes_without_direct_is_a_scenario_error() -> None:
    from osbench.errors import ScenarioError

    with pytest.raises(ScenarioError, match="modes must include 'direct'"):
        scenario("rootwrap, daemon")
