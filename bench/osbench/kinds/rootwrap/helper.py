"""The timed call of one command in one privilege mode, on the machine that runs it.

This file is also the helper process: it uses only the standard library and
oslo.rootwrap, so osbench runs its source (`python -c SOURCE SPEC_JSON`) where
the command runs: here with osbench's own Python (its output read line by
line, every sample journaled as it is taken), or on a host with that host's
Python and oslo.rootwrap. A process of its own also keeps the daemon client's
lifetime (and oslo.rootwrap 7.10's unclosed client sockets) out of osbench.

Timing is `time.perf_counter` around the call, on the machine where the
command runs, so SSH round trips never enter a sample.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: The modes, in the order a round visits them before rotation.
MODES = ("direct", "sudo", "rootwrap", "daemon")

#: Exit statuses of oslo-rootwrap itself (oslo_rootwrap.cmd), not of the command.
ROOTWRAP_EXIT = {
    99: "denied by the rootwrap filters (exit 99: no filter matched)",
    98: "rootwrap got no command (exit 98)",
    97: "rootwrap cannot read its configuration (exit 97)",
    96: "a filter matched but its executable is not in exec_dirs (exit 96)",
}

#: What the helper exits with when it reports a ProbeFailure as JSON.
FAILURE_EXIT = 3

#: Exec dirs of the generated rootwrap.conf: where `ip` lives on Debian and
#: most distributions.
EXEC_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")

#: The filters the DHCP agent's call needs: `ip ...` and `ip netns exec NS ip ...`.
FILTERS = (("ip", "IpFilter, ip, root"), ("ip_exec", "IpNetnsExecFilter, ip, root"))


class ProbeFailure(Exception):
    """A mode could not run the command: never a latency sample."""

    def __init__(self, mode: str, command: Sequence[str], message: str) -> None:
        super().__init__(f"mode {mode}: {message} (command: {' '.join(command)})")
        self.mode = mode
        self.command = list(command)
        self.message = message


def conf_text(filters_dir: str, exec_dirs: Sequence[str] = EXEC_DIRS) -> str:
    """rootwrap.conf with the filters in `filters_dir`, no syslog."""
    return ("[DEFAULT]\n"
            f"filters_path={filters_dir}\n"
            f"exec_dirs={','.join(exec_dirs)}\n"
            "use_syslog=False\n")


def filters_text() -> str:
    """A filters file allowing the DHCP agent's `ip` and `ip netns exec` calls."""
    return "[Filters]\n" + "".join(f"{name}: {spec}\n" for name, spec in FILTERS)


def write_config(directory: str) -> str:
    """Write rootwrap.conf and filters.d/ip.filters under `directory`; the conf's path."""
    filters_dir = Path(directory) / "filters.d"
    filters_dir.mkdir(parents=True, exist_ok=True)
    (filters_dir / "ip.filters").write_text(filters_text())
    conf = Path(directory) / "rootwrap.conf"
    conf.write_text(conf_text(str(filters_dir)))
    return str(conf)


#: One timed call: (exit status, stdout, stderr, latency in seconds).
Timed = tuple[int, str, str, float]


class Caller:
    """Runs the command in one mode and times it; `close` releases a daemon."""

    def __init__(self, mode: str, command: Sequence[str], *, conf: str | None,
                 wrapper: str | None, daemon_wrapper: str | None,
                 timeout_s: float) -> None:
        self.mode = mode
        self.command = list(command)
        self.timeout_s = timeout_s
        self._client: Any = None
        if mode == "direct":
            self.argv = list(command)
        elif mode == "sudo":
            self.argv = ["sudo", "-n", *command]
        elif mode == "rootwrap":
            self.argv = [self._executable(wrapper, "wrapper"), self._conf(conf), *command]
        elif mode == "daemon":
            try:
                from oslo_rootwrap import client
            except ImportError:
                raise ProbeFailure(mode, command, "oslo.rootwrap is not installed for "
                                   f"{sys.executable}") from None
            self.argv = [self._executable(daemon_wrapper, "daemon wrapper"), self._conf(conf)]
            self._client = client.Client(self.argv)
        else:
            raise ProbeFailure(mode, command, f"unknown mode; valid: {', '.join(MODES)}")

    def _executable(self, path: str | None, what: str) -> str:
        found = shutil.which(path) if path else None
        if not found:
            raise ProbeFailure(self.mode, self.command, f"{what} {path!r} not found")
        return found

    def _conf(self, conf: str | None) -> str:
        if not conf or not Path(conf).is_file():
            raise ProbeFailure(self.mode, self.command,
                               f"rootwrap configuration {conf!r} not found")
        return conf

    def call(self) -> Timed:
        """Run the command once; ProbeFailure unless it exits 0."""
        start = time.perf_counter()
        if self._client is not None:
            try:
                rc, out, err = self._client.execute(self.command)
            except Exception as exc:
                # oslo.rootwrap 7.10's daemon answers a denied command with a
                # RemoteError ("Object of type ValueError is not JSON
                # serializable") instead of exit 99, so say both.
                raise ProbeFailure(self.mode, self.command,
                                   "the rootwrap daemon did not run it (denied by the "
                                   f"filters, or the daemon failed): {_one_line(exc)}") from None
        else:
            try:
                proc = subprocess.run(self.argv, stdin=subprocess.DEVNULL,
                                      capture_output=True, timeout=self.timeout_s, check=False)
            except FileNotFoundError:
                raise ProbeFailure(self.mode, self.command,
                                   f"command not found: {self.argv[0]!r}") from None
            except subprocess.TimeoutExpired:
                raise ProbeFailure(self.mode, self.command,
                                   f"timed out after {self.timeout_s:g} s") from None
            rc = proc.returncode
            out = proc.stdout.decode(errors="replace")
            err = proc.stderr.decode(errors="replace")
        latency = time.perf_counter() - start
        if rc != 0:
            known = ROOTWRAP_EXIT.get(rc) if self.mode in ("rootwrap", "daemon") else None
            raise ProbeFailure(self.mode, self.command,
                               (known or f"exit status {rc}") + _tail(err))
        return rc, out, err, latency

    def close(self) -> None:
        """Stop the daemon now rather than when this process exits."""
        client, self._client = self._client, None
        finalize = getattr(client, "_finalize", None)
        if finalize is not None:
            finalize()
        process = getattr(client, "_process", None)
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[-300:] or type(exc).__name__


def _tail(stderr: str) -> str:
    text = " ".join(stderr.split())
    return f": {text[-300:]}" if text else ""


def rounds(modes: Sequence[str], samples: int) -> list[tuple[int, str]]:
    """(sample index, mode) in run order: round i visits every mode, starting one
    further along each round, so drift and order effects hit every mode alike."""
    order: list[tuple[int, str]] = []
    for i in range(samples):
        k = i % len(modes)
        order.extend((i, m) for m in [*modes[k:], *modes[:k]])
    return order


def measure(spec: dict[str, Any], on_sample: Callable[[dict[str, Any]], None],
            should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """The whole probe on this machine (batch mode): start-up, warm-up, samples.

    `spec`: modes, command, conf (or generate_conf), wrapper, daemon_wrapper,
    warmup, samples, timeout_s. Calls `on_sample` with each sample row and
    returns {"startup": [...], "reference": stdout, "mismatches": [...]}.
    `should_stop` is asked before every call (a thread cannot be cancelled).
    """
    tmp = tempfile.mkdtemp(prefix="osbench-rootwrap-") if spec.get("generate_conf") else None
    conf = write_config(tmp) if tmp else spec.get("conf")
    callers: dict[str, Caller] = {}
    out: dict[str, Any] = {"startup": [], "mismatches": [], "reference": None}
    try:
        for mode in spec["modes"]:
            callers[mode] = Caller(mode, spec["command"], conf=conf,
                                   wrapper=spec.get("wrapper"),
                                   daemon_wrapper=spec.get("daemon_wrapper"),
                                   timeout_s=spec.get("timeout_s", 30.0))
        for mode, caller in callers.items():
            _, stdout, _, first = caller.call()
            out["startup"].append({"mode": mode, "first_call_ms": first * 1e3})
            if out["reference"] is None:
                out["reference"] = stdout
            elif stdout != out["reference"]:
                out["mismatches"].append({"mode": mode, "i": -1, "stdout": stdout[:2000]})
        for _ in range(spec.get("warmup", 0)):
            for caller in callers.values():
                if should_stop():
                    return out
                caller.call()
        for i, mode in rounds(list(callers), spec["samples"]):
            if should_stop():
                return out
            rc, stdout, _, latency = callers[mode].call()
            if stdout != out["reference"]:
                out["mismatches"].append({"mode": mode, "i": i, "stdout": stdout[:2000]})
                continue
            on_sample({"mode": mode, "i": i, "latency_ms": latency * 1e3, "rc": rc})
    finally:
        for caller in callers.values():
            caller.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: Sequence[str]) -> int:
    """`helper.py SPEC_JSON`: JSON lines, `{"sample": row}` as each sample is
    taken, then one `{"done": {...}}` or `{"error": {...}}` line.

    SIGTERM ends it through `finally`, so its daemon and files go with it.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    spec = json.loads(argv[1])

    def emit(doc: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()

    try:
        result = measure(spec, lambda row: emit({"sample": row}))
    except ProbeFailure as exc:
        emit({"error": {"mode": exc.mode, "command": exc.command, "message": exc.message}})
        return FAILURE_EXIT
    emit({"done": {"python": sys.executable, **result}})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
