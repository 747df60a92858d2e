"""minicloud: Debian's OpenStack Zed control plane on this machine, for CI (root only).

`osbench minicloud up|down|status`. MariaDB, RabbitMQ, Keystone, Placement,
Glance, Nova (fake virt driver) and Neutron (Linux bridge and DHCP agents),
all on 127.0.0.1, with a flat provider network on an address-less bridge, a tiny
image, a flavor and a clouds.yaml entry `minicloud`. A guest player stands
in for the guests the fake driver never runs: tap device, namespace, real
DHCP lease, cloud-init phone_home. See `manage` for the phases.
"""

from osbench.minicloud.layout import CLOUD_NAME, DEFAULT_STATE_DIR, STATE_DIR_ENV
from osbench.minicloud.manage import MinicloudError, down, status, up

__all__ = ["CLOUD_NAME", "DEFAULT_STATE_DIR", "STATE_DIR_ENV", "MinicloudError", "down",
           "status", "up"]
