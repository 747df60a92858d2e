"""Where the firewall probes start: this machine (`harness`), a network namespace
of it (`netns:NAME`, e.g. one on a provider network playing "the Internet"), or
a host of an inventory (`host:NAME`, over SSH).

The harness probes in-process. A namespace or a host runs the probe module's
own source as a helper (`python -c SOURCE routes|probe PAYLOAD`): once to learn
the source address it would use towards each instance (which remote prefixes
the rules must match), once for the probes. Each helper run is bounded by the
probes' own budget plus a grace, and a helper that fails is a HostError naming
the vantage.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Protocol as TypingProtocol

from osbench.errors import HostError, UserError
from osbench.hosts import Host, LocalHost
from osbench.kinds.audit import probe
from osbench.scenario.schema import did_you_mean

#: What runs at a namespace or host vantage: the probe module's own source (stdlib only).
HELPER_SOURCE = Path(probe.__file__).read_text()
#: Added to the helper's time bound: Python's start-up and the SSH round trips.
GRACE_S = 30.0


class Vantage(TypingProtocol):
    name: str

    async def routes(self, addresses: Sequence[str]) -> dict[str, str | None]:
        """Address -> the source address used towards it, None: no route."""
        ...

    async def run(self, probes: Sequence[probe.Probe], bounds: probe.Bounds,
                  on_outcome: Callable[[probe.Outcome], None]) -> list[probe.Outcome]:
        ...


class Harness:
    """This machine, in-process: outcomes journaled as they come."""

    name = "harness"

    async def routes(self, addresses: Sequence[str]) -> dict[str, str | None]:
        return {a: probe.route_source(a) for a in addresses}

    async def run(self, probes: Sequence[probe.Probe], bounds: probe.Bounds,
                  on_outcome: Callable[[probe.Outcome], None]) -> list[probe.Outcome]:
        outcomes = await probe.run(probes, bounds, on_outcome=on_outcome)
        for outcome in outcomes:
            if outcome.seen == "not_run":
                on_outcome(outcome)
        return outcomes


class Helper:
    """A namespace or a host: the helper runs there with `python`."""

    def __init__(self, name: str, host: Host, python: str) -> None:
        self.name = name
        self.host = host
        self.python = python

    async def _lines(self, mode: str, payload: object, timeout_s: float) -> list[dict[
            str, object]]:
        result = await self.host.run([self.python, "-c", HELPER_SOURCE, mode,
                                      probe.encode(payload)], timeout_s=timeout_s)
        try:
            return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        except json.JSONDecodeError:
            raise HostError(f"the probe helper printed something else than JSON lines: "
                            f"{result.stdout[:200]!r}", host=self.host.name) from None

    async def routes(self, addresses: Sequence[str]) -> dict[str, str | None]:
        lines = await self._lines("routes", list(addresses), GRACE_S)
        return {str(d["address"]): (None if d["source"] is None else str(d["source"]))
                for d in lines}

    async def run(self, probes: Sequence[probe.Probe], bounds: probe.Bounds,
                  on_outcome: Callable[[probe.Outcome], None]) -> list[probe.Outcome]:
        payload = {"probes": [asdict(p) for p in probes], "bounds": asdict(bounds)}
        lines = await self._lines("probe", payload, bounds.budget_s + GRACE_S)
        outcomes = [probe.outcome_from(d) for d in lines]
        for outcome in outcomes:  # journaled in the order they were seen
            on_outcome(outcome)
        order = {p: i for i, p in enumerate(probes)}
        return sorted(outcomes, key=lambda o: order.get(o.probe, len(order)))


def open_vantage(spec: str, hosts: dict[str, Host] | None, python: str | None) -> Vantage:
    """The vantage `spec` names; `hosts` the inventory's, for `host:NAME`."""
    if spec == "harness":
        return Harness()
    kind, _, name = spec.partition(":")
    if kind == "netns":
        # A namespace of this machine: osbench's own Python works there.
        return Helper(spec, LocalHost(name, netns=name), python or sys.executable)
    if hosts is None or name not in hosts:
        known = sorted(hosts or ())
        raise UserError(f"params.firewall.vantage: no host {name!r} in the inventory",
                        hint=did_you_mean(name, known) or f"hosts: {', '.join(known)}")
    return Helper(spec, hosts[name], python or "python3")
