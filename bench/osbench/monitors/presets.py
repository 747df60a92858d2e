"""What "openstack" means to a monitor: its services by command line, its queues by name.

Patterns are regular expressions searched (not matched) in a process's command
line, NUL bytes read as spaces. Each covers the ways the service runs on
Debian/Ubuntu packages, RDO, kolla and devstack, and the way minicloud starts
it (uwsgi with `--ini /etc/<project>/minicloud-uwsgi.ini`): the console script
(`/usr/bin/nova-conductor`), a WSGI script under uwsgi or Apache mod_wsgi
(`nova-api-wsgi`, `keystone-wsgi-public`), or a uwsgi ini file under the
project's /etc directory. A process is counted under the first service whose
pattern finds it, in the order below.
"""

from __future__ import annotations

#: service -> command-line pattern. Order matters: the first match wins.
PROCESS_PRESETS: dict[str, str] = {
    "nova-api": r"nova-api|nova-metadata-api|/etc/nova/\S*uwsgi\S*\.ini",
    "nova-conductor": r"nova-conductor",
    "nova-scheduler": r"nova-scheduler",
    # its privsep daemons carry /etc/nova/nova-compute.conf too
    "nova-compute": r"nova-compute",
    # oslo.service titles a monolithic neutron-server's workers
    # "neutron-server: rpc worker (...)", "neutron-server: api worker (...)"
    "neutron-server-rpc": r"neutron-rpc-server|neutron-server: rpc worker",
    "neutron-server-api": (r"neutron-server(?!: rpc worker)|neutron-api"
                           r"|/etc/neutron/\S*uwsgi\S*\.ini"),
    # the agent, and the privsep daemons it spawns (they carry its config file)
    "neutron-dhcp-agent": r"neutron-dhcp-agent|privsep-helper.*/dhcp_agent\.ini",
    "neutron-agents": (r"neutron-(?!dhcp-agent)[a-z0-9-]+-agent"
                       r"|privsep-helper.*/neutron/(?!dhcp_agent)\S*_agent\.ini"),
    # the broker's beam.smp, not rabbitmqctl's (an escript: ~0.4 s of CPU a call),
    # its start script and epmd
    "rabbitmq": r"^(?!.*\bescript\b).*beam\.smp.*\brabbit\b|\brabbitmq-server\b|(^|/)epmd\b",
    "mariadb": r"\b(mariadbd|mysqld)\b",
    "keystone": r"keystone-wsgi|keystone-all|/etc/keystone/\S*uwsgi\S*\.ini",
    "glance-api": r"glance-api|glance-wsgi|/etc/glance/\S*uwsgi\S*\.ini",
    "placement": r"placement-api|/etc/placement/\S*uwsgi\S*\.ini",
}
#: Services that are one logical service in reports and rules.
SERVICE_FAMILIES: dict[str, str] = {
    "neutron-server-rpc": "neutron-server",
    "neutron-server-api": "neutron-server",
}
#: "openstack": every preset; each service is also a preset of its own.
PROCESS_GROUPS: dict[str, tuple[str, ...]] = {"openstack": tuple(PROCESS_PRESETS)}
PROCESS_PRESET_NAMES = (*PROCESS_GROUPS, *PROCESS_PRESETS)

#: queue group -> pattern matched (in full) against RabbitMQ queue names.
#: oslo.messaging names a topic queue `<topic>`, a server's `<topic>.<host>` and
#: its fanout queue `<topic>_fanout_<32 hex>`; replies go to `reply_<32 hex>`
#: (seen on minicloud: dhcp_agent, dhcp_agent.minicloud, dhcp_agent_fanout_1b76...).
#: A group takes all three: together they are what the service has yet to read.
QUEUE_PRESETS: dict[str, str] = {
    "neutron-dhcp-agent": r"dhcp_agent(\..+|_fanout_[0-9a-f]+)?",
    "nova-conductor": r"conductor(\..+|_fanout_[0-9a-f]+)?",
    "nova-scheduler": r"scheduler(\..+|_fanout_[0-9a-f]+)?",
    "nova-compute": r"compute(\..+|_fanout_[0-9a-f]+)?",
    # what neutron-server's RPC workers consume: the agents' calls (q-plugin), their
    # state reports (q-reports-plugin) and resource-version pushes
    "neutron-server-rpc": r"q-(plugin|reports-plugin|server-resource-versions)"
                          r"(\..+|_fanout_[0-9a-f]+)?",
}
QUEUE_GROUPS: dict[str, tuple[str, ...]] = {"openstack": tuple(QUEUE_PRESETS)}
QUEUE_PRESET_NAMES = (*QUEUE_GROUPS, *QUEUE_PRESETS)


def process_patterns(presets: tuple[str, ...], extra: dict[str, str]) -> dict[str, str]:
    """service -> pattern for `presets` (groups expanded) and `extra`, in match order."""
    chosen = {name for p in presets for name in PROCESS_GROUPS.get(p, (p,))}
    return {**{s: pat for s, pat in PROCESS_PRESETS.items() if s in chosen}, **extra}


def queue_patterns(presets: tuple[str, ...], extra: dict[str, str]) -> dict[str, str]:
    """group -> queue-name pattern for `presets` (groups expanded) and `extra`."""
    chosen = {name for p in presets for name in QUEUE_GROUPS.get(p, (p,))}
    return {**{g: pat for g, pat in QUEUE_PRESETS.items() if g in chosen}, **extra}
