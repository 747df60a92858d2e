"""Kind `rootwrap`: one command run directly, through sudo, rootwrap and its daemon.

The package: `params` (schema), `run` (a case), `probe` + `helper` (the timed
calls, on this machine or a host), `config` (a generated rootwrap.conf),
`report` and `story`.
"""

from __future__ import annotations

from osbench.kinds.base import KindSpec, MetricSpec
from osbench.kinds.rootwrap.params import MODES, RootwrapParams


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


SPEC = KindSpec(
    name="rootwrap",
    description="latency of one privileged command: direct, sudo, rootwrap, rootwrap daemon",
    params_type=RootwrapParams,
    target="local",
    sample_table="samples",
    sample_columns={
        "latency_ms": "one call of the command in one mode, ms (filter with the mode column)",
    },
    metrics={
        **_mode_metrics(),
        "daemon_startup_ms": "first call through the daemon client, daemon start-up included, ms",
        "output_mismatches": "calls whose output differed from the first call's (not samples)",
        "samples_total": "samples journaled over all modes",
    },
    implementation="osbench.kinds.rootwrap.run:RootwrapKind",
    compare=(MetricSpec("latency_ms", "samples", "samples", "latency_ms", split_by="mode"),),
    report="osbench.kinds.rootwrap.report:sections",
    chapters="osbench.kinds.rootwrap.story:CHAPTERS",
)
