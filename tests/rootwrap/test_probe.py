"""The rootwrap probe for real: oslo-rootwrap and its daemon from the project's
environment, the DHCP agent's `ip netns exec qdhcp-... ip route list` in a real
namespace. No timed assertions: the ordering of the modes is checked by the
benchmark and the demo scenario, not here."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from osbench.errors import HostError
from osbench.hosts import LocalHost
from osbench.kinds.rootwrap import config, helper, probe

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/ns/net").exists() or shutil.which("ip") is None
    or __import__("os").geteuid() != 0,
    reason="needs root and iproute2 (network namespaces)")

WRAPPER = config.default_wrapper()
DAEMON = config.default_wrapper("oslo-rootwrap-daemon")


@pytest.fixture
async def qdhcp() -> AsyncIterator[str]:
    host = LocalHost()
    name = probe.qdhcp_name()
    await probe.add_namespace(host, name)
    try:
        await probe.add_port(host, name)
        yield name
    finally:
        await probe.remove_namespace(host, name)


@pytest.fixture
def generated() -> Iterator[config.GeneratedConfig]:
    conf = config.generate()
    yield conf
    conf.remove()


def spec(netns: str, conf: config.GeneratedConfig, modes: tuple[str, ...] = (
        "direct", "rootwrap", "daemon"), **kw) -> probe.ProbeSpec:  # type: ignore[no-untyped-def]
    return probe.ProbeSpec(modes=modes, command=probe.format_command((), netns), samples=3,
                           warmup=1, timeout_s=30, conf=str(conf.conf), wrapper=WRAPPER,
                           daemon_wrapper=DAEMON, **kw)


def test_generated_config_is_accepted_by_oslo_rootwrap(
        generated: config.GeneratedConfig) -> None:
    text = generated.conf.read_text()
    assert f"filters_path={generated.directory / 'filters.d'}" in text
    assert "exec_dirs=/usr/sbin,/usr/bin,/sbin,/bin" in text
    assert "use_syslog=False" in text
    assert generated.filters.read_text() == ("[Filters]\nip: IpFilter, ip, root\n"
                                             "ip_exec: IpNetnsExecFilter, ip, root\n")
    allowed = subprocess.run([WRAPPER, str(generated.conf), "ip", "route", "list"],
                             capture_output=True, text=True, check=False)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout == subprocess.run(["ip", "route", "list"], capture_output=True,
                                            text=True, check=True).stdout
    denied = subprocess.run([WRAPPER, str(generated.conf), "cat", "/etc/hostname"],
                            capture_output=True, text=True, check=False)
    assert denied.returncode == 99
    generated.remove()
    assert not generated.directory.exists()


def test_qdhcp_namespace_has_the_port_route(qdhcp: str) -> None:
    assert qdhcp.startswith("qdhcp-") and len(qdhcp) == len("qdhcp-") + 36
    out = subprocess.run(["ip", "netns", "exec", qdhcp, "ip", "route", "list"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("198.18.250.0/24 dev tap0 ")


async def test_every_mode_runs_the_real_command_with_identical_output(
        qdhcp: str, generated: config.GeneratedConfig) -> None:
    rows: list[probe.Sample] = []
    result = await probe.run_here(spec(qdhcp, generated), rows.append)
    assert result.mismatches == []
    assert result.reference is not None and "dev tap0" in result.reference
    assert [r["mode"] for r in result.startup] == ["direct", "rootwrap", "daemon"]
    assert len(rows) == 9
    assert sorted((r["i"], r["mode"]) for r in rows) == sorted(
        (i, m) for i in range(3) for m in ("direct", "rootwrap", "daemon"))
    assert all(r["rc"] == 0 and r["latency_ms"] > 0 for r in rows)
    # Rounds rotate the order: round 1 starts with rootwrap.
    assert [r["mode"] for r in rows[3:6]] == ["rootwrap", "daemon", "direct"]


def test_rounds_rotate_the_mode_order() -> None:
    assert helper.rounds(["a", "b", "c"], 4) == [
        (0, "a"), (0, "b"), (0, "c"), (1, "b"), (1, "c"), (1, "a"),
        (2, "c"), (2, "a"), (2, "b"), (3, "a"), (3, "b"), (3, "c")]


async def test_mismatched_output_is_an_error_row_not_a_sample(
        generated: config.GeneratedConfig, tmp_path: Path) -> None:
    # A command whose output changes on every call: the first (start-up) call
    # prints 1, the samples 2 and 3.
    counter = tmp_path / "n"
    counter.write_text("0")
    script = tmp_path / "count.sh"
    script.write_text(f"#!/bin/sh\nn=$(cat {counter}); echo $((n+1)) > {counter}; cat {counter}\n")
    script.chmod(0o755)
    rows: list[probe.Sample] = []
    s = probe.ProbeSpec(modes=("direct",), command=(str(script),), samples=2, warmup=0,
                        timeout_s=10)
    result = await probe.run_here(s, rows.append)
    assert rows == []
    assert [(m["mode"], m["i"], m["stdout"]) for m in result.mismatches] == [
        ("direct", 0, "2\n"), ("direct", 1, "3\n")]


@pytest.mark.parametrize("mode", ["rootwrap", "daemon"])
async def test_denied_command_is_a_clear_error_naming_mode_and_command(
        mode: str, qdhcp: str, generated: config.GeneratedConfig) -> None:
    s = probe.ProbeSpec(modes=("direct", mode),
                        command=("ip", "netns", "exec", qdhcp, "cat", "/etc/hostname"),
                        samples=2, warmup=0, timeout_s=30, conf=str(generated.conf),
                        wrapper=WRAPPER, daemon_wrapper=DAEMON)
    rows: list[probe.Sample] = []
    with pytest.raises(HostError) as err:
        await probe.run_here(s, rows.append)
    text = str(err.value)
    assert f"mode {mode}:" in text
    assert f"ip netns exec {qdhcp} cat /etc/hostname" in text
    assert ("denied by the rootwrap filters (exit 99" in text if mode == "rootwrap"
            else "denied by the filters" in text)
    assert rows == []


@pytest.mark.parametrize("mode", ["rootwrap", "daemon"])
async def test_missing_wrapper_is_a_clear_error(mode: str, qdhcp: str,
                                                generated: config.GeneratedConfig) -> None:
    s = spec(qdhcp, generated, modes=("direct", mode))
    s = probe.ProbeSpec(**{**s.__dict__, "wrapper": "/nonexistent/neutron-rootwrap",
                           "daemon_wrapper": "/nonexistent/neutron-rootwrap-daemon"})
    with pytest.raises(HostError, match=rf"mode {mode}: .*wrapper '/nonexistent/neutron-"
                                        rf"rootwrap.*' not found \(command: ip netns exec"):
        await probe.run_here(s, lambda row: None)


async def test_helper_runs_the_same_probe_in_a_namespace_as_a_host_would(
        qdhcp: str) -> None:
    # The helper's source with this machine's Python, inside another namespace,
    # writing its own configuration there (as on a remote host).
    runner_ns = probe.qdhcp_name().replace("qdhcp", "osbr")
    await probe.add_namespace(LocalHost(), runner_ns)
    try:
        host = LocalHost("in-ns", netns=runner_ns)
        s = probe.ProbeSpec(modes=("direct", "rootwrap", "daemon"),
                            command=probe.format_command((), qdhcp), samples=2, warmup=0,
                            timeout_s=30, generate_conf=True, wrapper=WRAPPER,
                            daemon_wrapper=DAEMON)
        rows: list[probe.Sample] = []
        result = await probe.run_on_host(host, s, sys.executable, rows.append)
    finally:
        await probe.remove_namespace(LocalHost(), runner_ns)
    assert len(rows) == 6 and result.mismatches == []
    assert result.reference is not None and "dev tap0" in result.reference


@pytest.fixture
def python_without_rootwrap(tmp_path: Path) -> str:
    """A fresh venv's python: the standard library only, whatever the machine has
    (the system python3 has oslo.rootwrap once minicloud has installed Debian's)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                   check=True, capture_output=True, timeout=120)
    python = str(venv / "bin" / "python")
    assert subprocess.run([python, "-c", "import oslo_rootwrap"], capture_output=True,
                          check=False).returncode != 0, "the venv has oslo.rootwrap"
    return python


def test_helper_without_oslo_rootwrap_says_so(qdhcp: str, python_without_rootwrap: str) -> None:
    python = python_without_rootwrap
    s = probe.ProbeSpec(modes=("direct", "daemon"), command=probe.format_command((), qdhcp),
                        samples=1, warmup=0, timeout_s=30, generate_conf=True,
                        daemon_wrapper=DAEMON)
    with pytest.raises(HostError, match=r"mode daemon: oslo.rootwrap is not installed for"):
        asyncio.run(probe.run_on_host(LocalHost(), s, python, lambda row: None))


def test_cancelled_probe_stops_its_thread(qdhcp: str,
                                          generated: config.GeneratedConfig) -> None:
    async def main() -> int:
        rows: list[probe.Sample] = []
        three = asyncio.Event()

        def on_sample(row: probe.Sample) -> None:
            rows.append(row)
            if len(rows) == 3:
                three.set()

        s = probe.ProbeSpec(**{**spec(qdhcp, generated, modes=("direct", "daemon")).__dict__,
                               "samples": 10_000})
        task = asyncio.create_task(probe.run_here(s, on_sample))
        await three.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return len(rows)

    assert asyncio.run(main()) < 10_000
    # The helper stopped its daemon on SIGTERM: no rootwrap daemon is left.
    left = subprocess.run(["pgrep", "-f", f"oslo-rootwrap-daemon {generated.conf}"],
                          capture_output=True, text=True, check=False).stdout
    assert left == ""
