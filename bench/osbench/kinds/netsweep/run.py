"""Kind `netsweep`: throughput through a network node against its queue count.

One case is one point of the sweep (one queue count, one variant): keep the
network node's original channel settings, set the queue count with
`ethtool -L` and verify it, then `runs` times run parallel streams from the
clients to the targets for `duration_s`, and sum receiver goodput. The
original settings are restored however the case ends, and read back.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any

import pandas as pd

from osbench.errors import HostError, UserError
from osbench.kinds import CaseContext, Kind
from osbench.kinds.netsweep import channels
from osbench.kinds.netsweep.params import NetsweepParams
from osbench.kinds.netsweep.parsers import (
    ToolOutputError,
    netperf_argv,
    parse_iperf3,
    parse_netperf,
)
from osbench.scenario import Case


class NetsweepKind(Kind):
    """Runs netsweep cases (the spec is `osbench.kinds.netsweep.SPEC`)."""

    def plan(self, case: Case) -> list[str]:
        p: NetsweepParams = case.params
        return [
            *(f"on the network node: {c}" for c in p.setup),
            f"on the network node: ethtool -L <interfaces> to {p.queues} queue(s) "
            f"({p.channel_mode}); restored afterwards",
            f"{p.runs} run(s) of {p.streams_per_target} {p.tool} stream(s) per target for "
            f"{p.duration_s:g} s",
            *(f"on the network node: {c}" for c in p.teardown),
        ]

    async def run_case(self, case: Case, ctx: CaseContext) -> None:
        p: NetsweepParams = case.params
        target: Any = ctx.target
        inventory, hosts = target.inventory, target.hosts
        node = _one(inventory.by_role("network_node"), "network_node", inventory.file)
        clients = inventory.by_role("client")
        targets = inventory.by_role("target")[: p.targets]
        if not clients or not targets:
            raise UserError(f"{inventory.file}: the sweep needs hosts with roles client and "
                            "target")
        if not node.interfaces:
            raise UserError(f"{inventory.file}: network node {node.name!r} lists no "
                            "interfaces", hint="add `interfaces: [eth3]` to it")
        node_host = hosts[node.name]
        def record(event: str, interface: str, value: channels.Channels) -> None:
            ctx.record("channels", {"event": event, "host": node.name, "interface": interface,
                                    "variant": p.variant, **value.as_dict()})

        originals = {i: (await channels.read(node_host, i)).current for i in node.interfaces}
        for interface, original in originals.items():
            record("original", interface, original)

        async def restore() -> None:
            for interface, original in originals.items():
                record("restored", interface,
                       await channels.restore(node_host, interface, original))

        ctx.add_cleanup(restore, f"restore channels on {node.name}")
        for command in p.setup:
            await node_host.run(["sh", "-c", command], timeout_s=120)
        if p.teardown:
            async def teardown() -> None:
                for command in p.teardown:
                    await node_host.run(["sh", "-c", command], timeout_s=120)
            ctx.add_cleanup(teardown, f"teardown on {node.name}")
        for interface in node.interfaces:
            info = await channels.set_queues(node_host, interface, p.channel_mode, p.queues)
            record("set", interface, info.current)
        await ctx.clock.sleep(p.settle_s)
        streams = _streams(clients, targets, p)
        for run in range(1, p.runs + 1):
            ctx.progress(run=run, runs=p.runs, streams=len(streams))
            await self._run_once(ctx, hosts, streams, p, run)

    async def _run_once(self, ctx: CaseContext, hosts: Mapping[str, Any],
                        streams: list[tuple[Any, Any, int]], p: NetsweepParams,
                        run: int) -> None:
        started = ctx.clock.monotonic()

        async def one(client: Any, target: Any, port: int) -> dict[str, Any]:
            address = target.data_address or target.address
            argv = (["iperf3", "-c", address, "-p", str(port), "-t", f"{p.duration_s:g}",
                     "-O", f"{p.omit_s:g}", "-J"] if p.tool == "iperf3"
                    else netperf_argv(address, p.duration_s, port))
            row: dict[str, Any] = {"run": run, "client": client.name, "target": target.name,
                                   "port": port}
            try:
                result = await hosts[client.name].run(
                    argv, timeout_s=p.duration_s + p.omit_s + 30, check=False)
                parsed = (parse_iperf3 if p.tool == "iperf3" else parse_netperf)(
                    result.stdout)
            except (HostError, ToolOutputError) as exc:
                return row | {"ok": False, "error": str(exc)}
            return row | {"ok": True, "gbps": parsed.bits_per_second / 1e9,
                          "retransmits": parsed.retransmits, "duration_s": parsed.duration_s}

        rows = await asyncio.gather(*(one(c, t, port) for c, t, port in streams))
        for row in rows:
            ctx.record("streams", {"variant": p.variant, "queues": p.queues, **row})
        ok = [r for r in rows if r["ok"]]
        retrans = [r["retransmits"] for r in ok if r["retransmits"] is not None]
        ctx.record("runs", {
            "variant": p.variant, "queues": p.queues, "run": run, "streams": len(rows),
            "streams_failed": len(rows) - len(ok),
            "sum_gbps": sum(r["gbps"] for r in ok) if len(ok) == len(rows) else None,
            "retransmits": sum(retrans) if retrans else None,
            "wall_s": ctx.clock.monotonic() - started,
        })

    def compute_metrics(self, tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
        runs = tables.get("runs", pd.DataFrame())
        if runs.empty:
            return {"throughput_gbps": float("nan"), "throughput_gbps_min": float("nan"),
                    "runs_failed": 0.0}
        good = pd.to_numeric(runs["sum_gbps"], errors="coerce").dropna()
        return {
            "throughput_gbps": float(good.mean()) if len(good) else float("nan"),
            "throughput_gbps_min": float(good.min()) if len(good) else float("nan"),
            "runs_failed": float((runs["streams_failed"] > 0).sum()),
        }


def _one(specs: list[Any], role: str, file: str) -> Any:
    if len(specs) != 1:
        raise UserError(f"{file}: expected exactly one host with role {role}, found "
                        f"{len(specs)}")
    return specs[0]


def _streams(clients: list[Any], targets: list[Any],
             p: NetsweepParams) -> list[tuple[Any, Any, int]]:
    """(client, target, port) per stream: clients round-robin, one server port per
    stream on each target (an iperf3 server runs one test at a time)."""
    out = []
    client_cycle = itertools.cycle(clients)
    for target in targets:
        ports = tuple(getattr(target, "iperf3_ports", ()) or ())
        if p.tool == "iperf3" and len(ports) < p.streams_per_target:
            raise UserError(f"target {target.name!r} has {len(ports)} iperf3 port(s); "
                            f"{p.streams_per_target} stream(s) per target need as many",
                            hint="list more under iperf3_ports in the inventory")
        for k in range(p.streams_per_target):
            port = ports[k] if ports else 12865  # netserver's default port
            out.append((next(client_cycle), target, port))
    return out

