"""The library planner end to end on the real SmolLM2 follower: one COLLIE wiki task of each
type DisCIPL reports, planned, run as SMC (in-process replicas), judged by COLLIE's own
constraint."""

import asyncio

import pytest

from actors.particle_host import LocalReplica, ParticleHost
from cluster.protocol import ProgramSpec
from cluster.scheduler import InferenceConfig, Scheduler
from planner.constraints import parse_collie
from planner.library import plan

pytestmark = pytest.mark.slow

TYPES = ["c04", "c05", "c06a", "c07", "c08", "c09", "c10", "c11", "c12"]


@pytest.fixture(scope="module")
def replicas(smollm2_engine):
    return [LocalReplica("r0", ParticleHost(smollm2_engine))]


@pytest.mark.parametrize("kind", TYPES)
def test_planned_program_satisfies_a_collie_task(replicas, collie_tasks, kind):
    task = next(t for t in collie_tasks if t["source"] == "wiki" and t["type"] == kind)
    planned = plan(task["prompt"])
    assert planned.template == "word_builder" and planned.recognised
    spec = ProgramSpec(source=planned.source, prompt=planned.prompt, seed=0)
    result = asyncio.run(Scheduler(spec, InferenceConfig(particles=8), lambda: replicas).run())
    assert result.passed_check, result.text
    assert parse_collie(task["constraint"], task["targets"])(result.text), result.text
    words = result.text.split()
    assert all(w.isascii() for w in words)  # no stray byte tokens or mojibake


def test_an_unconstrained_request_gets_plain_generation():
    planned = plan("Tell me something nice.")
    assert planned.template == "generic" and planned.recognised == []


EVERYDAY = [
    ("Write an acrostic poem for HOPE.", "word_builder"),
    ("Write 3 lines about the sea, each line ending with 'night'.", "word_builder"),
    ("Write two paragraphs about cats, 2 sentences each... exactly 4 sentences.", "word_builder"),
    ("List 4 items for a picnic that add up to $50.", "item_list"),
]


@pytest.mark.parametrize("request_text, template", EVERYDAY, ids=[e[0][:30] for e in EVERYDAY])
def test_planned_program_satisfies_an_everyday_request(replicas, request_text, template):
    planned = plan(request_text)
    assert planned.template == template and planned.recognised
    spec = ProgramSpec(source=planned.source, prompt=planned.prompt, seed=0)
    result = asyncio.run(Scheduler(spec, InferenceConfig(particles=8), lambda: replicas).run())
    assert result.passed_check, result.text
    assert planned.spec.verifier()(result.text), result.text
    assert all(w.isascii() for w in result.text.split())


def test_a_budget_shares_the_total_out_over_one_item_per_line(replicas):
    planned = plan("Plan a budget of 200 dollars for 5 gifts.")
    spec = ProgramSpec(source=planned.source, prompt=planned.prompt, seed=3)
    text = asyncio.run(Scheduler(spec, InferenceConfig(particles=8), lambda: replicas).run()).text
    lines = text.split("\n")
    assert len(lines) == 5 and all(line.startswith("- ") and ": $" in line for line in lines)
    assert sum(int(line.rsplit("$", 1)[1]) for line in lines) == 200
