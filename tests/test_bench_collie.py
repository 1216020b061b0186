"""`council bench collie` in small: a tiny random follower on three COLLIE tasks, every field of
the JSON present and plausible (the figures themselves are the bench's business), and the
judge model scoring fluent text above word salad."""

import asyncio
import json
import math

import pytest

from actors.engines.base import EngineFollowers
from actors.particle_host import LocalReplica, ParticleHost
from bench import collie
from cluster.config import CouncilConfig, EngineConfig
from cluster.runner import CouncilRunner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_runner(tiny_model, smollm2_tokenizer):
    from actors.engines.torch_engine import TorchEngine

    engine = TorchEngine(tiny_model, smollm2_tokenizer, EngineConfig(dtype="float32"))
    replicas = [LocalReplica("r0", ParticleHost(engine))]
    return CouncilRunner(CouncilConfig(), lambda: replicas, followers=EngineFollowers(engine))


def test_a_quick_collie_bench_writes_every_field(tiny_runner, tiny_model_dir, collie_tasks, tmp_path):
    chosen = [next(t for t in collie_tasks if t["id"] == f"wiki_{kind}/0") for kind in ("c04", "c05", "c08")]
    tasks_path = tmp_path / "tasks.jsonl"
    tasks_path.write_text("".join(json.dumps(t) + "\n" for t in chosen))
    out, seen = tmp_path / "answers.jsonl", []
    asyncio.run(collie.run_tasks(tiny_runner, collie.load(tasks_path, 1), out, particles=2, seed=0,
                                 progress=seen.append))
    assert len(seen) == 9 and {r.method for r in seen} == {"smc", "follower", "best-of-n"}
    smc = {r.id: r for r in seen if r.method == "smc"}
    for r in seen:
        assert r.error is None and r.follower_tokens > 0 and r.seconds > 0
        if r.method == "best-of-n":  # as many samples as SMC's token budget buys
            assert 1 <= r.samples <= collie.MAX_BEST_OF and r.samples >= min(
                collie.MAX_BEST_OF, round(smc[r.id].follower_tokens / 160))
    again = []
    asyncio.run(collie.run_tasks(tiny_runner, collie.load(tasks_path, 1), out, 2, 0, again.append))
    assert again == []  # resumed: nothing answered twice

    report = tmp_path / "report.md"
    result = collie.summarise_file(out, tasks_path, 1, collie.TYPES, tiny_model_dir, tmp_path / "collie_bench.json",
                                   report, meta={"particles": 2, "follower": "tiny"})
    summary = result["summary"]
    assert set(summary) == {"c04", "c05", "c08", "overall"}
    for kind, methods in summary.items():
        assert set(methods) == {"smc", "follower", "best-of-n", "reference"}
        assert methods["reference"]["fluency"] < 0 and 0 <= methods["reference"]["repetition"] < 1
        for name in ("smc", "follower", "best-of-n"):
            f = methods[name]
            assert set(f) >= {"tasks", "pass_rate", "fluency", "follower_tokens_per_task",
                              "planner_tokens_per_task", "seconds_per_task", "usd_per_100_tasks", "repetition"}
            assert 0 <= f["pass_rate"] <= 1 and f["follower_tokens_per_task"] > 0 and f["usd_per_100_tasks"] >= 0
            assert f["fluency"] is None or (math.isfinite(f["fluency"]) and f["fluency"] < 0)
            assert f["repetition"] is None or 0 <= f["repetition"] <= 1
    assert summary["overall"]["smc"]["tasks"] == 3
    assert json.loads((tmp_path / "collie_bench.json").read_text())["summary"] == summary
    text = report.read_text()
    assert "| overall | smc | 3 |" in text and "collie_pass_rate" in text
    assert all((report.parent / "results" / name).stat().st_size > 1000
               for name in ("collie_pass_rate.png", "collie_fluency.png"))


def test_repetition_counts_word_trigrams_seen_before():
    assert collie.repetition("The river runs past the old mill and into the sea.") == 0
    loop = collie.repetition("the river runs " * 5)
    assert loop is not None and 0.7 < loop < 1  # 13 trigrams, 3 distinct
    assert collie.repetition("too short") is None


def test_with_a_planner_endpoint_the_llm_planner_and_planner_alone_get_rows(tiny_runner, collie_tasks, tmp_path):
    """The endpoint here answers every call with one sentence: not a program, so the LLM
    planner's attempt is rejected and the library's program runs (the row says so)."""
    from bench.openai_stub import ScriptedOpenAI

    task = next(t for t in collie_tasks if t["id"] == "wiki_c04/0")
    with ScriptedOpenAI() as server:
        server.respond_with(lambda body: ("The river runs past the mill.", (50, 8)))
        cfg = CouncilConfig.from_dict({"planner": {"kind": "openai", "base_url": server.base_url,
                                                   "repair_attempts": 0, "api_retries": 0}})
        runner = CouncilRunner(cfg, tiny_runner.replicas, followers=tiny_runner.followers)
        rows = asyncio.run(collie.run_tasks(runner, [task], tmp_path / "a.jsonl", particles=2, seed=0))
    by_method = {r.method: r for r in rows}
    assert set(by_method) == {"smc-llm", "follower", "best-of-n", "planner"}
    assert by_method["smc-llm"].planner_path == "library" and by_method["smc-llm"].planner_tokens > 0
    assert by_method["planner"].text == "The river runs past the mill." and by_method["planner"].planner_tokens == 58
    assert by_method["planner"].follower_tokens == 0
    summary = collie.summarise(rows, {})
    assert summary["overall"]["smc-llm"]["llm_program_share"] == 0.0


def test_the_gemma_judge_prefers_fluent_text_and_answers_chat():
    from bench.local_model import LocalLM

    judge = LocalLM("gemma3-270m")
    fluent, salad = judge.mean_logprobs(["The river runs past the old mill and into the sea.",
                                         "mill sea The past into runs the river and old the."])
    assert fluent > salad
    text, (prompt_tokens, completion_tokens) = judge.chat([{"role": "user", "content": "Name a colour."}],
                                                          max_tokens=8)
    assert prompt_tokens > 5 and 0 < completion_tokens <= 8 and "\n\n" not in text
