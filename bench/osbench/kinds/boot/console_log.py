"""Why an ACTIVE instance never phoned home: classify its console log.

The patterns are the lines real guest images print (cirros' udhcpc, dhclient,
systemd-networkd, cloud-init) and the simulated guests imitate them.
"""

from __future__ import annotations

import re

#: (class, pattern), first match wins. Order matters: a DHCP give-up also
#: makes cloud-init fail later, and the DHCP line is the cause.
CLASSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("dhcp_timeout", re.compile(
        r"no lease, failing|giving up|No DHCPOFFERS received|DHCP.*(timed out|timeout)"
        r"|Failed to get a DHCP lease", re.IGNORECASE)),
    ("cloud_init_error", re.compile(
        r"(cloud-init|phone_home).*(failed|error|Traceback)|Failed posting phone home",
        re.IGNORECASE)),
    ("kernel_panic", re.compile(r"Kernel panic", re.IGNORECASE)),
)


def classify(console: str | None) -> str:
    """`dhcp_timeout`, `cloud_init_error`, `kernel_panic`, `no_console` or `unknown`."""
    if not console or not console.strip():
        return "no_console"
    for name, pattern in CLASSES:
        if pattern.search(console):
            return name
    return "unknown"
