"""Bad audit scenarios: each mistake is one located line (file:line key.path, the
bad value, what is valid), exit status 2, no traceback; and a role naming a host
the inventory lacks is a user error naming the inventory, with a did-you-mean."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from osbench import results
from osbench.cli.program import main
from osbench.runner import Runner, RunOptions
from osbench.scenario import TargetSpec, parse_scenario
from osbench.scenario.source import load_text

GOOD = """\
name: a
kind: audit
params:
  checks: [versions, firewall]
  versions:
    packages: ["nova*"]
  firewall:
    name_prefix: web-
"""

CASES = {
    "unknown check": (
        GOOD.replace("[versions, firewall]", "[versions, firewal]"),
        "4: params.checks[1]: 'firewal' is not allowed (did you mean 'firewall'? valid: "
        "firewall, versions)"),
    "empty scope": (
        GOOD.replace("    name_prefix: web-\n", "    closed_sample: [22]\n"),
        "7: params.firewall: the scope is empty; set project, name_prefix or tag, or boot "
        "(the audit probes only instances in its scope)"),
    "scope and boot": (
        GOOD.replace("name_prefix: web-", "name_prefix: web-\n    boot: {}"),
        "7: params.firewall: boot scopes the audit to its own probe instances; remove "
        "project, name_prefix and tag, or boot"),
    "boot unbounded": (
        GOOD.replace("name_prefix: web-", "boot: {max_instances: 100000}"),
        "8: params.firewall.boot.max_instances: 100000 must be <= 1000"),
    "firewall named but not set": (
        GOOD.replace("  firewall:\n    name_prefix: web-\n", ""),
        "3: params: checks names firewall but `firewall:` is not set; add "
        "`firewall: {name_prefix: ...}` (or project, or tag)"),
    "no check": (
        GOOD.replace("[versions, firewall]", "[]"),
        "3: params: checks is empty; name at least one of: versions, firewall"),
    "misspelt key": (
        GOOD.replace("packages:", "pakages:"),
        "6: params.versions.pakages: unknown key 'pakages' (did you mean 'packages'? valid: "
        "config_files, inventory, packages, roles, timeout_s)"),
    "port out of range": (
        GOOD.replace("name_prefix: web-", "name_prefix: web-\n    closed_sample: [22, 70000]"),
        "9: params.firewall.closed_sample[1]: 70000 must be <= 65535"),
    "shell in a package pattern": (
        GOOD.replace('"nova*"', '"nova*; rm -rf /"'),
        "6: params.versions.packages[0]: 'nova*; rm -rf /' must be a package name or glob "
        "(letters, digits, . + - _ * ? [ ])"),
    "relative config file": (
        GOOD.replace('packages: ["nova*"]', "config_files: [etc/nova.conf]"),
        "6: params.versions.config_files[0]: 'etc/nova.conf' must be an absolute path "
        "without spaces, quotes or shell characters"),
    "vantage without its kind": (
        GOOD.replace("name_prefix: web-", "name_prefix: web-\n    vantage: netnode"),
        "9: params.firewall.vantage: 'netnode' must be harness, netns:NAME or host:NAME"),
    "unbounded probes": (
        GOOD.replace("name_prefix: web-", "name_prefix: web-\n    max_probes: 1000000"),
        "9: params.firewall.max_probes: 1000000 must be <= 20000"),
}


@pytest.mark.parametrize("mistake", sorted(CASES))
def test_mistake_gives_one_located_line(mistake: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    text, expected = CASES[mistake]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr()
    assert out.err == f"osbench: error: {path}:{expected}\n"


def test_role_with_a_host_the_inventory_lacks(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("hosts:\n  cmp1: {address: 192.0.2.1}\n  cmp2: {address: 192.0.2.2}\n")
    scenario = parse_scenario(load_text(f"""\
name: roles
kind: audit
params:
  checks: [versions]
  versions:
    inventory: {inventory}
    roles: {{hypervisors: [cmp1, cmp3]}}
""", "roles.yaml"))
    result = asyncio.run(Runner(scenario, RunOptions(results_dir=tmp_path / "r")).run())
    assert [c.error for c in result.cases] == [
        f"UserError: params.versions.roles.hypervisors: no host 'cmp3' in {inventory} "
        "(did you mean 'cmp2'? valid: cmp1, cmp2)"]
    notes = results.load(result.path).table("audit_notes")
    assert notes["check"].tolist() == ["versions"]


#: A scenario whose host names refer to an inventory it does not name, for each
#: kind that reads one: the versions check of an audit whose target is a cloud
#: (the firewall check runs too), and rootwrap on a host. Each must use the run's
#: --hosts, as a hosts target does; before, each used the local lab's inventory
#: whatever --hosts said (the firewall's `host:` vantage reads it the same way,
#: osbench.hosts.target.connect_for_case, but needs instances to probe).
WITHOUT_INVENTORY = {
    "versions beside firewall": ("""\
name: mixed
kind: audit
params:
  checks: [versions, firewall]
  versions:
    roles: {hypervisors: [cmp1, cmp3]}
  firewall:
    name_prefix: web-
""", "UserError: params.versions.roles.hypervisors: no host 'cmp3' in {inventory} "
     "(did you mean 'cmp2'? valid: cmp1, cmp2)"),
    "rootwrap on a host": ("""\
name: rw
kind: rootwrap
params:
  host: netnode
""", "UserError: {inventory}: no host 'netnode' (hosts: cmp1, cmp2)"),
}


@pytest.mark.parametrize("name", list(WITHOUT_INVENTORY))
def test_host_names_refer_to_the_runs_hosts(name: str, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("hosts:\n  cmp1: {address: 192.0.2.1}\n  cmp2: {address: 192.0.2.2}\n")
    text, error = WITHOUT_INVENTORY[name]
    scenario = parse_scenario(load_text(text, f"{name}.yaml"))
    options = RunOptions(results_dir=tmp_path / "r", target=TargetSpec(hosts=str(inventory)))
    result = asyncio.run(Runner(scenario, options).run())
    assert [c.error for c in result.cases] == [error.format(inventory=inventory)]
