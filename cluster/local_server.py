"""A `council serve` kept running in the background, so that `council run` answers warm.

Every cold `council run` starts Ray and loads the model before its job; that is most of its
time for a short request. `council up` starts one `council serve` as a detached process (its
own session, so a Ctrl-C in the shell that started it does not reach it) and records it in
`$COUNCIL_HOME/server.json` (default `~/.council`); `council run` then sends its request there
(`find_server`) and waits only for the job; `council down` stops it by the pid it recorded,
never by name, since other Councils and Rays may share the machine.

The record holds the process's start time as well as its pid, so a pid reused by another
program after a crash is not taken for the server (nor signalled).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from pydantic import BaseModel

DEFAULT_URL = "http://127.0.0.1:8000"
PROBE_TIMEOUT_S = 0.5  # a server on loopback answers /healthz in milliseconds


class ServerRecord(BaseModel):
    """What `council up` started: enough to find it and to stop it (and only it)."""

    pid: int
    created: float  # the process's start time (psutil), to tell it from a reused pid
    url: str
    log: str
    argv: list[str]


class ServerError(RuntimeError):
    """The background server did not start or stop; the message says why."""


def home() -> Path:
    return Path(os.environ.get("COUNCIL_HOME") or Path.home() / ".council")


def record_path() -> Path:
    return home() / "server.json"


def read_record() -> ServerRecord | None:
    """The recorded server if its process is still the one recorded; a stale record is removed."""
    path = record_path()
    try:
        record = ServerRecord.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None
    if not _is_running(record):
        path.unlink(missing_ok=True)
        return None
    return record


def _is_running(record: ServerRecord) -> bool:
    try:
        process = psutil.Process(record.pid)
        return abs(process.create_time() - record.created) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def answers(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> dict | None:
    """The server's /healthz when a Council answers at `url`, else None (never raises)."""
    try:
        reply = httpx.get(f"{url.rstrip('/')}/healthz", timeout=timeout_s)
        body = reply.json()
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) and "replicas_live" in body else None


def find_server(probe_default: bool = True) -> str | None:
    """Where a running Council is: `$COUNCIL_SERVER`, then the one `council up` recorded,
    then (with `probe_default`) the default address; None when none answers."""
    given = os.environ.get("COUNCIL_SERVER")
    if given:
        return given.rstrip("/")
    record = read_record()
    if record and answers(record.url):
        return record.url
    if probe_default and answers(DEFAULT_URL):
        return DEFAULT_URL
    return None


def start(serve_args: list[str], url: str, timeout_s: float, on_wait=lambda: None) -> ServerRecord:
    """Start `council serve <serve_args>` detached, record it, and wait until `url` has a live
    follower replica. A process that exits first is reported with the end of its log."""
    running = read_record()
    if running is not None:
        raise ServerError(f"a Council is already up at {running.url} (pid {running.pid}); `council down` stops it")
    if answers(url):
        raise ServerError(f"something already serves at {url}; choose another --port")
    home().mkdir(parents=True, exist_ok=True)
    log = home() / "serve.log"
    argv = [sys.executable, "-m", "council_cli", "serve", *serve_args]
    with log.open("w") as sink:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=os.getcwd())
    record = ServerRecord(pid=process.pid, created=psutil.Process(process.pid).create_time(), url=url,
                          log=str(log), argv=argv)
    record_path().write_text(record.model_dump_json(indent=2))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            record_path().unlink(missing_ok=True)
            raise ServerError(f"council serve exited ({process.returncode}) before it served: "
                              + _tail(log))
        health = answers(url, timeout_s=2.0)
        if health and health.get("replicas_live", 0) > 0:
            return record
        on_wait()
        time.sleep(0.5)
    stop(grace_s=60.0)
    raise ServerError(f"council serve had no live follower replica after {timeout_s:g} s: " + _tail(log))


def stop(grace_s: float = 150.0) -> ServerRecord | None:
    """Stop the recorded server (SIGTERM: it shuts Serve and its Ray down), then anything
    left in its process group after `grace_s`. None when none was recorded."""
    record = read_record()
    if record is None:
        return None
    try:
        os.kill(record.pid, signal.SIGTERM)
        psutil.Process(record.pid).wait(grace_s)
    except psutil.TimeoutExpired:
        _kill_group(record.pid, signal.SIGKILL)
    except (ProcessLookupError, psutil.NoSuchProcess):
        pass
    _kill_group(record.pid, signal.SIGTERM)  # what it started and left behind (its own group only)
    record_path().unlink(missing_ok=True)
    return record


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)  # the group `start` created for it: nothing else is in it
    except (ProcessLookupError, PermissionError):
        pass


def _tail(log: Path, lines: int = 12) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(no log at {log})"
    return "\n".join(text[-lines:]) or f"(nothing in {log})"
