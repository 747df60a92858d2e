"""The probe engine against real listeners in network namespaces that play
instances: one filtered like Neutron's firewall (ingress dropped but 8080), one
with no filter at all (the incident: rules gone). Fed what the rules expect, it
finds the exposed ports of the unfiltered one (a listening 6379: open; 22:
refused, so the packet reached it), the open port the filter drops (9090), and
nothing wrong where the filter matches the rules. An address this machine has
no route to is `no_route`, not an unreachable open port.

Needs root (namespaces, iptables); run under `flock /tmp/osbench-ns.lock`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator

import pytest

from osbench.errors import UserError
from osbench.hosts import LocalHost
from osbench.kinds.audit import probe, vantage
from tests.audit.netns_instances import FakeInstance, Spec, instances

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, iptables)")

#: An address with an `unreachable` route: the kernel refuses it at once, no
#: packet leaves this machine.
NOWHERE = "198.19.241.1"


@pytest.fixture(scope="module")
def fakes() -> Iterator[list[FakeInstance]]:
    subprocess.run(["ip", "route", "add", "unreachable", f"{NOWHERE}/32"], capture_output=True)
    try:
        with instances([
            Spec((8080, 3306), (5353,), allowed=(8080,)),  # enforced: only 8080 gets in
            Spec((8080, 6379), (5353,)),                   # no filter at all
        ]) as made:
            yield made
    finally:
        subprocess.run(["ip", "route", "del", "unreachable", f"{NOWHERE}/32"],
                       capture_output=True)


def probes_for(name: str, address: str) -> list[probe.Probe]:
    """What rules opening tcp 8080 and 9090 and udp 5353 expect, plus the closed sample."""
    opened = [probe.Probe(name, address, "tcp", p, "open") for p in (8080, 9090)]
    closed = [probe.Probe(name, address, "tcp", p, "closed") for p in (22, 3306, 6379)]
    return [*opened, *closed, probe.Probe(name, address, "udp", 5353, "open")]


def test_exposed_and_unreachable_open_ports_are_found(fakes: list[FakeInstance]) -> None:
    enforced, bare = fakes
    probes = [*probes_for("enforced", enforced.address), *probes_for("bare", bare.address),
              probe.Probe("nowhere", NOWHERE, "tcp", 8080, "open")]
    seen: list[probe.Outcome] = []
    bounds = probe.Bounds(rate_per_s=500, concurrency=16, connect_timeout_s=1.0, budget_s=20)
    outcomes = asyncio.run(probe.run(probes, bounds, on_outcome=seen.append))
    assert len(seen) == len(outcomes) == len(probes)  # each journaled as it came
    got = {(o.probe.instance, o.probe.protocol, o.probe.port): (o.seen, o.finding)
           for o in outcomes}
    assert got == {
        ("enforced", "tcp", 8080): ("open", "ok"),
        ("enforced", "tcp", 9090): ("filtered", "unreachable_open"),
        ("enforced", "tcp", 22): ("filtered", "ok"),
        ("enforced", "tcp", 3306): ("filtered", "ok"),       # listening, but dropped
        ("enforced", "tcp", 6379): ("filtered", "ok"),
        ("enforced", "udp", 5353): ("filtered", "inconclusive"),  # UDP silence proves nothing
        ("bare", "tcp", 8080): ("open", "ok"),
        ("bare", "tcp", 9090): ("refused", "ok"),            # reached the instance
        ("bare", "tcp", 22): ("refused", "exposed"),
        ("bare", "tcp", 3306): ("refused", "exposed"),
        ("bare", "tcp", 6379): ("open", "exposed"),
        ("bare", "udp", 5353): ("open", "ok"),
        ("nowhere", "tcp", 8080): ("no_route", "inconclusive"),
    }
    assert probe.route_source(NOWHERE) is None
    assert probe.route_source(enforced.address) == enforced.gateway


def test_the_budget_bounds_the_whole_phase(fakes: list[FakeInstance]) -> None:
    enforced, _ = fakes
    # 40 probes into a drop at 5 s each, two at a time, would take 100 s; the budget
    # stops them after 0.3 s and the rest are `not_run`, not missing.
    probes = [probe.Probe("enforced", enforced.address, "tcp", 20000 + i, "closed")
              for i in range(40)]
    bounds = probe.Bounds(rate_per_s=1000, concurrency=2, connect_timeout_s=5.0, budget_s=0.3)
    outcomes = asyncio.run(probe.run(probes, bounds))
    assert len(outcomes) == 40
    assert {o.seen for o in outcomes} == {"not_run"}


def test_a_namespace_vantage_runs_the_helper_there(fakes: list[FakeInstance]) -> None:
    """From inside the unfiltered instance's namespace (a vantage like minicloud's
    "Internet" namespace): its own address answers, the other namespace has no
    route from there, and what the helper saw comes back as outcomes."""
    enforced, bare = fakes
    where = vantage.open_vantage(f"netns:{bare.netns}", None, None)
    routes = asyncio.run(where.routes([bare.address, enforced.address]))
    assert routes == {bare.address: bare.address, enforced.address: None}
    probes = [probe.Probe("bare", bare.address, "tcp", 6379, "closed"),
              probe.Probe("bare", bare.address, "tcp", 22, "closed"),
              probe.Probe("bare", bare.address, "udp", 5353, "open")]
    seen: list[probe.Outcome] = []
    bounds = probe.Bounds(rate_per_s=100, concurrency=4, connect_timeout_s=1.0, budget_s=10)
    outcomes = asyncio.run(where.run(probes, bounds, seen.append))
    assert [(o.probe.port, o.seen, o.finding) for o in outcomes] == [
        (6379, "open", "exposed"), (22, "refused", "exposed"), (5353, "open", "ok")]
    assert len(seen) == 3 and set(seen) == set(outcomes)  # seen in the order they came


def test_a_vantage_host_missing_from_the_inventory_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"no host 'netnod' in the inventory \(did you mean "
                                        r"'netnode'\?"):
        vantage.open_vantage("host:netnod", {"netnode": LocalHost("netnode")}, None)
