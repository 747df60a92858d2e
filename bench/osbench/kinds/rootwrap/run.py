"""Kind `rootwrap`: one command run directly, through sudo, rootwrap and its daemon.

Field notes section 2: the DHCP agent runs `ip netns exec qdhcp-<uuid> ip
route list` once per port through `neutron-rootwrap`, which took 0.713 s
instead of 0.048 s; the rootwrap daemon fixed the 200-instance boots. One case
measures, on one machine, every mode's latency for the same real command:
start-up (first call; for the daemon it includes starting it), `warmup`
calls per mode, then `samples` rounds visiting every mode (rotating the
order), every sample journaled. At the end each mode is summarised and its
median compared with `direct` (bootstrap 95 % interval, seeded by the case).

Where it runs: this machine by default; inside the namespace `netns`; or on
`host` of an inventory (`inventory`, else --hosts FILE, else the local lab's)
over SSH, where the helper runs with that host's `python` and oslo.rootwrap.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from osbench import stats
from osbench.errors import UserError
from osbench.hosts import Host, LocalHost
from osbench.kinds import CaseContext, Kind
from osbench.kinds.rootwrap import SPEC, config, probe
from osbench.kinds.rootwrap.params import RootwrapParams
from osbench.scenario import Case


class RootwrapKind(Kind):
    """Runs rootwrap cases (the spec is `osbench.kinds.rootwrap.SPEC`)."""

    def plan(self, case: Case) -> list[str]:
        p: RootwrapParams = case.params
        where = (f"on host {p.host}" if p.host else
                 f"in namespace {p.netns}" if p.netns else "on this machine")
        ns = p.qdhcp_netns or "qdhcp-<uuid>"
        steps = [] if p.qdhcp_netns else [f"{where}: ip netns add {ns} (one veth port); "
                                          "removed afterwards"]
        if not p.conf:
            steps.append(f"{where}: write a rootwrap.conf and filters to a temporary "
                         "folder; removed afterwards")
        steps.append(f"{where}: {' '.join(probe.format_command(p.command, ns))} "
                     f"{1 + p.warmup + p.samples} time(s) in each of {', '.join(p.modes)}")
        return steps

    async def run_case(self, case: Case, ctx: CaseContext) -> None:
        p: RootwrapParams = case.params
        host, here = await self._where(p, ctx)
        modes = list(p.modes)
        if "sudo" in modes and not await probe.has_sudo(host):
            modes.remove("sudo")
            ctx.record("skipped", {"mode": "sudo", "reason": f"sudo is not installed on "
                                                            f"{host.name}"})
        netns = p.qdhcp_netns
        if netns is None:
            # Namespace names are per machine: inside `ip netns exec` (its own
            # mount namespace) `ip netns add` would not be seen outside it.
            ns_host: Host = LocalHost() if isinstance(host, LocalHost) else host
            netns = probe.qdhcp_name()
            await probe.add_namespace(ns_host, netns)
            created = netns

            async def remove() -> None:
                await probe.remove_namespace(ns_host, created)

            ctx.add_cleanup(remove, f"remove namespace {created} on {ns_host.name}")
            await probe.add_port(ns_host, netns)
        ctx.record("namespaces", {"name": netns, "created": p.qdhcp_netns is None,
                                  "host": host.name})
        spec = probe.ProbeSpec(
            modes=tuple(modes), command=probe.format_command(p.command, netns),
            samples=p.samples, warmup=p.warmup, timeout_s=p.timeout_s, conf=p.conf,
            wrapper=p.wrapper, daemon_wrapper=p.daemon_wrapper)
        total = p.samples * len(modes)
        latencies: dict[str, list[float]] = {m: [] for m in modes}

        def on_sample(row: probe.Sample) -> None:
            ctx.record("samples", row)
            latencies[row["mode"]].append(float(row["latency_ms"]))
            ctx.progress(samples=sum(map(len, latencies.values())), of=total)

        if here:
            if not p.conf:
                generated = config.generate()

                async def remove_conf() -> None:
                    generated.remove()

                ctx.add_cleanup(remove_conf, f"remove {generated.directory}")
                spec = replace(spec, conf=str(generated.conf))
            spec = replace(spec, wrapper=p.wrapper or config.default_wrapper(),
                            daemon_wrapper=p.daemon_wrapper
                            or config.default_wrapper("oslo-rootwrap-daemon"))
            result = await probe.run_here(spec, on_sample, host_name=host.name)
        else:
            # The local lab's hosts are namespaces of this machine: its Python works there.
            local_python = isinstance(host, LocalHost) or p.inventory is None
            spec = replace(
                spec, generate_conf=not p.conf,
                wrapper=p.wrapper or (config.default_wrapper() if local_python
                                      else "oslo-rootwrap"),
                daemon_wrapper=p.daemon_wrapper or (
                    config.default_wrapper("oslo-rootwrap-daemon") if local_python
                    else "oslo-rootwrap-daemon"))
            python = p.python or (_local_python() if local_python else "python3")
            result = await probe.run_on_host(host, spec, python, on_sample)
        for row in result.startup:
            ctx.record("startup", row)
        for row in result.mismatches:
            ctx.record("errors", {"error": "output_mismatch", **row,
                                  "expected": (result.reference or "")[:2000]})
        ctx.record("output", {"reference": result.reference})
        self._summarise(ctx, latencies, ctx.seed)

    async def _where(self, p: RootwrapParams, ctx: CaseContext) -> tuple[Host, bool]:
        if not p.host:
            return LocalHost("local", netns=p.netns), True
        from osbench.hosts.target import connect_for_case

        inventory, hosts = connect_for_case(ctx, p.inventory)
        if p.host not in inventory.hosts:
            raise UserError(f"{inventory.file}: no host {p.host!r}",
                            hint=f"hosts: {', '.join(sorted(inventory.hosts))}")
        return hosts[p.host], False

    def _summarise(self, ctx: CaseContext, latencies: Mapping[str, list[float]],
                   seed: int) -> None:
        """One `modes` row per mode: summary, and median ratio to direct with its
        bootstrap interval (seed recorded, so it can be recomputed from `samples`)."""
        direct = np.asarray(latencies["direct"])
        for k, (mode, values_ms) in enumerate(latencies.items()):
            values = np.asarray(values_ms)
            summary = stats.summarize(values).as_dict(unit_suffix="_ms")
            ratio = (stats.median_ratio(values, direct, seed=seed + k) if mode != "direct"
                     else stats.Ratio(1.0, 1.0, 1.0))
            ctx.record("modes", {"mode": mode, **summary, "ratio": ratio.ratio,
                                 "ratio_ci_low": ratio.ci_low, "ratio_ci_high": ratio.ci_high,
                                 "bootstrap_seed": seed + k})

    def compute_metrics(self, tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
        out = {name: float("nan") for name in SPEC.metrics}
        for _, row in tables.get("modes", pd.DataFrame()).iterrows():
            mode = row["mode"]
            out[f"{mode}_p50_ms"] = float(row["p50_ms"])
            out[f"{mode}_mean_ms"] = float(row["mean_ms"])
            out[f"{mode}_p99_ms"] = float(row["p99_ms"])
            if mode != "direct":
                out[f"{mode}_ratio"] = float(row["ratio"])
                out[f"{mode}_ratio_ci_low"] = float(row["ratio_ci_low"])
                out[f"{mode}_ratio_ci_high"] = float(row["ratio_ci_high"])
        startup = tables.get("startup", pd.DataFrame())
        if not startup.empty:
            daemon = startup[startup["mode"] == "daemon"]["first_call_ms"]
            if len(daemon):
                out["daemon_startup_ms"] = float(daemon.iloc[0])
        out["output_mismatches"] = float(len(tables.get("errors", pd.DataFrame())))
        out["samples_total"] = float(len(tables.get("samples", pd.DataFrame())))
        return out


def _local_python() -> str:
    return sys.executable or shutil.which("python3") or "python3"

