"""minicloud's configuration files, rendered as text (pure: nothing is written here).

Choices that a 2-core machine forced (issue 9's trial run):
- uwsgi APIs get `http-socket = 127.0.0.1:PORT` (Debian's init scripts bind
  every interface), one or two processes, `Connection: close` (pooled
  sockets were reset by the loaded APIs) and a `Date` header (uwsgi's
  http-socket sends none; osbench reads the cloud's clock from it);
- neutron-api runs with `threads = 1` (with 4 threads one request hung and its
  instance stayed in BUILD);
- Zed marks the Linux bridge driver experimental: `[experimental] linuxbridge`
  must be set or the neutron-api workers crash-loop while the port stays open;
- flat networks only (VXLAN opens a UDP socket on every interface);
- security groups enforced by the Linux bridge agent's iptables driver, but
  port security off by default on the network (the boot runs' ports get no
  per-port chains; the firewall audit's guests ask for it, issue 20);
- quotas unlimited (the defaults reject `min_count=20`);
- the DHCP agent runs its commands through `neutron-rootwrap` and the rootwrap
  daemon, as the field notes' fixed cloud did.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from osbench.minicloud import layout
from osbench.minicloud.layout import HOST, PORTS, REGION

#: Service users of the `service` project (and their database names).
SERVICE_USERS = ("keystone", "placement", "glance", "nova", "neutron")


@dataclass(frozen=True)
class Secrets:
    """Passwords minicloud generates once and reuses on every later `up`."""

    admin: str
    rabbit: str
    db_keystone: str
    db_placement: str
    db_glance: str
    db_nova: str
    db_neutron: str
    user_placement: str
    user_glance: str
    user_nova: str
    user_neutron: str

    @classmethod
    def generate(cls) -> Secrets:
        return cls(**{f.name: secrets.token_hex(16) for f in fields(cls)})

    @classmethod
    def from_json(cls, text: str) -> Secrets:
        data = json.loads(text)
        return cls(**{f.name: str(data[f.name]) for f in fields(cls)})

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def ini(sections: dict[str, dict[str, object]]) -> str:
    """An oslo.config / uwsgi ini file; booleans as `true`/`false`."""
    out = ["# Written by osbench minicloud; `osbench minicloud down` leaves it, "
           "`up` rewrites it.\n"]
    for name, options in sections.items():
        out.append(f"[{name}]\n")
        for key, value in options.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            out.append(f"{key} = {text}\n")
        out.append("\n")
    return "".join(out)


def _db(s: Secrets, name: str, database: str | None = None) -> str:
    password = getattr(s, f"db_{name}")
    return f"mysql+pymysql://{name}:{password}@{HOST}/{database or name}"


def _auth(s: Secrets, user: str) -> dict[str, object]:
    """Keystone credentials of a service user, as `[keystone_authtoken]` and friends take."""
    return {
        "auth_url": layout.url("keystone", "/v3"),
        "auth_type": "password",
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": "service",
        "username": user,
        "password": getattr(s, f"user_{user}"),
        "region_name": REGION,
    }


def _authtoken(s: Secrets, user: str) -> dict[str, object]:
    return {"www_authenticate_uri": layout.url("keystone", "/v3"), **_auth(s, user)}


def _transport(s: Secrets) -> str:
    return f"rabbit://openstack:{s.rabbit}@{HOST}:{PORTS['rabbitmq']}/"


def uwsgi_ini(name: str, *, port: int, wsgi_file: str, user: str, log: str, processes: int,
              threads: int = 1, pyargv: str | None = None) -> str:
    options: dict[str, object] = {
        "http-socket": f"{HOST}:{port}",
        "plugins": "python3",
        "master": True,
        "lazy-apps": True,
        "die-on-term": True,
        "no-orphans": True,
        "enable-threads": True,
        "buffer-size": 65535,
        "processes": processes,
        "threads": threads,
        "listen": 100,
        "add-header": "Connection: close",
        # uwsgi's http-socket sends no Date header (the web server in front of a
        # real cloud's APIs does); osbench reads the cloud's clock from it
        # (osbench.cloudclock). Stamped when the request is routed, before the app.
        "route-run": "addheader:Date: ${httptime[]}",
        "name": name,
        "uid": user,
        "gid": user,
        "chdir": f"/var/lib/{user}",
        # Not the app's own log file: uwsgi opens this one as root, before
        # dropping to `user`, and the app (oslo.log, log_dir) must write its own.
        "logto": log,
        "wsgi-file": wsgi_file,
    }
    if pyargv:
        options["pyargv"] = pyargv
    return ini({"uwsgi": options})


NEUTRON_SERVER_ARGS = ("--config-file=/etc/neutron/neutron.conf "
                       "--config-file=/etc/neutron/plugins/ml2/ml2_conf.ini")


def render(s: Secrets) -> dict[Path, str]:
    """Every configuration file minicloud writes, by path."""
    files: dict[Path, str] = {}
    etc = Path("/etc")

    files[etc / "keystone/keystone.conf"] = ini({
        "DEFAULT": {"log_dir": "/var/log/keystone"},
        "database": {"connection": _db(s, "keystone")},
        "token": {"provider": "fernet"},
        "cache": {"enabled": False},
    })
    files[etc / "keystone/minicloud-uwsgi.ini"] = uwsgi_ini(
        "keystone-api", port=PORTS["keystone"], wsgi_file="/usr/bin/keystone-wsgi-public",
        user="keystone", log="/var/log/keystone/keystone-api-uwsgi.log", processes=2)

    files[etc / "placement/placement.conf"] = ini({
        "DEFAULT": {"log_dir": "/var/log/placement"},
        "api": {"auth_strategy": "keystone"},
        "placement_database": {"connection": _db(s, "placement")},
        "keystone_authtoken": _authtoken(s, "placement"),
    })
    files[etc / "placement/minicloud-uwsgi.ini"] = uwsgi_ini(
        "placement-api", port=PORTS["placement"], wsgi_file="/usr/bin/placement-api",
        user="placement", log="/var/log/placement/placement-api-uwsgi.log", processes=1)

    files[etc / "glance/glance-api.conf"] = ini({
        "DEFAULT": {"bind_host": HOST, "bind_port": PORTS["glance"],
                    "log_dir": "/var/log/glance", "enabled_backends": "fs:file"},
        "database": {"connection": _db(s, "glance")},
        "keystone_authtoken": _authtoken(s, "glance"),
        "paste_deploy": {"flavor": "keystone"},
        "glance_store": {"default_backend": "fs"},
        "fs": {"filesystem_store_datadir": "/var/lib/glance/images/"},
        "oslo_concurrency": {"lock_path": "/var/lib/glance/tmp"},
    })
    files[etc / "glance/minicloud-uwsgi.ini"] = uwsgi_ini(
        "glance-api", port=PORTS["glance"], wsgi_file="/usr/bin/glance-wsgi-api",
        user="glance", log="/var/log/glance/glance-api-uwsgi.log", processes=1)

    nova_neutron = {**_auth(s, "neutron"), "service_metadata_proxy": False}
    files[etc / "nova/nova.conf"] = ini({
        "DEFAULT": {
            "host": layout.COMPUTE_HOST, "my_ip": HOST, "transport_url": _transport(s),
            "state_path": "/var/lib/nova", "log_dir": "/var/log/nova",
            "compute_driver": "fake.FakeDriver",
            # The fake driver plugs nothing: Nova must not wait for network-vif-plugged
            # (the guest player plugs after ACTIVE, as issue 9 describes).
            "vif_plugging_is_fatal": False, "vif_plugging_timeout": 0,
            "osapi_compute_listen": HOST, "metadata_listen": HOST,
            "enabled_apis": "osapi_compute",
        },
        "api": {"auth_strategy": "keystone"},
        "api_database": {"connection": _db(s, "nova", "nova_api")},
        "database": {"connection": _db(s, "nova")},
        "keystone_authtoken": _authtoken(s, "nova"),
        "service_user": {**_auth(s, "nova"), "send_service_user_token": True},
        "glance": {"api_servers": layout.url("glance")},
        "neutron": nova_neutron,
        "placement": _auth(s, "placement"),
        "conductor": {"workers": 1},
        "scheduler": {"workers": 1, "discover_hosts_in_cells_interval": 5},
        "oslo_concurrency": {"lock_path": "/var/lib/nova/tmp"},
        "oslo_messaging_notifications": {"driver": "noop"},
        "vnc": {"enabled": False},
        "quota": {"instances": -1, "cores": -1, "ram": -1},
        "wsgi": {"api_paste_config": "/etc/nova/api-paste.ini"},
    })
    files[etc / "nova/nova-compute.conf"] = ini({
        "DEFAULT": {"compute_driver": "fake.FakeDriver"},
    })
    files[etc / "nova/minicloud-uwsgi.ini"] = uwsgi_ini(
        "nova-api", port=PORTS["nova-api"], wsgi_file="/usr/bin/nova-api-wsgi", user="nova",
        log="/var/log/nova/nova-api-uwsgi.log", processes=2)

    root_helper = "sudo neutron-rootwrap /etc/neutron/rootwrap.conf"
    files[etc / "neutron/neutron.conf"] = ini({
        "DEFAULT": {
            "host": layout.COMPUTE_HOST, "core_plugin": "ml2", "service_plugins": "",
            "transport_url": _transport(s), "auth_strategy": "keystone",
            "state_path": "/var/lib/neutron", "log_dir": "/var/log/neutron",
            "bind_host": HOST, "bind_port": PORTS["neutron-api"],
            "notify_nova_on_port_status_changes": True,
            "notify_nova_on_port_data_changes": True,
            "rpc_workers": 1, "rpc_state_report_workers": 1, "api_workers": 1,
            "dhcp_agents_per_network": 1,
        },
        "agent": {"root_helper": root_helper,
                  "root_helper_daemon": "sudo neutron-rootwrap-daemon "
                                        "/etc/neutron/rootwrap.conf"},
        "database": {"connection": _db(s, "neutron")},
        "keystone_authtoken": _authtoken(s, "neutron"),
        "nova": _auth(s, "nova"),
        "oslo_concurrency": {"lock_path": "/var/lib/neutron/tmp"},
        "experimental": {"linuxbridge": True},
        "quotas": {"quota_port": -1, "quota_network": -1, "quota_subnet": -1},
    })
    files[etc / "neutron/plugins/ml2/ml2_conf.ini"] = ini({
        "ml2": {"type_drivers": "flat", "tenant_network_types": "",
                "mechanism_drivers": "linuxbridge", "extension_drivers": "port_security"},
        "ml2_type_flat": {"flat_networks": layout.PHYSNET},
        "securitygroup": {"enable_ipset": False},
    })
    files[etc / "neutron/plugins/ml2/linuxbridge_agent.ini"] = ini({
        "linux_bridge": {"bridge_mappings": f"{layout.PHYSNET}:{layout.PROVIDER_BRIDGE}"},
        "vxlan": {"enable_vxlan": False},
        # Security groups enforced with iptables on the guests' taps (the firewall
        # audit's proof, issue 20), for ports with port security only: the network's
        # default leaves it off, so the boot runs' ports get no per-port rules.
        # `iptables` is Zed's entry point (neutron.agent.firewall_drivers) for the
        # Linux bridge driver; it needs bridge-nf-call-iptables (manage.py sets it).
        "securitygroup": {"enable_security_group": True,
                          "firewall_driver": "iptables"},
    })
    files[etc / "neutron/dhcp_agent.ini"] = ini({
        "DEFAULT": {"interface_driver": "linuxbridge",
                    "dhcp_driver": "neutron.agent.linux.dhcp.Dnsmasq",
                    "enable_isolated_metadata": False, "force_metadata": False},
    })
    files[etc / "neutron/minicloud-uwsgi.ini"] = uwsgi_ini(
        "neutron-api", port=PORTS["neutron-api"], wsgi_file="/usr/bin/neutron-api",
        user="neutron", log="/var/log/neutron/neutron-api-uwsgi.log", processes=2, threads=1,
        pyargv=NEUTRON_SERVER_ARGS)

    files[etc / "rabbitmq/rabbitmq-env.conf"] = (
        "# Written by osbench minicloud: loopback only.\n"
        "NODENAME=rabbit@localhost\n"
        f"NODE_IP_ADDRESS={HOST}\n"
        f"NODE_PORT={PORTS['rabbitmq']}\n"
        f"DIST_PORT={PORTS['rabbitmq-dist']}\n"
        f"ERL_EPMD_ADDRESS={HOST}\n"
        'SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"\n'
        'CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"\n')
    files[etc / "mysql/mariadb.conf.d/99-osbench-minicloud.cnf"] = (
        "# Written by osbench minicloud: loopback only, small.\n"
        "[mysqld]\n"
        f"bind-address = {HOST}\n"
        "max_connections = 500\n"
        "innodb_buffer_pool_size = 128M\n"
        "innodb_flush_log_at_trx_commit = 2\n")
    return files


def sql_setup(s: Secrets) -> str:
    """Databases and users, idempotent (run as root over the socket)."""
    lines = []
    databases = {"keystone": ["keystone"], "placement": ["placement"], "glance": ["glance"],
                 "nova": ["nova", "nova_api", "nova_cell0"], "neutron": ["neutron"]}
    for user, names in databases.items():
        password = getattr(s, f"db_{user}")
        lines.append(f"CREATE USER IF NOT EXISTS '{user}'@'localhost' "
                     f"IDENTIFIED BY '{password}';")
        lines.append(f"CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' "
                     f"IDENTIFIED BY '{password}';")
        # A new state directory means new passwords: existing users take them.
        lines.append(f"ALTER USER '{user}'@'localhost' IDENTIFIED BY '{password}';")
        lines.append(f"ALTER USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';")
        for name in names:
            lines.append(f"CREATE DATABASE IF NOT EXISTS {name};")
            lines.append(f"GRANT ALL PRIVILEGES ON {name}.* TO '{user}'@'localhost';")
            lines.append(f"GRANT ALL PRIVILEGES ON {name}.* TO '{user}'@'127.0.0.1';")
    return "\n".join(lines) + "\nFLUSH PRIVILEGES;\n"


def clouds_yaml_entry(s: Secrets) -> dict[str, object]:
    """The clouds.yaml `minicloud` entry: admin of the admin project."""
    return {
        "auth": {"auth_url": layout.url("keystone", "/v3"), "username": "admin",
                 "password": s.admin, "project_name": "admin",
                 "user_domain_name": "Default", "project_domain_name": "Default"},
        "region_name": REGION,
        "identity_api_version": 3,
        "interface": "public",
    }
