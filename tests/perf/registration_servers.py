"""The servers of the registration benchmark, each run as a process of its own
(`python -m tests.perf.registration_servers KIND DIR`): the parent reads one
line of JSON (port, pid, token), then sends commands on stdin, one per line:
`dump` prints the arrivals since the last dump ({path id: CLOCK_MONOTONIC
seconds}); `stop` ends the process.

- `osbench`: `RegistrationServer` as `boot` runs it: a real `Journal` under
  DIR, each arrival journaled as a `phone_home` row by the run's context path
  (`CaseContext.record_many`), before its reply. Its cap per source address
  is lifted: every client here is 127.0.0.1, real guests have addresses of
  their own (the cap in all is the default, 16384 at most).
- `osbench-asyncio`: the same on asyncio's own loop (uvloop's fallback).
- `stdlib`: `http.server.ThreadingHTTPServer`, the field experiment's kind of
  server, stamping at the start of `do_POST`.

Stamps are `time.monotonic()`/`perf_counter()`, CLOCK_MONOTONIC on Linux: one
time base across processes, the client's too.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from osbench.clock import RealClock
from osbench.journal import Journal
from osbench.kinds.boot import registration_http
from osbench.kinds.boot.phonehome import Arrival, RegistrationServer
from osbench.kinds.boot.run import _arrival_row


class _Recorder:
    """A stand-in for the runner's case context: journal rows, keep them."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.rows: list[dict[str, Any]] = []

    def record(self, table: str, row: Mapping[str, Any]) -> None:
        full = {"case": "perf", **row}
        self.journal.record(table, full)
        self.rows.append(full)

    def record_many(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        # As the runner's context (osbench.runner._Context.record_many) does it.
        fulls = [{"case": "perf", **row} for row in rows]
        self.journal.record_many(table, fulls)
        self.rows.extend(fulls)


async def _osbench(directory: Path) -> None:
    journal = Journal.create(directory, "perf-registration", {"kind": "perf"})
    context = _Recorder(journal)

    def journal_rows(arrivals: Sequence[Arrival]) -> None:
        context.record_many("phone_home", [_arrival_row(a) for a in arrivals])

    server = RegistrationServer(clock=RealClock(), journal=journal_rows, host="127.0.0.1",
                                max_connections_per_source=100_000)
    await server.start()
    _hello(server.port, server.token)
    loop = asyncio.get_running_loop()
    dumped = 0
    try:
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "dump":
            arrivals = server.arrivals[dumped:]  # one read: a second could miss some
            dumped += len(arrivals)
            print(json.dumps({a.instance_id: a.monotonic for a in arrivals}), flush=True)
    finally:
        await server.stop()
        journal.finish("completed")


def _stdlib(directory: Path) -> None:
    arrivals: dict[str, float] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            stamp = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            with lock:
                arrivals[self.path.strip("/").rsplit("/", 1)[-1]] = stamp
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = int(Path("/proc/sys/net/core/somaxconn").read_text())
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            # The burst client closes once it has the status line: the rest of
            # the reply can meet a reset. The request was recorded before that.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _hello(server.server_address[1], "tok")
    while sys.stdin.readline().strip() == "dump":
        time.sleep(0.05)
        with lock:
            print(json.dumps(arrivals), flush=True)
            arrivals.clear()
    server.shutdown()


def _hello(port: int, token: str) -> None:
    print(json.dumps({"port": port, "pid": os.getpid(), "token": token}), flush=True)


def main() -> None:
    kind, directory = sys.argv[1], Path(sys.argv[2])
    if kind == "osbench-asyncio":
        registration_http.uvloop = None  # type: ignore[assignment] - the fallback, measured
        kind = "osbench"
    if kind == "osbench":
        asyncio.run(_osbench(directory))
    elif kind == "stdlib":
        _stdlib(directory)
    else:
        raise SystemExit(f"unknown server {kind!r}: osbench, osbench-asyncio or stdlib")


if __name__ == "__main__":
    main()
