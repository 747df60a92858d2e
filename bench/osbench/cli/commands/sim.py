"""`osbench sim`: serve the simulated cloud standalone, or list its profiles."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import yaml

from osbench.errors import UserError
from osbench.sim import SimCloud, list_profiles, load_profile
from osbench.sim.profiles import DEFAULT_PROFILE
from osbench.sim.server import REQUEST_COUNTS_PATH


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("sim", help="the embedded simulated OpenStack cloud")
    actions = p.add_subparsers(dest="sim_action", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", help="serve it until Ctrl-C; prints a clouds.yaml entry")
    serve.add_argument("--profile", default=DEFAULT_PROFILE, help="profile name or YAML file")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="TCP port (0: a free one)")
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--time-scale", type=float, default=None,
                       help="modelled seconds per real second (default: the profile's)")
    serve.add_argument("--cloud-name", default="osbench-sim",
                       help="name of the clouds.yaml entry (the admin's: NAME-admin)")
    actions.add_parser("profiles", help="list the shipped profiles")
    p.set_defaults(func=run)


def clouds_yaml(sim: SimCloud, name: str) -> str:
    """A clouds.yaml document with two entries pointing at `sim`: `name`, its
    member user, and `name`-admin, its admin user."""
    return yaml.safe_dump({"clouds": {name: sim.cloud_config(),
                                      f"{name}-admin": sim.cloud_config(admin=True)}},
                          sort_keys=False)


def admin_environment(sim: SimCloud) -> str:
    """The admin's credentials as OS_* variables (`rally env create --from-sysenv`).
    The simulator's own fixed passwords: no secret of any real cloud."""
    auth = sim.cloud_config(admin=True)["auth"]
    names = {"OS_AUTH_URL": "auth_url", "OS_USERNAME": "username", "OS_PASSWORD": "password",
             "OS_PROJECT_NAME": "project_name", "OS_USER_DOMAIN_NAME": "user_domain_name",
             "OS_PROJECT_DOMAIN_NAME": "project_domain_name"}
    pairs = [f"{var}={auth[key]}" for var, key in names.items()]
    return " ".join([*pairs, f"OS_REGION_NAME={sim.region}", "OS_IDENTITY_API_VERSION=3"])


async def _serve(sim: SimCloud, name: str) -> None:
    async with sim:
        print(f"# simulated cloud, profile {sim.profile.name!r}, seed {sim.seed}, "
              f"time scale {sim.time_scale:g}x; Ctrl-C stops it")
        print(f"# save as clouds.yaml and use: openstack --os-cloud {name} server list "
              f"(the admin: --os-cloud {name}-admin)")
        print(f"# the admin as environment variables: export {admin_environment(sim)}")
        print(f"# requests served so far: GET {sim.base_url}{REQUEST_COUNTS_PATH}")
        print(f"# the modelled control plane (Prometheus text, needs a token): GET "
              f"{sim.metrics_url}; as a monitor: prometheus: [{{name: served-sim, url: "
              f"\"{sim.metrics_url}\", metrics: [\"osbench_sim_*\"], auth: cloud}}]")
        print(clouds_yaml(sim, name), flush=True)
        await asyncio.Event().wait()


def run(args: argparse.Namespace) -> int:
    if args.sim_action == "profiles":
        for name, description in list_profiles():
            print(f"{name:18} {description}")
        return 0
    profile = load_profile(args.profile)
    sim = SimCloud(profile, seed=args.seed, time_scale=args.time_scale,
                   host=args.host, port=args.port)
    try:
        asyncio.run(_serve(sim, args.cloud_name))
    except KeyboardInterrupt:
        print("# stopped", file=sys.stderr)
    except OSError as exc:  # the port is taken, the address is not ours
        raise UserError(f"sim serve: cannot listen on {args.host}:{args.port}: "
                        f"{exc.strerror or exc}",
                        hint="pick another --port, or --port 0 for a free one") from None
    return 0
