"""Parsers for traffic generators' output: iperf3 `-J` and netperf `-P 0 ... -o`.

Both return one StreamResult per client process: receiver-side goodput (what
the field notes sum across streams), retransmits when the tool reports them,
and the per-interval series when there is one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class ToolOutputError(ValueError):
    """The tool reported a failure or printed something we cannot read."""


@dataclass(frozen=True)
class StreamResult:
    """One traffic-generator run (which may itself carry parallel streams)."""

    tool: str
    bits_per_second: float
    retransmits: int | None
    duration_s: float
    #: Goodput of each reporting interval, omitted (warm-up) intervals left out.
    interval_bps: tuple[float, ...] = ()
    streams: int = 1


def parse_iperf3(text: str) -> StreamResult:
    """iperf3 `-J` output. Checks the top-level `error` first: iperf3 prints JSON,
    and may exit 0, when the test failed."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolOutputError(f"iperf3 printed no JSON: {exc}; output starts {text[:80]!r}"
                              ) from None
    if not isinstance(doc, dict):
        raise ToolOutputError("iperf3 JSON is not an object")
    if doc.get("error"):
        raise ToolOutputError(f"iperf3: {doc['error']}")
    end: dict[str, Any] = doc.get("end") or {}
    received = end.get("sum_received")
    if not isinstance(received, dict) or "bits_per_second" not in received:
        raise ToolOutputError("iperf3 JSON has no end.sum_received (a UDP test, or cut short)")
    sent = end.get("sum_sent") or {}
    retransmits = sent.get("retransmits")  # absent when the sender lacks tcp_info
    intervals = tuple(
        float(i["sum"]["bits_per_second"]) for i in doc.get("intervals", [])
        if isinstance(i.get("sum"), dict) and not i["sum"].get("omitted")
    )
    start = doc.get("start", {}).get("test_start", {})
    return StreamResult(
        tool="iperf3",
        bits_per_second=float(received["bits_per_second"]),
        retransmits=int(retransmits) if retransmits is not None else None,
        duration_s=float(received.get("seconds", start.get("duration", 0.0))),
        interval_bps=intervals,
        streams=int(start.get("num_streams", 1)),
    )


#: netperf's THROUGHPUT_UNITS, in bits per second.
_NETPERF_UNITS = {
    "bits/s": 1.0,
    "10^3bits/s": 1e3,
    "10^6bits/s": 1e6,
    "10^9bits/s": 1e9,
    "KBytes/s": 8 * 1024.0,
    "MBytes/s": 8 * 1024.0**2,
    "GBytes/s": 8 * 1024.0**3,
}

#: The output selectors osbench asks netperf for, in this order.
NETPERF_SELECTORS = ("THROUGHPUT", "THROUGHPUT_UNITS", "LOCAL_TRANSPORT_RETRANS",
                     "ELAPSED_TIME")


def netperf_argv(host: str, duration_s: float, port: int | None = None) -> list[str]:
    """`netperf -P 0 -t TCP_STREAM -H HOST -l D -- -o SELECTORS` (one CSV line)."""
    argv = ["netperf", "-P", "0", "-t", "TCP_STREAM", "-H", host, "-l", f"{duration_s:g}"]
    if port is not None:
        argv += ["-p", str(port)]
    return [*argv, "--", "-o", ",".join(NETPERF_SELECTORS)]


def parse_netperf(text: str, selectors: Sequence[str] = NETPERF_SELECTORS) -> StreamResult:
    """netperf output with `-o` (one CSV line, values in selector order) or `-k`
    (KEY=VALUE lines)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise ToolOutputError("netperf printed nothing")
    if all("=" in ln for ln in lines):
        values = dict(ln.split("=", 1) for ln in lines)
    else:
        fields = lines[-1].split(",")
        if len(fields) != len(selectors):
            raise ToolOutputError(f"netperf: expected {len(selectors)} values "
                                  f"({','.join(selectors)}), got {lines[-1]!r}")
        values = dict(zip(selectors, fields, strict=True))
    units = values.get("THROUGHPUT_UNITS", "10^6bits/s")
    if units not in _NETPERF_UNITS:
        raise ToolOutputError(f"netperf: unknown THROUGHPUT_UNITS {units!r}; "
                              f"known: {', '.join(_NETPERF_UNITS)}")
    scale = _NETPERF_UNITS[units]
    try:
        throughput = float(values["THROUGHPUT"])
        retrans = values.get("LOCAL_TRANSPORT_RETRANS")
        elapsed = float(values.get("ELAPSED_TIME", "nan"))
    except KeyError as exc:
        raise ToolOutputError(f"netperf: no {exc.args[0]} in {values}") from None
    except ValueError as exc:
        raise ToolOutputError(f"netperf: {exc} in {values}") from None
    return StreamResult(
        tool="netperf",
        bits_per_second=throughput * scale,
        # netperf prints -1 when the platform cannot say
        retransmits=int(float(retrans)) if retrans not in (None, "", "-1") else None,
        duration_s=elapsed,
    )
