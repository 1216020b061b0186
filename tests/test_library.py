"""The library planner end to end on the real SmolLM2 follower: one COLLIE wiki task of each
type DisCIPL reports, planned, run as SMC (in-process replicas), judged by COLLIE's own
constraint."""

import asyncio

import pytest

from actors.particle_host import LocalReplica, ParticleHost
from cluster.scheduler import InferenceConfig, ProgramSpec, Scheduler
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
