"""Named follower pools: the config, the routes, a second architecture (Gemma 3) in the torch
engine, base-model chat, cross-model votes, cascades that climb pools, and a service with two
pools on a local Ray."""

from __future__ import annotations

import asyncio
import math

import pytest
import torch

from cluster.config import ConfigError, CouncilConfig


# -- config --------------------------------------------------------------------------------
def test_a_config_without_pools_is_one_pool_named_default():
    cfg = CouncilConfig.from_dict({"engine": {"dtype": "float32"}, "pool": {"replicas": 2}})
    assert list(cfg.pools) == ["default"] and cfg.default_pool == "default"
    assert cfg.pools["default"].engine.dtype == "float32" and cfg.pools["default"].pool.replicas == 2
    assert cfg.for_pool("default").pool.replicas == 2


def test_pools_inherit_the_shared_sections_and_take_fields_directly(tmp_path):
    path = tmp_path / "council.yaml"
    path.write_text("pool: {replicas: 2, num_cpus: 0.5}\nengine: {dtype: float32}\n"
                    "pools:\n  smol: {model: smollm2}\n  gemma: {model: gemma3-270m, replicas: 1, "
                    "follower_per_mtok: 0.02, engine: {max_batch_size: 8}}\n")
    cfg = CouncilConfig.load(path, env={"COUNCIL_POOLS__SMOL__REPLICAS": "3"})
    assert cfg.default_pool == "smol"  # the first pool
    smol, gemma = cfg.pools["smol"], cfg.pools["gemma"]
    assert (smol.pool.replicas, smol.pool.num_cpus, smol.engine.dtype) == (3, 0.5, "float32")
    assert (gemma.engine.model, gemma.pool.replicas, gemma.engine.max_batch_size) == ("gemma3-270m", 1, 8)
    assert cfg.for_pool("gemma").engine.model == "gemma3-270m"
    assert cfg.follower_price("gemma") == 0.02 and cfg.follower_price("smol") == cfg.prices.follower_per_mtok
    assert CouncilConfig.from_dict(cfg.model_dump()) == cfg  # what a process ships is what it reads back


@pytest.mark.parametrize("data, words", [
    ({"pools": {"Big Model": {}}}, "pool name"),
    ({"pools": {"a": {}}, "default_pool": "b"}, "default_pool"),
    ({"pools": {"a": {"modle": "x"}}}, "pools.a.modle"),
    ({"pools": {"a": {"kind": "vllm"}}}, "needs pool.num_gpus"),
    ({"pools": {"a": {}}, "routes": {"rules": [{"strategy": "council-vote", "pools": ["zz"]}]}}, "'zz'"),
    ({"routes": {"rules": [{"pattern": "(unclosed"}]}}, "not a regular expression"),
    ({"routes": {"rules": [{"strategy": "council-auto"}]}}, "routes.rules.0.strategy"),
])
def test_bad_pool_configs_name_what_is_wrong(data, words):
    with pytest.raises(ConfigError, match="(?s)" + words.replace("(", r"\(")):
        CouncilConfig.from_dict(data)


def test_pool_prices_make_the_ledger():
    from cluster.ledger import CostLedger, Prices

    ledger = CostLedger(Prices(follower_per_mtok=1.0, planner_input_per_mtok=0, planner_output_per_mtok=0),
                        {"gemma": 10.0})
    ledger.followers(1000, "gemma")
    ledger.followers(1000, "smol")
    ledger.followers(1000)
    snap = ledger.snapshot()
    assert snap.follower_tokens == 3000 and snap.follower_tokens_by_pool == {"gemma": 1000, "smol": 1000}
    assert snap.usd == pytest.approx((10_000 + 1000 + 1000) / 1e6)


# -- request kinds and routes ----------------------------------------------------------------
KINDS = [
    ("Who painted the ceiling of the Sistine Chapel?", "short-answer"),
    ("How many legs does a spider have", "short-answer"),
    ("tell me the chemical symbol for gold", "short-answer"),
    ("What's 144 divided by 12?", "short-answer"),
    ("19 * 21 =", "short-answer"),
    ("What's 17 times 3? Reply with just the number.", "short-answer"),  # a number is no constraint here
    # What people say before a question, and sums in words, keep it a short answer.
    ("hey so which element has the symbol Fe", "short-answer"),
    ("Quick question: how many days are in a leap year", "short-answer"),
    ("seven hundred or 45 plus 38", "short-answer"),
    ("9 squared", "short-answer"),
    ("ok, why does ice float", "open"),
    ("The weather is lovely today", "open"),
    ("Write a sentence of exactly 9 words about autumn.", "constrained"),
    ("Give me three lines about the sea, the second one ending with the word 'foam'.", "constrained"),
    ("Reply in JSON with the keys title and year for a film you like.", "structured"),
    ("Write a short story about a lighthouse keeper who finds a message in a bottle.", "open"),
    ("Explain why the sky looks blue during the day?", "open"),
    ("I've been feeling stuck at work lately and wonder whether changing teams would help me "
     "grow, given that I like my colleagues but find the projects repetitive and the pace slow.", "open"),
]


@pytest.mark.parametrize("prompt, kind", KINDS)
def test_request_kinds(prompt, kind):
    from cluster.runner import reading_of
    from planner.request_kind import request_kind

    found = request_kind(prompt, reading_of(prompt))
    assert found.kind == kind, found.reason
    assert found.reason


def test_a_given_response_format_makes_a_request_structured():
    from cluster.runner import reading_of
    from planner.grammar import GrammarSpec
    from planner.request_kind import request_kind

    assert request_kind("Who wrote Hamlet?", reading_of("Who wrote Hamlet?"),
                        GrammarSpec(choice=["Shakespeare", "Marlowe"])).kind == "structured"


@pytest.mark.parametrize("answers, question, same", [
    (["The capital of Italy is Rome.", "Rome", "rome!", "It's Rome, of course."], "What is the capital of Italy?", True),
    (["12", "7 + 5 = 12", "The answer is 12."], "What is 7 + 5?", True),
    (["Rome", "Milan"], "What is the capital of Italy?", False),
    (["The capital of Italy is Rome.", "The capital of Italy is Milan."], "What is the capital of Italy?", False),
])
def test_a_vote_counts_what_short_answers_say(answers, question, same):
    from cluster.strategies.base import answer_key

    keys = {answer_key(a, question) for a in answers}
    assert (len(keys) == 1) == same, keys


@pytest.mark.parametrize("answer, question, span", [
    ("The capital of Italy is Rome.", "What is the capital of Italy?", "Rome"),
    ("L'Étoile, of course.", "What is the name of the star?", "L'Étoile"),
    ("43 + 21 = 64", "What is 43 + 21?", "64"),
    ("Canada.", "What is the capital of Canada?", ""),  # only echoes the question: nothing to judge
    ("", "What is 2 + 2?", ""),
])
def test_another_model_judges_what_an_answer_says_not_its_echo_of_the_question(answer, question, span):
    from cluster.strategies.base import answer_span

    assert answer_span(answer, question) == span


TWO = {"pools": {"smol": {}, "gemma": {"model": "gemma3-270m"}}}


def _route(prompt, config=TWO, **task):
    from council_sdk.types import TaskRequest

    from cluster.routes import choose_route
    from cluster.runner import _grammar_of, reading_of

    request = TaskRequest(prompt=prompt, **task)
    return choose_route(request, CouncilConfig.from_dict(config), reading_of(prompt), _grammar_of(request))


def test_council_auto_routes_each_kind_by_the_default_rules():
    auto = {"strategy": "council-auto"}
    assert (r := _route("Which planet is closest to the sun?", **auto)).strategy == "council-vote"
    assert r.pools == ["smol", "gemma"] and r.kind == "short-answer" and r.rule == 2
    assert (r := _route("Write a sentence of exactly 7 words.", **auto)).strategy == "council-smc"
    assert r.pools == ["smol"]  # SMC particles stay on one model
    assert _route("Answer in JSON with the keys city and country.", **auto).strategy == "council-smc"
    assert (r := _route("Write a poem about the moon.", **auto)).strategy == "council-cascade"
    assert r.pools == ["smol", "gemma"] and "cascade" in r.reason and "open" in r.reason


def test_what_the_request_names_stands_and_rules_are_config():
    r = _route("Which planet is closest to the sun?", strategy="council-vote", pool="gemma")
    assert r.pools == ["gemma"] and r.rule is None and "named" in r.reason
    r = _route("Write a poem about the moon.", strategy="council-smc")
    assert r.pools == ["smol"]  # the default pool
    config = {**TWO, "routes": {"rules": [
        {"pattern": r"\bpoem\b", "strategy": "follower", "pools": ["gemma"]},
        {"kind": ["short-answer"], "strategy": "council-cascade", "pools": ["gemma", "smol"]},
        {"strategy": "council-smc"}]}}
    r = _route("Write a poem about the moon.", config, strategy="council-auto")
    assert (r.strategy, r.pools, r.rule) == ("follower", ["gemma"], 0)
    r = _route("Which planet is closest to the sun?", config, strategy="council-auto")
    assert (r.strategy, r.pools, r.rule) == ("council-cascade", ["gemma", "smol"], 1)
    r = _route("Which planet is closest to the sun?", config, strategy="council-vote")
    assert r.pools == ["gemma", "smol"]  # the rule's pools, for the strategy the request named


def test_an_unknown_pool_is_a_client_error():
    from cluster.pools import UnknownPool

    with pytest.raises(UnknownPool, match="no follower pool named 'big'.*smol, gemma"):
        _route("Hi?", pool="big")
    with pytest.raises(ValueError, match="named twice"):
        _route("Hi?", pool=["smol", "smol"])


# -- Gemma 3 in the slot engine, and base-model chat -----------------------------------------
def tiny_gemma3(window: int):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=window,
                           layer_types=["sliding_attention", "sliding_attention", "sliding_attention",
                                        "full_attention"], max_position_embeddings=512)
    return Gemma3ForCausalLM(cfg).eval()


def test_the_slot_engine_runs_gemma3_as_hugging_face_does():
    from actors.engines.slot_model import Row, SlotKVModel

    model = tiny_gemma3(window=8)  # far shorter than the sequence: the sliding layers matter
    ids = torch.randint(0, 512, (40,)).tolist()
    with torch.inference_mode():
        want = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    slots = SlotKVModel(model, 256)
    first = slots.forward([Row([], ids[:17], list(range(17)), wanted=list(range(17)))])
    rest = slots.forward([Row(list(range(17)), ids[17:], list(range(17, 40)), wanted=list(range(23)))])
    assert torch.allclose(torch.cat([first, rest]), want, atol=1e-4)


def test_a_tokenizer_without_a_chat_template_gets_a_transcript(smollm2_tokenizer):
    from copy import deepcopy

    from council_sdk.types import GenerateRequest, Message

    from actors.engines.base import chat_stops, encode_prompt

    base = deepcopy(smollm2_tokenizer)
    base.chat_template = None
    ids = encode_prompt(base, GenerateRequest(prompt="What is 2 + 2?"))
    assert base.decode(ids) == "User: What is 2 + 2?\nAssistant:"
    ids = encode_prompt(base, GenerateRequest(messages=[Message(role="system", content="Be brief."),
                                                        Message(role="user", content="Hi")]))
    assert base.decode(ids) == "System: Be brief.\nUser: Hi\nAssistant:"
    assert chat_stops(base, GenerateRequest(prompt="x", stop=["."])) == [".", "\nUser:"]
    assert chat_stops(base, GenerateRequest(prompt="x", chat=False)) == []
    assert chat_stops(smollm2_tokenizer, GenerateRequest(prompt="x")) == []  # it has a template
    assert base.decode(encode_prompt(base, GenerateRequest(prompt="raw text", chat=False))) == "raw text"


# -- strategies over two real models ---------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_engine(tiny_model, smollm2_tokenizer):
    from actors.engines.torch_engine import TorchEngine
    from cluster.config import EngineConfig

    return TorchEngine(tiny_model, smollm2_tokenizer, EngineConfig(dtype="float32", kv_cache_tokens=4096),
                       name="tiny")


def _context(smollm2_engine, tiny_engine, order=("smol", "tiny"), thresholds=None):
    from actors.engines.base import EngineFollowers
    from cluster.ledger import CostLedger, Prices
    from cluster.strategies.base import StrategyContext

    engines = {"smol": smollm2_engine, "tiny": tiny_engine}
    return StrategyContext(followers=None, big=None, ledger=CostLedger(Prices()),
                           pools={name: EngineFollowers(engines[name]) for name in order},
                           thresholds=thresholds or {})


def test_a_cross_model_vote_draws_from_every_pool_and_scores_across_them(smollm2_engine, tiny_engine):
    from council_sdk.types import TaskRequest

    from cluster.strategies.vote import vote

    ctx = _context(smollm2_engine, tiny_engine)
    task = TaskRequest(prompt="What is the capital of France? One word.", strategy="council-vote", samples=4,
                       max_tokens=6, threshold=0.0)
    result = asyncio.run(vote(task, ctx))
    by_pool = result.ledger.follower_tokens_by_pool
    sampled = {"smol", "tiny"}
    assert set(by_pool) == sampled and all(n > 0 for n in by_pool.values())
    assert result.answered_by in sampled and sum(result.votes.values()) == 4
    assert math.isclose(sum(e.probability for e in result.posterior), 1.0, rel_tol=1e-6)
    # The other model's vote is worth one sample at most, split over the answers.
    top = max(result.votes.values())
    assert top / 5 <= result.confidence <= (top + 1) / 5 + 1e-9


def test_each_pool_s_first_vote_is_greedy_and_an_echo_gets_no_cross_share(smollm2_engine, tiny_engine):
    from council_sdk.types import TaskRequest

    from cluster.strategies.vote import _cross_shares, vote

    ctx = _context(smollm2_engine, tiny_engine)
    asked = []
    for name, followers in ctx.pools.items():
        def recording(request, generate=followers.generate, name=name):
            asked.append((name, request.temperature))
            return generate(request)
        followers.generate = recording
    task = TaskRequest(prompt="What is the capital of France?", strategy="council-vote", samples=5,
                       temperature=0.9, max_tokens=6, threshold=0.0)
    asyncio.run(vote(task, ctx))
    assert sorted(asked) == sorted([("smol", 0.0), ("tiny", 0.0), ("smol", 0.9), ("tiny", 0.9), ("smol", 0.9)])
    shares = asyncio.run(_cross_shares("What is the capital of France?", ["Paris", "", "Lyon"],
                                       [{"smol"}, {"smol"}, {"tiny"}], ctx))
    assert shares[1] == 0.0 and math.isclose(sum(shares), 1.0) and shares[0] > 0 and shares[2] > 0


def test_a_cascade_climbs_the_pools_until_one_is_sure(smollm2_engine, tiny_engine):
    from council_sdk.types import TaskRequest

    from cluster.strategies.cascade import cascade

    task = TaskRequest(prompt="Name a colour.", strategy="council-cascade", max_tokens=6)
    sure_second = _context(smollm2_engine, tiny_engine, thresholds={"smol": 1.0, "tiny": -math.inf})
    result = asyncio.run(cascade(task, sure_second))
    assert result.answered_by == "tiny" and result.particles == 2 and not result.escalated
    assert "smol" in result.escalation and "tiny was sure" in result.escalation
    never_sure = _context(smollm2_engine, tiny_engine, thresholds={"smol": 1.0, "tiny": 1.0})
    result = asyncio.run(cascade(task, never_sure))
    # No planner model: the surest follower answer stands, and the result says so.
    assert result.answered_by in ("smol", "tiny") and not result.escalated
    assert "needs a planner model" in result.escalation and result.particles == 2
    first_sure = _context(smollm2_engine, tiny_engine, thresholds={"smol": -math.inf})
    result = asyncio.run(cascade(task, first_sure))
    assert result.answered_by == "smol" and result.particles == 1 and result.escalation is None


def test_a_runner_routes_tasks_to_pools_and_accounts_per_pool(smollm2_engine, tiny_engine):
    from council_sdk.types import TaskRequest

    from actors.engines.base import EngineFollowers
    from actors.particle_host import LocalReplica, ParticleHost
    from cluster.pools import Pools, PoolView
    from cluster.runner import CouncilRunner

    hosts = {"smol": [LocalReplica("s0", ParticleHost(smollm2_engine))],
             "tiny": [LocalReplica("t0", ParticleHost(tiny_engine))]}
    engines = {"smol": smollm2_engine, "tiny": tiny_engine}
    pools = Pools({n: PoolView(lambda n=n: hosts[n], EngineFollowers(engines[n])) for n in hosts}, "smol")
    cfg = CouncilConfig.from_dict({"pools": {"smol": {}, "tiny": {"follower_per_mtok": 1000.0}}})
    runner = CouncilRunner(cfg, pools=pools)
    smc = asyncio.run(runner.run_task(TaskRequest(prompt="Write a sentence of exactly 4 words.",
                                                  strategy="council-auto", pool="tiny", particles=4)))
    assert smc.strategy == "council-smc" and smc.route.pools == ["tiny"] and smc.answered_by == "tiny"
    assert set(smc.ledger.follower_tokens_by_pool) == {"tiny"}
    assert smc.ledger.usd == pytest.approx(smc.ledger.follower_tokens * 1000.0 / 1e6)
    asked = asyncio.run(runner.run_task(TaskRequest(prompt="Which ocean is the largest?",
                                                    strategy="council-auto", samples=2, max_tokens=6)))
    assert asked.strategy == "council-vote" and asked.route.pools == ["smol", "tiny"]
    assert asked.route.kind == "short-answer" and "council-vote" in asked.route.reason


# -- a service with two pools ----------------------------------------------------------------
@pytest.mark.slow
def test_a_planner_actor_runs_two_pools_each_with_its_own_controller(ray_local, tiny_model_dir):
    from council_sdk.types import TaskRequest

    from actors.planner import PlannerActor
    from actors.pool_controller import controller_name, running_pools
    from cluster.pool import NAMESPACE

    ray, app = ray_local, "two-pools"
    cfg = CouncilConfig.from_dict({
        "engine": {"model": tiny_model_dir, "dtype": "float32", "kv_cache_tokens": 4096},
        "pool": {"replicas": 1, "num_cpus": 0.5, "health_check_interval_s": 0.5},
        "pools": {"a": {}, "b": {"seed": 1}}})
    planner = PlannerActor.remote(cfg, app)
    try:
        health = ray.get(planner.start.remote(), timeout=300)
        assert health.status == "ok" and set(health.pools) == {"a", "b"} and health.replicas_live == 2
        assert sorted(running_pools(app)) == ["a", "b"]
        for pool in ("a", "b"):
            ray.get_actor(controller_name(app, pool), namespace=NAMESPACE)  # one controller each
        status = ray.get(planner.submit.remote(TaskRequest(prompt="Write 3 words.", pool="b", particles=2)))
        done = ray.get(planner.wait.remote(status.id, 300), timeout=320)
        assert done.status == "succeeded" and done.result.route.pools == ["b"]
        assert set(done.result.ledger.follower_tokens_by_pool) == {"b"}
        with pytest.raises(ray.exceptions.RayTaskError, match="no follower pool named 'c'"):
            ray.get(planner.submit.remote(TaskRequest(prompt="Write 3 words.", pool="c")))
        stats = ray.get(planner.stats.remote())
        assert set(stats.pools) == {"a", "b"} and stats.pools["b"].replicas_live == 1
        # Pool b's controller dies: Ray restarts it, it adopts b's replica, pool a never notices.
        from test_pool_controller import pid_of, sigkill_and_wait_restart

        b_controller = ray.get_actor(controller_name(app, "b"), namespace=NAMESPACE)
        followers = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                           if a["name"].startswith(f"{app}.b-follower-"))
        sigkill_and_wait_restart(ray, b_controller, pid_of(ray, b_controller))
        again = ray.get(planner.submit.remote(TaskRequest(prompt="Write 3 words.", pool="b", particles=2)))
        assert ray.get(planner.wait.remote(again.id, 300), timeout=320).status == "succeeded"
        assert sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                      if a["name"].startswith(f"{app}.b-follower-")) == followers  # adopted, not restarted
    finally:
        ray.get(planner.shutdown.remote(), timeout=120)
        ray.kill(planner)
    assert running_pools(app) == []
