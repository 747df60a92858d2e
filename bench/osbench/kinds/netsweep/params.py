"""The netsweep kind's parameters: the schema, with light imports only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from osbench.kinds.netsweep import channels
from osbench.scenario.schema import Duration, PositiveDuration, PositiveInt


@dataclass(frozen=True)
class NetsweepParams:
    #: Channels in use on each of the network node's interfaces (swept: 1, 2, 4, 8).
    queues: PositiveInt
    #: A label for the configuration under test (e.g. the kernel), so two
    #: variants are compared side by side.
    variant: str = "default"
    tool: Literal["iperf3", "netperf"] = "iperf3"
    #: Client processes per target; the field test ran one stream to each of six VMs.
    streams_per_target: PositiveInt = 1
    #: How many targets of the inventory to use (default: all).
    targets: PositiveInt | None = None
    duration_s: PositiveDuration = 10.0
    #: Consecutive runs per point; the field figures are the mean of ten.
    runs: PositiveInt = 3
    #: iperf3 `-O`: seconds of TCP slow start left out of the result.
    omit_s: Duration = 0.0
    channel_mode: channels.ChannelMode = "auto"
    #: Pause after changing queues, before traffic.
    settle_s: Duration = 1.0
    #: Commands run on the network node before the point, and after it.
    setup: tuple[str, ...] = ()
    teardown: tuple[str, ...] = ()
