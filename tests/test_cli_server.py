"""`council up`, a warm `council run` and `council down`, run as a user runs them."""

import json
from pathlib import Path

import pytest
from cli_runner import council

pytestmark = pytest.mark.slow


def test_up_keeps_a_server_warm_for_run_and_down_stops_it(tmp_path):
    import os
    import socket

    import httpx
    import psutil

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {**{k: v for k, v in os.environ.items() if k not in ("COUNCIL_API_KEYS", "COUNCIL_SERVER")},
           "COUNCIL_HOME": str(tmp_path)}
    # `council up` runs `council serve` in the background; with no keys it binds to loopback only.
    up = council("up", "--host", "0.0.0.0", "--port", str(port), timeout=420, env=env)
    assert up.returncode == 0, up.stderr[-2000:]
    record = json.loads((tmp_path / "server.json").read_text())
    try:
        assert f"Council is up at {url}" in up.stderr and record["url"] == url
        assert "binding to 127.0.0.1, not 0.0.0.0" in Path(record["log"]).read_text()
        from council_sdk.types import STRATEGIES

        models = httpx.get(f"{url}/v1/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == list(STRATEGIES)
        twice = council("up", "--port", str(port), timeout=60, env=env)
        assert twice.returncode == 1 and "already up" in twice.stderr
        # Found through the record: no --server given.
        for question in ("What is the capital of France?", "Write a sentence with exactly 5 words."):
            run = council("run", question, "--particles", "4", "--json", timeout=300, env=env, local=False)
            assert run.returncode == 0, run.stderr[-2000:]
            result = json.loads(run.stdout)
            assert result["text"].strip() and result["route"]["reason"]
        assert len(result["text"].split()) == 5 and result["passed"] is True
        import time

        def answered() -> float:  # the server's count of tasks ended (its stats lag a little)
            metrics = httpx.get(f"{url}/metrics", timeout=10).text
            return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                       if line.startswith("council_tasks_total{"))

        deadline = time.monotonic() + 30
        while answered() < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert answered() == 2  # both were answered by the server, none here
        mixed = council("run", "hi", "--server", url, "--model", "smollm2", timeout=60, env=env)
        assert mixed.returncode == 2 and "runs its own config" in mixed.stderr
    finally:
        down = council("down", timeout=240, env=env)
    assert down.returncode == 0 and f"stopped the Council at {url}" in down.stderr, down.stderr[-2000:]
    assert not psutil.pid_exists(record["pid"]) or psutil.Process(record["pid"]).status() == psutil.STATUS_ZOMBIE
    assert not (tmp_path / "server.json").exists()
    log = Path(record["log"]).read_text()
    assert "Traceback" not in log, log[-3000:]  # SIGTERM stopped Serve cleanly
    assert "no Council was up" in council("down", timeout=60, env=env).stderr
    gone = council("run", "hi", "--server", url, timeout=60, env=env)
    assert gone.returncode == 1 and "no Council answers" in gone.stderr and "Traceback" not in gone.stderr
