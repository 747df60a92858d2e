"""Parsers on real recorded iperf3 output and on netperf's documented formats.

The iperf3 files were recorded on this project's machines (iperf 3.12,
loopback): `iperf3 -c 127.0.0.1 -p P -t 1 -i 0.25 -J`, the same with
`-t 2 -O 1 -P 2 -i 0.5`, and a client run with no server listening.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osbench.kinds.netsweep.parsers import (
    ToolOutputError,
    netperf_argv,
    parse_iperf3,
    parse_netperf,
)

DATA = Path(__file__).parent / "data"


def test_iperf3_goodput_is_end_sum_received() -> None:
    text = (DATA / "iperf3-ok.json").read_text()
    doc = json.loads(text)
    result = parse_iperf3(text)
    assert result.bits_per_second == doc["end"]["sum_received"]["bits_per_second"]
    assert result.bits_per_second > 1e9
    assert result.retransmits == doc["end"]["sum_sent"]["retransmits"]
    assert len(result.interval_bps) == 4
    assert result.streams == 1


def test_iperf3_omitted_intervals_are_left_out() -> None:
    text = (DATA / "iperf3-p2-omit.json").read_text()
    doc = json.loads(text)
    result = parse_iperf3(text)
    kept = [i["sum"]["bits_per_second"] for i in doc["intervals"] if not i["sum"]["omitted"]]
    assert result.interval_bps == tuple(kept)
    assert len(kept) == 4 and len(doc["intervals"]) == 6
    assert result.streams == 2


def test_iperf3_error_key_is_checked_first() -> None:
    with pytest.raises(ToolOutputError, match="iperf3: unable to connect to server: "
                                              "Connection refused"):
        parse_iperf3((DATA / "iperf3-refused.json").read_text())


def test_iperf3_without_retransmits_field() -> None:
    doc = json.loads((DATA / "iperf3-ok.json").read_text())
    del doc["end"]["sum_sent"]["retransmits"]
    assert parse_iperf3(json.dumps(doc)).retransmits is None


@pytest.mark.parametrize("text", ["", "iperf3: error - unable to connect", "[1, 2]", "{}"])
def test_iperf3_garbage_is_a_clear_error(text: str) -> None:
    with pytest.raises(ToolOutputError):
        parse_iperf3(text)


def test_netperf_csv_line_in_selector_order() -> None:
    # `netperf -P 0 -t TCP_STREAM -H h -l 30 -- -o THROUGHPUT,THROUGHPUT_UNITS,
    # LOCAL_TRANSPORT_RETRANS,ELAPSED_TIME` prints one line in that order.
    result = parse_netperf("9386.11,10^6bits/s,17,30.00\n")
    assert result.bits_per_second == pytest.approx(9386.11e6)
    assert result.retransmits == 17
    assert result.duration_s == 30.0


def test_netperf_keyval_output() -> None:
    text = ("THROUGHPUT=2.35\nTHROUGHPUT_UNITS=10^9bits/s\nLOCAL_TRANSPORT_RETRANS=-1\n"
            "ELAPSED_TIME=10.00\n")
    result = parse_netperf(text)
    assert result.bits_per_second == pytest.approx(2.35e9)
    assert result.retransmits is None


@pytest.mark.parametrize(("text", "message"), [
    ("", "printed nothing"),
    ("1,2,3\n", "expected 4 values"),
    ("12.5,furlongs/s,0,1.0\n", "unknown THROUGHPUT_UNITS 'furlongs/s'"),
])
def test_netperf_bad_output(text: str, message: str) -> None:
    with pytest.raises(ToolOutputError, match=message):
        parse_netperf(text)


def test_netperf_argv() -> None:
    assert netperf_argv("198.18.1.2", 30) == [
        "netperf", "-P", "0", "-t", "TCP_STREAM", "-H", "198.18.1.2", "-l", "30", "--", "-o",
        "THROUGHPUT,THROUGHPUT_UNITS,LOCAL_TRANSPORT_RETRANS,ELAPSED_TIME"]


def test_ethtool_l_on_veth() -> None:
    from osbench.kinds.netsweep.channels import Channels, parse_ethtool_l

    info = parse_ethtool_l((DATA / "ethtool-l-veth.txt").read_text())
    assert info.maximum == Channels(rx=8, tx=8, other=None, combined=None)
    assert info.current == Channels(rx=2, tx=3, other=None, combined=None)
    assert info.mode("auto") == "rxtx"
    assert info.queues("rxtx") is None  # rx != tx: not one queue count


def test_ethtool_l_on_virtio_combined() -> None:
    from osbench.kinds.netsweep.channels import parse_ethtool_l, restore_argv

    # virtio-net with `<driver name='vhost' queues='8'/>`, as on the field's network node.
    text = ("Channel parameters for eth3:\nPre-set maximums:\nRX:\t\tn/a\nTX:\t\tn/a\n"
            "Other:\t\tn/a\nCombined:\t8\nCurrent hardware settings:\nRX:\t\tn/a\n"
            "TX:\t\tn/a\nOther:\t\tn/a\nCombined:\t1\n")
    info = parse_ethtool_l(text)
    assert info.mode("auto") == "combined"
    assert info.queues("combined") == 1
    assert restore_argv("eth3", info.current) == ["ethtool", "-L", "eth3", "combined", "1"]


def test_ethtool_l_garbage() -> None:
    from osbench.kinds.netsweep.channels import parse_ethtool_l

    with pytest.raises(ValueError, match="not `ethtool -l` output"):
        parse_ethtool_l("netlink error: Operation not supported")
