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
`host` of an inventory (`inventory`, default the local lab's) over SSH, where
the helper runs with that host's `python` and oslo.rootwrap.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from osbench import kinds
from osbench.errors import UserError
from osbench.hosts import Host, LocalHost, close_all, connect, load_inventory
from osbench.kinds import CaseContext, Kind
from osbench.rootwrap import config, probe, stats
from osbench.scenario import Case
from osbench.scenario.schema import NonNegativeInt, PositiveDuration, PositiveInt

Mode = Literal["direct", "sudo", "rootwrap", "daemon"]
MODES: tuple[Mode, ...] = ("direct", "sudo", "rootwrap", "daemon")


@dataclass(frozen=True)
class RootwrapParams:
    #: Modes to compare; `direct` is required (every ratio is against it).
    #: `sudo` is skipped, with a journaled reason, where sudo is not installed.
    modes: tuple[Mode, ...] = ("direct", "rootwrap", "daemon")
    #: Rounds of samples; each round takes one sample of every mode.
    samples: PositiveInt = 50
    #: Unjournaled calls per mode after the first one, before sampling.
    warmup: NonNegativeInt = 5
    #: The command; `{netns}` is replaced by the DHCP namespace. Default: the
    #: DHCP agent's `ip netns exec {netns} ip route list`.
    command: tuple[str, ...] = ()
    #: An existing namespace for `{netns}` (never created or removed). Default:
    #: a fresh `qdhcp-<uuid>` with one port, removed when the case ends.
    qdhcp_netns: str | None = None
    #: An existing rootwrap.conf on the machine (e.g. /etc/neutron/rootwrap.conf).
    #: Default: one generated with IpFilter and IpNetnsExecFilter, removed afterwards.
    conf: str | None = None
    #: The rootwrap command (e.g. neutron-rootwrap). Default: oslo-rootwrap
    #: beside osbench's Python here, on PATH on a host.
    wrapper: str | None = None
    daemon_wrapper: str | None = None
    #: Run on this machine inside this existing network namespace.
    netns: str | None = None
    #: Run on this host of `inventory` (default: the local lab's inventory).
    host: str | None = None
    inventory: str | None = None
    #: The Python on `host` that runs the helper (it needs oslo.rootwrap for `daemon`);
    #: default `python3`, or on a host of the local lab (a namespace of this
    #: machine) this osbench's own Python, with the wrappers beside it.
    python: str | None = None
    #: A single call taking longer than this is an error.
    timeout_s: PositiveDuration = 30.0

    def __post_init__(self) -> None:
        if "direct" not in self.modes:
            raise ValueError("modes must include 'direct': every ratio is against it")
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes lists a mode twice: {list(self.modes)!r}")
        if self.netns and self.host:
            raise ValueError("give netns (this machine) or host (an inventory's), not both")
        if self.inventory and not self.host:
            raise ValueError("inventory names hosts; say which with host")


def _mode_metrics() -> dict[str, str]:
    out: dict[str, str] = {}
    for mode in MODES:
        out[f"{mode}_p50_ms"] = f"median latency of one call in mode {mode}, ms"
        out[f"{mode}_mean_ms"] = f"mean latency of one call in mode {mode}, ms"
        out[f"{mode}_p99_ms"] = f"99th percentile latency in mode {mode}, ms"
        if mode != "direct":
            out[f"{mode}_ratio"] = f"median {mode} latency / median direct latency"
            out[f"{mode}_ratio_ci_low"] = f"lower end of {mode}_ratio's bootstrap 95 % interval"
            out[f"{mode}_ratio_ci_high"] = f"upper end of {mode}_ratio's bootstrap 95 % interval"
    return out


class RootwrapKind(Kind):
    name = "rootwrap"
    description = "latency of one privileged command: direct, sudo, rootwrap, rootwrap daemon"
    params_type = RootwrapParams
    target = "local"
    sample_table = "samples"
    sample_columns: ClassVar[Mapping[str, str]] = {
        "latency_ms": "one call of the command in one mode, ms (filter with the mode column)",
    }
    metrics: ClassVar[Mapping[str, str]] = {
        **_mode_metrics(),
        "daemon_startup_ms": "first call through the daemon client, daemon start-up included, ms",
        "output_mismatches": "calls whose output differed from the first call's (not samples)",
        "samples_total": "samples journaled over all modes",
    }

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
        from osbench.hosts.target import lab_inventory

        inventory = load_inventory(p.inventory or lab_inventory())
        if p.host not in inventory.hosts:
            raise UserError(f"{inventory.file}: no host {p.host!r}",
                            hint=f"hosts: {', '.join(sorted(inventory.hosts))}")
        hosts = connect(inventory)

        async def close() -> None:
            await close_all(hosts)

        ctx.add_cleanup(close, f"close connections to {inventory.file}")
        return hosts[p.host], False

    def _summarise(self, ctx: CaseContext, latencies: Mapping[str, list[float]],
                   seed: int) -> None:
        """One `modes` row per mode: summary, and median ratio to direct with its
        bootstrap interval (seed recorded, so it can be recomputed from `samples`)."""
        direct = np.asarray(latencies["direct"])
        for k, (mode, values_ms) in enumerate(latencies.items()):
            values = np.asarray(values_ms)
            summary = stats.summarize(values).as_dict()
            ratio = (stats.median_ratio(values, direct, seed=seed + k) if mode != "direct"
                     else stats.Ratio(1.0, 1.0, 1.0))
            ctx.record("modes", {"mode": mode, **summary, "ratio": ratio.ratio,
                                 "ratio_ci_low": ratio.ci_low, "ratio_ci_high": ratio.ci_high,
                                 "bootstrap_seed": seed + k})

    def compute_metrics(self, tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
        out = {name: float("nan") for name in self.metrics}
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


ROOTWRAP = kinds.register(RootwrapKind())
