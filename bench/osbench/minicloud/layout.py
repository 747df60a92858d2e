"""minicloud's fixed layout: packages and versions, ports, names, addresses, paths.

Everything binds to 127.0.0.1. The provider network is flat on a Linux
bridge (`osbmc-br`, Neutron's `bridge_mappings`) that has no address and no
physical port: its only members are the DHCP agent's port in
`qdhcp-<network>` and the guests' taps, so no packet of it reaches any other
machine (and none reaches the root namespace's stack: the bridge has no IP).
"""

from __future__ import annotations

import os
from pathlib import Path

#: Debian 12 (bookworm) OpenStack Zed, pinned: the versions minicloud was built
#: and measured with. A bookworm point release that moves one of them makes
#: `up` fail at install with apt's message, not quietly test something else.
PACKAGES: dict[str, str] = {
    "mariadb-server": "1:10.11.19-0+deb12u1",
    "rabbitmq-server": "3.10.8-1.1+deb12u1",
    "python3-pymysql": "1.0.2-2+deb12u1",
    "keystone": "2:22.0.2-0+deb12u6",
    "placement-api": "8.0.0-2",
    "glance-api": "2:25.1.0-2+deb12u5",
    "nova-api": "2:26.2.2-1~deb12u5",
    "nova-conductor": "2:26.2.2-1~deb12u5",
    "nova-scheduler": "2:26.2.2-1~deb12u5",
    "nova-compute": "2:26.2.2-1~deb12u5",
    # nova-compute needs a hypervisor package; ironic's is the lightest. The
    # fake driver is configured instead (compute_driver = fake.FakeDriver).
    "nova-compute-ironic": "2:26.2.2-1~deb12u5",
    "neutron-server": "2:21.0.0-7+deb12u1",
    "neutron-linuxbridge-agent": "2:21.0.0-7+deb12u1",
    "neutron-dhcp-agent": "2:21.0.0-7+deb12u1",
    "isc-dhcp-client": "4.4.3-P1-2",
}
#: Packages whose installed versions a run's provenance reports.
VERSION_PACKAGES = ("python3-nova", "python3-neutron", "python3-keystone", "python3-glance",
                    "python3-placement", "mariadb-server", "rabbitmq-server", "dnsmasq-base",
                    "isc-dhcp-client")

#: The interpreter the services run with (Debian's, not whatever python is first on PATH).
SYSTEM_PYTHON = "/usr/bin/python3"

HOST = "127.0.0.1"
PORTS = {"keystone": 5000, "placement": 8778, "glance": 9292, "nova-api": 8774,
         "neutron-api": 9696, "mysql": 3306, "rabbitmq": 5672, "rabbitmq-dist": 25672,
         "epmd": 4369}
REGION = "RegionOne"
CLOUD_NAME = "minicloud"
#: The name Nova and Neutron agents report as their host (stable whatever the hostname).
COMPUTE_HOST = "minicloud"

#: Every namespace and root-namespace link minicloud makes starts with this.
PREFIX = "osbmc-"
PROVIDER_BRIDGE = "osbmc-br"
PHYSNET = "provider"
NETWORK_NAME = "minicloud-net"
SUBNET_NAME = "minicloud-subnet"
#: Private, on this machine only (the address-less bridge above); no gateway.
SUBNET_CIDR = "10.254.0.0/24"
ALLOCATION_POOL = ("10.254.0.10", "10.254.0.250")
#: "The Internet" (osbench.minicloud.firewall): a namespace on the provider bridge
#: with an address of the subnet outside the pool, where the firewall audit probes from.
INTERNET_NETNS = "osbmc-inet"
INTERNET_VETH = "osbmc-inet"
INTERNET_ADDRESS = "10.254.0.254"
IMAGE_NAME = "minicloud-tiny"
FLAVOR_NAME = "mc.tiny"
FLAVOR = {"vcpus": 1, "ram": 64, "disk": 1}

#: The services' configuration directories minicloud writes; a marker in each says so.
CONFIG_DIRS = ("keystone", "placement", "glance", "nova", "neutron")
MARKER_NAME = "osbench-minicloud.marker"

DEFAULT_STATE_DIR = Path("/var/lib/osbench-minicloud")
STATE_DIR_ENV = "OSBENCH_MINICLOUD_DIR"
#: clouds.yaml minicloud writes its `minicloud` entry into (the SDK reads it).
CLOUDS_YAML = Path("/etc/openstack/clouds.yaml")


def default_state_dir() -> Path:
    """Where minicloud keeps its secrets, PIDs, guest journal and versions."""
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


def url(service: str, path: str = "") -> str:
    return f"http://{HOST}:{PORTS[service]}{path}"
