"""`osbench minicloud up|down|status`: a real OpenStack control plane on this machine
(root; for disposable machines and CI)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from osbench import minicloud
from osbench.errors import UserError
from osbench.minicloud import layout


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "minicloud", help="Debian's OpenStack on this machine, for CI (root)",
        description="Install and run Debian 12's OpenStack Zed on this machine, all on "
        "127.0.0.1: MariaDB, RabbitMQ, Keystone, Placement, Glance, Nova (fake virt "
        "driver), Neutron (Linux bridge and DHCP agents), a flat provider network on a "
        "address-less bridge, guests played by network namespaces with real DHCP. FOR "
        "DISPOSABLE MACHINES AND CI ONLY: it installs packages, writes /etc/{keystone,"
        "placement,glance,nova,neutron} and refuses to run where those hold configuration "
        "it did not write. clouds.yaml entry: `minicloud` in "
        f"{layout.CLOUDS_YAML}.")
    p.add_argument("--state-dir", type=Path, default=None,
                   help=f"secrets, PIDs, guest journal (default ${layout.STATE_DIR_ENV} or "
                        f"{layout.DEFAULT_STATE_DIR})")
    actions = p.add_subparsers(dest="minicloud_action", metavar="ACTION", required=True)
    actions.add_parser("up", help="install, configure and start (idempotent); prints phase "
                                  "timings")
    actions.add_parser("down", help="stop every process minicloud started (by PID); remove "
                                    "its guests, bridge and namespaces")
    st = actions.add_parser("status", help="say what runs; exit 0 when up, 1 otherwise")
    st.add_argument("--json", action="store_true",
                    help="one JSON object: processes, network id, qdhcp namespace, guests")
    st.add_argument("--qdhcp", action="store_true",
                    help="print only the DHCP agent's namespace (qdhcp-<network id>)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or layout.default_state_dir()
    if args.minicloud_action == "status":
        current = minicloud.status(state_dir)
        if args.qdhcp:
            if not current.network_id:
                raise UserError("minicloud has no network (is it up?)",
                                hint="run `osbench minicloud up`")
            print(f"qdhcp-{current.network_id}")
            return 0 if current.healthy else 1
        if args.json:
            print(json.dumps({"healthy": current.healthy, "running": current.running,
                              "network_id": current.network_id,
                              "qdhcp_netns": f"qdhcp-{current.network_id}"
                              if current.network_id else None,
                              "guests": current.guests}, indent=1))
        else:
            print("\n".join(current.lines()))
        return 0 if current.healthy else 1
    if args.minicloud_action == "down":
        removed = minicloud.down(state_dir)
        print("\n".join(f"removed {what}" for what in removed) or "nothing to remove")
        return 0
    print("minicloud: for disposable machines and CI only (installs and runs OpenStack as "
          "root)")
    phases = minicloud.up(state_dir)
    print("minicloud: up; phase timings:")
    print("\n".join(phases.lines()))
    print(f"minicloud: clouds.yaml entry {layout.CLOUD_NAME!r} in {layout.CLOUDS_YAML}; "
          f"`osbench run SCENARIO --cloud {layout.CLOUD_NAME}`")
    return 0
