"""`council bench planner`: what planning adds to a request, and how big the planner's prompt is.

Measured in one process on the embedded follower (SmolLM2, one in-process replica), with the
LLM served by the scripted local OpenAI server (bench/openai_stub.py) answering at once, so
the figures are Council's own overhead (HTTP round trip, code extraction, sandbox validation,
one-step dry run), not a real model's thinking time:

- library:  the offline planner (parse + template);
- llm:      a good program on the first reply;
- repair:   a syntax error, then a good program (one repair round);
- cached:   the same request again (the program cache).

    council bench planner --json bench/results/planner.json
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

from bench.openai_stub import ScriptedOpenAI
from cluster.config import CouncilConfig, EngineConfig

SYNTAX_ERROR = "```python\nclass Program(Model)\n    pass\n```"


def system_prompt_tokens() -> dict:
    """The system prompt's size, counted with the follower's tokenizer (GPT-4o's tokenizer
    is not installable offline; counts of English text and code differ by a few percent)."""
    from transformers import AutoTokenizer

    from actors.engines.model_source import resolve_model
    from planner.llm import system_prompt

    src = resolve_model("smollm2")
    tok = AutoTokenizer.from_pretrained(src.directory, **src.from_pretrained_kwargs())
    text = system_prompt()
    return {"characters": len(text), "tokens_smollm2": len(tok.encode(text))}


async def _time(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def measure(n: int) -> dict:
    from actors.engines.torch_engine import TorchEngine
    from actors.particle_host import LocalReplica, ParticleHost
    from cluster.runner import CouncilRunner
    from planner.library import plan
    from planner.llm import LLMPlanner, example_programs
    from planner.planning import make_program

    good = "```python\n" + example_programs()["fixed_word"][0] + "```"
    replicas = [LocalReplica("r0", ParticleHost(TorchEngine.load(EngineConfig())))]
    results: dict[str, list[float]] = {}
    results["library"] = await _time(lambda i: asyncio.sleep(0, plan(f"Write exactly {8 + i} words.")), n)
    with ScriptedOpenAI() as server:
        cfg = CouncilConfig.from_dict({"planner": {"kind": "openai", "base_url": server.base_url,
                                                   "model": "scripted", "api_retries": 0}})
        runner = CouncilRunner(cfg, lambda: replicas)
        llm = runner.llm
        assert isinstance(llm, LLMPlanner)
        server.default = {"content": good, "usage": (0, 0)}
        results["llm"] = await _time(lambda i: make_program(f"River fourth #{i}", llm), n)
        results["cached"] = await _time(lambda i: make_program(f"river fourth #{i}", llm), n)

        async def repaired(i):
            server.reply(SYNTAX_ERROR)
            planned = await make_program(f"River fourth, repaired #{i}", llm)
            assert len(planned.report.attempts) == 2
        results["repair"] = await _time(repaired, n)
    return {k: {"median_ms": statistics.median(v), "mean_ms": statistics.fmean(v),
                "max_ms": max(v), "n": len(v)} for k, v in results.items()}


def run(out: Path | None, n: int = 20) -> dict:
    report = {"system_prompt": system_prompt_tokens(), "latency": asyncio.run(measure(n))}
    print(f"system prompt: {report['system_prompt']['characters']} characters, "
          f"{report['system_prompt']['tokens_smollm2']} tokens (SmolLM2 tokenizer)")
    for name, row in report["latency"].items():
        print(f"{name:8s} median {row['median_ms']:7.1f} ms   mean {row['mean_ms']:7.1f} ms   "
              f"max {row['max_ms']:7.1f} ms   (n={row['n']})")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    return report
