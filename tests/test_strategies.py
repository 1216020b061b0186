"""vote, cascade, signal and the baselines on the real SmolLM2 follower, with the scripted
OpenAI-compatible server (bench/openai_stub.py) as the planner model."""

import asyncio

import pytest
from council_sdk.types import TaskRequest

from actors.engines.base import EngineFollowers
from bench.openai_stub import ScriptedOpenAI
from cluster.config import CouncilConfig
from cluster.runner import CouncilRunner
from cluster.strategies.base import NeedsPlannerModel
from cluster.strategies.cascade import compress
from planner.constraints import words

pytestmark = pytest.mark.slow

QUESTION = "What is 17 + 25? Answer with the number only."


@pytest.fixture
def server():
    with ScriptedOpenAI() as stub:
        yield stub


def runner(engine, server=None):
    planner = {"base_url": server.base_url, "model": "big", "api_retries": 0} if server else {}
    return CouncilRunner(CouncilConfig.from_dict({"planner": planner}), lambda: [],
                         followers=EngineFollowers(engine))


def run(r, **task):
    events = []
    result = asyncio.run(r.run_task(TaskRequest(**task), lambda kind, **d: events.append(kind)))
    return result, events


def test_vote_escalates_exactly_when_agreement_is_below_the_threshold(smollm2_engine, server):
    server.default = {"content": "42", "usage": (80, 2)}
    base = {"prompt": QUESTION, "strategy": "council-vote", "samples": 6, "temperature": 1.0, "seed": 3}
    first, events = run(runner(smollm2_engine, server), **base, threshold=0.0)
    agreement = first.confidence
    assert not first.escalated and server.requests == [] and "progress" in events
    assert sum(first.votes.values()) == 6 and 0 < agreement <= 1
    same, _ = run(runner(smollm2_engine, server), **base, threshold=agreement)
    assert not same.escalated and same.text == first.text  # not below: the followers decide
    above, _ = run(runner(smollm2_engine, server), **base, threshold=agreement + 1e-9)
    assert above.escalated and above.text == "42" and "below" in above.escalation
    shown = server.messages(0)[-1]["content"]
    # Every candidate is shown (a vote's key is the words of an answer that say something).
    assert QUESTION in shown and all(w in shown.casefold() for k in first.votes for w in k.split())
    led = above.ledger
    assert (led.planner_prompt_tokens, led.planner_completion_tokens) == (80, 2)
    assert led.follower_tokens == above.follower_tokens > 0


RIVER = "Describe a river in one sentence."


def test_vote_on_free_text_weighs_candidates_by_mutual_likelihood(smollm2_engine, server):
    server.default = {"content": "A river flows to the sea.", "usage": (90, 7)}
    base = {"prompt": RIVER, "strategy": "council-vote", "samples": 3, "temperature": 1.0,
            "seed": 1, "max_tokens": 24}
    first, events = run(runner(smollm2_engine, server), **base, threshold=0.0)
    assert not first.escalated and first.votes is None and 0 < first.confidence < 1
    assert len(first.posterior) == 3 and abs(sum(p.probability for p in first.posterior) - 1) < 1e-9
    assert first.text == first.posterior[0].text  # the candidate the others support most
    sampled = sum(e for e in (24,) * 3)  # an upper bound on the sampled tokens
    assert first.ledger.follower_tokens > sampled / 3  # sampling plus the 6 scorings
    above, _ = run(runner(smollm2_engine, server), **base, threshold=first.confidence + 1e-9)
    assert above.escalated and above.text == "A river flows to the sea."
    same, _ = run(runner(smollm2_engine, server), **base, threshold=first.confidence)
    assert not same.escalated and same.text == first.text


def test_mutual_likelihood_agreement_is_higher_when_the_candidates_agree(smollm2_engine):
    from council_sdk.types import GenerateResult

    from cluster.ledger import CostLedger, Prices
    from cluster.strategies.base import StrategyContext
    from cluster.strategies.vote import _mutual_likelihood

    def candidates(*texts):
        return [GenerateResult(text=t, token_ids=[1], token_logprobs=[-1.0], finish_reason="stop",
                               prompt_tokens=1, completion_tokens=1) for t in texts]

    async def agreement(*texts):
        ctx = StrategyContext(followers=EngineFollowers(smollm2_engine), big=None, ledger=CostLedger(Prices()))
        return await _mutual_likelihood("What is the capital of France? Answer in a sentence.",
                                        candidates(*texts), ["default"] * len(texts), ctx)

    agree = asyncio.run(agreement("The capital of France is Paris.", "Paris is the capital of France.",
                                  "The capital city of France is Paris."))
    differ = asyncio.run(agreement("The capital of France is Paris.", "Bananas grow in warm countries.",
                                   "My cat sleeps on the red sofa all day."))
    assert agree[2] > differ[2]
    assert differ[0] == "The capital of France is Paris."  # the answer the others make likeliest


def test_scores_and_entropies_agree_with_sampling(smollm2_engine):
    from council_sdk.types import GenerateRequest, ScoreRequest

    from actors.engines.base import score

    out = asyncio.run(smollm2_engine.generate(GenerateRequest(prompt=QUESTION, temperature=1.0, seed=5,
                                                              max_tokens=8)))
    assert len(out.token_entropies) == len(out.token_logprobs) == out.completion_tokens
    assert all(0 <= h <= 11.0 for h in out.token_entropies)  # ln(49152) = 10.8
    scored = asyncio.run(score(smollm2_engine, ScoreRequest(prompt=QUESTION, continuation=out.text)))
    if len(scored.token_logprobs) == len(out.token_logprobs):  # the text re-tokenises the same way
        assert scored.token_logprobs == pytest.approx(out.token_logprobs, abs=0.05)
    with pytest.raises(ValueError):
        ScoreRequest(prompt=QUESTION, continuation="")


def test_cascade_can_decide_by_lowest_token_or_entropy(smollm2_engine, server):
    server.default = {"content": "42", "usage": (60, 1)}
    for by in ("min-logprob", "neg-entropy"):
        base = {"prompt": QUESTION, "strategy": "council-cascade", "confidence_by": by}
        kept, _ = run(runner(smollm2_engine, server), **base, threshold=-1e9)
        measures = kept.confidence_measures
        assert set(measures) == {"mean-logprob", "min-logprob", "neg-entropy"}
        assert kept.confidence == measures[by] and measures["min-logprob"] <= measures["mean-logprob"] <= 0
        up, _ = run(runner(smollm2_engine, server), **base, threshold=kept.confidence + 1e-9)
        assert up.escalated and by in up.escalation


def test_cascade_escalates_exactly_below_the_threshold_with_an_exclusion_hint(smollm2_engine, server):
    server.default = {"content": "42", "usage": (60, 1)}
    base = {"prompt": "Please could you tell me: " + QUESTION, "strategy": "council-cascade"}
    kept, _ = run(runner(smollm2_engine, server), **base, threshold=-1e9)
    c = kept.confidence
    assert not kept.escalated and server.requests == [] and c < 0
    still, _ = run(runner(smollm2_engine, server), **base, threshold=c - 1e-9)
    assert not still.escalated and still.text == kept.text
    up, _ = run(runner(smollm2_engine, server), **base, threshold=c + 1e-9)
    assert up.escalated and up.text == "42" and up.compression_ratio < 1
    sent = server.messages(0)[-1]["content"]
    assert f'"{kept.text}"' in sent and "unreliable" in sent  # the exclusion hint
    assert not sent.lower().startswith("please")  # the compressed prompt


def test_signal_respects_its_token_cap_and_the_follower_answers(smollm2_engine, server):
    server.default = {"content": "add the tens then the ones " * 20, "usage": (50, 500)}
    result, _ = run(runner(smollm2_engine, server), prompt=QUESTION, strategy="council-signal",
                    signal_tokens=12)
    assert server.requests[0]["max_tokens"] == 12
    assert len(result.signal.split()) <= 12 and result.text
    assert result.ledger.planner_completion_tokens == 12 and result.ledger.follower_tokens > 0


def test_baselines(smollm2_engine, server):
    server.default = {"content": "42", "usage": (30, 1)}
    follower, _ = run(runner(smollm2_engine, server), prompt=QUESTION, strategy="follower")
    assert follower.text and follower.ledger.planner_calls == 0 and server.requests == []
    planner, _ = run(runner(smollm2_engine, server), prompt=QUESTION, strategy="planner")
    assert planner.text == "42" and planner.ledger.follower_tokens == 0 and planner.ledger.planner_calls == 1
    best, _ = run(runner(smollm2_engine), prompt="Write a sentence with exactly 5 words.",
                  strategy="best-of-n", samples=8, temperature=1.0, max_tokens=24)
    assert best.constraints == ["exactly 5 words"] and sum(best.votes.values()) == 8
    assert best.passed_check == (len(words(best.text)) == 5)


def test_strategies_that_need_the_planner_model_say_so(smollm2_engine):
    for strategy in ("council-signal", "planner"):
        with pytest.raises(NeedsPlannerModel, match="planner.base_url"):
            run(runner(smollm2_engine), prompt=QUESTION, strategy=strategy)
    # vote and cascade keep the followers' answer, and say why they could not escalate
    vote, _ = run(runner(smollm2_engine), prompt=QUESTION, strategy="council-vote", samples=3, threshold=2)
    assert not vote.escalated and vote.text


def test_an_outage_of_the_planner_model_leaves_the_follower_answer(smollm2_engine, server):
    server.status(500, times=2)
    result, _ = run(runner(smollm2_engine, server), prompt=QUESTION, strategy="council-cascade", threshold=0)
    assert not result.escalated and "HTTP 500" in result.escalation and result.text


def test_compress_drops_filler_only():
    assert compress("Please, could you tell me   what is 2 + 2?") == "What is 2 + 2?"
    assert compress("Convert 5 km to m.") == "Convert 5 km to m."


def test_the_short_answer_set_and_the_cascade_curve(tmp_path):
    from bench.strategies import calibrate, cascade_curve, correct, load, plot_curve

    rows = load()
    assert len(rows) == 300 and len({r["id"] for r in rows}) == 300
    assert correct("43 + 21 = 64", "64") and correct("The answer is 64.", "64") and not correct("65", "64")
    confidences, right = [-0.1, -0.5, -1.0, -2.0], [True, True, False, False]
    curve = cascade_curve(confidences, right, escalation_tokens=50)
    assert curve[0]["accuracy"] == 0.5 and curve[0]["escalation_rate"] == 0  # never escalate
    assert curve[-1]["accuracy"] == 1.0 and curve[-1]["escalation_rate"] == 1  # always
    assert calibrate(confidences, right, target=1.0) == -0.5  # keeps the two right answers
    weak = cascade_curve(confidences, right, 50, planner_right=[False, False, True, False])
    assert weak[-1]["accuracy"] == 0.25  # escalating everything: only what the planner got right
    plot_curve({"mean-logprob": curve, "weak": weak}, 0.5, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_bench_strategies_quick_run_reports_every_field(smollm2_engine, tmp_path):
    from bench.strategies import run as run_bench

    report = run_bench(tmp_path / "s.json", limit=4, strategies=("follower", "council-cascade"),
                       plot=tmp_path / "c.png", engine=smollm2_engine, report_path=tmp_path / "r.md")
    for row in report["strategies"].values():
        assert set(row) >= {"accuracy", "escalation_rate", "planner_prompt_tokens", "follower_tokens"}
        assert 0 <= row["accuracy"] <= 1 and row["follower_tokens"] > 0
    assert set(report["cascade_curves"]) == {"mean-logprob", "min-logprob", "neg-entropy"}
    assert (tmp_path / "c.png").exists() and "| council-cascade |" in (tmp_path / "r.md").read_text() and (tmp_path / "s.json").exists()
