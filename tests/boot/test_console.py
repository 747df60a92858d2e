"""Console-log classification on the lines real guest images print."""

from __future__ import annotations

import pytest

from osbench.kinds.boot.console_log import classify

CIRROS_DHCP_GIVE_UP = """\
Starting network...
udhcpc (v1.23.2) started
Sending discover...
Sending discover...
Sending discover...
Usage: /sbin/cirros-dhcpc <up|down>
No lease, failing
WARN: /etc/rc3.d/S40-network failed
"""

DHCLIENT_GIVE_UP = """\
DHCPDISCOVER on eth0 to 255.255.255.255 port 67 interval 3
DHCPDISCOVER on eth0 to 255.255.255.255 port 67 interval 8
No DHCPOFFERS received.
No working leases in persistent database - sleeping.
"""

CLOUD_INIT_FAILED = """\
[   12.1] cloud-init[820]: Cloud-init v. 23.1.2 running 'modules:final'
[   14.9] cloud-init[820]: 2026-11-24 03:00:00,000 - util.py[WARNING]: Failed posting phone home
"""

HEALTHY = """\
DHCPACK of 10.0.0.17 from 10.0.0.2
bound to 10.0.0.17 -- renewal in 40231 seconds.
Cloud-init v. 23.1.2 finished at Tue, 24 Nov 2026 03:00:00 +0000. Up 31.2 seconds
"""


@pytest.mark.parametrize(("text", "expected"), [
    (CIRROS_DHCP_GIVE_UP, "dhcp_timeout"),
    (DHCLIENT_GIVE_UP, "dhcp_timeout"),
    (CLOUD_INIT_FAILED, "cloud_init_error"),
    (HEALTHY, "unknown"),
    ("", "no_console"),
    (None, "no_console"),
    ("Kernel panic - not syncing: VFS: Unable to mount root fs", "kernel_panic"),
])
def test_classify(text: str | None, expected: str) -> None:
    assert classify(text) == expected
