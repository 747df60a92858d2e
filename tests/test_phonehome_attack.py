"""The registration server under a slowloris attack, in a child process that
starts with the open-file limit most Linux sessions give (1024), as in the
trial that found it: 1,100 connections from one address starved it, every
guest of the run was recorded `no_phone_home`, and stderr grew by megabytes.

The attacker is 127.0.0.1; the guests phone home from 127.0.0.2 and up, as
real guests come from their own addresses. Run as a script
(`python -m tests.test_phonehome_attack measure MODULE [OPTIONS_JSON]`) it
measures the attack against any module with a RegistrationServer, e.g. the
one before the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import resource
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from osbench.clock import RealClock
from osbench.fdlimit import raise_open_file_limit

ROOT = Path(__file__).resolve().parent.parent
#: The default soft limit of a login session (systemd, most shells).
SESSION_OPEN_FILES = 1024
ATTACKERS = 1100
GUESTS = 50
#: Guests start phoning home 1 s into the attack, one by one over this long.
GUESTS_OVER_S = 5.0
#: Shorter than the defaults (10 s each) so the attack sees connections time
#: out and come back, and repeated log lines counted, several times within
#: the suite's time budget.
#: The cap in all is 4096, not the default 16384, so its quarter per source
#: (1024) is within ATTACKERS from one address.
OPTIONS = {"idle_timeout_s": 1.5, "header_timeout_s": 2.5, "body_timeout_s": 2.5,
           "log_interval_s": 3.0, "max_connections": 4096}
#: The attack lasts until every guest has its answer or gave up, at most this.
ATTACK_MAX_S = 30.0
#: A dripping attacker sends one header byte this often: never idle.
DRIP_S = 0.5
#: An attacker slot reconnects after this pause, at most this many times.
RECONNECT_S = 0.25
MAX_CONNECTS_PER_SLOT = 40
#: How long one guest waits for its answer; cloud-init's own is similar.
GUEST_TIMEOUT_S = 10.0
#: Child stderr allowed under attack: a few throttled lines per cause.
MAX_STDERR_BYTES = 16384


# -- the server side (child process) ---------------------------------------

def serve(module_name: str, options: dict[str, Any]) -> None:
    """Run `module_name`'s RegistrationServer until a line on stdin, logging
    to stderr as `osbench run` does; print its port, then what it recorded."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(SESSION_OPEN_FILES, hard), hard))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(importlib.import_module(module_name), options))


async def _serve(module: Any, options: dict[str, Any]) -> None:
    server = module.RegistrationServer(clock=RealClock(), journal=lambda arrivals: None, **options)
    await server.start()
    print(json.dumps({"port": server.port, "token": server.token}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    recorded = sorted({a.instance_id for a in server.arrivals})
    closed_early = dict(getattr(server, "closed_early", {}))
    await server.stop()
    print(json.dumps({"recorded": recorded, "closed_early": closed_early}), flush=True)


# -- the attack and the guests (this process) ------------------------------

@dataclass
class Attack:
    connects: int = 0
    #: How long each attack connection stayed open (until the server closed
    #: it, or until the attack ended).
    lifetimes: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


async def _slowloris(port: int, drip: bool, until: float, attack: Attack) -> None:
    """One attacker slot: connect, then drip header bytes or stay silent
    until the server closes; again, until `until` or until cancelled."""
    loop = asyncio.get_running_loop()
    head = b"POST /tok/vm/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 8000
    for _ in range(MAX_CONNECTS_PER_SLOT):
        if loop.time() >= until:
            return
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), until - loop.time())
        except (OSError, TimeoutError):
            attack.outcomes["connect_failed"] += 1
            await asyncio.sleep(RECONNECT_S)
            continue
        attack.connects += 1
        opened = loop.time()
        outcome = "held_to_end"
        try:
            for index in range(len(head) if drip else 1):
                if drip:
                    writer.write(head[index:index + 1])
                    await writer.drain()
                wait = until - loop.time()
                if drip:
                    wait = min(wait, DRIP_S)
                if wait <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    data = await asyncio.wait_for(reader.read(1024), wait)
                    outcome = "answered" if data else "closed"
                    break
        except OSError:
            outcome = "closed"
        finally:  # cancelled too: the attack is over
            attack.outcomes[outcome] += 1
            attack.lifetimes.append(loop.time() - opened)
            writer.close()
        await asyncio.sleep(RECONNECT_S)


async def _guest(port: int, token: str, instance_id: str, source: str) -> int | None:
    """One cloud-init phone-home from `source`; the status, or None."""
    body = urlencode({"instance_id": instance_id, "hostname": instance_id[:8]}).encode()
    request = (f"POST /{token}/{instance_id}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               "User-Agent: Cloud-Init/23.1.2\r\n"
               "Content-Type: application/x-www-form-urlencoded\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    writer = None
    try:
        async with asyncio.timeout(GUEST_TIMEOUT_S):
            reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                           local_addr=(source, 0))
            writer.write(request)
            status_line = await reader.readline()
        return int(status_line.split()[1])
    except (OSError, TimeoutError, IndexError, ValueError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@dataclass
class Outcome:
    statuses: dict[str, int | None]
    recorded: list[str]
    closed_early: dict[str, int]
    stderr: bytes
    attack: Attack


async def attack_and_phone_home(module_name: str, options: dict[str, Any],
                                attackers: int = ATTACKERS) -> Outcome:
    """Start the server in a child, attack it from 127.0.0.1, and phone home
    GUESTS times from 127.0.0.2... while the attack runs."""
    with tempfile.TemporaryFile() as stderr:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.test_phonehome_attack", "serve", module_name,
            json.dumps(options), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=stderr)
        assert child.stdin is not None and child.stdout is not None
        try:
            started = json.loads(await asyncio.wait_for(child.stdout.readline(), 30))
            port, token = started["port"], started["token"]
            loop = asyncio.get_running_loop()
            until = loop.time() + ATTACK_MAX_S
            attack = Attack()
            slots = [asyncio.create_task(_slowloris(port, i % 2 == 0, until, attack))
                     for i in range(attackers)]
            await asyncio.sleep(1.0)  # the attack at full strength
            ids = [str(uuid.uuid4()) for _ in range(GUESTS)]
            guests = []
            for i, instance_id in enumerate(ids):
                guests.append(asyncio.create_task(
                    _guest(port, token, instance_id, f"127.0.0.{2 + i}")))
                await asyncio.sleep(GUESTS_OVER_S / GUESTS)
            statuses = dict(zip(ids, await asyncio.gather(*guests), strict=True))
            for slot in slots:
                slot.cancel()
            await asyncio.gather(*slots, return_exceptions=True)
            child.stdin.write(b"stop\n")
            await child.stdin.drain()
            result = json.loads(await asyncio.wait_for(child.stdout.readline(), 60))
            await asyncio.wait_for(child.wait(), 30)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        stderr.seek(0)
        return Outcome(statuses, result["recorded"], result["closed_early"], stderr.read(),
                       attack)


def attack_size() -> int:
    """ATTACKERS, or fewer if this process may not open that many sockets
    (the guests and pytest need some too); still above the child's cap per
    source, a quarter of its cap in all (OPTIONS)."""
    return min(ATTACKERS, raise_open_file_limit() - GUESTS - 200)


async def test_slowloris_does_not_starve_phone_homes() -> None:
    outcome = await attack_and_phone_home("osbench.kinds.boot.phonehome", OPTIONS,
                                          attack_size())

    assert outcome.statuses == dict.fromkeys(outcome.statuses, 200)
    assert sorted(outcome.statuses) == outcome.recorded
    # The attack was real: over the cap per source, and timed out repeatedly.
    closed = outcome.closed_early
    assert closed.get("per_source", 0) > 0, closed
    assert closed.get("idle", 0) > 0 and closed.get("header", 0) > 0, closed
    assert outcome.attack.outcomes["closed"] > attack_size(), outcome.attack
    # No attack connection outlived the timeouts (plenty of slack: 2 busy cores).
    bound = OPTIONS["idle_timeout_s"] + OPTIONS["header_timeout_s"] + 3.0
    assert max(outcome.attack.lifetimes) < bound
    stderr = outcome.stderr.decode()
    assert len(outcome.stderr) < MAX_STDERR_BYTES, stderr[:2000]
    assert "more like this" in stderr  # throttled, and counted
    assert "closed" in stderr and "early" in stderr  # the summary at stop


def main() -> None:
    """`serve MODULE OPTIONS_JSON` (the child) or `measure MODULE [OPTIONS_JSON]`."""
    command, module_name = sys.argv[1], sys.argv[2]
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    if command == "serve":
        serve(module_name, options)
        return
    outcome = asyncio.run(attack_and_phone_home(module_name, options, attack_size()))
    ok = sum(1 for status in outcome.statuses.values() if status == 200)
    print(json.dumps({
        "module": module_name, "options": options, "attackers": attack_size(),
        "phone_homes_answered_200": ok, "phone_homes_recorded": len(outcome.recorded),
        "of": GUESTS, "stderr_bytes": len(outcome.stderr),
        "stderr_lines": outcome.stderr.count(b"\n"),
        "attack_connects": outcome.attack.connects,
        "attack_outcomes": dict(outcome.attack.outcomes),
        "max_attack_connection_s": round(max(outcome.attack.lifetimes, default=0), 1),
        "closed_early": outcome.closed_early}))


if __name__ == "__main__":
    main()
