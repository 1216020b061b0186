"""The LLM planner over the OpenAI API, against a scripted local server (bench/openai_stub.py):
good programs run, bad ones are repaired with the error fed back, hostile ones are refused,
outages fall back to the library planner with a clear record, and the PlannerActor answers
concurrent requests."""

import asyncio
import time

import pytest

from actors.particle_host import LocalReplica, ParticleHost
from cluster.config import CouncilConfig
from cluster.runner import CouncilRunner, RunRequest
from cluster.protocol import ProgramSpec
from cluster.scheduler import InferenceConfig, Scheduler
from planner.constraints import words
from planner.llm import example_programs, extract_code, system_prompt
from bench.openai_stub import ScriptedOpenAI

pytestmark = pytest.mark.slow

GOOD = "Here is the program.\n```python\n" + example_programs()["fixed_word"][0] + "```\n"
SYNTAX_ERROR = "```python\nclass Program(Model)\n    pass\n```"
HOSTILE = """```python
import os

class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        os.system("echo pwned")

    async def step(self):
        self.finish()
```"""
FAILS_IN_STEP = """```python
class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt)

    async def step(self):
        table = {}
        await self.sample(self.context.next_token())
        self.finish() if table["missing"] else None
```"""
FAILS_LATER = """```python
class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt)
        self.steps = 0

    async def step(self):
        await self.sample(self.context.next_token())
        self.steps = self.steps + 1
        if self.steps == 3:
            raise ValueError("ran out of ideas")
```"""
CONSTRAINED = "Write a sentence with exactly 8 words."


@pytest.fixture(scope="module")
def replicas(smollm2_engine):
    return [LocalReplica("r0", ParticleHost(smollm2_engine))]


@pytest.fixture
def server():
    with ScriptedOpenAI() as stub:
        yield stub


def runner_for(server, replicas, **planner):
    cfg = CouncilConfig.from_dict({"planner": {
        "kind": "openai", "base_url": server.base_url, "model": "scripted", "api_retries": 0,
        "timeout_s": 10, **planner,
    }})
    return CouncilRunner(cfg, lambda: replicas)


def run(runner, prompt, particles=4):
    request = RunRequest(prompt=prompt, inference=InferenceConfig(particles=particles))
    return asyncio.run(runner.run(request))


def test_a_good_program_runs_and_its_usage_is_in_the_ledger(server, replicas):
    server.reply(GOOD, usage=(1234, 321))
    result = run(runner_for(server, replicas), "Ten words; the fourth is 'river'.")
    assert result.planner.path == "llm" and result.planner.reason is None
    assert [a.ok for a in result.planner.attempts] == [True]
    assert result.passed_check and words(result.text)[3] == "river" and len(words(result.text)) == 10
    led = result.ledger
    assert (led.planner_calls, led.planner_prompt_tokens, led.planner_completion_tokens) == (1, 1234, 321)
    assert led.usd == pytest.approx((1234 * 2.5 + 321 * 10.0) / 1e6)
    assert led.follower_tokens == result.follower_tokens > 0
    # the system prompt documents the API and carries the worked examples
    system = server.messages(0)[0]["content"]
    assert system == system_prompt() and "mask_dist" in system and "### Example 4" in system


def test_a_syntax_error_is_fed_back_and_repaired(server, replicas):
    server.reply(SYNTAX_ERROR, usage=(1000, 40))
    server.reply(GOOD, usage=(1100, 300))
    result = run(runner_for(server, replicas), "Ten words, the fourth is river.")
    assert result.planner.path == "llm"
    first, second = result.planner.attempts
    assert not first.ok and "syntax error" in first.error and second.ok
    repair = server.messages(1)[-1]["content"]
    assert "syntax error" in repair and "line 1" in repair
    assert server.messages(1)[-2] == {"role": "assistant", "content": SYNTAX_ERROR}
    assert (result.ledger.planner_prompt_tokens, result.ledger.planner_completion_tokens) == (2100, 340)


def test_a_program_that_fails_in_its_first_step_is_caught_by_the_dry_run(server, replicas):
    server.reply(FAILS_IN_STEP)
    server.reply(GOOD)
    result = run(runner_for(server, replicas), "Ten words with river fourth.")
    first, second = result.planner.attempts
    assert "KeyError" in first.error and "<program>" in first.error and second.ok
    assert "KeyError" in server.messages(1)[-1]["content"]


def test_a_hostile_program_is_refused_then_the_library_answers(server, replicas):
    server.reply(HOSTILE, times=4)
    result = run(runner_for(server, replicas), CONSTRAINED)
    report = result.planner
    assert report.path == "library" and len(report.attempts) == 4
    assert all("import" in a.error for a in report.attempts)
    assert "LLM planner failed: no valid program after 4 attempts" in report.reason
    assert result.passed_check and len(words(result.text)) == 8
    assert result.ledger.planner_calls == 4  # the failed attempts still cost tokens


def test_a_program_that_fails_after_its_dry_run_falls_back_while_running(server, replicas):
    server.reply(FAILS_LATER)
    result = run(runner_for(server, replicas), CONSTRAINED)
    report = result.planner
    assert report.path == "library" and [a.ok for a in report.attempts] == [True]
    assert "LLM program failed while running" in report.reason and "ran out of ideas" in report.reason
    assert result.passed_check and len(words(result.text)) == 8


@pytest.mark.parametrize("outage, reason", [
    (lambda s: s.hang(3, times=3), "planner timed out after 0.5 s"),
    (lambda s: s.status(500, times=3), "planner API returned HTTP 500"),
    (lambda s: s.status(429, times=3), "planner rate-limited (HTTP 429) after 2 retries"),
])
def test_an_outage_falls_back_with_a_clear_record(server, replicas, outage, reason):
    outage(server)
    started = time.monotonic()
    result = run(runner_for(server, replicas, timeout_s=0.5, api_retries=2), CONSTRAINED)
    assert result.planner.path == "library" and reason in result.planner.reason
    assert len(server.requests) == 3  # one call, two retries with backoff
    assert result.passed_check and len(words(result.text)) == 8
    assert time.monotonic() - started < 60


def test_a_rate_limit_that_clears_is_retried_and_the_llm_answers(server, replicas):
    server.status(429)
    server.reply(GOOD)
    result = run(runner_for(server, replicas, api_retries=2), "River fourth, ten words.")
    assert result.planner.path == "llm" and len(server.requests) == 2


def test_an_unconstrained_request_falls_back_to_plain_generation(server, replicas):
    server.status(500)
    result = run(runner_for(server, replicas), "Say hello.", particles=2)
    assert result.planner.path == "generic" and "HTTP 500" in result.planner.reason
    assert result.text


def test_programs_are_cached_per_normalised_request(server, replicas):
    server.reply(GOOD, usage=(500, 100))
    runner = runner_for(server, replicas)
    first = run(runner, "Ten words,  river fourth.")
    again = run(runner, "ten words, river FOURTH.")
    assert len(server.requests) == 1 and again.planner.cached and not first.planner.cached
    assert again.ledger.planner_prompt_tokens == 0  # a cached program costs nothing


def test_a_structured_spec_goes_to_the_library_planner(server, replicas):
    result = run(runner_for(server, replicas), '{"words": {"exactly": 6}}')
    assert result.planner.path == "library" and "structured spec" in result.planner.reason
    assert server.requests == []


def test_every_example_in_the_system_prompt_runs_and_passes_its_check(replicas):
    for name, (source, prompt) in example_programs().items():
        spec = ProgramSpec(source=source, prompt=prompt, seed=1)
        result = asyncio.run(Scheduler(spec, InferenceConfig(particles=4), lambda: replicas).run())
        assert result.passed_check and result.text, (name, result.text)


def test_code_is_extracted_from_a_reply():
    assert extract_code("Sure!\n```python\nclass Program(Model):\n    pass\n```\nDone.") == \
        "class Program(Model):\n    pass"
    two = "```python\nx = 1\n```\nand\n```py\nclass Program(Model):\n    pass\n```"
    assert extract_code(two).startswith("class Program")
    assert extract_code("class Program(Model):\n    pass") == "class Program(Model):\n    pass"


def test_twenty_concurrent_requests_through_the_planner_actor(ray_local, server):
    import ray

    from actors.planner import PlannerActor

    server.default = {"content": GOOD, "usage": (1000, 200)}
    cfg = CouncilConfig.from_dict({
        "planner": {"kind": "openai", "base_url": server.base_url, "model": "scripted",
                    "max_concurrency": 8},
        "pool": {"replicas": 1, "num_cpus": 1},
    })
    actor = PlannerActor.remote(cfg)  # the object, not a dump: a dump would mask the API key
    try:
        ray.get(actor.start.remote(), timeout=300)
        refs = [actor.run.remote(RunRequest(prompt=f"Ten words, river fourth (#{i}).",
                                            inference=InferenceConfig(particles=4, seed=i)))
                for i in range(20)]
        results = ray.get(refs, timeout=600)
    finally:
        ray.get(actor.shutdown.remote(), timeout=60)
        ray.kill(actor)
    assert len(results) == 20
    assert all(r.planner.path == "llm" and words(r.text)[3] == "river" for r in results)
    assert sum(r.ledger.planner_prompt_tokens for r in results) == 1000 * len(server.requests)


def test_the_dry_run_tries_the_program_on_the_pool_that_will_run_it(server, smollm2_engine):
    from actors.engines.base import EngineFollowers
    from cluster.pools import Pools, PoolView

    class Counting(LocalReplica):
        def __init__(self, rid):
            super().__init__(rid, ParticleHost(smollm2_engine))
            self.dry_runs = 0

        async def spawn(self, req, spec, ids):
            self.dry_runs += req.startswith("dry-")
            return await super().spawn(req, spec, ids)

    hosts = {"a": Counting("a0"), "b": Counting("b0")}
    pools = Pools({n: PoolView(lambda n=n: [hosts[n]], EngineFollowers(smollm2_engine)) for n in hosts}, "a")
    cfg = CouncilConfig.from_dict({"pools": {"a": {}, "b": {}}, "planner": {
        "kind": "openai", "base_url": server.base_url, "model": "scripted", "api_retries": 0, "timeout_s": 10}})
    server.reply(GOOD)
    result = asyncio.run(CouncilRunner(cfg, pools=pools).run(
        RunRequest(prompt="Ten words; the fourth is 'river'.", pool="b", inference=InferenceConfig(particles=2))))
    assert result.planner.path == "llm"
    assert (hosts["a"].dry_runs, hosts["b"].dry_runs) == (0, 1)
