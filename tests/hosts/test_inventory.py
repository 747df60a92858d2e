"""Inventory files: validated like scenario files, with exact messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from osbench.errors import ScenarioError
from osbench.hosts import load_inventory, parse_inventory_text

GOOD = """\
known_hosts: keys/known_hosts
host_key_policy: tofu
hosts:
  bastion: {address: bastion.example.net, user: ops}
  netnode:
    address: 10.0.0.5
    jump: bastion
    key_file: id_netnode
    roles: [network_node]
    interfaces: [eth3]
  client1: {address: 10.0.1.7, roles: [client], password_env: CLIENT1_PW}
  vm1: {address: 10.0.2.11, roles: [target], data_address: 192.0.2.11, iperf3_ports: [5201]}
"""


def test_a_good_inventory(tmp_path: Path) -> None:
    file = tmp_path / "inv.yaml"
    file.write_text(GOOD)
    inv = load_inventory(file)
    assert list(inv.hosts) == ["bastion", "netnode", "client1", "vm1"]
    assert inv.file == str(file)
    assert inv.known_hosts == str(tmp_path / "keys" / "known_hosts")
    assert inv.host_key_policy == "tofu"
    nn = inv.hosts["netnode"]
    assert (nn.name, nn.port, nn.user, nn.jump, nn.interfaces) == (
        "netnode", 22, "root", "bastion", ("eth3",))
    assert nn.key_file == str(tmp_path / "id_netnode")
    assert [h.name for h in inv.by_role("target")] == ["vm1"]
    assert inv.hosts["vm1"].traffic_address == "192.0.2.11"
    assert inv.hosts["client1"].traffic_address == "10.0.1.7"
    assert inv.hosts["vm1"].iperf3_ports == (5201,)


def test_default_known_hosts_and_policy() -> None:
    inv = parse_inventory_text("hosts: {a: {address: 198.18.0.1}}")
    assert inv.known_hosts == str(Path("~/.ssh/known_hosts").expanduser())
    assert inv.host_key_policy == "verify"


@pytest.mark.parametrize(("text", "message"), [
    ("hosts:\n  nn:\n    adress: 10.0.0.5\n",
     "inv.yaml:3: hosts.nn.adress: unknown key 'adress' (did you mean 'address'? valid: "
     "address, data_address, interfaces, iperf3_ports, jump, key_file, password_env, port, "
     "roles, user)"),
    ("hosts:\n  nn: {address: 10.0.0.5, jump: bastoin}\n  bastion: {address: 10.0.0.1}\n",
     "inv.yaml:2: hosts.nn.jump: unknown jump host 'bastoin' (did you mean 'bastion'? valid: "
     "bastion)"),
    ("hosts:\n  a: {address: x, jump: b}\n  b: {address: y, jump: a}\n",
     "inv.yaml:2: hosts.a.jump: jump hosts form a loop: a -> b -> a (the last host of a jump "
     "chain must be reachable directly)"),
    ("hosts:\n  nn: {address: 10.0.0.5, roles: [netnode]}\n",
     "inv.yaml:2: hosts.nn.roles[0]: 'netnode' is not allowed (did you mean 'network_node'? "
     "valid: client, network_node, target)"),
    ("hosts:\n  nn: {user: ops}\n",
     "inv.yaml:2: hosts.nn: missing required key 'address' (add `address:` (a string))"),
    ("hosts:\n  nn: {address: a, port: 70000}\n",
     "inv.yaml:2: hosts.nn.port: 70000 must be <= 65535"),
    ("host:\n  nn: {address: a}\n",
     "inv.yaml:1: host: unknown key 'host' (did you mean 'hosts'? valid: host_key_policy, "
     "hosts, known_hosts)"),
    ("hosts: {nn: {address: a}}\nhost_key_policy: trust\n",
     "inv.yaml:2: host_key_policy: 'trust' is not allowed (valid: tofu, verify)"),
    ("hosts: {nn: {address: a, password_env: my-pw}}\n",
     "inv.yaml:1: hosts.nn.password_env: 'my-pw' must be an environment variable name"),
    ("hosts: {nn: {address: a, name: b}}\n",
     "inv.yaml:1: hosts.nn.name: unknown key 'name' (a host's name is its key under hosts: "
     "('nn'))"),
    ("hosts: {}\n",
     "inv.yaml:1: hosts: expected a non-empty mapping of host name to its settings, got {} "
     "(mapping)"),
    ("known_hosts: x\n",
     "inv.yaml:1: missing required key 'hosts' (add `hosts:` (a mapping of host name to its "
     "settings))"),
])
def test_mistakes(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_inventory_text(text, "inv.yaml")
    assert str(info.value) == message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nope\.yaml: no such file$"):
        load_inventory(tmp_path / "nope.yaml")
