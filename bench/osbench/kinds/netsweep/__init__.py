"""Kind `netsweep`: throughput through a network node against its NIC queue count.

The package: `params` (schema), `run` (a point of the sweep), `channels`
(`ethtool -l/-L`), `parsers` (iperf3 and netperf output), `report` and `story`.
"""

from __future__ import annotations

from osbench.kinds.base import KindSpec, MetricSpec
from osbench.kinds.netsweep.params import NetsweepParams

SPEC = KindSpec(
    name="netsweep",
    description="throughput through a network node against its NIC queue count",
    params_type=NetsweepParams,
    target="hosts",
    sample_table="runs",
    sample_columns={
        "sum_gbps": "receiver goodput summed over all streams of one run, Gb/s",
        "retransmits": "TCP retransmits summed over the run's streams",
    },
    metrics={
        "throughput_gbps": "mean over runs of the summed goodput, Gb/s",
        "throughput_gbps_min": "the worst run's summed goodput, Gb/s",
        "runs_failed": "runs in which a stream failed",
    },
    implementation="osbench.kinds.netsweep.run:NetsweepKind",
    compare=(MetricSpec("sum_gbps", "runs", "samples", "sum_gbps", lower_is_better=False,
                        default_threshold_pct=5.0),),
    report="osbench.kinds.netsweep.report:sections",
    chapters="osbench.kinds.netsweep.story:CHAPTERS",
)
