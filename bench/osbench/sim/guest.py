"""Simulated guests: console logs and cloud-init's `phone_home` module.

`phone_home` is `osbench.cloudinit`'s, shared with minicloud's guests: what the
user data asks for, the form, and when to try again (every failure `tries`
attempts in all, 3 s apart; a 503 after its Retry-After, without limit, as
cloud-init >= 25.1 does). This module only plays it on the sim's clock, with
the sim's aiohttp session, and counts the tries in the cloud's `guest_stats`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp

from osbench import cloudinit
from osbench.clock import Clock
from osbench.cloudinit import PhoneHome
from osbench.sim.model import Timeline


def parse_phone_home(user_data: str | None) -> PhoneHome | None:
    """The phone_home config in user data, None when cloud-init would not phone home."""
    cfg = cloudinit.parse_user_data(user_data)
    return cfg if isinstance(cfg, PhoneHome) else None


@dataclass(frozen=True)
class GuestIdentity:
    """What a guest knows about itself."""

    instance_id: str
    hostname: str

    def host_key(self, kind: str) -> str:
        digest = hashlib.sha256(f"{kind}/{self.instance_id}".encode()).hexdigest()
        return f"{kind} AAAA{digest} root@{self.hostname}"

    def available(self) -> dict[str, str]:
        keys = {"pub_key_rsa": self.host_key("ssh-rsa"),
                "pub_key_ecdsa": self.host_key("ecdsa-sha2-nistp256"),
                "pub_key_ed25519": self.host_key("ssh-ed25519")}
        return cloudinit.instance_values(self.instance_id, self.hostname, host_keys=keys)


def phone_home_request(
    cfg: PhoneHome, guest: GuestIdentity, *, ipv6: bool
) -> tuple[str, dict[str, str]]:
    """The URL and form fields cloud-init would send."""
    url = cfg.url_for(guest.instance_id)
    if ipv6:
        url = url.replace("//127.0.0.1", "//[::1]", 1)
    return url, cfg.form(guest.available())


async def phone_home(
    session: aiohttp.ClientSession,
    clock: Clock,
    url: str,
    form: dict[str, str],
    *,
    tries: int,
    version: str,
    stats: Counter[str],
) -> bool:
    """POST like cloud-init does; True when the server took it."""

    def count(outcome: cloudinit.Outcome) -> None:
        if outcome.status is None:
            stats["phone_home_connect_errors"] += 1
        stats["phone_home_attempts"] += 1

    result = await cloudinit.post_form(
        session, url, form, policy=cloudinit.RetryPolicy(tries=tries), version=version,
        sleep=clock.sleep, now=lambda: clock.now().timestamp(), on_attempt=count)
    stats["phone_home_ok" if result.ok else "phone_home_failed"] += 1
    return result.ok


def _dhcp_lines(start: float, end: float, gave_up: bool) -> list[tuple[float, str]]:
    lines, t, interval = [], start, 3.0
    while t < end:
        text = f"DHCPDISCOVER on eth0 to 255.255.255.255 port 67 interval {interval:.0f}"
        lines.append((t, text))
        t += interval
        interval = min(interval * 2.0, 20.0)  # dhclient backs off, capped at 20 s
    if gave_up:
        lines.append((end, "No DHCPOFFERS received."))
        lines.append((end, "No working leases in persistent database - sleeping."))
    return lines


def _ci_init(version: str, uptime: float) -> str:
    return f"Cloud-init v. {version} running 'init' at boot. Up {uptime:.2f} seconds."


def console_lines(
    tl: Timeline, guest: GuestIdentity, ip: str, version: str, wants_phone_home: bool
) -> list[tuple[float, str]]:
    """(modelled time, text) of everything this guest will print on its console."""
    boot = tl.active_at
    if boot is None or tl.dhcp_start_at is None:
        return []

    def up(t: float) -> str:
        return f"[{t - boot:12.6f}]"

    lines = [
        (boot, f"{up(boot)} Linux version 6.1.0-18-cloud-amd64 (osbench-sim)"),
        (boot, f"{up(boot)} Command line: BOOT_IMAGE=/vmlinuz root=LABEL=cirros-rootfs ro"),
        (boot + 0.4, f"{up(boot + 0.4)} virtio_net virtio0 eth0: renamed from eth0"),
        (boot + 2.0, f"{up(boot + 2.0)} EXT4-fs (vda1): mounted filesystem with ordered data mode"),
    ]
    start = tl.dhcp_start_at
    if tl.lease_at is not None:
        lines += _dhcp_lines(start, tl.lease_at, gave_up=False)
        lines.append((tl.lease_at, f"DHCPOFFER of {ip} from 10.0.0.2"))
        lines.append((tl.lease_at, f"DHCPACK of {ip} from 10.0.0.2"))
        lines.append((tl.lease_at, f"bound to {ip} -- renewal in 43200 seconds."))
        ci = tl.lease_at + 1.0
        lines.append((ci, _ci_init(version, ci - boot)))
        lines.append((ci, f"ci-info: | eth0 | True | {ip} | 255.255.255.0 | global |"))
        end = tl.phone_home_at if tl.phone_home_at is not None else ci
        lines.append((end - 0.5, f"Cloud-init v. {version} running 'modules:final'."))
        if wants_phone_home:
            text = f"cc_phone_home.py[DEBUG]: posting phone home for {guest.instance_id}"
            lines.append((end, text))
        lines.append((end, f"Cloud-init v. {version} finished. Datasource DataSourceOpenStack. "
                           f"Up {end - boot:.2f} seconds"))
        lines.append((end, f"{guest.hostname} login: "))
    elif tl.dhcp_gave_up_at is not None:
        lines += _dhcp_lines(start, tl.dhcp_gave_up_at, gave_up=True)
        t = tl.dhcp_gave_up_at + 1.0
        lines.append((t, _ci_init(version, t - boot)))
        lines.append((t, "ci-info: | eth0 | False | . | . | . |"))
        lines.append((t + 1.0, "url_helper.py[WARNING]: Calling 'http://169.254.169.254/openstack' "
                               "failed [0/-1s]: request error [Network is unreachable]"))
        lines.append((t + 2.0, "DataSourceOpenStack: no metadata service; user data not applied"))
        lines.append((t + 3.0, f"{guest.hostname} login: "))
    return lines


def console_output(lines: list[tuple[float, str]], now: float, length: int | None) -> str:
    """The console text printed by modelled time `now`, last `length` lines."""
    shown = [text for t, text in lines if t <= now]
    if length is not None and length >= 0:
        shown = shown[-length:] if length else []
    return "\n".join(shown) + ("\n" if shown else "")


async def cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    """Cancel guest tasks and wait for them to finish."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    tasks.clear()
