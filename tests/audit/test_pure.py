"""The audit's pure parts: reading the per-host command's output, drift against a
role's majority, and what security-group rules open to a vantage."""

from __future__ import annotations

from osbench.kinds.audit import drift, rules, versions
from osbench.kinds.audit.versions import HostFacts

OUTPUT = """\
#osbench-audit kernel
6.1.0-28-amd64
#osbench-audit dpkg
ii \tnova-compute\t2:26.2.0-1
rc \tneutron-common\t2:21.0.0-1
ii \tpython3-oslo.config\t1:9.0.0-1
#osbench-audit rpm
ii \topenvswitch\t0:3.1.0-2.el9
ii \tqemu-kvm\t17:8.2.0-11.el9
#osbench-audit config
3f2a9c  /etc/nova/nova.conf
(missing)  /etc/neutron/neutron.conf
#osbench-audit end
"""


def test_parse_keeps_installed_packages_and_each_config() -> None:
    facts = versions.parse("cmp1", OUTPUT)
    assert facts.answered and facts.kernel == "6.1.0-28-amd64"
    assert dict(facts.packages) == {"nova-compute": "2:26.2.0-1",  # config-files only: gone
                                    "python3-oslo.config": "1:9.0.0-1",
                                    "openvswitch": "3.1.0-2.el9", "qemu-kvm": "17:8.2.0-11.el9"}
    assert dict(facts.configs) == {"/etc/nova/nova.conf": "3f2a9c",
                                   "/etc/neutron/neutron.conf": "(missing)"}
    assert facts.managers == ("dpkg", "rpm")


def test_output_cut_short_is_an_error_not_an_empty_host() -> None:
    facts = versions.parse("cmp1", OUTPUT.split("#osbench-audit config")[0])
    assert not facts.answered and "incomplete" in str(facts.error)


def host(name: str, kernel: str = "6.1", **packages: str) -> HostFacts:
    return HostFacts(name, kernel, packages, {}, ("dpkg",))


def test_drift_names_the_odd_host_and_both_values() -> None:
    facts = [host("a", nova="1"), host("b", nova="1"), host("c", nova="2"),
             host("d", kernel="6.2", nova="1"), HostFacts("e", error="timed out")]
    rows = drift.all_drift({"hv": ["a", "b", "c", "d", "e"]}, facts)
    assert [(d.item_type, d.item, d.majority, d.majority_hosts, d.role_hosts, d.host, d.value)
            for d in rows] == [("kernel", "kernel", "6.1", 3, 4, "d", "6.2"),
                               ("package", "nova", "1", 3, 4, "c", "2")]
    assert drift.summary(rows) == {"drifted_packages": 1, "drifted_configs": 0,
                                   "drifted_kernels": 1, "drifted_hosts": 2}


def test_a_missing_package_and_a_tie() -> None:
    rows = drift.role_drift("net", [host("a", ovs="3.1"), host("b")])
    assert [(d.majority, d.host, d.value) for d in rows] == [
        (drift.NO_MAJORITY, "a", "3.1"), (drift.NO_MAJORITY, "b", drift.ABSENT)]
    assert drift.role_drift("one", [host("a", ovs="1")]) == []  # no majority of one


def rule(**kw: object) -> dict[str, object]:
    return {"id": "r", "direction": "ingress", "ethertype": "IPv4", **kw}


def test_rules_open_only_what_reaches_the_vantage() -> None:
    exp = rules.expected([
        rule(protocol="tcp", port_range_min=80, port_range_max=80, remote_ip_prefix="0.0.0.0/0"),
        rule(protocol="tcp", port_range_min=5432, port_range_max=5432,
             remote_ip_prefix="10.1.0.0/16"),                     # not from 192.0.2.9
        rule(protocol="tcp", port_range_min=22, port_range_max=22, remote_group_id="g"),
        rule(protocol="udp", port_range_min=53, port_range_max=53),
        rule(protocol="tcp", port_range_min=81, port_range_max=90),  # merges with 80
        rule(direction="egress"), rule(ethertype="IPv6", protocol="tcp"),
        rule(protocol="icmp")], "10.0.0.5", "192.0.2.9")
    assert (exp.tcp, exp.udp) == (((80, 90),), ((53, 53),))
    assert "allows only members of group g" in exp.notes[0]
    assert rules.probe_ports(exp, (22, 80, 5432), per_range=3) == [
        ("tcp", 22, "closed"), ("tcp", 80, "open"), ("tcp", 85, "open"), ("tcp", 90, "open"),
        ("tcp", 91, "closed"), ("tcp", 5432, "closed"), ("udp", 53, "open")]


def test_any_protocol_opens_every_port_and_ipv6_is_judged_on_its_own() -> None:
    exp = rules.expected([rule(ethertype="IPv6")], "2001:db8::5", "2001:db8::9")
    assert exp.tcp == ((1, 65535),) and exp.udp == ((1, 65535),)
    assert rules.expected([rule()], "2001:db8::5", None).tcp == ()  # an IPv4 rule
    assert rules.sample_range(1, 65535, 4) == [1, 21846, 43690, 65535]
