"""`osbench lab up|down|status`: the local namespace lab for host scenarios (root only)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from osbench import lab
from osbench.errors import UserError
from osbench.lab.topology import STATE_DIR_ENV, LabConfig, default_state_dir

_DEFAULTS = LabConfig(state_dir=Path())


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "lab", help="the local lab of network namespaces (root only)",
        description="Network namespaces on this machine as a network node, a client and "
        "targets, each running sshd (targets also iperf3), for host scenarios. "
        f"Addresses are in 198.18.0.0/15 and exist only inside the lab. State (keys, "
        f"inventory) lives in {lab.DEFAULT_STATE_DIR} or ${STATE_DIR_ENV}.")
    p.add_argument("--state-dir", type=Path, default=None,
                   help=f"where keys, configs, pidfiles and the inventory live "
                        f"(default: ${STATE_DIR_ENV} or {lab.DEFAULT_STATE_DIR})")
    actions = p.add_subparsers(dest="lab_action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="build the lab (idempotent); prints the inventory path")
    up.add_argument("--targets", type=int, default=_DEFAULTS.targets,
                    help=f"target hosts behind the network node (default {_DEFAULTS.targets})")
    up.add_argument("--queues", type=int, default=_DEFAULTS.queues,
                    help="queues of the network node's links, the sweep's maximum "
                         f"(default {_DEFAULTS.queues})")
    up.add_argument("--ports-per-target", type=int, default=_DEFAULTS.ports_per_target,
                    help="iperf3 servers per target, one per stream "
                         f"(default {_DEFAULTS.ports_per_target})")
    actions.add_parser("down", help="remove every namespace, link, process and file of the lab")
    actions.add_parser("status", help="say what exists; exit 0 when the lab is up, 1 otherwise")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or default_state_dir()
    if args.lab_action == "status":
        current = asyncio.run(lab.status(state_dir))
        print("\n".join(current.lines()))
        return 0 if current.healthy else 1
    if args.lab_action == "down":
        config = lab.manage.stored_config(state_dir) or LabConfig(state_dir=state_dir)
        removed = asyncio.run(lab.down(config))
        print("\n".join(f"removed {what}" for what in removed) or "nothing to remove")
        return 0
    try:
        config = LabConfig(targets=args.targets, queues=args.queues,
                           ports_per_target=args.ports_per_target, state_dir=state_dir)
    except ValueError as exc:
        raise UserError(f"lab up: {exc}") from None
    print(asyncio.run(lab.up(config)))
    return 0
