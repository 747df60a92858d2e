"""The local lab for real: namespaces, sshd per host, ethtool on veth queues, iperf3.

Each lab here has its own prefix, management subnet and state dir, so the
tests neither see nor touch a lab a user has up (prefix osb-, 198.19.0.0/24).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from osbench import lab
from osbench.cli import program
from osbench.errors import HostError
from osbench.hosts import close_all, connect, load_inventory
from osbench.lab import LabConfig
from tests.hosts.processes import processes_mentioning

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: builds network namespaces, veth links, sshd and iperf3 (CI runs as root)")


def assert_nothing_left(config: LabConfig) -> None:
    status = asyncio.run(lab.status(config.state_dir, prefix=config.prefix))
    assert status.namespaces == []
    assert status.root_links == []
    assert processes_mentioning(str(config.state_dir)) == []
    assert not config.state_dir.exists()


@pytest.fixture(scope="module")
def small_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabConfig]:
    config = LabConfig(targets=2, prefix="osbt-", mgmt_net=201,
                       state_dir=tmp_path_factory.mktemp("lab") / "state")
    asyncio.run(lab.up(config))
    yield config
    asyncio.run(lab.down(config))
    assert_nothing_left(config)


def channels(ethtool_l: str) -> dict[str, dict[str, str]]:
    """`ethtool -l` output -> {"max": {"RX": "8", ...}, "current": {...}}."""
    maximum, _, current = ethtool_l.partition("Current hardware settings:")
    def parse(text: str) -> dict[str, str]:
        return dict(re.findall(r"^(RX|TX|Other|Combined):\s+(\S+)", text, re.MULTILINE))
    return {"max": parse(maximum), "current": parse(current)}


def test_status_and_inventory(small_lab: LabConfig) -> None:
    status = asyncio.run(lab.status(small_lab.state_dir))
    assert status.healthy
    assert status.namespaces == ["osbt-client", "osbt-fabric", "osbt-netnode", "osbt-target1",
                                 "osbt-target2"]
    assert status.root_links == ["osbt-br", "osbt-m-client", "osbt-m-netnode",
                                 "osbt-m-target1", "osbt-m-target2"]
    inv = load_inventory(small_lab.inventory_file)
    assert inv.host_key_policy == "verify"
    assert [h.name for h in inv.by_role("network_node")] == ["netnode"]
    assert inv.hosts["netnode"].interfaces == ("cl0", "tg0")
    assert [(h.name, h.traffic_address, h.iperf3_ports) for h in inv.by_role("target")] == [
        ("target1", "198.18.1.11", (5201, 5202, 5203, 5204)),
        ("target2", "198.18.1.12", (5201, 5202, 5203, 5204))]
    assert inv.hosts["client"].traffic_address == "198.18.0.2"
    assert all(h.address.startswith("198.19.201.") for h in inv.hosts.values())


async def test_every_host_answers_over_ssh(small_lab: LabConfig) -> None:
    inv = load_inventory(small_lab.inventory_file)
    hosts = connect(inv)
    try:
        results = await asyncio.gather(*(
            h.run(["ip", "-4", "-o", "addr", "show", "dev", "mgmt0"]) for h in hosts.values()))
        for spec, result in zip(inv.hosts.values(), results, strict=True):
            assert f" {spec.address}/24 " in result.stdout, (spec.name, result.stdout)
    finally:
        await close_all(hosts)


async def test_set_and_restore_queues_on_the_network_node(small_lab: LabConfig) -> None:
    inv = load_inventory(small_lab.inventory_file)
    hosts = connect(inv)
    netnode = hosts["netnode"]
    try:
        for dev in inv.hosts["netnode"].interfaces:
            before = channels((await netnode.run(["ethtool", "-l", dev])).stdout)
            assert before == {"max": {"RX": "8", "TX": "8", "Other": "n/a", "Combined": "n/a"},
                              "current": {"RX": "8", "TX": "8", "Other": "n/a",
                                          "Combined": "n/a"}}
            try:
                await netnode.run(["ethtool", "-L", dev, "rx", "2", "tx", "2"])
                after = channels((await netnode.run(["ethtool", "-l", dev])).stdout)
                assert (after["current"]["RX"], after["current"]["TX"]) == ("2", "2")
            finally:
                await netnode.run(["ethtool", "-L", dev, "rx", "8", "tx", "8"])
            restored = channels((await netnode.run(["ethtool", "-l", dev])).stdout)
            assert restored == before
    finally:
        await close_all(hosts)


async def test_iperf3_from_the_client_through_the_network_node(small_lab: LabConfig) -> None:
    inv = load_inventory(small_lab.inventory_file)
    hosts = connect(inv)
    target = inv.by_role("target")[1]
    counter = ["cat", "/sys/class/net/tg0/statistics/tx_bytes"]
    try:
        forwarded_before = int((await hosts["netnode"].run(counter)).stdout)
        result = await hosts["client"].run(
            ["iperf3", "-c", target.traffic_address, "-p", str(target.iperf3_ports[0]),
             "-t", "1", "-J"], timeout_s=20)
        report = json.loads(result.stdout)
        assert "error" not in report
        received = report["end"]["sum_received"]
        assert received["bits_per_second"] > 0
        forwarded = int((await hosts["netnode"].run(counter)).stdout) - forwarded_before
        assert forwarded >= received["bytes"]  # every byte crossed the network node
    finally:
        await close_all(hosts)


def test_up_again_keeps_the_running_lab(small_lab: LabConfig) -> None:
    sshd_pid = (small_lab.state_dir / "hosts/netnode/sshd.pid").read_text()
    known_hosts = small_lab.known_hosts_file.read_text()
    assert asyncio.run(lab.up(small_lab)) == small_lab.inventory_file
    assert (small_lab.state_dir / "hosts/netnode/sshd.pid").read_text() == sshd_pid
    assert small_lab.known_hosts_file.read_text() == known_hosts


def test_status_command(small_lab: LabConfig, capsys: pytest.CaptureFixture[str]) -> None:
    assert program.main(["lab", "--state-dir", str(small_lab.state_dir), "status"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lab: up\n  2 targets, 8 queues, ports 5201..5204")
    assert "  target2: sshd running, iperf3 4/4\n" in out


def test_down_leaves_nothing(tmp_path: Path) -> None:
    config = LabConfig(targets=1, ports_per_target=1, prefix="osbd-", mgmt_net=202,
                       state_dir=tmp_path / "state")
    asyncio.run(lab.up(config))
    assert asyncio.run(lab.status(config.state_dir)).healthy
    asyncio.run(lab.down(config))
    assert_nothing_left(config)


def test_down_after_a_failed_up(tmp_path: Path) -> None:
    config = LabConfig(targets=2, ports_per_target=1, prefix="osbf-", mgmt_net=203,
                       state_dir=tmp_path / "state")
    # a link in the way of target2's management veth makes the build fail halfway
    # (`up` itself would first clear it away as a leftover of an earlier lab)
    asyncio.run(lab.manage._root.run(["ip", "link", "add", "osbf-m-target2", "type", "bridge"]))
    try:
        with pytest.raises(HostError, match=r"ip link add osbf-m-target2 type veth"):
            asyncio.run(lab.manage._build(config))
        partial = asyncio.run(lab.status(config.state_dir))
        assert partial.namespaces and not partial.healthy
        assert asyncio.run(lab.status(config.state_dir)).lines()[0] == "lab: partial"
    finally:
        asyncio.run(lab.down(config))
    assert_nothing_left(config)


def test_lab_needs_root(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                        tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert program.main(["lab", "--state-dir", str(tmp_path), "up"]) == 2
    assert capsys.readouterr().err == (
        "osbench: error: the local lab needs root (network namespaces, veth links, sshd) "
        "(run `sudo osbench lab ...`)\n")


def test_a_missing_tool_is_a_machine_failure_on_one_line(tmp_path: Path) -> None:
    """The `osbench` command for real, on a PATH where none of the lab's tools is:
    exit 1 (the machine, not the user), one line naming them, no traceback; the
    check comes before anything is made."""
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "osbench", "lab", "--state-dir", str(tmp_path / "state"), "up"],
        env={**os.environ, "PATH": str(empty)}, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (1, ""), proc.stderr
    assert re.fullmatch(r"osbench: error: missing tools: ip \(iproute2\), ethtool \(ethtool\), "
                        r"iperf3 \(iperf3\), ssh-keygen \(openssh-client\)[^\n]* "
                        r"\(run ./bootstrap as root, [^\n]*\)\n", proc.stderr), proc.stderr
    assert not (tmp_path / "state").exists()
