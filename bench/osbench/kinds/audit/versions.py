"""What each host runs: one command per host collects installed package versions
(dpkg-query, rpm where present), the running kernel and config files' sha256.

The command is one `sh -c` script, bounded by the host's timeout; patterns are
passed as one argument with globbing off (`set -f`), so a pattern never expands
against the remote working directory. A host that does not answer, or answers
with something unreadable, is a `HostFacts` with `error` set: recorded, never
dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from osbench.errors import HostError
from osbench.hosts.base import CLOCK, Host

MARK = "#osbench-audit "
MISSING = "(missing)"

#: dpkg's Status-Abbrev: desired, status, error; "ii " is installed. Only the
#: second letter matters here: `i` installed (`c` is config-files only, `n` gone).
_SCRIPT = r"""set -f
echo '#osbench-audit kernel'
uname -r
if command -v dpkg-query >/dev/null 2>&1; then
  echo '#osbench-audit dpkg'
  dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Version}\n' $1 2>/dev/null
fi
if command -v rpm >/dev/null 2>&1; then
  echo '#osbench-audit rpm'
  rpm -qa --qf 'ii \t%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\n' $1 2>/dev/null
fi
shift
echo '#osbench-audit config'
for f in "$@"; do
  if [ -r "$f" ]; then sha256sum "$f" 2>/dev/null || echo "(unreadable)  $f"
  else echo "(missing)  $f"; fi
done
echo '#osbench-audit end'
"""


@dataclass(frozen=True)
class HostFacts:
    """What one host answered, or why it did not."""

    host: str
    kernel: str | None = None
    #: package name -> version (the package manager's own spelling).
    packages: Mapping[str, str] = field(default_factory=dict)
    #: config path -> sha256, or MISSING / "(unreadable)".
    configs: Mapping[str, str] = field(default_factory=dict)
    #: Which package managers answered (dpkg, rpm).
    managers: tuple[str, ...] = ()
    error: str | None = None
    duration_s: float = 0.0

    @property
    def answered(self) -> bool:
        return self.error is None


def argv(packages: Sequence[str], config_files: Sequence[str]) -> list[str]:
    """The one command run on each host."""
    return ["sh", "-c", _SCRIPT, "sh", " ".join(packages), *config_files]


def parse(host: str, text: str, duration_s: float = 0.0) -> HostFacts:
    """The script's output; a HostFacts with `error` when it is not complete."""
    section = ""
    kernel: str | None = None
    packages: dict[str, str] = {}
    configs: dict[str, str] = {}
    managers: list[str] = []
    ended = False
    for line in text.splitlines():
        if line.startswith(MARK):
            section = line[len(MARK):].strip()
            if section in ("dpkg", "rpm"):
                managers.append(section)
            ended = section == "end"
            continue
        if section == "kernel" and line.strip():
            kernel = line.strip()
        elif section in ("dpkg", "rpm"):
            parts = line.split("\t")
            if len(parts) == 3 and len(parts[0]) >= 2 and parts[0][1] == "i" and parts[2]:
                version = parts[2].removeprefix("0:") if section == "rpm" else parts[2]
                packages[parts[1]] = version
        elif section == "config" and "  " in line:
            digest, path = line.split("  ", 1)
            configs[path] = digest
    if not ended or kernel is None:
        return HostFacts(host, error="the audit command's output is incomplete: "
                         f"{text[-200:]!r}", duration_s=duration_s)
    return HostFacts(host, kernel, packages, configs, tuple(managers), None, duration_s)


async def collect(host: Host, packages: Sequence[str], config_files: Sequence[str],
                  timeout_s: float) -> HostFacts:
    """One host's facts; a host that fails or times out gives `error`, not an exception."""
    start = CLOCK.monotonic()
    try:
        result = await host.run(argv(packages, config_files), timeout_s=timeout_s, check=False)
    except HostError as exc:
        return HostFacts(host.name, error=str(exc), duration_s=CLOCK.monotonic() - start)
    if result.exit_status != 0:
        tail = " ".join(result.stderr.split())[-300:]
        return HostFacts(host.name, error=f"exit status {result.exit_status}: {tail}",
                         duration_s=result.duration_s)
    return parse(host.name, result.stdout, result.duration_s)


async def collect_all(hosts: Mapping[str, Host], packages: Sequence[str],
                      config_files: Sequence[str], timeout_s: float,
                      on_facts: Callable[[HostFacts], None] | None = None) -> list[HostFacts]:
    """Every host at once, each bounded by `timeout_s` (and its connect timeout);
    `on_facts` sees each host as it answers (so an interrupted audit keeps them).
    Returned in the order of `hosts`; a cancelled collection cancels every command."""
    tasks = {asyncio.ensure_future(collect(h, packages, config_files, timeout_s)): name
             for name, h in hosts.items()}
    try:
        for done in asyncio.as_completed(tasks):
            facts = await done
            if on_facts is not None:
                on_facts(facts)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    by_host = {t.result().host: t.result() for t in tasks}
    return [by_host[name] for name in hosts]
